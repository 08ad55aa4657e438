//! The OpenAPI 3.1 description of the API: metadata and security; operations come from the
//! handlers' annotations.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::error::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vellum",
        description = "A document store with strict schema governance on PostgreSQL: versioned \
                       JSON Schemas, immutable entity versions, time travel, audit.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "services", description = "Provisioning and tokens"),
        (name = "schemas", description = "The schema repository of a service"),
        (name = "entities", description = "Documents and their immutable versions"),
        (name = "events", description = "Transactions with events, the outbox feed and stream"),
        (name = "operations", description = "Probes and metrics"),
    )
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token, or a service token from POST /v1/{service}/tokens",
                    ))
                    .build(),
            ),
        );
    }
}
