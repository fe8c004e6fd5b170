//! `--replicas`: how many copies of each stream and KV bucket, `auto` by
//! default: 3 on a cluster, 1 on a single server, read from the server the
//! connection landed on.

use std::{fmt, str::FromStr};

/// Copies of every stream and bucket hail creates: a number, or `auto`.
///
/// ```
/// use hail_runtime::replicas::Replicas;
/// let auto: Replicas = "auto".parse().unwrap();
/// assert_eq!(auto.resolve(None), 1);
/// assert_eq!(auto.resolve(Some("hail")), 3);
/// assert_eq!("2".parse::<Replicas>().unwrap().resolve(Some("hail")), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replicas {
    /// [`CLUSTER`] on a clustered server, [`SINGLE`] otherwise.
    #[default]
    Auto,
    /// Exactly this many (at least 1); more than the cluster has nodes is
    /// refused by the server when the stream is created.
    Exactly(usize),
}

/// Replicas `auto` picks on a cluster: one RAFT group survives one node lost.
pub const CLUSTER: usize = 3;
/// Replicas `auto` picks on a single server (the only value it accepts).
pub const SINGLE: usize = 1;

impl Replicas {
    /// The number to create with, given the server's cluster name (from its
    /// INFO; `None` or empty when it is not clustered).
    pub fn resolve(self, cluster: Option<&str>) -> usize {
        match self {
            Replicas::Exactly(n) => n,
            Replicas::Auto if cluster.is_some_and(|c| !c.is_empty()) => CLUSTER,
            Replicas::Auto => SINGLE,
        }
    }

    /// [`Replicas::resolve`] for the server `client` is connected to.
    pub fn for_client(self, client: &async_nats::Client) -> usize {
        self.resolve(client.server_info().cluster.as_deref())
    }
}

impl FromStr for Replicas {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Replicas::Auto);
        }
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Replicas::Exactly(n)),
            _ => Err(format!(
                "expected `auto` or a number of at least 1, got {s:?}"
            )),
        }
    }
}

impl fmt::Display for Replicas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Replicas::Auto => f.write_str("auto"),
            Replicas::Exactly(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_auto_and_numbers_and_refuses_the_rest() {
        assert_eq!("auto".parse(), Ok(Replicas::Auto));
        assert_eq!("AUTO".parse(), Ok(Replicas::Auto));
        assert_eq!("3".parse(), Ok(Replicas::Exactly(3)));
        assert!("0".parse::<Replicas>().unwrap_err().contains("at least 1"));
        assert!("three".parse::<Replicas>().is_err());
    }

    #[test]
    fn auto_follows_the_server_and_a_number_wins() {
        assert_eq!(Replicas::Auto.resolve(None), SINGLE);
        assert_eq!(Replicas::Auto.resolve(Some("")), SINGLE);
        assert_eq!(Replicas::Auto.resolve(Some("hail")), CLUSTER);
        assert_eq!(Replicas::Exactly(1).resolve(Some("hail")), 1);
        assert_eq!(Replicas::Exactly(5).resolve(None), 5);
        assert_eq!(Replicas::Auto.to_string(), "auto");
    }
}
