//! NATS JetStream for the relay tests: the shared server on 127.0.0.1:4222, or a private
//! `nats-server` child that a test can kill and restart.
//!
//! Under `CI=true` a missing server fails the test; elsewhere the test is skipped with a reason.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::process::{Child, Command};
use vellum::async_nats;

/// The shared server, as `.ci/run` starts it.
const SHARED_URL: &str = "127.0.0.1:4222";

/// Skips the test outside CI; fails it under CI.
fn unavailable<T>(reason: String) -> Option<T> {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("NATS is required under CI=true: {reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// A client of the shared NATS server, or `None` (outside CI) when it is not running.
pub(crate) async fn shared_nats() -> Option<async_nats::Client> {
    let url = std::env::var("VELLUM_TEST_NATS_URL").unwrap_or_else(|_| SHARED_URL.into());
    match tokio::time::timeout(Duration::from_secs(5), async_nats::connect(&url)).await {
        Ok(Ok(client)) => Some(client),
        Ok(Err(err)) => unavailable(format!("no NATS server at {url}: {err}")),
        Err(_) => unavailable(format!("no NATS server at {url}: connect timed out")),
    }
}

fn nats_server_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")]);
    for dir in candidates {
        let binary = dir.join("nats-server");
        if binary.is_file() {
            return Some(binary);
        }
    }
    None
}

/// A private `nats-server -js` on a free port with its own store directory.
pub(crate) struct PrivateNats {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateNats {
    pub(crate) async fn start() -> Option<PrivateNats> {
        let Some(binary) = nats_server_binary() else {
            return unavailable("nats-server is not installed".into());
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nats = PrivateNats {
            binary,
            port,
            dir,
            child: None,
        };
        nats.launch().await;
        Some(nats)
    }

    pub(crate) fn url(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) {
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server (SIGKILL: no clean shutdown) and starts it again on the same port and
    /// store directory.
    pub(crate) async fn crash_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
        self.launch().await;
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
