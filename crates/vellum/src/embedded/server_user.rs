//! The operating-system account the server processes run as.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Group, Uid, User, chown, geteuid};

use crate::{Error, Result};

/// The system account PostgreSQL runs as when vellum runs as root.
const SYSTEM_USER: &str = "postgres";

/// Who runs `initdb`, `pg_ctl` and `postgres`.
#[derive(Debug, Clone)]
pub(super) enum ServerUser {
    /// The user running vellum.
    Current,
    /// vellum runs as root, which PostgreSQL refuses, so the server runs as the `postgres`
    /// system user and owns the files it writes.
    System {
        uid: Uid,
        gid: Gid,
        name: String,
        home: PathBuf,
    },
}

impl ServerUser {
    /// The account for this process: itself, or the `postgres` system user when running as root.
    pub(super) fn for_this_process() -> Result<Self> {
        if !geteuid().is_root() {
            return Ok(Self::Current);
        }
        match User::from_name(SYSTEM_USER) {
            Ok(Some(user)) => Ok(Self::System {
                uid: user.uid,
                gid: user.gid,
                name: user.name,
                home: user.dir,
            }),
            Ok(None) => Err(Error::Embedded(format!(
                "running as root needs a `{SYSTEM_USER}` system user, because PostgreSQL refuses \
                 to run as root; create it (installing the PostgreSQL server package does) or run \
                 vellum as an ordinary user"
            ))),
            Err(errno) => Err(Error::Embedded(format!(
                "looking up the `{SYSTEM_USER}` system user: {errno}"
            ))),
        }
    }

    /// Hands a file or directory the server writes to over to the server's account.
    pub(super) fn give(&self, path: &Path) -> Result<()> {
        match self {
            Self::Current => Ok(()),
            Self::System { uid, gid, .. } => chown(path, Some(*uid), Some(*gid)).map_err(|errno| {
                Error::Embedded(format!(
                    "changing the owner of {} to {SYSTEM_USER}: {errno}",
                    path.display()
                ))
            }),
        }
    }

    /// Checks that the server's account can enter `dir` and every directory above it, so that a
    /// data directory under e.g. `/root` (mode 0700) fails with a message naming the culprit
    /// instead of an obscure `initdb` error. Only mode bits are considered, not ACLs.
    pub(super) fn check_can_enter(&self, dir: &Path) -> Result<()> {
        let Self::System { uid, gid, name, .. } = self else {
            return Ok(());
        };
        let real = std::fs::canonicalize(dir)
            .map_err(Error::io(format!("resolving {}", dir.display())))?;
        for ancestor in real.ancestors() {
            let meta = std::fs::metadata(ancestor)
                .map_err(Error::io(format!("inspecting {}", ancestor.display())))?;
            let mode = meta.mode();
            let search_bit = if meta.uid() == uid.as_raw() {
                mode & 0o100
            } else if meta.gid() == gid.as_raw() || is_member(name, Gid::from_raw(meta.gid())) {
                mode & 0o010
            } else {
                mode & 0o001
            };
            if search_bit == 0 {
                return Err(Error::Embedded(format!(
                    "the `{SYSTEM_USER}` system user cannot enter {} (mode {:o}), so the server \
                     cannot reach the data directory {}; PostgreSQL runs as `{SYSTEM_USER}` when \
                     vellum runs as root: choose a data directory it can reach (e.g. with \
                     --data-dir under /var/lib or /srv) or allow it in with `chmod o+x {}`",
                    ancestor.display(),
                    mode & 0o7777,
                    real.display(),
                    ancestor.display(),
                )));
            }
        }
        Ok(())
    }

    /// A command running `program` as this account, in `work_dir`, with stdin closed, output
    /// captured and no inherited `PG*` variables (`PGPORT`, `PGDATA`… would change what the
    /// binaries do).
    pub(super) fn command(&self, program: &Path, work_dir: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(work_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars_os() {
            if key.as_encoded_bytes().starts_with(b"PG") {
                command.env_remove(key);
            }
        }
        if let Self::System {
            uid,
            gid,
            name,
            home,
        } = self
        {
            // The server account usually cannot enter root's home, which would otherwise be the
            // working directory and HOME inherited from this process.
            command
                .uid(uid.as_raw())
                .gid(gid.as_raw())
                .env("HOME", home)
                .env("USER", name)
                .env("LOGNAME", name);
        }
        command
    }
}

fn is_member(user: &str, group: Gid) -> bool {
    Group::from_gid(group)
        .ok()
        .flatten()
        .is_some_and(|group| group.mem.iter().any(|member| member == user))
}
