//! `hail dlq ls`: one line (or one JSON object) per dead letter.

use anyhow::Result;
use async_nats::jetstream::stream::Stream;

use super::letter::{Letter, Summary, filter_of, opt, read};

pub(super) async fn ls(stream: &Stream, service: Option<&str>, json: bool) -> Result<()> {
    let letters = read(stream, &filter_of(service), true).await?;
    let rows: Vec<Summary> = letters.iter().map(Letter::summary).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:>7}  {:<20}  {:<9}  {:<20}  {:<32}  {:>5}  reason",
        "dlq_seq", "stored (UTC)", "service", "kind", "origin (subject #seq)", "deliv"
    );
    for r in &rows {
        let origin = format!("{} #{}", r.subject, opt(r.stream_seq));
        let stored = r.stored_at.get(..19).unwrap_or(&r.stored_at);
        println!(
            "{:>7}  {:<20}  {:<9}  {:<20}  {:<32}  {:>5}  {}",
            r.dlq_seq,
            stored,
            r.service,
            r.kind,
            origin,
            opt(r.deliveries),
            truncate(&r.reason, 60)
        );
    }
    println!("{} dead letters", rows.len());
    Ok(())
}

/// At most `max` characters, with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_bounded_in_characters() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
    }
}
