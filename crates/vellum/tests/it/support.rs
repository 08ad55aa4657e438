//! A real PostgreSQL for every test: a fresh database on `DATABASE_URL` when it is set, else on
//! an embedded cluster shared by all test processes.

use std::path::PathBuf;
use std::str::FromStr;

use tokio::sync::OnceCell;
use tokio_postgres::{Client, Config, NoTls};
use vellum::EmbeddedCluster;

/// The prefix of every test database; only these are ever dropped.
const PREFIX: &str = "vellum_test_";

/// A fresh, empty database for one test, dropped (`WITH (FORCE)`) when the value is dropped.
pub(crate) struct TestDb {
    config: Config,
    name: String,
    admin: Config,
}

impl TestDb {
    /// Creates the database. Panics if no PostgreSQL can be reached: a test without one cannot
    /// say anything.
    pub(crate) async fn new() -> TestDb {
        let admin = admin_config().await;
        let name = format!("{PREFIX}{}", uuid::Uuid::new_v4().simple());
        let client = connect(&admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE {}", quoted(&name)))
            .await
            .unwrap_or_else(|err| panic!("creating test database {name}: {err}"));
        let mut config = admin.clone();
        config.dbname(&name);
        TestDb {
            config,
            name,
            admin,
        }
    }

    /// Connection settings for the fresh database.
    pub(crate) fn config(&self) -> Config {
        self.config.clone()
    }

    /// The fresh database as a URL, for programs that take `DATABASE_URL` (the CLI tests).
    pub(crate) fn url(&self) -> String {
        use tokio_postgres::config::Host;
        let encode = |text: &str| {
            text.bytes()
                .map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        let config = &self.config;
        let user = encode(config.get_user().unwrap_or("postgres"));
        let password = config
            .get_password()
            .map(|p| format!(":{}", encode(&String::from_utf8_lossy(p))))
            .unwrap_or_default();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = encode(&self.name);
        match config.get_hosts().first() {
            Some(Host::Unix(dir)) => format!(
                "postgresql://{user}{password}@/{db}?host={}&port={port}",
                encode(&dir.to_string_lossy())
            ),
            Some(Host::Tcp(host)) => {
                format!("postgresql://{user}{password}@{}:{port}/{db}", encode(host))
            }
            None => format!("postgresql://{user}{password}@localhost:{port}/{db}"),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quoted(&self.name)
        );
        // Drop cannot await, and the test's runtime may be a current-thread one that is busy
        // dropping us: run the statement on a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let (client, connection) = admin.connect(NoTls).await?;
                let connection = tokio::spawn(connection);
                client.batch_execute(&sql).await?;
                drop(client);
                let _ = connection.await;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("dropping test database {}: {err}", self.name),
            Err(_) => eprintln!(
                "dropping test database {}: the dropping thread panicked",
                self.name
            ),
        }
    }
}

/// Connection settings for a database to run `CREATE DATABASE` from: `DATABASE_URL` itself, or
/// the `postgres` database of the shared embedded cluster, started on first use.
async fn admin_config() -> Config {
    static ADMIN: OnceCell<Config> = OnceCell::const_new();
    ADMIN
        .get_or_init(|| async {
            if let Some(url) = std::env::var("DATABASE_URL")
                .ok()
                .filter(|url| !url.is_empty())
            {
                return Config::from_str(&url).unwrap_or_else(|err| {
                    panic!("DATABASE_URL is not a valid connection string: {err}")
                });
            }
            // Detached: the cluster stays up between test binaries and runs, so only the first
            // run pays for initdb and startup. `vellum db stop --data-dir target/vellum-test-cluster`
            // (or the CI script) stops it.
            let cluster = EmbeddedCluster::new(shared_cluster_dir());
            let running = cluster
                .start_detached()
                .await
                .unwrap_or_else(|err| panic!("starting the shared test cluster: {err}"));
            let mut config = running.config();
            config.dbname("postgres");
            config
        })
        .await
        .clone()
}

/// `<target dir>/vellum-test-cluster`, next to the `tmp` directory cargo gives integration tests.
fn shared_cluster_dir() -> PathBuf {
    let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let target = target_tmp
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent");
    // Resolving `..` and symlinks keeps the socket path short.
    std::fs::canonicalize(target)
        .unwrap_or_else(|_| target.to_path_buf())
        .join("vellum-test-cluster")
}

async fn connect(config: &Config) -> Client {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .unwrap_or_else(|err| panic!("connecting to the test PostgreSQL: {err}"));
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            eprintln!("test PostgreSQL connection ended: {err}");
        }
    });
    client
}

/// The name as a quoted identifier, after checking it is one of ours: SQL is never built from
/// anything else.
fn quoted(name: &str) -> String {
    let hex = name
        .strip_prefix(PREFIX)
        .unwrap_or_else(|| panic!("not a test database name: {name}"));
    assert!(
        !hex.is_empty()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "not a test database name: {name}"
    );
    format!("\"{name}\"")
}
