//! The wallet example under load: 8 workers transfer concurrently between 5 wallets; the total
//! balance never changes, and every committed transfer has exactly one event, in the outbox and
//! (with NATS) in the JetStream stream the relay fills while they run.

#[path = "../../examples/wallet/transfer.rs"]
mod transfer;

use std::{collections::HashSet, time::Duration};

use rand::Rng;
use vellum::{
    CloudEvent, FeedCursor, OutboxRelay, RelayOptions, ServiceName, Store, StoreOptions, async_nats,
};

use crate::{nats::shared_nats, support::TestDb};

const WALLETS: usize = 5;
const WORKERS: usize = 8;
const TRANSFERS_EACH: usize = 25;
const START_BALANCE: i64 = 100;

#[tokio::test]
async fn concurrent_transfers_keep_the_total_and_each_commit_has_one_event() {
    let db = TestDb::new().await;
    let store = Store::connect(db.config(), StoreOptions::default())
        .await
        .unwrap();
    // A name of its own: its JetStream stream on the shared server is its own too.
    let name = ServiceName::new(format!(
        "w{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ))
    .unwrap();
    store.create_service(&name).await.unwrap();
    let service = store.service(&name).await.unwrap();
    transfer::register_wallet_schema(&service).await.unwrap();
    let mut wallets = Vec::new();
    for n in 0..WALLETS {
        wallets.push(
            transfer::open_wallet(&service, &format!("owner-{n}"), START_BALANCE)
                .await
                .unwrap(),
        );
    }
    let total = START_BALANCE * WALLETS as i64;
    let nats = shared_nats().await;
    let relay = nats.clone().map(|nats| {
        let relay = OutboxRelay::new(service.clone(), nats, RelayOptions::default());
        let status = relay.status();
        let task = tokio::spawn(async move {
            relay.run(std::future::pending::<()>()).await.unwrap();
        });
        (task, status)
    });

    // An auditor sums every balance in one statement (one snapshot) while the workers run.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let auditor = {
        let (service, wallets, mut stopped) = (service.clone(), wallets.clone(), stopped.clone());
        tokio::spawn(async move {
            let mut audits = 0;
            while !*stopped.borrow() {
                let all = service
                    .get_many(&transfer::wallet(), &wallets)
                    .await
                    .unwrap();
                let sum: i64 = all
                    .iter()
                    .map(|w| w.payload["balance"].as_i64().unwrap())
                    .sum();
                assert_eq!(sum, total, "the total changed mid-run");
                assert!(
                    all.iter()
                        .all(|w| w.payload["balance"].as_i64().unwrap() >= 0)
                );
                audits += 1;
                let _ = tokio::time::timeout(Duration::from_millis(5), stopped.changed()).await;
            }
            audits
        })
    };
    drop(stopped);

    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (service, wallets) = (service.clone(), wallets.clone());
            tokio::spawn(async move {
                let (mut committed, mut refused) = (Vec::new(), 0);
                for _ in 0..TRANSFERS_EACH {
                    let (from, to, amount) = {
                        let mut rng = rand::rng();
                        let from = rng.random_range(0..WALLETS);
                        let to = (from + rng.random_range(1..WALLETS)) % WALLETS;
                        (wallets[from], wallets[to], rng.random_range(1..=60))
                    };
                    match transfer::transfer(&service, from, to, amount).await {
                        Ok((id, done)) => {
                            assert_eq!(done.events.len(), 1);
                            committed.push((id, done.events[0].event_id));
                        }
                        Err(transfer::TransferError::InsufficientFunds) => refused += 1,
                        Err(transfer::TransferError::Store(err)) => panic!("transfer: {err}"),
                    }
                }
                (committed, refused)
            })
        })
        .collect();
    let (mut committed, mut refused) = (Vec::new(), 0);
    for worker in workers {
        let (c, r) = worker.await.unwrap();
        committed.extend(c);
        refused += r;
    }
    stop.send(true).unwrap();
    let audits = auditor.await.unwrap();
    assert!(audits > 0);

    let all = service
        .get_many(&transfer::wallet(), &wallets)
        .await
        .unwrap();
    let sum: i64 = all
        .iter()
        .map(|w| w.payload["balance"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, total);
    assert_eq!(committed.len() + refused, WORKERS * TRANSFERS_EACH);
    assert!(!committed.is_empty());

    let events = service.events_after(FeedCursor::START, 1000).await.unwrap();
    let transfers: Vec<String> = events
        .iter()
        .filter(|e| e.event_type == "TransferCompleted")
        .map(|e| e.aggregate_id.clone())
        .collect();
    let unique: HashSet<&String> = transfers.iter().collect();
    assert_eq!(unique.len(), transfers.len(), "a transfer has two events");
    let expected: HashSet<String> = committed.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(
        unique.into_iter().cloned().collect::<HashSet<_>>(),
        expected,
        "exactly the committed transfers have an event"
    );
    eprintln!(
        "wallet test: {} transfers committed, {refused} refused for insufficient funds, {audits} audits of the total",
        committed.len()
    );

    let (Some(nats), Some((task, mut status))) = (nats, relay) else {
        return;
    };
    let last = events.last().unwrap().position;
    let published = tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|s| s.checkpoint == Some(last)),
    )
    .await
    .is_ok();
    assert!(
        published,
        "the relay did not publish everything: {:?}",
        *status.borrow()
    );
    task.abort();
    let jetstream = async_nats::jetstream::new(nats);
    let stream_name = OutboxRelay::stream_name(service.name());
    let stream = jetstream.get_stream(&stream_name).await.unwrap();
    let mut published = Vec::new();
    for sequence in 1..=events.len() as u64 {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let event: CloudEvent = serde_json::from_slice(&message.payload).unwrap();
        published.push(event.subject);
    }
    assert!(
        stream
            .get_raw_message(events.len() as u64 + 1)
            .await
            .is_err(),
        "more messages than events"
    );
    let published: HashSet<String> = published.into_iter().collect();
    assert_eq!(
        published.len(),
        events.len(),
        "a transfer was published twice"
    );
    assert_eq!(
        published, expected,
        "NATS has exactly the committed transfers"
    );
    let _ = jetstream.delete_stream(&stream_name).await;
}
