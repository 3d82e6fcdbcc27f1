//! CPU time of this process and of the nodes, from `/proc`.

/// CPU seconds (user + system) used so far by this process (`None`) or by `pid`.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux we run on.
    Some(ticks / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time() {
        let before = cpu_seconds(None).expect("/proc/self/stat");
        // Burn CPU until the count (in 1/100 s ticks) moves: fields that are not CPU time would
        // not. Bounded by work, not by time: a few seconds of CPU at most.
        let mut x = 0u64;
        let mut after = before;
        for _ in 0..1000 {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            after = cpu_seconds(None).expect("/proc/self/stat");
            if after > before {
                break;
            }
        }
        assert!(
            after > before,
            "CPU time stayed at {before} s while this test computed"
        );
        // The same process by its pid reads the same counter, at least as far along.
        let by_pid = cpu_seconds(Some(std::process::id())).expect("/proc/<pid>/stat");
        assert!(by_pid >= after, "by pid {by_pid} s, by self {after} s");
    }
}
