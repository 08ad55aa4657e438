//! Finding the PostgreSQL server binaries of one installation.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Names the directory to take the binaries from, overriding the search.
const BIN_DIR_VAR: &str = "VELLUM_PG_BIN";

/// Where Debian and Ubuntu install each major version: `/usr/lib/postgresql/<version>/bin`.
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

const REQUIRED: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

const INSTALL_HINT: &str = "install the PostgreSQL server package, e.g. `apt-get install \
    postgresql` or `brew install postgresql@16`, or set DATABASE_URL / --database-url to use an \
    existing server";

/// The directory that holds `initdb`, `pg_ctl` and `postgres` of one PostgreSQL installation.
#[derive(Debug, Clone)]
pub(super) struct PgBinaries {
    dir: PathBuf,
}

impl PgBinaries {
    /// Finds the binaries: the directory named by `VELLUM_PG_BIN` if set, else the first
    /// installation on `PATH`, else the highest version under `/usr/lib/postgresql/*/bin`.
    pub(super) fn locate() -> Result<Self> {
        let explicit = std::env::var_os(BIN_DIR_VAR).filter(|dir| !dir.is_empty());
        let path = std::env::var_os("PATH");
        Self::locate_in(
            explicit.as_deref().map(Path::new),
            path.as_deref(),
            Path::new(VERSIONED_ROOT),
        )
    }

    /// [`PgBinaries::locate`] with its inputs passed in, so it can be tested without touching
    /// the process environment.
    fn locate_in(
        explicit: Option<&Path>,
        path: Option<&OsStr>,
        versioned_root: &Path,
    ) -> Result<Self> {
        // An explicit choice is authoritative: silently falling back to another installation
        // could create the cluster with a different major version than the one asked for.
        if let Some(dir) = explicit {
            return if holds_all(dir) {
                Ok(Self {
                    dir: dir.to_path_buf(),
                })
            } else {
                Err(Error::Embedded(format!(
                    "{BIN_DIR_VAR}={} does not contain the PostgreSQL server binaries ({}); \
                     point it at a PostgreSQL bin directory or unset it, or {INSTALL_HINT}",
                    dir.display(),
                    REQUIRED.join(", "),
                )))
            };
        }
        let on_path = path
            .into_iter()
            .flat_map(std::env::split_paths)
            .find_map(|dir| installation_on_path(&dir));
        on_path
            .or_else(|| highest_version(versioned_root))
            .map(|dir| Self { dir })
            .ok_or_else(|| {
                Error::Embedded(format!(
                    "PostgreSQL server binaries ({}) not found on PATH or under \
                     {VERSIONED_ROOT}/*/bin; {INSTALL_HINT}",
                    REQUIRED.join(", "),
                ))
            })
    }

    /// The path of one of the binaries, e.g. `pg_ctl`.
    pub(super) fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The installation that a `PATH` entry offers, if it has `initdb`. Package managers put symlinks
/// on `PATH` (`/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb`), so the directory
/// the symlink points into is preferred: there `pg_ctl` finds the matching `postgres`.
fn installation_on_path(dir: &Path) -> Option<PathBuf> {
    let initdb = dir.join("initdb");
    if !is_executable(&initdb) {
        return None;
    }
    let real_dir = std::fs::canonicalize(&initdb)
        .ok()
        .and_then(|real| real.parent().map(Path::to_path_buf));
    real_dir
        .filter(|real| holds_all(real))
        .or_else(|| holds_all(dir).then(|| dir.to_path_buf()))
}

/// The `bin` directory of the highest major version under `root` that has all the binaries.
fn highest_version(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            holds_all(&bin).then_some((version, bin))
        })
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, bin)| bin)
}

fn holds_all(dir: &Path) -> bool {
    REQUIRED.iter().all(|name| is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory under the system temp dir, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            let dir =
                std::env::temp_dir().join(format!("vellum-bins-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        /// Creates executable stand-ins for the server binaries in `sub`.
        fn install(&self, sub: &str) -> PathBuf {
            let bin = self.0.join(sub);
            std::fs::create_dir_all(&bin).unwrap();
            for name in REQUIRED {
                let file = bin.join(name);
                std::fs::write(&file, "#!/bin/sh\n").unwrap();
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            bin
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn missing_binaries_say_what_to_install() {
        let scratch = Scratch::new();
        let empty_path = std::env::join_paths([scratch.0.join("nothing-here")]).unwrap();
        let err = PgBinaries::locate_in(None, Some(&empty_path), &scratch.0.join("no-versions"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("initdb, pg_ctl, postgres"), "{err}");
        assert!(
            err.contains("not found on PATH or under /usr/lib/postgresql/*/bin"),
            "{err}"
        );
        assert!(err.contains("apt-get install postgresql"), "{err}");
        assert!(err.contains("DATABASE_URL"), "{err}");
    }

    #[test]
    fn explicit_bin_dir_without_binaries_is_an_error_naming_it() {
        let scratch = Scratch::new();
        let installed = scratch.install("17/bin");
        let path = std::env::join_paths([&installed]).unwrap();
        let err = PgBinaries::locate_in(Some(&scratch.0), Some(&path), &scratch.0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("VELLUM_PG_BIN={}", scratch.0.display())),
            "{err}"
        );
        assert!(err.contains("apt-get install postgresql"), "{err}");
    }

    #[test]
    fn explicit_bin_dir_wins() {
        let scratch = Scratch::new();
        let chosen = scratch.install("chosen");
        let on_path = scratch.install("on-path");
        let path = std::env::join_paths([&on_path]).unwrap();
        let found = PgBinaries::locate_in(Some(&chosen), Some(&path), &scratch.0).unwrap();
        assert_eq!(found.program("pg_ctl"), chosen.join("pg_ctl"));
    }

    #[test]
    fn path_entry_is_followed_to_the_installation_it_links_into() {
        let scratch = Scratch::new();
        let real = scratch.install("pg/15/bin");
        let links = scratch.0.join("links");
        std::fs::create_dir_all(&links).unwrap();
        std::os::unix::fs::symlink(real.join("initdb"), links.join("initdb")).unwrap();
        let path = std::env::join_paths([scratch.0.join("missing"), links]).unwrap();
        let found = PgBinaries::locate_in(None, Some(&path), &scratch.0.join("none")).unwrap();
        assert_eq!(
            found.program("postgres"),
            real.canonicalize().unwrap().join("postgres")
        );
    }

    #[test]
    fn highest_version_is_chosen_when_path_has_none() {
        let scratch = Scratch::new();
        scratch.install("9.6/bin");
        let newest = scratch.install("16/bin");
        scratch.install("13/bin");
        std::fs::create_dir_all(scratch.0.join("17/bin")).unwrap(); // incomplete: skipped
        let found = PgBinaries::locate_in(None, None, &scratch.0).unwrap();
        assert_eq!(found.program("initdb"), newest.join("initdb"));
    }
}
