//! From the rules that fired to a score and a verdict.
//!
//! A blocklisted card is blocked outright (score 1). Otherwise each rule that
//! fired contributes its weight `w` as an independent piece of evidence:
//! `score = 1 - Π(1 - w)`, so one rule scores its weight, two strong rules
//! score more than either, and the score never leaves [0, 1]. The verdict is
//! `block` from `block_at`, `review` from `review_at`, else `allow`.

use hail_events::Verdict;

use crate::rules::Rule;

/// Weights and verdict thresholds, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scoring {
    pub velocity: f64,
    pub impossible_travel: f64,
    pub shared_device: f64,
    pub shared_card: f64,
    /// Lowest score judged `review`.
    pub review_at: f64,
    /// Lowest score judged `block`.
    pub block_at: f64,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            velocity: 0.5,
            impossible_travel: 0.6,
            shared_device: 0.4,
            shared_card: 0.4,
            review_at: 0.4,
            block_at: 0.8,
        }
    }
}

impl Scoring {
    /// The weight of one rule.
    pub fn weight(&self, rule: Rule) -> f64 {
        match rule {
            Rule::BlocklistedCard => 1.0,
            Rule::Velocity => self.velocity,
            Rule::ImpossibleTravel => self.impossible_travel,
            Rule::SharedDevice => self.shared_device,
            Rule::SharedCard => self.shared_card,
        }
    }

    /// The score and verdict of the rules that fired.
    pub fn judge(&self, fired: &[Rule]) -> (f64, Verdict) {
        if fired.contains(&Rule::BlocklistedCard) {
            return (1.0, Verdict::Block);
        }
        let clean: f64 = fired.iter().map(|r| 1.0 - self.weight(*r)).product();
        let score = (1.0 - clean).clamp(0.0, 1.0);
        (score, self.verdict(score))
    }

    /// Thresholds are inclusive; the tolerance keeps `1 - 0.5 * 0.4` at 0.8 even
    /// when floating point lands a hair below.
    fn verdict(&self, score: f64) -> Verdict {
        const EPS: f64 = 1e-9;
        if score + EPS >= self.block_at {
            Verdict::Block
        } else if score + EPS >= self.review_at {
            Verdict::Review
        } else {
            Verdict::Allow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn nothing_fired_is_allowed_with_score_zero() {
        assert_eq!(Scoring::default().judge(&[]), (0.0, Verdict::Allow));
    }

    #[test]
    fn a_blocklisted_card_is_blocked_whatever_else() {
        let s = Scoring::default();
        assert_eq!(s.judge(&[Rule::BlocklistedCard]), (1.0, Verdict::Block));
        assert_eq!(
            s.judge(&[Rule::BlocklistedCard, Rule::Velocity]),
            (1.0, Verdict::Block)
        );
    }

    #[test]
    fn evidence_combines_as_independent_probabilities() {
        let s = Scoring::default();
        let (score, verdict) = s.judge(&[Rule::Velocity]);
        assert!(close(score, 0.5));
        assert_eq!(verdict, Verdict::Review);
        let (score, verdict) = s.judge(&[Rule::Velocity, Rule::ImpossibleTravel]);
        assert!(close(score, 0.8), "{score}");
        assert_eq!(verdict, Verdict::Block);
        let (score, verdict) = s.judge(&[Rule::SharedDevice, Rule::SharedCard]);
        assert!(close(score, 0.64), "{score}");
        assert_eq!(verdict, Verdict::Review);
    }

    #[test]
    fn thresholds_are_inclusive() {
        let s = Scoring {
            review_at: 0.5,
            block_at: 0.6,
            ..Scoring::default()
        };
        assert_eq!(s.judge(&[Rule::Velocity]).1, Verdict::Review);
        assert_eq!(s.judge(&[Rule::ImpossibleTravel]).1, Verdict::Block);
        assert_eq!(s.judge(&[Rule::SharedDevice]).1, Verdict::Allow);
    }
}
