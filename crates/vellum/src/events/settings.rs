//! A service's event settings.

use crate::{Result, Service};

impl Service {
    /// Whether every entity write also writes an entity change event (`entity.created`,
    /// `entity.updated`, `entity.undeleted`, `entity.deleted`; aggregate type = schema id,
    /// aggregate id = entity id, aggregate version = the entity version written).
    pub async fn change_events(&self) -> Result<bool> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT change_events FROM {}",
            self.idents.fixed("event_settings")
        );
        Ok(client.query_one(&sql, &[]).await?.get(0))
    }

    /// Turns entity change events on or off; units of work that commit afterwards follow it.
    pub async fn set_change_events(&self, on: bool) -> Result<()> {
        let client = self.client().await?;
        let sql = format!(
            "UPDATE {} SET change_events = $1",
            self.idents.fixed("event_settings")
        );
        client.execute(&sql, &[&on]).await?;
        self.store.cache_change_events(self.name.clone(), on);
        Ok(())
    }
}
