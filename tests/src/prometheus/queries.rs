//! The queries of hail's dashboards, read out of their files.
//!
//! Console pages follow the convention of `console_libraries/hail.lib`: a query
//! is written as a raw string literal (`` `...` ``) inside a template action, and
//! every other string in an action in double quotes. Grafana panels keep theirs
//! in `targets[].expr`.

use serde_json::Value;

/// Every raw string literal in the actions of a console page (comments
/// skipped), in order, without repeats: the page's queries.
pub fn console(template: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let action = &rest[open + 2..];
        let (literals, len) = scan_action(action);
        if !action
            .trim_start_matches('-')
            .trim_start()
            .starts_with("/*")
        {
            for q in literals {
                if !out.contains(&q) {
                    out.push(q);
                }
            }
        }
        rest = &action[len..];
    }
    out
}

/// Reads one action up to its closing `}}`, skipping over string literals (which
/// may hold `}}`). Returns its raw literals and the length consumed.
fn scan_action(action: &str) -> (Vec<String>, usize) {
    let mut raws = Vec::new();
    let mut chars = action.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '`' => {
                let start = i + 1;
                let Some(end) = action[start..].find('`') else {
                    return (raws, action.len());
                };
                raws.push(action[start..start + end].to_string());
                while chars.peek().is_some_and(|&(j, _)| j <= start + end) {
                    chars.next();
                }
            }
            '"' => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '}' if action[i..].starts_with("}}") => return (raws, i + 2),
            _ => {}
        }
    }
    (raws, action.len())
}

/// One Grafana panel query: the panel's title and the PromQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelQuery {
    /// Title of the panel it belongs to.
    pub panel: String,
    /// `targets[].expr`.
    pub expr: String,
}

/// Every `targets[].expr` of a Grafana dashboard, rows' nested panels included.
pub fn grafana(dashboard: &Value) -> Vec<PanelQuery> {
    let mut out = Vec::new();
    collect_panels(&dashboard["panels"], &mut out);
    out
}

fn collect_panels(panels: &Value, out: &mut Vec<PanelQuery>) {
    for panel in panels.as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or_default();
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push(PanelQuery {
                    panel: title.to_string(),
                    expr: expr.to_string(),
                });
            }
        }
        collect_panels(&panel["panels"], out);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_the_raw_literals_of_actions() {
        let page = r#"
            {{/* a comment with `not a query` */}}
            <p>prose with `backticks` is not an action</p>
            {{ range query `up{job="x"}` | sortByLabel "job" }}{{ end }}
            {{- with query `time()` }}{{ end }}
            {{ template "hail.bars" (args `rate(a[1m])` "service" "" "/s") }}
            {{ template "hail.section" (args "Title \"`quoted`\" }}" "what") }}
            {{ $max := query (printf "max(%s)" $q) }}
            {{ range query `up{job="x"}` }}{{ end }}
            {{ template "hail.bars" (args `{a="}}"}` "x") }}
        "#;
        assert_eq!(
            console(page),
            [r#"up{job="x"}"#, "time()", "rate(a[1m])", r#"{a="}}"}"#]
        );
    }

    #[test]
    fn unterminated_literals_end_the_scan() {
        assert!(console("{{ query `up").is_empty());
        assert_eq!(console("{{ query `up` }} {{ x `a"), ["up"]);
    }

    #[test]
    fn finds_every_target_of_every_panel() {
        let dashboard = json!({"panels": [
            {"title": "Lag", "targets": [{"expr": "a"}, {"expr": "b"}]},
            {"title": "Row", "type": "row", "panels": [
                {"title": "Inner", "targets": [{"expr": "c"}, {"refId": "no expr"}]}
            ]},
            {"title": "Text", "type": "text"}
        ]});
        let q: Vec<(String, String)> = grafana(&dashboard)
            .into_iter()
            .map(|p| (p.panel, p.expr))
            .collect();
        assert_eq!(
            q,
            [("Lag", "a"), ("Lag", "b"), ("Inner", "c")]
                .map(|(p, e)| (p.to_string(), e.to_string()))
        );
    }
}
