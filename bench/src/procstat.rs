//! CPU time of a server process, from /proc/PID/stat (utime + stime, all threads together).

/// CPU seconds (user + system) that process `pid` and all its threads have used so far.
///
/// # Errors
/// Returns a message when /proc/PID/stat cannot be read or does not have the expected fields.
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let text =
        std::fs::read_to_string(&path).map_err(|error| format!("cannot read {path}: {error}"))?;
    let ticks = parse_cpu_ticks(&text)
        .ok_or_else(|| format!("{path} does not have utime and stime fields"))?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// CPU seconds that process `pid` and all its threads have used so far, in user space and in
/// the kernel (utime, stime).
///
/// # Errors
/// Returns a message when /proc/PID/stat cannot be read or does not have the expected fields.
pub fn cpu_split_seconds(pid: u32) -> Result<(f64, f64), String> {
    let path = format!("/proc/{pid}/stat");
    let text =
        std::fs::read_to_string(&path).map_err(|error| format!("cannot read {path}: {error}"))?;
    let (user, system) = parse_cpu_split_ticks(&text)
        .ok_or_else(|| format!("{path} does not have utime and stime fields"))?;
    let per_second = clock_ticks_per_second();
    Ok((user as f64 / per_second, system as f64 / per_second))
}

/// The whole machine's CPU time so far, from /proc/stat's `cpu` line: (busy, all) in clock
/// ticks, busy being everything but idle and iowait.
///
/// # Errors
/// Returns a message when /proc/stat cannot be read or its first line is not the `cpu` line.
pub fn machine_ticks() -> Result<(u64, u64), String> {
    let text = std::fs::read_to_string("/proc/stat")
        .map_err(|error| format!("cannot read /proc/stat: {error}"))?;
    parse_machine_ticks(&text).ok_or_else(|| "/proc/stat has no cpu line".to_string())
}

fn parse_machine_ticks(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.lines().next()?.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let all: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((all - idle, all))
}

/// utime + stime, in clock ticks, from the text of /proc/PID/stat.
fn parse_cpu_ticks(text: &str) -> Option<u64> {
    let (utime, stime) = parse_cpu_split_ticks(text)?;
    Some(utime + stime)
}

/// utime and stime, in clock ticks, from the text of /proc/PID/stat.
fn parse_cpu_split_ticks(text: &str) -> Option<(u64, u64)> {
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself:
    // fields are counted from the last ')'. After it come state (3), ..., utime (14), stime (15).
    let after_name = &text[text.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf takes no pointers and has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // Linux has used 100 on every architecture for decades; fall back to it if sysconf fails.
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_after_an_awkward_name() {
        let text = "1234 (redis (server) x) S 1 1234 1234 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 4 0 1 2 3\n";
        assert_eq!(parse_cpu_ticks(text), Some(325));
        assert_eq!(parse_cpu_split_ticks(text), Some((250, 75)));
        assert_eq!(parse_cpu_ticks("1 (short) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn reads_the_machines_busy_and_idle_ticks() {
        let text = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n";
        assert_eq!(parse_machine_ticks(text), Some((160, 1000)));
        assert_eq!(parse_machine_ticks("intr 1 2 3\n"), None);
    }

    #[test]
    fn reads_own_cpu_time() {
        let before = cpu_seconds(std::process::id()).unwrap();
        let start = std::time::Instant::now();
        let mut spin = 0u64;
        let mut after = before;
        // Spin until the counters move by a few ticks; on a busy machine that takes longer.
        while after - before < 0.03 && start.elapsed() < std::time::Duration::from_secs(20) {
            for _ in 0..1_000_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
            after = cpu_seconds(std::process::id()).unwrap();
        }
        assert!(after - before >= 0.03, "before {before} after {after}");
        assert!(cpu_seconds(u32::MAX).is_err());
    }
}
