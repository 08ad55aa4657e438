//! The embedded default: a private PostgreSQL cluster kept in a data directory, created with
//! the system's `initdb` and reachable only over a Unix socket inside that directory.
//!
//! Layout of the data directory:
//!
//! ```text
//! pgdata/         the cluster (owned by `postgres` when vellum runs as root)
//! run/            the socket directory (mode 0700)
//! postgres.log    the server log
//! lock            locked while a process starts or stops the cluster
//! ```

mod binaries;
mod files;
mod server_user;

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use self::binaries::PgBinaries;
use self::files::{ClusterLock, PORT};
use self::server_user::ServerUser;
use crate::{Error, Result};

/// The superuser `initdb` creates; local connections are trusted, the socket being private.
const ROLE: &str = "vellum";
/// The database vellum's own tables live in.
const DATABASE: &str = "vellum";
/// How long `pg_ctl` waits for a start (crash recovery included) or a stop, in seconds.
const PG_CTL_WAIT_SECS: &str = "120";
/// How long to keep trying to connect to a server that is running but not yet accepting.
const CONNECT_PATIENCE: Duration = Duration::from_secs(30);

/// A private PostgreSQL cluster kept in a data directory (default `./.vellum`).
///
/// The cluster listens on no TCP port, only on a Unix socket in `<data dir>/run`, and is shared
/// by every process that uses the same data directory: [`start`](Self::start) reuses a server
/// that is running already.
///
/// ```no_run
/// # async fn example() -> vellum::Result<()> {
/// let cluster = vellum::EmbeddedCluster::new(".vellum");
/// let running = cluster.start().await?;
/// let (client, connection) = running.config().connect(tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
/// client.batch_execute("SELECT 1").await?;
/// running.shutdown().await?; // stops the server if this call started it
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedCluster {
    data_dir: PathBuf,
}

/// Whether an [`EmbeddedCluster`] exists and runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterStatus {
    /// The data directory holds no cluster yet.
    NotInitialized,
    /// The cluster exists and no server runs on it.
    Stopped,
    /// A server runs on the cluster.
    Running {
        /// The process id of the postmaster.
        pid: u32,
    },
}

impl EmbeddedCluster {
    /// A cluster kept in `data_dir`, which need not exist yet. A relative path is made absolute
    /// against the current directory now, so a later change of directory does not move it.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
        Self { data_dir }
    }

    /// The data directory, absolute.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.data_dir.join("run")
    }

    /// Connection settings for the `vellum` database over the Unix socket, as user `vellum`.
    pub fn connection_config(&self) -> Config {
        let mut config = Config::new();
        config
            .host_path(self.socket_dir())
            .port(PORT)
            .user(ROLE)
            .dbname(DATABASE);
        config
    }

    /// Whether the cluster exists and whether a server runs on it.
    pub async fn status(&self) -> Result<ClusterStatus> {
        if !self.is_initialized().await? {
            return Ok(ClusterStatus::NotInitialized);
        }
        let tools = Tools::locate()?;
        Ok(match self.server_pid(&tools).await? {
            Some(pid) => ClusterStatus::Running { pid },
            None => ClusterStatus::Stopped,
        })
    }

    /// Creates the cluster if needed (`initdb`), starts it unless it is running already,
    /// creates the `vellum` database if missing, and returns a handle. If this call started the
    /// server, the handle stops it when dropped or [shut down](RunningCluster::shutdown).
    pub async fn start(&self) -> Result<RunningCluster> {
        self.start_with(true).await
    }

    /// Like [`start`](Self::start), but the server keeps running after the handle is dropped
    /// (for `vellum db start` and the shared test cluster); [`stop`](Self::stop) stops it.
    pub async fn start_detached(&self) -> Result<RunningCluster> {
        self.start_with(false).await
    }

    /// Stops a running cluster with a fast shutdown: open sessions are rolled back, then a clean
    /// checkpoint is written. `Ok(false)` if it was not running.
    pub async fn stop(&self) -> Result<bool> {
        if !self.is_initialized().await? {
            return Ok(false);
        }
        let tools = Tools::locate()?;
        let _lock = ClusterLock::acquire(self.lock_file()).await?;
        self.stop_locked(&tools).await
    }

    fn pgdata(&self) -> PathBuf {
        self.data_dir.join("pgdata")
    }

    fn log_file(&self) -> PathBuf {
        self.data_dir.join("postgres.log")
    }

    fn lock_file(&self) -> PathBuf {
        self.data_dir.join("lock")
    }

    async fn is_initialized(&self) -> Result<bool> {
        let version_file = self.pgdata().join("PG_VERSION");
        tokio::fs::try_exists(&version_file)
            .await
            .map_err(Error::io(format!("inspecting {}", version_file.display())))
    }

    async fn start_with(&self, stop_on_drop: bool) -> Result<RunningCluster> {
        let tools = Tools::locate()?;
        files::check_socket_path(&self.socket_dir())?;
        tokio::fs::create_dir_all(&self.data_dir)
            .await
            .map_err(Error::io(format!(
                "creating data directory {}",
                self.data_dir.display()
            )))?;
        tools.user.check_can_enter(&self.data_dir)?;

        let _lock = ClusterLock::acquire(self.lock_file()).await?;
        let log_start = files::log_len(&self.log_file());
        if !self.is_initialized().await? {
            self.initialize(&tools).await?;
        }
        let started_here = match self.server_pid(&tools).await? {
            Some(pid) => {
                tracing::debug!(pid, data_dir = %self.data_dir.display(), "reusing the running embedded PostgreSQL");
                false
            }
            None => {
                self.launch(&tools, log_start).await?;
                true
            }
        };
        if let Err(err) = self.ensure_database(log_start).await {
            if started_here && let Err(stop_err) = self.stop_locked(&tools).await {
                tracing::warn!(error = %stop_err, "stopping the embedded PostgreSQL after a failed start");
            }
            return Err(err);
        }
        Ok(RunningCluster {
            cluster: self.clone(),
            tools,
            started_here,
            stop_on_drop: started_here && stop_on_drop,
        })
    }

    /// Runs `initdb` into a staging directory and moves it into place only once complete, so an
    /// interrupted creation is retried from scratch rather than leaving a broken cluster.
    async fn initialize(&self, tools: &Tools) -> Result<()> {
        let staging = self.data_dir.join("pgdata.init");
        match tokio::fs::remove_dir_all(&staging).await {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::io(format!("removing {}", staging.display()))(err)),
        }
        tokio::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .await
            .map_err(Error::io(format!("creating {}", staging.display())))?;
        tools.user.give(&staging)?;

        tracing::info!(data_dir = %self.data_dir.display(), "creating the embedded PostgreSQL cluster");
        let mut initdb = tools.command(self, "initdb");
        initdb.arg("-D").arg(&staging).args([
            "-U",
            ROLE,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ]);
        let output = run(initdb, "running initdb").await?;
        if !output.status.success() {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(Error::Embedded(command_failed("initdb", &output)));
        }

        let conf = staging.join("postgresql.conf");
        let mut settings = tokio::fs::read_to_string(&conf)
            .await
            .map_err(Error::io(format!("reading {}", conf.display())))?;
        settings.push_str("\n# vellum's settings (Unix socket only, no TCP), rewritten at every start.\ninclude 'vellum.conf'\n");
        tokio::fs::write(&conf, settings)
            .await
            .map_err(Error::io(format!("writing {}", conf.display())))?;
        tokio::fs::rename(&staging, self.pgdata())
            .await
            .map_err(Error::io(format!(
                "moving the new cluster to {}",
                self.pgdata().display()
            )))
    }

    /// The postmaster's pid if a server runs on the cluster. `pg_ctl status` tells a live
    /// server from a `postmaster.pid` left behind by a crash.
    async fn server_pid(&self, tools: &Tools) -> Result<Option<u32>> {
        let pid_file = self.pgdata().join("postmaster.pid");
        let pid_file_exists = tokio::fs::try_exists(&pid_file)
            .await
            .map_err(Error::io(format!("inspecting {}", pid_file.display())))?;
        if !pid_file_exists {
            return Ok(None);
        }
        let mut status = tools.command(self, "pg_ctl");
        status.arg("status").arg("-D").arg(self.pgdata());
        let output = run(status, "running pg_ctl status").await?;
        match output.status.code() {
            Some(0) => {}
            Some(3) => return Ok(None), // "no server running"
            _ => return Err(Error::Embedded(command_failed("pg_ctl status", &output))),
        }
        match tokio::fs::read_to_string(&pid_file).await {
            Ok(text) => text
                .lines()
                .next()
                .and_then(|line| line.trim().parse().ok())
                .map(Some)
                .ok_or_else(|| {
                    Error::Embedded(format!(
                        "{} does not start with a process id",
                        pid_file.display()
                    ))
                }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None), // stopped meanwhile
            Err(err) => Err(Error::io(format!("reading {}", pid_file.display()))(err)),
        }
    }

    async fn launch(&self, tools: &Tools, log_start: u64) -> Result<()> {
        let socket_dir = self.socket_dir();
        match tokio::fs::DirBuilder::new()
            .mode(0o700)
            .create(&socket_dir)
            .await
        {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(Error::io(format!("creating {}", socket_dir.display()))(err)),
        }
        tools.user.give(&socket_dir)?;
        let log = self.log_file();
        std::fs::File::options()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log)
            .map_err(Error::io(format!("creating {}", log.display())))?;
        tools.user.give(&log)?;
        let settings_file = self.pgdata().join("vellum.conf");
        tokio::fs::write(&settings_file, files::server_settings(&socket_dir)?)
            .await
            .map_err(Error::io(format!("writing {}", settings_file.display())))?;
        tools.user.give(&settings_file)?;

        tracing::info!(data_dir = %self.data_dir.display(), "starting the embedded PostgreSQL");
        let mut start = tools.command(self, "pg_ctl");
        start
            .arg("start")
            .arg("-D")
            .arg(self.pgdata())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", PG_CTL_WAIT_SECS, "-s"])
            // Out of the terminal's process group, so that Ctrl-C reaches vellum alone and it
            // decides when the server stops (after its own sessions end).
            .process_group(0);
        let output = run(start, "running pg_ctl start").await?;
        if !output.status.success() {
            let tail = files::log_tail(log, log_start).await;
            return Err(Error::Embedded(format!(
                "{}{tail}",
                command_failed("pg_ctl start", &output)
            )));
        }
        Ok(())
    }

    async fn ensure_database(&self, log_start: u64) -> Result<()> {
        let mut admin = self.connection_config();
        admin
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(5));
        let client = match connect_patiently(&admin).await {
            Ok(client) => client,
            Err(err) => {
                let tail = files::log_tail(self.log_file(), log_start).await;
                return Err(Error::Embedded(format!(
                    "cannot connect to the server at {}: {err}{tail}",
                    files::socket_file(&self.socket_dir()).display()
                )));
            }
        };
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DATABASE])
            .await?
            .is_some();
        if !exists {
            match client.batch_execute("CREATE DATABASE vellum").await {
                Ok(()) => tracing::info!("created the `vellum` database"),
                Err(err) if err.code() == Some(&SqlState::DUPLICATE_DATABASE) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Stops the server; the caller holds the cluster lock.
    async fn stop_locked(&self, tools: &Tools) -> Result<bool> {
        if self.server_pid(tools).await?.is_none() {
            return Ok(false);
        }
        let log_start = files::log_len(&self.log_file());
        let output = run(self.stop_command(tools), "running pg_ctl stop").await?;
        if output.status.success() || self.server_pid(tools).await?.is_none() {
            tracing::info!(data_dir = %self.data_dir.display(), "stopped the embedded PostgreSQL");
            return Ok(true);
        }
        let tail = files::log_tail(self.log_file(), log_start).await;
        Err(Error::Embedded(format!(
            "{}{tail}",
            command_failed("pg_ctl stop", &output)
        )))
    }

    fn stop_command(&self, tools: &Tools) -> Command {
        let mut stop = tools.command(self, "pg_ctl");
        stop.arg("stop").arg("-D").arg(self.pgdata()).args([
            "-m",
            "fast",
            "-w",
            "-t",
            PG_CTL_WAIT_SECS,
            "-s",
        ]);
        stop
    }
}

/// A handle on a running [`EmbeddedCluster`].
///
/// A handle from [`EmbeddedCluster::start`] whose call started the server stops it (fast
/// shutdown) when [shut down](Self::shutdown) or dropped; dropping blocks until the server has
/// stopped. A handle on a server that was already running, or from
/// [`EmbeddedCluster::start_detached`], leaves the server running.
#[derive(Debug)]
#[must_use = "dropping the handle stops the server if this call started it"]
pub struct RunningCluster {
    cluster: EmbeddedCluster,
    tools: Tools,
    started_here: bool,
    stop_on_drop: bool,
}

impl RunningCluster {
    /// Connection settings for the `vellum` database, as
    /// [`EmbeddedCluster::connection_config`].
    pub fn config(&self) -> Config {
        self.cluster.connection_config()
    }

    /// The cluster this handle is on.
    pub fn cluster(&self) -> &EmbeddedCluster {
        &self.cluster
    }

    /// Whether the call that returned this handle started the server (rather than finding it
    /// running).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the server if this handle owns it (it was started by this handle's
    /// [`EmbeddedCluster::start`] call), waiting until it has stopped; otherwise does nothing.
    pub async fn shutdown(mut self) -> Result<()> {
        if !std::mem::take(&mut self.stop_on_drop) {
            return Ok(());
        }
        let _lock = ClusterLock::acquire(self.cluster.lock_file()).await?;
        self.cluster.stop_locked(&self.tools).await.map(drop)
    }
}

impl Drop for RunningCluster {
    fn drop(&mut self) {
        if !self.stop_on_drop || !self.cluster.pgdata().join("postmaster.pid").exists() {
            return;
        }
        // Drop cannot await, so this blocks the thread until the server has stopped. The cluster
        // lock is not taken: on a current-thread runtime a suspended task of this very thread
        // could hold it, and `pg_ctl stop` is safe without it.
        match self.cluster.stop_command(&self.tools).output() {
            Ok(output) if output.status.success() => {
                tracing::info!(data_dir = %self.cluster.data_dir.display(), "stopped the embedded PostgreSQL");
            }
            Ok(output) => tracing::warn!("{}", command_failed("pg_ctl stop", &output)),
            Err(err) => tracing::warn!(error = %err, "running pg_ctl stop"),
        }
    }
}

/// The binaries of one installation and the account that runs them.
#[derive(Debug, Clone)]
struct Tools {
    binaries: PgBinaries,
    user: ServerUser,
}

impl Tools {
    fn locate() -> Result<Self> {
        Ok(Self {
            binaries: PgBinaries::locate()?,
            user: ServerUser::for_this_process()?,
        })
    }

    /// A command running one of the binaries as the server's account, in the data directory
    /// (the server's account may not be able to enter this process's working directory).
    fn command(&self, cluster: &EmbeddedCluster, program: &str) -> Command {
        self.user
            .command(&self.binaries.program(program), &cluster.data_dir)
    }
}

async fn run(command: Command, what: &str) -> Result<Output> {
    tokio::process::Command::from(command)
        .output()
        .await
        .map_err(Error::io(what))
}

fn command_failed(what: &str, output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let detail = if stderr.trim().is_empty() {
        stdout.trim()
    } else {
        stderr.trim()
    };
    format!("{what} failed ({}): {detail}", output.status)
}

/// Connects, retrying for a while: a server found running may still be starting or recovering.
async fn connect_patiently(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let deadline = tokio::time::Instant::now() + CONNECT_PATIENCE;
    loop {
        match config.connect(NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!(error = %err, "embedded PostgreSQL admin connection ended");
                    }
                });
                return Ok(client);
            }
            Err(err) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %err, "embedded PostgreSQL not accepting connections yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => return Err(err),
        }
    }
}
