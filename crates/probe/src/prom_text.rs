//! Reading metrics out of a Prometheus text exposition (format 0.0.4).

/// Sums every sample of metric `name` whose labels include all of `labels`.
///
/// `name` matches exactly, so `hail_latency_seconds` does not match
/// `hail_latency_seconds_count`; ask for the `_count`, `_sum` or `_bucket`
/// series by its full name. Comment and malformed lines are skipped. `None`
/// when no sample matched, so "never counted" differs from "counted zero".
///
/// ```
/// let body = "# TYPE hail_handled_total counter\n\
///             hail_handled_total{service=\"pricing\",outcome=\"ack\"} 3\n\
///             hail_handled_total{service=\"pricing\",outcome=\"nak\"} 1\n";
/// let sum = |labels: &[(&str, &str)]| hail_probe::prom_text::metric_sum(body, "hail_handled_total", labels);
/// assert_eq!(sum(&[]), Some(4.0));
/// assert_eq!(sum(&[("outcome", "ack")]), Some(3.0));
/// assert_eq!(sum(&[("outcome", "dlq")]), None);
/// ```
pub fn metric_sum(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines()
        .filter_map(parse_sample)
        .filter(|s| s.name == name && labels.iter().all(|want| s.has_label(want)))
        .map(|s| s.value)
        .reduce(|a, b| a + b)
}

#[derive(Debug, PartialEq)]
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

impl Sample<'_> {
    fn has_label(&self, (key, value): &(&str, &str)) -> bool {
        self.labels.iter().any(|(k, v)| k == key && v == value)
    }
}

/// Parses `name{k="v",...} value [timestamp]`; `None` for comments, blanks and malformed lines.
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let (name, mut rest) = line.split_at(name_end);
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        (labels, rest) = parse_labels(after_brace)?;
    }
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses the label pairs after `{` up to and including `}`; returns the rest of the line.
fn parse_labels(mut rest: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after_key) = rest.split_once('=')?;
        let (value, after_value) = parse_quoted(after_key.trim_start().strip_prefix('"')?)?;
        labels.push((key.trim(), value));
        rest = after_value.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Reads a label value after its opening quote, undoing `\\`, `\"` and `\n`.
fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

fn parse_value(token: &str) -> Option<f64> {
    match token {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"# HELP hail_messages_total Messages handled.
# TYPE hail_messages_total counter
hail_messages_total{service="pricing",outcome="ack"} 10
hail_messages_total{service="pricing",outcome="nak"} 2
hail_messages_total{service="fraud",outcome="ack"} 5 1700000000000
hail_messages_total_extra{service="pricing",outcome="ack"} 1000
hail_up 1
# TYPE hail_handle_seconds histogram
hail_handle_seconds_bucket{service="pricing",le="0.005"} 3
hail_handle_seconds_bucket{service="pricing",le="+Inf"} 7
hail_handle_seconds_sum{service="pricing"} 0.25
hail_handle_seconds_count{service="pricing"} 7
"#;

    #[test]
    fn sums_all_samples_without_label_filter() {
        assert_eq!(metric_sum(BODY, "hail_messages_total", &[]), Some(17.0));
    }

    #[test]
    fn filters_on_every_given_label() {
        let sum = |labels: &[(&str, &str)]| metric_sum(BODY, "hail_messages_total", labels);
        assert_eq!(sum(&[("service", "pricing")]), Some(12.0));
        assert_eq!(
            sum(&[("service", "pricing"), ("outcome", "ack")]),
            Some(10.0)
        );
        assert_eq!(sum(&[("outcome", "ack")]), Some(15.0));
        assert_eq!(sum(&[("service", "matching")]), None);
        assert_eq!(sum(&[("region", "eu")]), None);
    }

    #[test]
    fn name_matches_exactly_not_as_prefix() {
        assert_eq!(metric_sum(BODY, "hail_messages", &[]), None);
        assert_eq!(
            metric_sum(BODY, "hail_messages_total_extra", &[]),
            Some(1000.0)
        );
        assert_eq!(metric_sum(BODY, "hail_handle_seconds", &[]), None);
        assert_eq!(
            metric_sum(BODY, "hail_handle_seconds_count", &[]),
            Some(7.0)
        );
    }

    #[test]
    fn reads_samples_without_labels_and_histogram_series() {
        assert_eq!(metric_sum(BODY, "hail_up", &[]), Some(1.0));
        let inf = metric_sum(BODY, "hail_handle_seconds_bucket", &[("le", "+Inf")]);
        assert_eq!(inf, Some(7.0));
        assert_eq!(metric_sum(BODY, "hail_handle_seconds_sum", &[]), Some(0.25));
    }

    #[test]
    fn ignores_comments_even_when_they_look_like_samples() {
        let body = "# hail_x 5\n#hail_x 6\nhail_x 1\n";
        assert_eq!(metric_sum(body, "hail_x", &[]), Some(1.0));
    }

    #[test]
    fn label_values_may_hold_escapes_commas_and_braces() {
        let line = r#"m{path="/a,b}",msg="say \"hi\"\\n\n" , empty=""} 2.5e3"#;
        let sample = parse_sample(line).unwrap();
        assert_eq!(sample.name, "m");
        assert_eq!(sample.value, 2500.0);
        assert_eq!(
            sample.labels,
            vec![
                ("path", "/a,b}".into()),
                ("msg", "say \"hi\"\\n\n".into()),
                ("empty", String::new())
            ]
        );
        assert_eq!(metric_sum(line, "m", &[("path", "/a,b}")]), Some(2500.0));
    }

    #[test]
    fn trailing_comma_and_special_values() {
        let body = "m{a=\"1\",} +Inf\nn -Inf\no NaN\n";
        assert_eq!(metric_sum(body, "m", &[("a", "1")]), Some(f64::INFINITY));
        assert_eq!(metric_sum(body, "n", &[]), Some(f64::NEG_INFINITY));
        assert!(metric_sum(body, "o", &[]).unwrap().is_nan());
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let body = "m{a=\"1\" 3\nm{a=1} 4\nm\nm notanumber\nm 5\n";
        assert_eq!(metric_sum(body, "m", &[]), Some(5.0));
    }
}
