//! What the benchmark process itself costs: CPU time and peak memory.

use std::time::Duration;

use nix::sys::{
    resource::{UsageWho, getrusage},
    time::TimeValLike,
};

use crate::Result;

/// User and system CPU time of the whole process (every thread) so far.
pub(crate) fn cpu_time() -> Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).map_err(std::io::Error::from)?;
    let micros = usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
    Ok(Duration::from_micros(micros.max(0) as u64))
}

/// The peak resident set size of the process in MiB (`VmHWM` of `/proc/self/status`), or
/// `None` where there is no such file.
pub(crate) fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_hwm_kib(&status).map(|kib| crate::stats::round(kib as f64 / 1024.0, 1))
}

fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_read_from_vm_hwm() {
        let status =
            "Name:\tvellum\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(51_200));
        assert_eq!(vm_hwm_kib("Name:\tvellum\n"), None);
        assert!(peak_rss_mib().is_some_and(|mib| mib > 0.0));
    }
}
