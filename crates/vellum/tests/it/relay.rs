//! The outbox relay against NATS JetStream: at least once, in order per aggregate, nothing from
//! rolled-back work, one leader at a time, and recovery from a relay crash and a NATS crash.

use std::{collections::HashMap, time::Duration};

use serde_json::json;
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;
use vellum::{
    CloudEvent, Event, OutboxRelay, RelayOptions, RelayStatus, Service, ServiceName, Store,
    StoreOptions, Version, WriteOptions, async_nats,
};

use crate::{
    fixtures::{id, v},
    nats::{PrivateNats, shared_nats},
    support::TestDb,
};

/// A fresh database and a service with a unique name, so its JetStream stream on the shared
/// server is its own; with a `wallet` entity type.
async fn service(db: &TestDb) -> Service {
    let store = Store::connect(db.config(), StoreOptions::default())
        .await
        .unwrap();
    let name =
        ServiceName::new(format!("r{}", &Uuid::new_v4().simple().to_string()[..12])).unwrap();
    store.create_service(&name).await.unwrap();
    let service = store.service(&name).await.unwrap();
    service
        .schemas()
        .register(&id("wallet"), v("1.0.0"), json!({"type": "object"}), false)
        .await
        .unwrap();
    service
}

/// The same service through another store: another process, as far as PostgreSQL can tell.
async fn other_process(db: &TestDb, service: &Service) -> Service {
    let store = Store::connect(db.config(), StoreOptions::default())
        .await
        .unwrap();
    store.service(service.name()).await.unwrap()
}

fn options() -> RelayOptions {
    let mut options = RelayOptions::default();
    options.standby_interval = Duration::from_millis(100);
    options.retry_interval = Duration::from_millis(200);
    options
}

fn spawn(relay: OutboxRelay) -> (JoinHandle<()>, watch::Receiver<RelayStatus>) {
    let status = relay.status();
    let task = tokio::spawn(async move {
        relay.run(std::future::pending::<()>()).await.unwrap();
    });
    (task, status)
}

async fn wait_for(
    status: &mut watch::Receiver<RelayStatus>,
    what: &str,
    until: impl Fn(&RelayStatus) -> bool,
) {
    let waited = tokio::time::timeout(Duration::from_secs(30), status.wait_for(|s| until(s)))
        .await
        .is_ok();
    assert!(
        waited,
        "relay never reached: {what}; status {:?}",
        *status.borrow()
    );
}

/// Every message of the service's stream, in stream order: subject, Nats-Msg-Id, envelope.
async fn stream_messages(
    nats: &async_nats::Client,
    service: &Service,
) -> Vec<(String, String, CloudEvent)> {
    let jetstream = async_nats::jetstream::new(nats.clone());
    let mut stream = jetstream
        .get_stream(OutboxRelay::stream_name(service.name()))
        .await
        .unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut messages = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence {
        if state.messages == 0 {
            break;
        }
        let message = stream.get_raw_message(sequence).await.unwrap();
        let msg_id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let event: CloudEvent = serde_json::from_slice(&message.payload).unwrap();
        messages.push((message.subject.to_string(), msg_id, event));
    }
    messages
}

async fn delete_stream(nats: &async_nats::Client, service: &Service) {
    let _ = async_nats::jetstream::new(nats.clone())
        .delete_stream(OutboxRelay::stream_name(service.name()))
        .await;
}

/// Asserts that, per aggregate, the stream carries strictly increasing aggregate versions.
fn assert_order_per_aggregate(messages: &[(String, String, CloudEvent)]) {
    let mut last: HashMap<&str, Version> = HashMap::new();
    for (_, _, event) in messages {
        let version: Version = event.aggregateversion.as_deref().unwrap().parse().unwrap();
        if let Some(previous) = last.insert(&event.subject, version) {
            assert!(
                previous < version,
                "aggregate {}: {version} published after {previous}",
                event.subject
            );
        }
    }
}

#[tokio::test]
async fn the_relay_publishes_each_committed_event_once_in_commit_order() {
    let Some(nats) = shared_nats().await else {
        return;
    };
    let db = TestDb::new().await;
    let service = service(&db).await;
    let mut committed = Vec::new();
    for n in 0..5 {
        let mut uow = service.begin("alice").await.unwrap();
        for aggregate in ["a", "b"] {
            uow.emit(Event::new("Counted", "counter", aggregate, json!({"n": n})))
                .unwrap();
        }
        committed.extend(uow.commit().await.unwrap().events);
    }
    let mut rolled_back = service.begin("alice").await.unwrap();
    let lost = rolled_back
        .emit(Event::new("Counted", "counter", "a", json!({"n": -1})))
        .unwrap();
    drop(rolled_back);

    let mut relay_options = options();
    // Far longer than the test: a delivery within it was woken by NOTIFY, not by polling.
    relay_options.poll_interval = Duration::from_secs(600);
    let relay = OutboxRelay::new(service.clone(), nats.clone(), relay_options);
    let (task, mut status) = spawn(relay);
    let last = committed.last().unwrap().position;
    wait_for(&mut status, "the first events published", |s| {
        s.checkpoint == Some(last) && s.lag_events == 0
    })
    .await;

    let mut uow = service.begin("alice").await.unwrap();
    uow.emit(Event::new("Counted", "counter", "a", json!({"n": 5})))
        .unwrap();
    committed.extend(uow.commit().await.unwrap().events);
    let last = committed.last().unwrap().position;
    // The lag is measured right after the checkpoint moves: wait for both.
    wait_for(&mut status, "the later event published", |s| {
        s.checkpoint == Some(last) && s.lag_events == 0
    })
    .await;
    task.abort();

    let messages = stream_messages(&nats, &service).await;
    let ids: Vec<String> = messages.iter().map(|(_, id, _)| id.clone()).collect();
    let expected: Vec<String> = committed.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(ids, expected, "every committed event once, in commit order");
    assert!(!ids.contains(&lost.to_string()));
    for ((subject, _, envelope), event) in messages.iter().zip(&committed) {
        assert_eq!(
            *subject,
            format!("vellum.{}.counter.Counted", service.name())
        );
        assert_eq!(*envelope, event.cloud_event(service.name()));
    }
    let status = status.borrow().clone();
    assert_eq!((status.published, status.duplicates), (11, 0));
    delete_stream(&nats, &service).await;
}

/// Writers that move wallets concurrently: each unit of work updates one wallet (locking it)
/// and emits an event about it carrying the wallet's new version. Returns the committed events
/// and the ids of events whose unit of work was rolled back (every tenth).
async fn move_wallets(
    service: &Service,
    writers: usize,
    each: usize,
) -> (Vec<vellum::OutboxEvent>, Vec<Uuid>) {
    let wallet = id("wallet");
    let mut uow = service.begin("setup").await.unwrap();
    let mut wallets = Vec::new();
    for _ in 0..3 {
        wallets.push(
            uow.create(&wallet, json!({"balance": 0}), WriteOptions::default())
                .await
                .unwrap()
                .entity_id,
        );
    }
    uow.commit().await.unwrap();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (service, wallet, wallets) = (service.clone(), wallet.clone(), wallets.clone());
            tokio::spawn(async move {
                let (mut committed, mut lost) = (Vec::new(), Vec::new());
                for i in 0..each {
                    let target = wallets[(w + i) % wallets.len()];
                    let mut uow = service.begin(format!("writer-{w}")).await.unwrap();
                    let staged = uow
                        .update(
                            &wallet,
                            target,
                            json!({"balance": i}),
                            WriteOptions::default(),
                        )
                        .await
                        .unwrap();
                    let event = Event::new("Moved", "wallet", target.to_string(), json!({"i": i}))
                        .aggregate_version(staged.entity_version.to_string());
                    let event_id = uow.emit(event).unwrap();
                    if (w * each + i) % 10 == 9 {
                        uow.rollback().await.unwrap();
                        lost.push(event_id);
                    } else {
                        committed.extend(uow.commit().await.unwrap().events);
                    }
                }
                (committed, lost)
            })
        })
        .collect();
    let (mut committed, mut lost) = (Vec::new(), Vec::new());
    for task in tasks {
        let (c, l) = task.await.unwrap();
        committed.extend(c);
        lost.extend(l);
    }
    committed.sort_by_key(|e| e.position);
    (committed, lost)
}

fn assert_exactly(
    messages: &[(String, String, CloudEvent)],
    committed: &[vellum::OutboxEvent],
    lost: &[Uuid],
) {
    let ids: Vec<&str> = messages.iter().map(|(_, id, _)| id.as_str()).collect();
    let expected: Vec<String> = committed.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(
        ids, expected,
        "every committed event once (de-duplicated), in commit order"
    );
    for id in lost {
        assert!(
            !ids.contains(&id.to_string().as_str()),
            "rolled-back event {id} published"
        );
    }
    assert_order_per_aggregate(messages);
}

#[tokio::test]
async fn two_relays_at_once_one_leads_and_a_standby_takes_over_in_order() {
    let Some(nats) = shared_nats().await else {
        return;
    };
    let db = TestDb::new().await;
    let service = service(&db).await;
    let (first, mut first_status) =
        spawn(OutboxRelay::new(service.clone(), nats.clone(), options()));
    // The first leads before the second starts, so the test knows which one to kill.
    wait_for(&mut first_status, "leading", |s| s.leader).await;
    let other = other_process(&db, &service).await;
    let (second, mut second_status) = spawn(OutboxRelay::new(other, nats.clone(), options()));

    let writing = {
        let service = service.clone();
        tokio::spawn(async move { move_wallets(&service, 4, 40).await })
    };
    wait_for(&mut first_status, "publishing", |s| s.published >= 20).await;
    assert!(!second_status.borrow().leader, "two leaders at once");
    assert_eq!(second_status.borrow().published, 0);
    first.abort();
    wait_for(&mut second_status, "taking over", |s| s.leader).await;

    let (committed, lost) = writing.await.unwrap();
    let last = committed.last().unwrap().position;
    wait_for(&mut second_status, "everything published", |s| {
        s.checkpoint == Some(last)
    })
    .await;
    second.abort();
    let messages = stream_messages(&nats, &service).await;
    assert_exactly(&messages, &committed, &lost);
    assert_eq!(committed.len(), 144);
    delete_stream(&nats, &service).await;
}

/// The crash test: the relay is killed mid-run, NATS is killed and restarted, a new relay takes
/// over; the checkpoint is also set back, as if the relay had died between JetStream's
/// acknowledgements and its checkpoint write, so events are certainly published twice.
#[tokio::test]
async fn after_a_relay_crash_and_a_nats_crash_every_event_is_delivered_once_in_order() {
    let Some(mut nats_server) = PrivateNats::start().await else {
        return;
    };
    let db = TestDb::new().await;
    let service = service(&db).await;
    let connect = |url: String| async move {
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url)
            .await
            .unwrap()
    };
    let mut crashing_options = options();
    crashing_options.batch_size = 10;
    let nats = connect(nats_server.url()).await;
    let (crashing, mut crashing_status) = spawn(OutboxRelay::new(
        service.clone(),
        nats.clone(),
        crashing_options.clone(),
    ));

    let writing = {
        let service = service.clone();
        tokio::spawn(async move { move_wallets(&service, 4, 75).await })
    };
    wait_for(&mut crashing_status, "publishing", |s| s.published >= 60).await;
    crashing.abort();
    let _ = crashing.await;
    let published_before = crashing_status.borrow().published;
    nats_server.crash_and_restart().await;

    let admin = {
        let (client, connection) = db.config().connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    };
    let rewound = admin
        .execute(
            "UPDATE vellum.relay_checkpoints SET position = greatest(position - 25, 0)
             WHERE service = $1",
            &[&service.name().as_str()],
        )
        .await
        .unwrap();
    assert_eq!(rewound, 1);

    let other = other_process(&db, &service).await;
    let nats = connect(nats_server.url()).await;
    let (recovering, mut recovering_status) =
        spawn(OutboxRelay::new(other, nats.clone(), crashing_options));
    let (committed, lost) = writing.await.unwrap();
    let last = committed.last().unwrap().position;
    wait_for(&mut recovering_status, "everything published", |s| {
        s.checkpoint == Some(last)
    })
    .await;
    recovering.abort();

    let messages = stream_messages(&nats, &service).await;
    assert_exactly(&messages, &committed, &lost);
    let duplicates = recovering_status.borrow().duplicates;
    eprintln!(
        "crash test: {} committed, {} rolled back, {published_before} published before the crash, \
         {duplicates} duplicates reported by JetStream after it, {} messages in the stream",
        committed.len(),
        lost.len(),
        messages.len()
    );
    assert!(
        duplicates >= 25,
        "JetStream reported {duplicates} duplicates after the rewind (published before the crash: {published_before})"
    );
    assert_eq!(committed.len(), 270);
}

/// The gap test, with the relay running: a unit of work draws a position and stalls inside its
/// commit while others try to commit; the relay, already leading and woken by every commit,
/// publishes the stalled event first and skips nothing.
#[tokio::test]
async fn the_relay_never_skips_an_event_whose_transaction_commits_late() {
    let Some(nats) = shared_nats().await else {
        return;
    };
    let db = TestDb::new().await;
    let service = service(&db).await;
    let (task, mut status) = spawn(OutboxRelay::new(service.clone(), nats.clone(), options()));
    wait_for(&mut status, "leading", |s| s.leader).await;
    let admin = {
        let (client, connection) = db.config().connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    };
    let schema = service.name().as_str();
    admin
        .batch_execute(&format!(
            "CREATE FUNCTION public.test_gate() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4243); RETURN NULL; END $$;
             CREATE TRIGGER test_gate AFTER INSERT ON \"{schema}\".outbox FOR EACH ROW
                 WHEN (NEW.event_type = 'Slow') EXECUTE FUNCTION public.test_gate();
             SELECT pg_advisory_lock(4243);"
        ))
        .await
        .unwrap();
    let waiting = || async {
        admin
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let emit = |service: Service, event_type: &'static str| {
        tokio::spawn(async move {
            let mut uow = service.begin("gap").await.unwrap();
            uow.emit(Event::new(event_type, "gap", "g", json!({})))
                .unwrap();
            uow.commit().await.unwrap().events.remove(0)
        })
    };
    let slow = emit(service.clone(), "Slow");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while waiting().await < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow commit never reached the gate"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fast: Vec<_> = (0..3).map(|_| emit(service.clone(), "Fast")).collect();
    while waiting().await < 4 && !fast.iter().all(|t| t.is_finished()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the fast commits neither ended nor waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    admin
        .batch_execute("SELECT pg_advisory_unlock(4243)")
        .await
        .unwrap();
    let mut committed = vec![slow.await.unwrap()];
    for task in fast {
        committed.push(task.await.unwrap());
    }
    committed.sort_by_key(|e| e.position);
    let last = committed.last().unwrap().position;
    wait_for(&mut status, "everything published", |s| {
        s.checkpoint == Some(last)
    })
    .await;
    task.abort();

    let messages = stream_messages(&nats, &service).await;
    let types: Vec<&str> = messages
        .iter()
        .map(|(_, _, e)| e.event_type.as_str())
        .collect();
    assert_eq!(types, ["Slow", "Fast", "Fast", "Fast"]);
    let ids: Vec<&str> = messages.iter().map(|(_, id, _)| id.as_str()).collect();
    let expected: Vec<String> = committed.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(ids, expected);
    delete_stream(&nats, &service).await;
}
