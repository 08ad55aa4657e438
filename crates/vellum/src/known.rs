//! The latest version this process has seen of recently written or read entities, so an update
//! that names its expected version can be staged without reading the stored row first.
//!
//! Stored versions are immutable, so what an entry says of a version (its revision and schema
//! version) stays true; only whether that version is still the latest can change, and the
//! commit checks that in the statement that supersedes it. An entry is a hint: a wrong one costs
//! a version conflict, never a wrong write.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Mutex,
};

use uuid::Uuid;
use vellum_core::{SchemaId, ServiceName, Version};

/// Entries kept; when full the table starts over, so its memory stays bounded.
const CAPACITY: usize = 8_192;

/// A version of an entity as stored: what an update needs to write the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KnownVersion {
    pub(crate) entity_version: Version,
    pub(crate) revision: i64,
    pub(crate) schema_version: Version,
}

/// Which entity: its service and type (hashed, to keep entries small) and its id. Two types
/// colliding on the hash would at worst make a hint miss or be refused at commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct EntityKey {
    entity_type: u64,
    entity_id: Uuid,
}

impl EntityKey {
    pub(crate) fn new(service: &ServiceName, schema_id: &SchemaId, entity_id: Uuid) -> Self {
        let mut hasher = DefaultHasher::new();
        (service.as_str(), schema_id.as_str()).hash(&mut hasher);
        Self {
            entity_type: hasher.finish(),
            entity_id,
        }
    }
}

/// The table of latest versions seen, shared by a store's clones.
#[derive(Debug, Default)]
pub(crate) struct KnownVersions(Mutex<HashMap<EntityKey, KnownVersion>>);

impl KnownVersions {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<EntityKey, KnownVersion>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest version seen of an entity, if it is `expected`.
    pub(crate) fn get(&self, key: &EntityKey, expected: Version) -> Option<KnownVersion> {
        self.table()
            .get(key)
            .filter(|known| known.entity_version == expected)
            .copied()
    }

    /// Remembers `known` as the latest version of an entity (`None`: it was deleted, or what
    /// this process knew of it proved stale).
    pub(crate) fn set(&self, key: EntityKey, known: Option<KnownVersion>) {
        let mut table = self.table();
        match known {
            Some(known) => {
                if table.len() >= CAPACITY && !table.contains_key(&key) {
                    table.clear();
                }
                table.insert(key, known);
            }
            None => {
                table.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(patch: u32) -> KnownVersion {
        KnownVersion {
            entity_version: Version::new(1, 0, patch),
            revision: i64::from(patch) + 1,
            schema_version: Version::new(1, 0, 0),
        }
    }

    #[test]
    fn answers_only_for_the_expected_version_and_forgets_on_request() {
        let table = KnownVersions::default();
        let service: ServiceName = "shop".parse().unwrap();
        let order: SchemaId = "order".parse().unwrap();
        let key = EntityKey::new(&service, &order, Uuid::now_v7());
        table.set(key, Some(known(3)));
        assert_eq!(table.get(&key, Version::new(1, 0, 3)), Some(known(3)));
        assert_eq!(table.get(&key, Version::new(1, 0, 2)), None);
        let other: SchemaId = "invoice".parse().unwrap();
        let same_id_other_type = EntityKey::new(&service, &other, key.entity_id);
        assert_eq!(table.get(&same_id_other_type, Version::new(1, 0, 3)), None);
        table.set(key, None);
        assert_eq!(table.get(&key, Version::new(1, 0, 3)), None);
    }

    #[test]
    fn stays_bounded() {
        let table = KnownVersions::default();
        let service: ServiceName = "shop".parse().unwrap();
        let order: SchemaId = "order".parse().unwrap();
        for _ in 0..CAPACITY * 2 + 1 {
            table.set(
                EntityKey::new(&service, &order, Uuid::now_v7()),
                Some(known(0)),
            );
        }
        assert!(table.table().len() <= CAPACITY);
    }
}
