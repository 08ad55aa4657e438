//! What the benchmark process itself costs: CPU time, and peak and current memory.

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
    status_mib("VmHWM:")
}

/// The resident set size of the process now, in MiB (`VmRSS` of `/proc/self/status`), or
/// `None` where there is no such file.
pub(crate) fn rss_mib() -> Option<f64> {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_kib(&status, field).map(|kib| crate::stats::round(kib as f64 / 1024.0, 1))
}

/// The value of a `kB` field (`"VmHWM:"`, `"VmRSS:"`) of a `/proc/<pid>/status` text.
fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
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
    fn peak_and_current_rss_are_read_from_vm_hwm_and_vm_rss() {
        let status =
            "Name:\tvellum\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(51_200));
        assert_eq!(status_kib(status, "VmRSS:"), Some(40_000));
        assert_eq!(status_kib("Name:\tvellum\n", "VmRSS:"), None);
        // The high-water mark, read second, is at least what was resident when read first.
        let now = rss_mib().unwrap();
        let peak = peak_rss_mib().unwrap();
        assert!(now > 0.0 && peak >= now, "peak {peak} MiB, now {now} MiB");
    }
}
