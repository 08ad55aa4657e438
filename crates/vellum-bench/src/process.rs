//! What the benchmark process itself costs (CPU time, peak and current memory), and the CPU
//! time of a PostgreSQL server running on the same machine.

use std::{collections::HashMap, time::Duration};

use nix::{
    sys::{
        resource::{UsageWho, getrusage},
        time::TimeValLike,
    },
    unistd::{SysconfVar, sysconf},
};

use crate::Result;

/// User and system CPU time of the whole process (every thread) so far.
pub(crate) fn cpu_time() -> Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).map_err(std::io::Error::from)?;
    let micros = usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
    Ok(Duration::from_micros(micros.max(0) as u64))
}

/// A PostgreSQL server on this machine: its postmaster and the processes the postmaster
/// started (every backend and background process is one of its children).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Server {
    postmaster: i32,
}

impl Server {
    /// The server of the backend with process id `backend` (`pg_backend_pid()`), if that is a
    /// `postgres` process on this machine whose parent is one too; `None` for a server
    /// elsewhere, or where `/proc` cannot say.
    pub(crate) fn of_backend(backend: i32) -> Option<Server> {
        let stat = Stat::read(backend)?;
        let parent = Stat::read(stat.ppid)?;
        (stat.is_postgres() && parent.is_postgres()).then_some(Server {
            postmaster: stat.ppid,
        })
    }

    /// The CPU time each of the server's processes has used so far, by process id.
    pub(crate) fn cpu_times(&self) -> ServerCpu {
        let pids = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok());
        let ticks = pids
            .filter_map(|pid| Some((pid, Stat::read(pid)?)))
            .filter(|(pid, stat)| {
                stat.is_postgres() && (*pid == self.postmaster || stat.ppid == self.postmaster)
            })
            .map(|(pid, stat)| (pid, stat.cpu_ticks))
            .collect();
        ServerCpu(ticks)
    }
}

/// A reading of [`Server::cpu_times`].
#[derive(Debug, Default)]
pub(crate) struct ServerCpu(HashMap<i32, u64>);

impl ServerCpu {
    /// The CPU time the server used from `earlier` to this reading, over the processes present
    /// in both (a process that came or went in between is left out).
    pub(crate) fn since(&self, earlier: &ServerCpu) -> Duration {
        let ticks: u64 = self
            .0
            .iter()
            .filter_map(|(pid, now)| Some(now.saturating_sub(*earlier.0.get(pid)?)))
            .sum();
        let per_second = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100);
        Duration::from_secs_f64(ticks as f64 / per_second.max(1) as f64)
    }
}

/// What the benchmark reads of a process's `/proc/<pid>/stat`.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    command: String,
    ppid: i32,
    /// User and system time, in clock ticks.
    cpu_ticks: u64,
}

impl Stat {
    fn read(pid: i32) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// `pid (command) state ppid ...`, utime and stime the 14th and 15th fields; the command
    /// may hold spaces and parentheses, so the fields after it start after the last `)`.
    fn parse(stat: &str) -> Option<Stat> {
        let (head, tail) = stat.rsplit_once(')')?;
        let command = head.split_once('(')?.1.to_string();
        let fields: Vec<&str> = tail.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat {
            command,
            ppid: fields.get(1)?.parse().ok()?,
            cpu_ticks: field(14)? + field(15)?,
        })
    }

    fn is_postgres(&self) -> bool {
        self.command == "postgres"
    }
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
    fn stat_gives_the_command_the_parent_and_the_cpu_ticks() {
        let line = "4242 (postgres) S 4200 4200 4200 0 -1 4194560 500 0 0 0 \
                    120 35 0 0 20 0 1 0 8800 230000000 3000 18446744073709551615";
        assert_eq!(
            Stat::parse(line),
            Some(Stat {
                command: "postgres".into(),
                ppid: 4200,
                cpu_ticks: 155
            })
        );
        // A command with a space and a parenthesis in it.
        let odd = "7 (a) b) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1 1";
        let parsed = Stat::parse(odd).unwrap();
        assert_eq!(
            (parsed.command.as_str(), parsed.ppid, parsed.cpu_ticks),
            ("a) b", 1, 7)
        );
        assert_eq!(Stat::parse("garbage"), None);
    }

    #[test]
    fn server_cpu_counts_the_processes_present_in_both_readings() {
        let earlier = ServerCpu(HashMap::from([(1, 100), (2, 50), (3, 10)]));
        let later = ServerCpu(HashMap::from([(1, 150), (2, 50), (4, 900)]));
        let per_second = sysconf(SysconfVar::CLK_TCK).unwrap().unwrap() as f64;
        assert_eq!(
            later.since(&earlier),
            Duration::from_secs_f64(50.0 / per_second)
        );
    }

    #[test]
    fn a_process_that_is_not_postgres_has_no_server() {
        let me = std::process::id() as i32;
        assert!(!Stat::read(me).expect("/proc/self/stat").is_postgres());
        assert!(Server::of_backend(me).is_none());
    }

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
