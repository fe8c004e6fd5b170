//! The totals of the last stored checkpoint as Prometheus families, built at
//! scrape time under the names of [`crate::metrics::names`]. Exporting the stored state (not the live one) keeps every
//! counter monotonic across a crash: what was exported was stored, so a
//! restarted process starts from at least that.

use prometheus::{
    core::{Collector, Desc},
    proto::{Bucket, Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType},
};
use tokio::sync::watch;

use crate::{
    histogram::{Histogram, Scale},
    live::Durable,
    metrics::names,
    state::State,
    totals::{CityTotals, EVENT_NAMES},
};

/// Families: (name, help, labels besides `city`).
const FAMILIES: [(&str, &str, &[&str]); 7] = [
    (
        names::EVENTS,
        "ride events counted, per city and type",
        &["event"],
    ),
    (
        names::UNMATCHED,
        "rides without a driver, per city and reason",
        &["reason"],
    ),
    (names::VERDICTS, "fraud verdicts, per city", &["verdict"]),
    (
        names::MATCH_RATIO,
        "matched over matched plus unmatched rides",
        &[],
    ),
    (
        names::FARE,
        "quoted fares in minor units of their currency",
        &["currency"],
    ),
    (names::SURGE, "surge multipliers of the quoted fares", &[]),
    (names::TIME_TO_MATCH, "time from request to match", &[]),
];

/// Collects the per-city totals of the last stored checkpoint.
pub struct TotalsCollector {
    durable: watch::Receiver<Durable>,
    descs: Vec<Desc>,
}

impl TotalsCollector {
    /// Registers a collector of the stored state of `durable` into `registry`.
    pub fn register(
        registry: &prometheus::Registry,
        durable: watch::Receiver<Durable>,
    ) -> prometheus::Result<()> {
        registry.register(Box::new(TotalsCollector::new(durable)?))
    }

    /// Reads the stored state from `durable` at each scrape.
    pub fn new(durable: watch::Receiver<Durable>) -> prometheus::Result<Self> {
        let descs = FAMILIES
            .iter()
            .map(|(name, help, extra)| {
                let labels = std::iter::once("city").chain(extra.iter().copied());
                let labels = labels.map(String::from).collect();
                Desc::new(
                    name.to_string(),
                    help.to_string(),
                    labels,
                    Default::default(),
                )
            })
            .collect::<prometheus::Result<_>>()?;
        Ok(TotalsCollector { durable, descs })
    }
}

impl Collector for TotalsCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let state = self.durable.borrow().state.clone();
        families(&state)
    }
}

/// Every family for `state`.
pub fn families(state: &State) -> Vec<MetricFamily> {
    let mut out: Vec<(MetricType, Vec<Metric>)> = vec![
        (MetricType::COUNTER, vec![]),
        (MetricType::COUNTER, vec![]),
        (MetricType::COUNTER, vec![]),
        (MetricType::GAUGE, vec![]),
        (MetricType::HISTOGRAM, vec![]),
        (MetricType::HISTOGRAM, vec![]),
        (MetricType::HISTOGRAM, vec![]),
    ];
    for (city, t) in &state.cities {
        city_metrics(city.as_str(), t, &mut out);
    }
    FAMILIES
        .iter()
        .zip(out)
        .map(|((name, help, _), (kind, metrics))| {
            let mut f = MetricFamily::default();
            f.set_name(name.to_string());
            f.set_help(help.to_string());
            f.set_field_type(kind);
            f.set_metric(metrics);
            f
        })
        .collect()
}

fn city_metrics(city: &str, t: &CityTotals, out: &mut [(MetricType, Vec<Metric>)]) {
    for event in EVENT_NAMES {
        out[0].1.push(counter(
            &[("city", city), ("event", event)],
            t.events(event),
        ));
    }
    let reasons = [
        ("no_driver_in_radius", t.unmatched.no_driver_in_radius),
        ("all_nearby_claimed", t.unmatched.all_nearby_claimed),
        ("outside_service_area", t.unmatched.outside_service_area),
        ("cancelled", t.unmatched.cancelled),
    ];
    for (reason, n) in reasons {
        out[1]
            .1
            .push(counter(&[("city", city), ("reason", reason)], n));
    }
    let v = &t.verdicts;
    for (verdict, n) in [("allow", v.allow), ("review", v.review), ("block", v.block)] {
        out[2]
            .1
            .push(counter(&[("city", city), ("verdict", verdict)], n));
    }
    if let Some(rate) = t.match_rate() {
        out[3].1.push(gauge(&[("city", city)], rate));
    }
    for (currency, h) in &t.fares {
        let labels = [("city", city), ("currency", currency.as_str())];
        out[4].1.push(histogram(&labels, h, Scale::FareMinor, 1.0));
    }
    out[5]
        .1
        .push(histogram(&[("city", city)], &t.surge, Scale::Surge, 1.0));
    let ttm = &t.time_to_match_ms;
    out[6]
        .1
        .push(histogram(&[("city", city)], ttm, Scale::TimeToMatchMs, 1e3));
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

fn counter(pairs: &[(&str, &str)], value: u64) -> Metric {
    let mut c = Counter::default();
    c.set_value(value as f64);
    let mut m = Metric::default();
    m.set_label(labels(pairs));
    m.set_counter(c);
    m
}

fn gauge(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::default();
    m.set_label(labels(pairs));
    m.set_gauge(g);
    m
}

/// `per_base` stored units make one exported base unit (ms per s: 1000).
fn histogram(pairs: &[(&str, &str)], h: &Histogram, scale: Scale, per_base: f64) -> Metric {
    // The encoder adds the `+Inf` bucket from the sample count.
    let buckets = h
        .cumulative(scale)
        .into_iter()
        .filter(|(bound, _)| bound.is_finite())
        .map(|(bound, count)| {
            let mut b = Bucket::default();
            b.set_upper_bound(bound / per_base);
            b.set_cumulative_count(count);
            b
        })
        .collect();
    let mut p = prometheus::proto::Histogram::default();
    p.set_sample_count(h.count());
    p.set_sample_sum(h.sum / per_base);
    p.set_bucket(buckets);
    let mut m = Metric::default();
    m.set_label(labels(pairs));
    m.set_histogram(p);
    m
}

#[cfg(test)]
mod tests {
    use hail_events::sample;
    use prometheus::{Encoder, Registry, TextEncoder};

    use super::*;
    use crate::{event::RideEvent, live::Live};

    #[test]
    fn exports_the_stored_state_in_text_format() {
        let live = Live::new(State::default(), 1000);
        let registry = Registry::new();
        TotalsCollector::register(&registry, live.subscribe()).unwrap();
        live.apply(
            1,
            &RideEvent::Requested(sample::ride_requested("a", "berlin")),
        );
        live.apply(2, &RideEvent::Priced(sample::fare_quoted("a", "berlin")));
        let scrape = || {
            let mut out = Vec::new();
            TextEncoder::new()
                .encode(&registry.gather(), &mut out)
                .unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(
            !scrape().contains("city=\"berlin\""),
            "nothing stored yet, nothing exported"
        );
        let (v, state) = live.snapshot().unwrap();
        live.stored(v, std::sync::Arc::new(state));
        let text = scrape();
        for line in [
            r#"hail_analytics_events_total{city="berlin",event="RideRequested"} 1"#,
            r#"hail_analytics_events_total{city="berlin",event="FareQuoted"} 1"#,
            r#"hail_analytics_fare_minor_units_bucket{city="berlin",currency="EUR",le="1500"} 1"#,
            r#"hail_analytics_fare_minor_units_sum{city="berlin",currency="EUR"} 1250"#,
            r#"hail_analytics_surge_multiplier_count{city="berlin"} 1"#,
            r#"hail_analytics_time_to_match_seconds_bucket{city="berlin",le="+Inf"} 0"#,
            r#"hail_analytics_verdicts_total{city="berlin",verdict="block"} 0"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            !text.contains("hail_analytics_match_ratio{"),
            "no ratio before any ride is decided"
        );
        let inf = text
            .lines()
            .filter(|l| l.contains(r#"city="berlin""#) && l.contains(r#"le="+Inf""#));
        assert_eq!(inf.count(), 3, "one +Inf per histogram");
    }
}
