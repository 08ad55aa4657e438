//! The files vellum keeps next to the cluster: the start/stop lock, the server settings it
//! writes, and the server log it quotes in errors.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The port number only names the socket file (`.s.PGSQL.5432`): the server listens on no TCP
/// port, and the socket directory is private to the cluster, so it never clashes.
pub(super) const PORT: u16 = 5432;

/// The longest socket path the platform accepts (`sun_path` less its terminating NUL).
const MAX_SOCKET_PATH: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

/// How many lines of the server log an error quotes.
const LOG_TAIL_LINES: usize = 20;

/// Holds the data directory's `lock` file locked; start and stop run under it so that two
/// processes starting the same cluster at once do not race. Unlocked when dropped.
#[derive(Debug)]
pub(super) struct ClusterLock {
    _file: File,
}

impl ClusterLock {
    /// Waits for the lock, off the async runtime's threads.
    pub(super) async fn acquire(path: PathBuf) -> Result<Self> {
        tokio::task::spawn_blocking(move || {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(Error::io(format!("opening {}", path.display())))?;
            file.lock()
                .map_err(Error::io(format!("locking {}", path.display())))?;
            Ok(Self { _file: file })
        })
        .await
        .map_err(|join| Error::Embedded(format!("waiting for the cluster lock: {join}")))?
    }
}

/// The socket file the server creates in `socket_dir`.
pub(super) fn socket_file(socket_dir: &Path) -> PathBuf {
    socket_dir.join(format!(".s.PGSQL.{PORT}"))
}

/// Fails with advice if the socket path is longer than Unix sockets allow, which the server
/// would otherwise report only in its log.
pub(super) fn check_socket_path(socket_dir: &Path) -> Result<()> {
    let socket = socket_file(socket_dir);
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(Error::Embedded(format!(
            "the server's socket path {} is {len} bytes long, more than the {MAX_SOCKET_PATH} \
             Unix sockets allow; use a shorter --data-dir (or VELLUM_DATA_DIR)",
            socket.display()
        )));
    }
    Ok(())
}

/// The settings vellum imposes, rewritten before every start so that they follow the data
/// directory if it moves: listen on the private Unix socket only, reachable by the server's
/// account only.
pub(super) fn server_settings(socket_dir: &Path) -> Result<String> {
    let dir = socket_dir
        .to_str()
        .filter(|dir| !dir.chars().any(char::is_control))
        .ok_or_else(|| {
            Error::Embedded(format!(
                "the data directory path {} must be valid UTF-8 without control characters",
                socket_dir.display()
            ))
        })?;
    // `unix_socket_directories` is a comma-separated list whose items may be double-quoted, and
    // the whole value is a single-quoted configuration string with backslash escapes.
    let list_item = format!("\"{}\"", dir.replace('"', "\"\""));
    let value = list_item.replace('\\', "\\\\").replace('\'', "''");
    Ok(format!(
        "# Written by vellum before every start; put other settings in postgresql.conf.\n\
         listen_addresses = ''\n\
         port = {PORT}\n\
         unix_socket_directories = '{value}'\n\
         unix_socket_permissions = 0700\n"
    ))
}

/// The length of the log file now, so that an error can quote only what a start wrote.
pub(super) fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map_or(0, |meta| meta.len())
}

/// The last lines of the server log written after byte `from`, formatted to append to an error.
pub(super) async fn log_tail(log: PathBuf, from: u64) -> String {
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<(PathBuf, String)> {
        let mut file = File::open(&log)?;
        // A long-lived log can be large; the last 64 KiB hold the lines wanted.
        let start = from.max(file.metadata()?.len().saturating_sub(64 * 1024));
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok((log, String::from_utf8_lossy(&bytes).into_owned()))
    })
    .await;
    match read {
        Ok(Ok((log, text))) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
            if tail.trim().is_empty() {
                format!("\n(nothing new in the server log {})", log.display())
            } else {
                format!("\nlast lines of the server log {}:\n{tail}", log.display())
            }
        }
        Ok(Err(err)) => format!("\n(the server log could not be read: {err})"),
        Err(join) => format!("\n(the server log could not be read: {join})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_listen_on_the_socket_only() {
        let settings = server_settings(Path::new("/srv/app/.vellum/run")).unwrap();
        assert!(settings.contains("listen_addresses = ''\n"), "{settings}");
        assert!(
            settings.contains("unix_socket_directories = '\"/srv/app/.vellum/run\"'\n"),
            "{settings}"
        );
        assert!(
            settings.contains("unix_socket_permissions = 0700\n"),
            "{settings}"
        );
    }

    #[test]
    fn settings_quote_awkward_paths() {
        let settings = server_settings(Path::new(r#"/tmp/it's, "odd"\dir/run"#)).unwrap();
        assert!(
            settings.contains(r#"unix_socket_directories = '"/tmp/it''s, ""odd""\\dir/run"'"#),
            "{settings}"
        );
        assert!(server_settings(Path::new("/tmp/new\nline")).is_err());
    }

    #[test]
    fn overlong_socket_path_suggests_a_shorter_data_dir() {
        assert!(check_socket_path(Path::new("/tmp/v/run")).is_ok());
        let long = PathBuf::from(format!("/tmp/{}/run", "d".repeat(100)));
        let err = check_socket_path(&long).unwrap_err().to_string();
        assert!(err.contains("shorter --data-dir"), "{err}");
    }
}
