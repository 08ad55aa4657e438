//! Provisioning services concurrently: roles and memberships are cluster-wide, catalog rows of
//! one database are shared by its services.

use vellum::{ServiceName, Store, StoreOptions};

use crate::support::TestDb;

#[tokio::test]
async fn one_service_name_provisioned_at_once_in_several_databases_succeeds_everywhere() {
    // A name no earlier run used, so its role does not exist yet and every database races to
    // create it and grant it.
    let name = ServiceName::new(format!(
        "race_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ))
    .unwrap();
    let mut databases = Vec::new();
    for _ in 0..4 {
        databases.push(TestDb::new().await);
    }
    let mut stores = Vec::new();
    for db in &databases {
        stores.push(
            Store::connect(db.config(), StoreOptions::default())
                .await
                .unwrap(),
        );
    }
    let provisioned =
        futures_util::future::join_all(stores.iter().map(|store| store.create_service(&name)))
            .await;
    for result in provisioned {
        assert_eq!(result.unwrap().name, name);
    }
    for store in &stores {
        let service = store.service(&name).await.unwrap();
        // The role works: a unit of work runs under it.
        let mut uow = service.begin("check").await.unwrap();
        uow.raw().query("SELECT 1", &[]).await.unwrap();
    }
}

#[tokio::test]
async fn many_services_provisioned_at_once_in_one_database_all_exist() {
    let db = TestDb::new().await;
    let store = Store::connect(db.config(), StoreOptions::default())
        .await
        .unwrap();
    let names: Vec<ServiceName> = (0..8)
        .map(|n| ServiceName::new(format!("svc{n}")).unwrap())
        .collect();
    let provisioned =
        futures_util::future::join_all(names.iter().map(|name| store.create_service(name))).await;
    for result in provisioned {
        result.unwrap();
    }
    let listed: Vec<ServiceName> = store
        .services()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(listed, names);
}
