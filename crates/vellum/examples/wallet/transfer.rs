//! The wallet domain: a wallet is an entity whose schema forbids a negative balance; a transfer
//! debits one wallet, credits another and emits `TransferCompleted`, in one unit of work.

use serde_json::{Value, json};
use uuid::Uuid;
use vellum::{Committed, Error, Event, SchemaId, Service, Version, WriteOptions};

/// The entity type of wallets.
pub(crate) fn wallet() -> SchemaId {
    SchemaId::new("wallet").expect("a valid schema id")
}

/// Registers the wallet schema: an owner and a balance in cents that can never go below zero,
/// so an overdraft is refused by validation, inside the transfer's unit of work.
pub(crate) async fn register_wallet_schema(service: &Service) -> vellum::Result<()> {
    let definition = json!({
        "type": "object",
        "required": ["owner", "balance"],
        "properties": {
            "owner": {"type": "string", "minLength": 1},
            "balance": {"type": "integer", "minimum": 0}
        },
        "additionalProperties": false
    });
    let version: Version = "1.0.0".parse().expect("a valid version");
    service
        .schemas()
        .register(&wallet(), version, definition, false)
        .await?;
    Ok(())
}

/// Opens a wallet with a starting balance.
pub(crate) async fn open_wallet(
    service: &Service,
    owner: &str,
    balance: i64,
) -> vellum::Result<Uuid> {
    let mut uow = service.begin(owner).await?;
    let staged = uow
        .create(
            &wallet(),
            json!({"owner": owner, "balance": balance}),
            WriteOptions::default(),
        )
        .await?;
    uow.commit().await?;
    Ok(staged.entity_id)
}

/// Why a transfer did not happen; nothing was written.
#[derive(Debug)]
pub(crate) enum TransferError {
    /// The source wallet holds less than the amount.
    InsufficientFunds,
    /// Anything else the store reported.
    Store(Error),
}

/// Moves `amount` cents from one wallet to another and emits `TransferCompleted` (aggregate
/// `transfer`, id = the transfer id), all or nothing. Both wallets are locked, in id order so
/// that two opposite transfers cannot deadlock, until the unit of work ends.
pub(crate) async fn transfer(
    service: &Service,
    from: Uuid,
    to: Uuid,
    amount: i64,
) -> Result<(Uuid, Committed), TransferError> {
    let transfer_id = Uuid::now_v7();
    let mut uow = service
        .begin("wallet-transfers")
        .await
        .map_err(TransferError::Store)?;
    let (first, second) = if from < to { (from, to) } else { (to, from) };
    for wallet_id in [first, second] {
        let delta = if wallet_id == from { -amount } else { amount };
        let moved = uow
            .update_with(&wallet(), wallet_id, WriteOptions::default(), |doc| {
                add_to_balance(doc, delta)
            })
            .await;
        match moved {
            Ok(_) => {}
            Err(Error::Validation { .. }) => return Err(TransferError::InsufficientFunds),
            Err(err) => return Err(TransferError::Store(err)),
        }
    }
    uow.emit(Event::new(
        "TransferCompleted",
        "transfer",
        transfer_id.to_string(),
        json!({"transfer_id": transfer_id, "from": from, "to": to, "amount": amount}),
    ))
    .map_err(TransferError::Store)?;
    let committed = uow.commit().await.map_err(TransferError::Store)?;
    Ok((transfer_id, committed))
}

fn add_to_balance(doc: &mut Value, delta: i64) {
    let balance = doc["balance"].as_i64().unwrap_or(0);
    doc["balance"] = json!(balance + delta);
}
