//! Free TCP ports for services whose port a test must know up front.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

/// A TCP port on 127.0.0.1 that was free a moment ago, and that this process
/// has not been handed before.
///
/// Binds port 0, reads the port the kernel chose and releases it. The kernel
/// may choose a port it has just released again, so two calls in a row could
/// give the same port (a cluster node's client and route ports once did):
/// every port handed out is remembered, and a repeat is held while the
/// kernel is asked again. Another process may still take the port before the
/// caller binds it, so prefer servers that pick their own port and report it
/// (as [`crate::NatsServer`] does).
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let mut handed_out = HANDED_OUT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Held until a new port is found, so the kernel cannot choose them again.
    let mut repeats = Vec::new();
    loop {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 to find a free port");
        let port = listener
            .local_addr()
            .expect("reading the address of a bound listener")
            .port();
        if handed_out.insert(port) {
            return port;
        }
        repeats.push(listener);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_can_be_bound() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn free_port_never_gives_the_same_port_twice() {
        let ports: Vec<u16> = (0..1000).map(|_| free_port()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "repeated ports in {ports:?}");
    }
}
