//! hail's services, in one place: each one's name, binary, default `/metrics`
//! port, the subjects it reads and writes, and the durable consumer it binds
//! on RIDES. [`Service::ALL`] is the pipeline every request goes through
//! (matching, pricing, fraud, analytics: what the audit checks and the load
//! generator's null pipeline binds); [`Service::EVERY`] adds the services added
//! beside it later (ride-view, the ride read model), which read RIDES but
//! answer nothing.
//!
//! Everything that names a service reads it from here: the services themselves
//! ([`crate::Runtime::start`] binds [`Service::consumer_spec`]), the CLI's local
//! stack and audit, the e2e tests and the load generator's null pipeline, which
//! so binds exactly the consumers the services bind.
//!
//! ```
//! use hail_runtime::service::Service;
//!
//! let pricing: Service = "pricing".parse()?;
//! assert_eq!(pricing.binary(), "hail-pricing");
//! assert_eq!(pricing.metrics_port(), 9102);
//! assert_eq!(pricing.filters(), ["rides.requested.>"]);
//! let spec = pricing.default_consumer_spec();
//! assert_eq!((spec.durable.as_str(), spec.stream.as_str()), ("pricing", "RIDES"));
//!
//! let err = "billing".parse::<Service>().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     r#"unknown service "billing": expected one of matching, pricing, fraud, analytics, ride-view"#
//! );
//! # Ok::<(), hail_runtime::service::UnknownService>(())
//! ```

use std::{fmt, str::FromStr};

use hail_events::subjects;

use crate::{
    config::{RuntimeArgs, defaults},
    provision::ConsumerSpec,
};

/// Default `/metrics` port of hail-monitor on the local stack, after the
/// services' 9101–9104.
pub const MONITOR_METRICS_PORT: u16 = 9105;

/// hail-monitor's binary.
pub const MONITOR_BINARY: &str = "hail-monitor";

/// One of hail's services; its name is also its durable consumer (the
/// consumer group), its `dlq.<name>` subject and its services-API name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// A driver (or a reason for none) for every request.
    Matching,
    /// A fare for every request.
    Pricing,
    /// A screening verdict for every request.
    Fraud,
    /// Per-city totals of every ride event.
    Analytics,
    /// Every ride's status (the read model the gateway serves), built in KV from
    /// every event on RIDES; added to a running platform, it replays RIDES from
    /// the start.
    RideView,
}

impl Service {
    /// The pipeline every request goes through, in start order. Analytics, which reads the others'
    /// outputs, comes last: a drain check that polls in this order sees the
    /// others finished before it.
    pub const ALL: [Service; 4] = [
        Service::Matching,
        Service::Pricing,
        Service::Fraud,
        Service::Analytics,
    ];

    /// The names of [`Service::ALL`], in the same order.
    pub const NAMES: [&'static str; 4] = {
        let mut names = [""; 4];
        let mut i = 0;
        while i < names.len() {
            names[i] = Service::ALL[i].name();
            i += 1;
        }
        names
    };

    /// Every service hail runs: [`Service::ALL`], then the ones that read
    /// RIDES without answering (ride-view). What `hail up` starts, `hail
    /// provision` binds a durable for, Prometheus scrapes and `hail status`
    /// lists.
    pub const EVERY: [Service; 5] = [
        Service::Matching,
        Service::Pricing,
        Service::Fraud,
        Service::Analytics,
        Service::RideView,
    ];

    /// The names of [`Service::EVERY`], in the same order.
    pub const EVERY_NAMES: [&'static str; 5] = {
        let mut names = [""; 5];
        let mut i = 0;
        while i < names.len() {
            names[i] = Service::EVERY[i].name();
            i += 1;
        }
        names
    };

    /// `matching`, `pricing`, `fraud`, `analytics` or `ride-view`.
    pub const fn name(self) -> &'static str {
        match self {
            Service::Matching => "matching",
            Service::Pricing => "pricing",
            Service::Fraud => "fraud",
            Service::Analytics => "analytics",
            Service::RideView => "ride-view",
        }
    }

    /// The durable consumer on RIDES, the consumer group: the service's name.
    pub const fn durable(self) -> &'static str {
        self.name()
    }

    /// The service's binary, e.g. `hail-pricing`.
    pub const fn binary(self) -> &'static str {
        match self {
            Service::Matching => "hail-matching",
            Service::Pricing => "hail-pricing",
            Service::Fraud => "hail-fraud",
            Service::Analytics => "hail-analytics",
            Service::RideView => "hail-ride-view",
        }
    }

    /// Default port of its `/metrics`, `/healthz` and `/readyz` (`--metrics-addr`
    /// overrides it): 9101 to 9104, in [`Service::ALL`] order; ride-view 9106
    /// (9105 is hail-monitor's).
    pub const fn metrics_port(self) -> u16 {
        match self {
            Service::Matching => 9101,
            Service::Pricing => 9102,
            Service::Fraud => 9103,
            Service::Analytics => 9104,
            Service::RideView => 9106,
        }
    }

    /// The subjects of RIDES its durable consumer reads.
    pub const fn filters(self) -> &'static [&'static str] {
        match self {
            Service::Matching => &[
                subjects::RIDES_REQUESTED_ALL,
                subjects::RIDES_COMPLETED_ALL,
                subjects::RIDES_CANCELLED_ALL,
            ],
            Service::Pricing | Service::Fraud => &[subjects::RIDES_REQUESTED_ALL],
            Service::Analytics | Service::RideView => &[subjects::RIDES_ALL],
        }
    }

    /// The subjects of RIDES it publishes its answers on (analytics keeps
    /// counts in KV instead, ride-view ride records).
    pub const fn outputs(self) -> &'static [&'static str] {
        match self {
            Service::Matching => &[subjects::RIDES_MATCHED_ALL, subjects::RIDES_UNMATCHED_ALL],
            Service::Pricing => &[subjects::RIDES_PRICED_ALL],
            Service::Fraud => &[subjects::RIDES_SCREENED_ALL],
            Service::Analytics | Service::RideView => &[],
        }
    }

    /// Whether one instance of the group works at a time while the others
    /// stand by (analytics, whose totals live in one checkpoint that a single
    /// writer extends); the other services' instances share the work.
    pub const fn one_active(self) -> bool {
        matches!(self, Service::Analytics)
    }

    /// The durable consumer it binds when started with `args`.
    pub fn consumer_spec(self, args: &RuntimeArgs) -> ConsumerSpec {
        self.spec(args.max_deliver, args.backoff.clone(), args.max_ack_pending)
    }

    /// The durable consumer it binds when started without flags.
    pub fn default_consumer_spec(self) -> ConsumerSpec {
        self.spec(
            defaults::MAX_DELIVER,
            defaults::backoff(),
            defaults::MAX_ACK_PENDING,
        )
    }

    /// The durable consumer it binds with these consumer-shaping settings
    /// (what `hail provision` creates from the same flags).
    pub fn spec(
        self,
        max_deliver: i64,
        backoff: Vec<std::time::Duration>,
        max_ack_pending: i64,
    ) -> ConsumerSpec {
        ConsumerSpec {
            durable: self.durable().to_string(),
            stream: subjects::RIDES_STREAM.to_string(),
            filter_subjects: self.filters().iter().map(|s| s.to_string()).collect(),
            max_deliver,
            backoff,
            max_ack_pending,
            pinned: self.one_active().then_some(defaults::PINNED_TTL),
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is none of hail's services.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service {input:?}: expected one of {}", Service::EVERY_NAMES.join(", "))]
pub struct UnknownService {
    /// What was given.
    pub input: String,
}

impl FromStr for Service {
    type Err = UnknownService;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Service::EVERY
            .into_iter()
            .find(|service| service.name() == s)
            .ok_or_else(|| UnknownService { input: s.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn names_parse_back_and_are_distinct() {
        for s in Service::EVERY {
            assert_eq!(s.name().parse(), Ok(s));
            assert_eq!(s.to_string(), s.name());
            assert_eq!(s.binary(), format!("hail-{s}"));
            assert_eq!(subjects::dlq(s.name()), format!("dlq.{s}.>"));
        }
        assert_eq!(
            Service::NAMES,
            ["matching", "pricing", "fraud", "analytics"]
        );
        assert_eq!(Service::EVERY[..4], Service::ALL);
        let mut ports = Service::EVERY.map(Service::metrics_port).to_vec();
        ports.push(MONITOR_METRICS_PORT);
        ports.sort_unstable();
        assert_eq!(ports, [9101, 9102, 9103, 9104, 9105, 9106]);
    }

    #[test]
    fn an_unknown_name_is_quoted_with_the_valid_ones() {
        let err = "Pricing".parse::<Service>().unwrap_err().to_string();
        assert!(err.contains("\"Pricing\""), "{err}");
        for name in Service::EVERY_NAMES {
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn filters_follow_the_design() {
        let m = Service::Matching.default_consumer_spec();
        assert_eq!(m.durable, "matching");
        assert_eq!(m.stream, "RIDES");
        assert_eq!(
            m.filter_subjects,
            [
                "rides.requested.>",
                "rides.completed.>",
                "rides.cancelled.>"
            ]
        );
        assert_eq!(Service::Pricing.filters(), ["rides.requested.>"]);
        assert_eq!(Service::Fraud.filters(), ["rides.requested.>"]);
        assert_eq!(Service::Analytics.filters(), ["rides.>"]);
        assert_eq!(Service::RideView.filters(), ["rides.>"]);
        assert!(Service::RideView.outputs().is_empty() && !Service::RideView.one_active());
        assert!(m.backoff.len() < m.max_deliver as usize);
    }

    #[test]
    fn without_flags_a_service_binds_its_default_consumer() {
        let args = parse(&[]);
        for s in Service::EVERY {
            assert_eq!(s.consumer_spec(&args), s.default_consumer_spec(), "{s}");
        }
    }

    #[test]
    fn flags_shape_the_consumer_but_not_what_it_reads() {
        let args = parse(&[
            "--max-deliver",
            "3",
            "--backoff",
            "1s,2s",
            "--max-ack-pending",
            "10",
        ]);
        let spec = Service::Fraud.consumer_spec(&args);
        assert_eq!((spec.max_deliver, spec.max_ack_pending), (3, 10));
        assert_eq!(spec.backoff.len(), 2);
        assert_eq!(spec.filter_subjects, ["rides.requested.>"]);
        assert_eq!(spec.durable, "fraud");
    }
}
