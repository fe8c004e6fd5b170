//! The four consumer groups of the pipeline, as DESIGN.md lays them out: names,
//! filters and the durable consumer each binds.

use std::time::Duration;

use hail_events::subjects;
use hail_runtime::provision::ConsumerSpec;

/// One of hail's four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Matching,
    Pricing,
    Fraud,
    Analytics,
}

impl Role {
    /// Every role. Analytics, which reads the others' outputs, comes last: a drain
    /// check that polls in this order sees the others finished before it.
    pub const ALL: [Role; 4] = [Role::Matching, Role::Pricing, Role::Fraud, Role::Analytics];

    /// The durable consumer's name, the consumer group.
    pub fn durable(self) -> &'static str {
        match self {
            Role::Matching => "matching",
            Role::Pricing => "pricing",
            Role::Fraud => "fraud",
            Role::Analytics => "analytics",
        }
    }

    /// The service binary, e.g. `hail-pricing`.
    pub fn binary(self) -> String {
        format!("hail-{}", self.durable())
    }

    /// The subjects the role reads.
    pub fn filters(self) -> &'static [&'static str] {
        match self {
            Role::Matching => &[subjects::RIDES_REQUESTED_ALL, subjects::RIDES_COMPLETED_ALL],
            Role::Pricing | Role::Fraud => &[subjects::RIDES_REQUESTED_ALL],
            Role::Analytics => &[subjects::RIDES_ALL],
        }
    }

    /// The durable consumer, with the services' default settings.
    pub fn spec(self) -> ConsumerSpec {
        ConsumerSpec {
            durable: self.durable().to_string(),
            stream: subjects::RIDES_STREAM.to_string(),
            filter_subjects: self.filters().iter().map(|s| s.to_string()).collect(),
            max_deliver: 5,
            backoff: [5, 10, 30, 60].map(Duration::from_secs).to_vec(),
            max_ack_pending: 4096,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_follow_the_design() {
        let m = Role::Matching.spec();
        assert_eq!(m.durable, "matching");
        assert_eq!(
            m.filter_subjects,
            ["rides.requested.>", "rides.completed.>"]
        );
        assert_eq!(Role::Analytics.spec().filter_subjects, ["rides.>"]);
        assert_eq!(Role::Fraud.binary(), "hail-fraud");
        assert!(m.backoff.len() < m.max_deliver as usize);
    }
}
