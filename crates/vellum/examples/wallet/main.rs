//! The wallet example: two wallets, a few transfers, one refused overdraft, and the events the
//! transfers committed, read back from the outbox feed.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@localhost/postgres cargo run -p vellum --example wallet
//! ```
//!
//! Without `DATABASE_URL` it uses an embedded PostgreSQL cluster in `target/wallet-example`.

mod transfer;

use vellum::{EmbeddedCluster, FeedCursor, ServiceName, Store, StoreOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = match std::env::var("DATABASE_URL") {
        Ok(url) => Store::connect(url.parse()?, StoreOptions::default()).await?,
        Err(_) => {
            let cluster = EmbeddedCluster::new("target/wallet-example")
                .start()
                .await?;
            Store::open_embedded(cluster, StoreOptions::default()).await?
        }
    };
    let name = ServiceName::new("wallets")?;
    if store.service(&name).await.is_err() {
        store.create_service(&name).await?;
    }
    let service = store.service(&name).await?;
    if service.schemas().list().await?.is_empty() {
        transfer::register_wallet_schema(&service).await?;
    }
    let start = service
        .events_after(FeedCursor::START, 1000)
        .await?
        .last()
        .map_or(FeedCursor::START, |e| e.cursor());

    let ann = transfer::open_wallet(&service, "ann", 100).await?;
    let bob = transfer::open_wallet(&service, "bob", 20).await?;
    for (from, to, amount) in [(ann, bob, 30), (bob, ann, 5), (bob, ann, 500)] {
        match transfer::transfer(&service, from, to, amount).await {
            Ok((id, committed)) => println!(
                "transfer {id}: {amount} cents, event at position {}",
                committed.events[0].position
            ),
            Err(transfer::TransferError::InsufficientFunds) => {
                println!("transfer of {amount} cents refused: insufficient funds")
            }
            Err(transfer::TransferError::Store(err)) => return Err(err.into()),
        }
    }
    let wallet = transfer::wallet();
    for entity in service.get_many(&wallet, &[ann, bob]).await? {
        println!(
            "wallet {}: {}",
            entity.payload["owner"], entity.payload["balance"]
        );
    }
    for event in service.events_after(start, 1000).await? {
        println!(
            "{}",
            serde_json::to_string(&event.cloud_event(service.name()))?
        );
    }
    Ok(())
}
