//! Where a run happens: a fresh database, dropped at the end; or, on a PostgreSQL where the
//! user may not create databases, a service with a unique name in the given one.

use tokio_postgres::{Client, Config, NoTls};
use vellum::ServiceName;

use crate::Result;

/// The prefix of every database the harness creates; only these are ever dropped.
const PREFIX: &str = "vellum_bench_";

/// The database of one run and the service in it.
#[derive(Debug)]
pub(crate) struct BenchDatabase {
    admin: Config,
    /// Where vellum and the baseline connect.
    pub(crate) config: Config,
    /// The database created for this run, to drop at the end.
    created: Option<String>,
    /// The service every workload uses.
    pub(crate) service: ServiceName,
}

impl BenchDatabase {
    pub(crate) async fn open(admin: &Config) -> Result<Self> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{PREFIX}{suffix}");
        let client = connect(admin).await?;
        match client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
        {
            Ok(()) => {
                eprintln!("benchmark database {name} (dropped at the end)");
                let mut config = admin.clone();
                config.dbname(&name);
                Ok(Self {
                    admin: admin.clone(),
                    config,
                    created: Some(name),
                    service: ServiceName::new("bench").expect("a valid service name"),
                })
            }
            // insufficient_privilege: no CREATEDB. A service of its own keeps the run apart
            // from the database's other data, but it stays behind: services are never dropped.
            Err(err) if err.code().map(|c| c.code()) == Some("42501") => {
                let service = ServiceName::new(format!("bench_{}", &suffix[..16]))
                    .map_err(vellum::Error::from)?;
                eprintln!(
                    "cannot create a database ({err}); using a new service {service} in the \
                     given database instead (it stays behind)"
                );
                Ok(Self {
                    admin: admin.clone(),
                    config: admin.clone(),
                    created: None,
                    service,
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Drops the database this run created, disconnecting whoever is still on it.
    pub(crate) async fn close(self) -> Result<()> {
        let Some(name) = self.created else {
            return Ok(());
        };
        debug_assert!(name.starts_with(PREFIX));
        let client = connect(&self.admin).await?;
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await?;
        Ok(())
    }
}

/// A plain connection, its connection task spawned.
pub(crate) async fn connect(config: &Config) -> Result<Client> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            eprintln!("benchmark PostgreSQL connection ended: {err}");
        }
    });
    Ok(client)
}
