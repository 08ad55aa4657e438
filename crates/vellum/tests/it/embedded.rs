//! The embedded cluster with real `initdb`, `pg_ctl` and `postgres` processes, each test in a
//! data directory of its own; and the test databases every other test relies on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};
use vellum::{ClusterStatus, EmbeddedCluster};

use crate::support::TestDb;

/// A cluster in a fresh directory under the system temp dir (short, for the socket path
/// limit), stopped and removed when dropped, even when the test fails.
struct ScratchCluster {
    cluster: EmbeddedCluster,
}

impl ScratchCluster {
    fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("vlm-{}", &id[..12]));
        Self {
            cluster: EmbeddedCluster::new(dir),
        }
    }

    fn socket_file(&self) -> PathBuf {
        self.cluster.socket_dir().join(".s.PGSQL.5432")
    }
}

impl std::ops::Deref for ScratchCluster {
    type Target = EmbeddedCluster;

    fn deref(&self) -> &EmbeddedCluster {
        &self.cluster
    }
}

impl Drop for ScratchCluster {
    fn drop(&mut self) {
        let cluster = self.cluster.clone();
        let stopped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(cluster.stop())
        })
        .join();
        if !matches!(stopped, Ok(Ok(_))) {
            eprintln!(
                "stopping scratch cluster {}: {stopped:?}",
                self.cluster.data_dir().display()
            );
        }
        let _ = std::fs::remove_dir_all(self.cluster.data_dir());
    }
}

async fn connect(config: &Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("connecting");
    tokio::spawn(connection);
    client
}

async fn query_text(client: &Client, sql: &str) -> String {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

async fn running_pid(cluster: &EmbeddedCluster) -> u32 {
    match cluster.status().await.expect("status") {
        ClusterStatus::Running { pid } => pid,
        other => panic!("expected a running cluster, found {other:?}"),
    }
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether process `pid` is gone within a few seconds: a stopped postmaster removes its pid file,
/// which `pg_ctl stop` waits for, just before it exits.
async fn process_ends(pid: u32) -> bool {
    for _ in 0..100 {
        if !process_exists(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn start_creates_the_cluster_and_serves_the_vellum_database_over_the_socket() {
    let cluster = ScratchCluster::new();
    assert_eq!(
        cluster.status().await.unwrap(),
        ClusterStatus::NotInitialized
    );

    let running = cluster.start().await.expect("start");
    assert!(running.started_here());
    assert!(cluster.data_dir().join("pgdata/PG_VERSION").is_file());
    assert!(
        cluster.socket_file().exists(),
        "socket in {}",
        cluster.socket_dir().display()
    );
    let pid = running_pid(&cluster).await;
    assert!(process_exists(pid));

    assert_eq!(running.config(), cluster.connection_config());
    let client = connect(&running.config()).await;
    let row = client
        .query_one("SELECT 1, current_database(), current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, String>(1), "vellum");
    assert_eq!(row.get::<_, String>(2), "vellum");
    drop(client);

    running.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_second_start_reuses_the_server_and_its_drop_leaves_it_running() {
    let cluster = ScratchCluster::new();
    let first = cluster.start().await.expect("first start");
    let pid = running_pid(&cluster).await;

    let second = cluster.start().await.expect("second start");
    assert!(!second.started_here());
    assert_eq!(running_pid(&cluster).await, pid);
    drop(second);

    assert_eq!(running_pid(&cluster).await, pid);
    let client = connect(&first.config()).await;
    assert_eq!(query_text(&client, "SELECT 'still up'").await, "still up");
    drop(client);

    first.shutdown().await.expect("shutdown");
    assert_eq!(cluster.status().await.unwrap(), ClusterStatus::Stopped);
}

#[tokio::test]
async fn shutdown_stops_the_server_and_data_survives_a_restart() {
    let cluster = ScratchCluster::new();
    let running = cluster.start().await.expect("start");
    let client = connect(&running.config()).await;
    client
        .batch_execute(
            "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('written before stop')",
        )
        .await
        .unwrap();
    drop(client);

    running.shutdown().await.expect("shutdown");
    assert_eq!(cluster.status().await.unwrap(), ClusterStatus::Stopped);
    assert!(!cluster.socket_file().exists(), "socket file left behind");
    assert!(
        !cluster.stop().await.unwrap(),
        "stop of a stopped cluster reports it was not running"
    );

    let restarted = cluster.start().await.expect("restart");
    assert!(restarted.started_here());
    let client = connect(&restarted.config()).await;
    assert_eq!(
        query_text(&client, "SELECT note FROM kept").await,
        "written before stop"
    );
    drop(client);
    restarted.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn concurrent_starts_share_one_server() {
    let cluster = ScratchCluster::new();
    let (a, b) = tokio::join!(cluster.start(), cluster.start());
    let (a, b) = (a.expect("first start"), b.expect("second start"));
    assert!(
        a.started_here() != b.started_here(),
        "exactly one of the calls starts the server"
    );
    let pid = running_pid(&cluster).await;
    let (owner, guest) = if a.started_here() { (a, b) } else { (b, a) };
    drop(guest);
    assert_eq!(running_pid(&cluster).await, pid);
    owner.shutdown().await.expect("shutdown");
    assert_eq!(cluster.status().await.unwrap(), ClusterStatus::Stopped);
}

#[tokio::test]
async fn dropping_the_handle_that_started_the_server_stops_it() {
    let cluster = ScratchCluster::new();
    let running = cluster.start().await.expect("start");
    let pid = running_pid(&cluster).await;
    drop(running);
    assert_eq!(cluster.status().await.unwrap(), ClusterStatus::Stopped);
    assert!(process_ends(pid).await, "postmaster {pid} still there");
}

#[tokio::test]
async fn a_detached_server_outlives_its_handle_until_stopped() {
    let cluster = ScratchCluster::new();
    let running = cluster.start_detached().await.expect("start");
    assert!(running.started_here());
    drop(running);
    let pid = running_pid(&cluster).await;
    assert!(cluster.stop().await.expect("stop"));
    assert_eq!(cluster.status().await.unwrap(), ClusterStatus::Stopped);
    assert!(process_ends(pid).await, "postmaster {pid} still there");
}

#[tokio::test]
async fn the_server_listens_on_its_private_socket_only() {
    let cluster = ScratchCluster::new();
    let running = cluster.start().await.expect("start");
    let client = connect(&running.config()).await;
    assert_eq!(query_text(&client, "SHOW listen_addresses").await, "");
    let socket_dirs = query_text(&client, "SHOW unix_socket_directories").await;
    assert!(
        socket_dirs.contains(cluster.socket_dir().to_str().unwrap()),
        "{socket_dirs}"
    );
    assert_eq!(
        query_text(&client, "SHOW unix_socket_permissions").await,
        "0700"
    );
    drop(client);
    running.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn start_recovers_after_the_postmaster_is_killed() {
    let cluster = ScratchCluster::new();
    // Detached: the handle must not try to stop the server that replaces the killed one.
    let running = cluster.start_detached().await.expect("start");
    let client = connect(&running.config()).await;
    client
        .batch_execute("CREATE TABLE survivor (id int); INSERT INTO survivor VALUES (42)")
        .await
        .unwrap();
    drop(client);
    drop(running);

    let pid = running_pid(&cluster).await;
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(process_ends(pid).await, "postmaster {pid} survived kill -9");
    assert!(
        cluster.data_dir().join("pgdata/postmaster.pid").exists(),
        "stale pid file expected"
    );
    assert_eq!(cluster.status().await.unwrap(), ClusterStatus::Stopped);

    let restarted = cluster.start().await.expect("start after kill -9");
    assert!(restarted.started_here());
    let client = connect(&restarted.config()).await;
    let row = client
        .query_one("SELECT id FROM survivor", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    drop(client);
    restarted.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn embedded_test_databases_are_fresh_empty_and_distinct() {
    let first = TestDb::new().await;
    let second = TestDb::new().await;
    let first_name = {
        let client = connect(&first.config()).await;
        let tables: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(tables, 0, "a fresh database holds no relations");
        client
            .batch_execute("CREATE TABLE only_in_first (id int)")
            .await
            .unwrap();
        query_text(&client, "SELECT current_database()::text").await
    };
    let client = connect(&second.config()).await;
    let second_name = query_text(&client, "SELECT current_database()::text").await;
    assert!(first_name.starts_with("vellum_test_"), "{first_name}");
    assert_ne!(first_name, second_name);
    let visible: Option<String> = client
        .query_one("SELECT to_regclass('only_in_first')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, None, "the second database is not the first");

    drop(first);
    let still_there: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&first_name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!still_there, "dropping a TestDb drops its database");
}
