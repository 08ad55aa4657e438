//! The outbox: events commit with their unit of work or not at all, come back with positions,
//! and the feed delivers them gap-safe, in commit-horizon order.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use vellum::{Error, Event, FeedCursor, OutboxEvent, Service, WriteOptions};

use crate::fixtures::{Fixture, id, v};

async fn outbox_rows(f: &Fixture) -> i64 {
    f.admin()
        .await
        .query_one("SELECT count(*) FROM orders.outbox", &[])
        .await
        .unwrap()
        .get(0)
}

/// Reads the feed from `from` until `n` events came, or fails after 10 s.
pub(crate) async fn read_feed(service: &Service, from: FeedCursor, n: usize) -> Vec<OutboxEvent> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut cursor = from;
    let mut events = Vec::new();
    while events.len() < n {
        let page = service.events_after(cursor, 100).await.unwrap();
        if let Some(last) = page.last() {
            cursor = last.cursor();
        }
        events.extend(page);
        assert!(
            Instant::now() < deadline,
            "the feed delivered {} of {n} events",
            events.len()
        );
        if events.len() < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    events
}

fn transfer(aggregate: &str, amount: i64) -> Event {
    Event::new(
        "TransferCompleted",
        "wallet",
        aggregate,
        json!({"amount": amount}),
    )
}

#[tokio::test]
async fn emitted_events_commit_with_the_writes_and_come_back_with_positions() {
    let f = Fixture::new().await;
    let mut uow = f.service.begin("alice").await.unwrap();
    let staged = uow
        .create(
            &id("sales_order"),
            json!({"customer": "ACME"}),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    let first = uow
        .emit(transfer("w-1", 5).aggregate_version("1.0.1"))
        .unwrap();
    let second = uow.emit(transfer("w-2", -5)).unwrap();
    let committed = uow.commit().await.unwrap();

    let ids: Vec<_> = committed.events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, [first, second], "emit order, change events off");
    assert!(committed.events[0].position < committed.events[1].position);
    for event in &committed.events {
        assert_eq!(event.uow_id, committed.uow_id);
        assert_eq!(event.created_at, committed.committed_at);
    }
    assert_eq!(
        committed.events[0].aggregate_version.as_deref(),
        Some("1.0.1")
    );

    let fed = read_feed(&f.service, FeedCursor::START, 2).await;
    assert_eq!(
        fed, committed.events,
        "the feed returns what the commit returned"
    );
    assert!(
        f.service
            .events_after(fed[1].cursor(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.service.event(second).await.unwrap(), committed.events[1]);
    assert_eq!(FeedCursor::after(fed[0].position).unwrap(), fed[0].cursor());
    let envelope = serde_json::to_value(fed[0].cloud_event(f.service.name())).unwrap();
    assert_eq!(
        envelope,
        json!({
            "specversion": "1.0", "id": first, "source": "vellum/orders",
            "type": "TransferCompleted", "subject": "w-1",
            "time": committed.committed_at, "datacontenttype": "application/json",
            "data": {"amount": 5}, "aggregatetype": "wallet", "aggregateversion": "1.0.1",
            "uowid": committed.uow_id, "position": fed[0].position,
        })
    );
    assert_eq!(
        fed[0].subject(f.service.name()),
        "vellum.orders.wallet.TransferCompleted"
    );
    f.service
        .get(&id("sales_order"), staged.entity_id)
        .await
        .unwrap();
}

#[tokio::test]
async fn events_share_the_fate_of_their_unit_of_work() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let staged = f.create_order(json!({"customer": "ACME"})).await;

    // Dropped without commit.
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.emit(transfer("w-1", 1)).unwrap();
    drop(uow);
    // Rolled back explicitly, after a read opened the transaction.
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.get(&order, staged.entity_id).await.unwrap();
    uow.emit(transfer("w-1", 2)).unwrap();
    uow.rollback().await.unwrap();
    // Failed at commit: a concurrent writer got to the entity first.
    let mut loser = f.service.begin("bob").await.unwrap();
    loser
        .update(
            &order,
            staged.entity_id,
            json!({"customer": "B"}),
            WriteOptions::expect(v("1.0.0")),
        )
        .await
        .unwrap();
    loser.emit(transfer("w-1", 3)).unwrap();
    let mut winner = f.service.begin("carol").await.unwrap();
    winner
        .update(
            &order,
            staged.entity_id,
            json!({"customer": "C"}),
            WriteOptions::expect(v("1.0.0")),
        )
        .await
        .unwrap();
    winner.emit(transfer("w-1", 4)).unwrap();
    winner.commit().await.unwrap();
    let err = loser.commit().await.unwrap_err();
    assert!(matches!(err, Error::VersionConflict { .. }), "{err}");
    // Failed before commit: an invalid event fails the unit of work, whose events never land.
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.emit(transfer("w-1", 5)).unwrap();
    let err = uow
        .emit(Event::new("bad type", "wallet", "w-1", json!({})))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidEvent(_)), "{err}");
    assert!(matches!(
        uow.commit().await.unwrap_err(),
        Error::UnitOfWorkFailed { .. }
    ));

    assert_eq!(
        outbox_rows(&f).await,
        1,
        "only the winner's event is stored"
    );
    let fed = read_feed(&f.service, FeedCursor::START, 1).await;
    assert_eq!(fed[0].data, json!({"amount": 4}));
}

#[tokio::test]
async fn a_unit_of_work_may_commit_only_events_and_an_event_id_lands_once() {
    let f = Fixture::new().await;
    let event = transfer("w-9", 1);
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.emit(event.clone()).unwrap();
    let err = uow.emit(event.clone()).unwrap_err();
    assert!(matches!(err, Error::InvalidEvent(_)), "{err}");

    let mut uow = f.service.begin("alice").await.unwrap();
    uow.emit(event.clone()).unwrap();
    let committed = uow.commit().await.unwrap();
    assert!(committed.entities.is_empty());
    assert_eq!(committed.events.len(), 1);

    let mut again = f.service.begin("alice").await.unwrap();
    again.emit(event).unwrap();
    let err = again.commit().await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(outbox_rows(&f).await, 1);
}

#[tokio::test]
async fn change_events_follow_the_service_setting() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    assert!(!f.service.change_events().await.unwrap());
    let quiet = f.create_order(json!({"customer": "A"})).await;
    assert_eq!(outbox_rows(&f).await, 0);

    f.service.set_change_events(true).await.unwrap();
    assert!(f.service.change_events().await.unwrap());
    let mut uow = f.service.begin("alice").await.unwrap();
    let created = uow
        .create(&order, json!({"customer": "B"}), WriteOptions::default())
        .await
        .unwrap();
    uow.update(
        &order,
        created.entity_id,
        json!({"customer": "B2"}),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    uow.emit(transfer("w-1", 1)).unwrap();
    let committed = uow.commit().await.unwrap();
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.delete(&order, quiet.entity_id, None).await.unwrap();
    let deleted = uow.commit().await.unwrap();

    let kinds: Vec<_> = committed
        .events
        .iter()
        .chain(&deleted.events)
        .map(|e| {
            (
                e.event_type.as_str(),
                e.aggregate_id.clone(),
                e.aggregate_version.clone().unwrap_or_default(),
            )
        })
        .collect();
    let (b, a) = (created.entity_id.to_string(), quiet.entity_id.to_string());
    assert_eq!(
        kinds,
        [
            ("entity.created", b.clone(), "1.0.0".to_string()),
            ("entity.updated", b, "1.0.1".to_string()),
            ("TransferCompleted", "w-1".to_string(), String::new()),
            ("entity.deleted", a, "1.0.0".to_string()),
        ]
    );
    assert_eq!(committed.events[0].aggregate_type, "sales_order");
    assert_eq!(
        committed.events[1].data["payload"],
        json!({"customer": "B2"})
    );
    assert_eq!(committed.events[1].data["revision"], json!(2));
    assert_eq!(read_feed(&f.service, FeedCursor::START, 4).await.len(), 4);
}

#[tokio::test]
async fn change_events_turned_on_by_another_process_are_written_from_the_next_commit() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    // This process commits once with the setting off, and remembers it.
    f.create_order(json!({"customer": "A"})).await;
    f.other_process()
        .await
        .set_change_events(true)
        .await
        .unwrap();

    // A unit of work that only writes is sent again with its change event.
    let mut uow = f.service.begin("alice").await.unwrap();
    let created = uow
        .create(&order, json!({"customer": "B"}), WriteOptions::default())
        .await
        .unwrap();
    let committed = uow.commit().await.unwrap();
    assert_eq!(committed.events.len(), 1);
    assert_eq!(committed.events[0].event_type, "entity.created");
    assert_eq!(
        committed.events[0].aggregate_id,
        created.entity_id.to_string()
    );
    assert_eq!(outbox_rows(&f).await, 1);
    assert_eq!(f.create_order(json!({"customer": "C"})).await.revision, 1);
    assert_eq!(outbox_rows(&f).await, 2);
}

#[tokio::test]
async fn a_unit_of_work_that_read_before_change_events_were_turned_on_is_refused_whole() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let existing = f.create_order(json!({"customer": "A"})).await;
    f.other_process()
        .await
        .set_change_events(true)
        .await
        .unwrap();

    // Its transaction began with the read, so its commit cannot be sent again.
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.get(&order, existing.entity_id).await.unwrap();
    let created = uow
        .create(&order, json!({"customer": "B"}), WriteOptions::default())
        .await
        .unwrap();
    let err = uow.commit().await.unwrap_err();
    assert!(
        matches!(&err, vellum::Error::NotAllowed(msg) if msg.contains("change events were turned on")),
        "{err}"
    );
    assert!(f.service.get(&order, created.entity_id).await.is_err());
    assert_eq!(outbox_rows(&f).await, 0);
    // The retry writes the entity and its event.
    f.create_order(json!({"customer": "B"})).await;
    assert_eq!(outbox_rows(&f).await, 1);
}

#[tokio::test]
async fn the_outbox_is_append_only_for_everyone() {
    let f = Fixture::new().await;
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.emit(transfer("w-1", 1)).unwrap();
    uow.commit().await.unwrap();

    let admin = f.admin().await;
    for sql in [
        "UPDATE orders.outbox SET payload = '{}'",
        "DELETE FROM orders.outbox",
        "TRUNCATE orders.outbox",
    ] {
        let err = admin.batch_execute(sql).await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "VL001", "{sql}");
    }
    for sql in [
        "UPDATE orders.outbox SET payload = '{}'",
        "UPDATE orders.event_settings SET change_events = true",
    ] {
        let mut uow = f.service.begin("mallory").await.unwrap();
        let err = uow.raw().execute(sql, &[]).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
    }
    assert_eq!(outbox_rows(&f).await, 1);
}

#[tokio::test]
async fn a_service_provisioned_before_the_outbox_is_upgraded_on_connect() {
    let f = Fixture::new().await;
    let admin = f.admin().await;
    // What a service of DDL version 1 looks like.
    admin
        .batch_execute(
            "DROP TABLE orders.outbox; DROP TABLE orders.event_settings;
             DROP TRIGGER schemas_registry_generation ON orders.schemas;
             UPDATE vellum.services SET ddl_version = 1 WHERE name = 'orders'",
        )
        .await
        .unwrap();
    let store = vellum::Store::connect(f.db.config(), vellum::StoreOptions::default())
        .await
        .unwrap();
    let version: i32 = admin
        .query_one(
            "SELECT ddl_version FROM vellum.services WHERE name = 'orders'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 6);
    let service = store.service(f.service.name()).await.unwrap();
    let mut uow = service.begin("alice").await.unwrap();
    uow.emit(transfer("w-1", 1)).unwrap();
    assert_eq!(uow.commit().await.unwrap().events.len(), 1);
}

/// The gap: a slow unit of work draws an outbox position, then faster ones try to commit while
/// it is still in flight. If a later position could commit first, a reader resuming after it
/// would skip the slow event for ever; positions are drawn in commit order, so the fast units of
/// work wait, and the reader gets every event, the slow one first.
#[tokio::test]
async fn the_feed_never_skips_an_event_whose_transaction_commits_late() {
    let f = Fixture::new().await;
    let admin = f.admin().await;
    // A gate: an outbox row of type Slow waits, inside its commit, until the test opens it.
    admin
        .batch_execute(
            "CREATE FUNCTION public.test_gate() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NULL; END $$;
             CREATE TRIGGER test_gate AFTER INSERT ON orders.outbox FOR EACH ROW
                 WHEN (NEW.event_type = 'Slow') EXECUTE FUNCTION public.test_gate();
             SELECT pg_advisory_lock(4242);",
        )
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

    let service = f.service.clone();
    let slow = tokio::spawn(async move {
        let mut uow = service.begin("slow").await.unwrap();
        uow.emit(Event::new("Slow", "wallet", "w-slow", json!({"n": 1})))
            .unwrap();
        uow.commit().await.unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiting().await < 1 {
        assert!(
            Instant::now() < deadline,
            "the slow commit never reached the gate"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fast: Vec<_> = (0..3)
        .map(|n| {
            let service = f.service.clone();
            tokio::spawn(async move {
                let mut uow = service.begin("fast").await.unwrap();
                uow.emit(transfer("w-fast", n)).unwrap();
                uow.commit().await.unwrap().events.remove(0)
            })
        })
        .collect();
    // Until the fast ones either committed or wait behind the slow one.
    loop {
        let done = fast.iter().filter(|t| t.is_finished()).count();
        if done == 3 || waiting().await == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fast commits neither ended nor waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A reader takes what has committed while the slow unit of work is in flight.
    let early = f
        .service
        .events_after(FeedCursor::START, 100)
        .await
        .unwrap();
    let cursor = early.last().map_or(FeedCursor::START, OutboxEvent::cursor);

    admin
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .await
        .unwrap();
    let slow = slow.await.unwrap().events.remove(0);
    let mut fast_events = Vec::new();
    for task in fast {
        fast_events.push(task.await.unwrap());
    }
    let mut delivered = early;
    delivered.extend(read_feed(&f.service, cursor, 4 - delivered.len()).await);
    let ids: Vec<_> = delivered.iter().map(|e| e.event_id).collect();
    assert!(
        ids.contains(&slow.event_id),
        "the slow event was skipped: {delivered:#?}"
    );
    assert_eq!(ids[0], slow.event_id, "the slow event committed first");
    assert!(fast_events.iter().all(|e| e.position > slow.position));
    assert!(delivered.windows(2).all(|w| w[0].position < w[1].position));
    let last = delivered.last().unwrap().cursor();
    assert!(f.service.events_after(last, 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_subscription_wakes_on_commit_and_resumes_from_a_cursor() {
    let f = Fixture::new().await;
    let mut subscription = f.service.subscribe(FeedCursor::START);
    let waiting = tokio::spawn(async move {
        let first = subscription.next().await.unwrap();
        (first, subscription)
    });
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.emit(transfer("w-1", 1)).unwrap();
    uow.emit(transfer("w-1", 2)).unwrap();
    let committed = uow.commit().await.unwrap();
    let started = Instant::now();
    let (first, mut subscription) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the subscription woke")
        .unwrap();
    assert_eq!(first, committed.events[0]);
    // Woken by NOTIFY, not by the 5 s idle poll.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(subscription.next().await.unwrap(), committed.events[1]);

    let mut resumed = f.service.subscribe(first.cursor());
    assert_eq!(resumed.next().await.unwrap(), committed.events[1]);
}
