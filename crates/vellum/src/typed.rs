//! Typed access: Rust types as entity types. The JSON Schema of a type is derived with
//! [`schemars`], registered or checked from code, and [`Entities<T>`] reads and writes `T`
//! instead of `serde_json::Value`.
//!
//! ```no_run
//! # async fn demo(service: vellum::Service) -> vellum::Result<()> {
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//! use vellum::{SchemaId, Version, typed::Entities};
//!
//! #[derive(Debug, Serialize, Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Customer {
//!     name: String,
//!     email: Option<String>,
//! }
//!
//! let customers: Entities<Customer> = service.entities(SchemaId::new("customer")?);
//! customers.register(Version::new(1, 0, 0), true).await?;
//!
//! let mut uow = service.begin("alice").await?;
//! let staged = customers
//!     .create(&mut uow, &Customer { name: "ACME".into(), email: None })
//!     .await?;
//! uow.commit().await?;
//! let acme = customers.get(staged.entity_id).await?;
//! assert_eq!(acme.value.name, "ACME");
//! # Ok(())
//! # }
//! ```

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use uuid::Uuid;
use vellum_core::{SchemaId, Version};

use crate::{
    CheckReport, Entity, Error, Result, SchemaVersion, Service, Staged, UnitOfWork, WriteOptions,
    query::Query,
};

/// The JSON Schema (draft 2020-12) of `T`, as [`schemars`] derives it: what
/// [`Entities::register`] registers.
pub fn schema_of<T: JsonSchema>() -> Value {
    schemars::schema_for!(T).to_value()
}

/// One version of an entity, its document decoded as `T`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T> {
    /// The entity.
    pub entity_id: Uuid,
    /// Semantic version of this entity version.
    pub entity_version: Version,
    /// 1, 2, 3… per entity.
    pub revision: i64,
    /// The schema version the document was validated against.
    pub schema_version: Version,
    /// The document.
    pub value: T,
    /// Commit time of the unit of work that wrote this version.
    pub created_at: DateTime<Utc>,
    /// When the entity was soft-deleted at this version.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The unit of work that wrote this version.
    pub uow_id: Uuid,
}

/// One page of a typed query.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage<T> {
    /// The records of this page, in the query's order.
    pub items: Vec<Record<T>>,
    /// Pass it as the query's `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The entities of one type, read and written as `T`. Get one with [`Service::entities`].
///
/// Writes serialize `T` and go through the same validation as any other write, against the
/// registered schema (which need not be `T`'s derived one). Reads decode the stored document
/// into `T`; a document that does not decode (written under another schema version, say) is
/// [`Error::Decode`] naming the entity.
pub struct Entities<T> {
    service: Service,
    schema_id: SchemaId,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Entities<T> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            schema_id: self.schema_id.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Entities<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entities")
            .field("service", &self.service.name)
            .field("schema_id", &self.schema_id)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

impl Service {
    /// The entities of `schema_id`, read and written as `T`.
    pub fn entities<T>(&self, schema_id: SchemaId) -> Entities<T> {
        Entities {
            service: self.clone(),
            schema_id,
            _type: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Entities<T> {
    /// The entity type.
    pub fn schema_id(&self) -> &SchemaId {
        &self.schema_id
    }

    /// Registers `T`'s derived schema ([`schema_of`]) as `version`, with every rule of
    /// [`SchemaRegistry::register`](crate::SchemaRegistry::register): a change from the previous
    /// version must fit the version's bump and the compatibility mode.
    pub async fn register(&self, version: Version, activate: bool) -> Result<SchemaVersion>
    where
        T: JsonSchema,
    {
        self.service
            .schemas()
            .register(&self.schema_id, version, schema_of::<T>(), activate)
            .await
    }

    /// Classifies `T`'s derived schema against the registered versions and checks the active
    /// documents against it, registering nothing: what registering it as `version` would do.
    pub async fn check(&self, version: Version) -> Result<CheckReport>
    where
        T: JsonSchema,
    {
        self.service
            .schemas()
            .check(&self.schema_id, version, &schema_of::<T>())
            .await
    }

    /// Stages a new entity in `uow`.
    pub async fn create(&self, uow: &mut UnitOfWork, value: &T) -> Result<Staged> {
        uow.create(&self.schema_id, encode(value)?, WriteOptions::default())
            .await
    }

    /// Stages a new version of an entity in `uow`; with `expected`, only if it is the current
    /// version (optimistic locking).
    pub async fn update(
        &self,
        uow: &mut UnitOfWork,
        entity_id: Uuid,
        value: &T,
        expected: Option<Version>,
    ) -> Result<Staged> {
        let options = expected.map_or_else(WriteOptions::default, WriteOptions::expect);
        uow.update(&self.schema_id, entity_id, encode(value)?, options)
            .await
    }

    /// The current version of an entity.
    pub async fn get(&self, entity_id: Uuid) -> Result<Record<T>> {
        decode(self.service.get(&self.schema_id, entity_id).await?)
    }

    /// One version of an entity.
    pub async fn get_version(&self, entity_id: Uuid, version: &Version) -> Result<Record<T>> {
        decode(
            self.service
                .get_version(&self.schema_id, entity_id, version)
                .await?,
        )
    }

    /// The entity as it was at `as_of` (see [`Service::get_as_of`]).
    pub async fn get_as_of(&self, entity_id: Uuid, as_of: DateTime<Utc>) -> Result<Record<T>> {
        decode(
            self.service
                .get_as_of(&self.schema_id, entity_id, as_of)
                .await?,
        )
    }

    /// The current versions of many entities, in the order of `entity_ids`.
    pub async fn get_many(&self, entity_ids: &[Uuid]) -> Result<Vec<Record<T>>> {
        self.service
            .get_many(&self.schema_id, entity_ids)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }

    /// Runs a query (see [`Service::query`]).
    pub async fn query(&self, query: &Query) -> Result<RecordPage<T>> {
        let page = self.service.query(&self.schema_id, query).await?;
        Ok(RecordPage {
            items: page.items.into_iter().map(decode).collect::<Result<_>>()?,
            next_cursor: page.next_cursor,
        })
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|err| Error::Encode(err.to_string()))
}

fn decode<T: DeserializeOwned>(entity: Entity) -> Result<Record<T>> {
    let value = serde_json::from_value(entity.payload).map_err(|err| Error::Decode {
        schema_id: entity.schema_id.to_string(),
        entity_id: entity.entity_id,
        entity_version: entity.entity_version,
        message: err.to_string(),
    })?;
    Ok(Record {
        entity_id: entity.entity_id,
        entity_version: entity.entity_version,
        revision: entity.revision,
        schema_version: entity.schema_version,
        value,
        created_at: entity.created_at,
        deleted_at: entity.deleted_at,
        uow_id: entity.uow_id,
    })
}
