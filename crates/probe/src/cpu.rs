//! CPU time a process has used, from `/proc/<pid>/stat`: how benchmarks tell
//! what each service costs per ride.

use anyhow::{Context as _, Result};

/// Ticks per second of `/proc/<pid>/stat`'s times: `USER_HZ`, which Linux
/// fixes at 100 for that file whatever the kernel's own tick rate.
const USER_HZ: f64 = 100.0;

/// User plus system CPU seconds process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse(&stat).with_context(|| format!("cannot parse {path}: {stat}"))
}

/// utime + stime (fields 14 and 15) in seconds. The command name (field 2) is
/// in parentheses and may hold spaces, so fields are counted after its `)`.
fn parse(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_after_the_command_name() {
        let stat =
            "4242 (hail pricing) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse(stat), Some(3.0));
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        cpu_seconds(std::process::id()).unwrap();
        assert!(cpu_seconds(u32::MAX).is_err(), "no such process");
    }
}
