//! Whether a PromQL query reads hail's series only, so hail's rules and
//! dashboards do not fire or draw for other systems in a shared Prometheus.
//!
//! hail's scrape jobs are `hail-<service>` ([`super::config::job`]). A query is
//! scoped when every raw series it reads (`up`, `hail_*`) selects them first
//! thing, `name{job=~"hail-.*"...}`, and `ALERTS` selects `system="hail"`.
//! `hail:*` recording rules are hail's already: their rules are scoped.

/// The matcher every raw series of hail's rules and dashboards starts with.
pub const HAIL_JOBS: &str = r#"{job=~"hail-.*""#;

/// The matcher of hail's alerts in `ALERTS`.
pub const HAIL_ALERTS: &str = r#"{system="hail""#;

/// The series names `query` reads without hail's matcher; empty when scoped.
pub fn unscoped(query: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find(is_name_char) {
        let after_start = &rest[start..];
        let len = after_start
            .find(|c: char| !is_name_char(c))
            .unwrap_or(after_start.len());
        let (name, after) = after_start.split_at(len);
        let preceded_by_quote = rest[..start].ends_with('"');
        let needs = match name {
            "ALERTS" => Some(HAIL_ALERTS),
            "up" => Some(HAIL_JOBS),
            n if n.starts_with("hail_") => Some(HAIL_JOBS),
            _ => None,
        };
        if let Some(matcher) = needs
            && !preceded_by_quote
            && !after.starts_with(matcher)
        {
            bad.push(name.to_string());
        }
        rest = after;
    }
    bad
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_series_need_hails_jobs() {
        assert!(
            unscoped(r#"sum by (service) (rate(hail_x_total{job=~"hail-.*"}[1m]))"#).is_empty()
        );
        assert!(unscoped(r#"up{job=~"hail-.*"} == 0"#).is_empty());
        assert!(unscoped("hail:processed:rate1m or on (service) 0 * hail:x:max").is_empty());
        assert!(unscoped(r#"ALERTS{system="hail"}"#).is_empty());
        assert_eq!(unscoped("up == 0"), ["up"]);
        assert_eq!(unscoped("ALERTS"), ["ALERTS"]);
        assert_eq!(
            unscoped(r#"a{job=~"hail-.*"} unless hail_b{stream_name="RIDES"} offset 5m"#),
            ["hail_b"]
        );
    }

    #[test]
    fn label_values_are_not_series() {
        assert!(unscoped(r#"label_replace(hail:x, "service", "up", "", "")"#).is_empty());
    }
}
