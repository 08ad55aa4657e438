//! Interactive API documentation: Swagger UI at `/docs`, reading `/openapi.json`.
//!
//! Swagger UI is vendored in `assets/swagger-ui/` (see the README there for its origin and how
//! to update it) and compiled into the binary, so the page works offline. The page's script is
//! in `init.js`, not inline, so the page is sent with a strict Content-Security-Policy.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:";

/// For the vendored files: the page requests them with `?v=` their version, so browsers fetch
/// new files after an update.
const CACHE_FOR_A_YEAR: &str = "public, max-age=31536000, immutable";
/// For our page and initializer, which change with the server and are small.
const REVALIDATE: &str = "no-cache";

const INDEX_HTML: &str = include_str!("../assets/docs/index.html");

/// A file served under `/docs/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    cache_control: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 3] = [
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        cache_control: CACHE_FOR_A_YEAR,
        body: include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        cache_control: CACHE_FOR_A_YEAR,
        body: include_bytes!("../assets/swagger-ui/swagger-ui.css"),
    },
    Asset {
        name: "init.js",
        content_type: "text/javascript; charset=utf-8",
        cache_control: REVALIDATE,
        body: include_bytes!("../assets/docs/init.js"),
    },
];

/// GET /docs (the page) and GET /docs/{file} (its assets); 404 for anything else.
/// `/docs/` redirects to `/docs`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/docs", get(page))
        .route("/docs/", get(|| async { Redirect::permanent("/docs") }))
        .route("/docs/{file}", get(asset))
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, REVALIDATE),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let headers: [(HeaderName, &str); 3] = [
        (header::CONTENT_TYPE, asset.content_type),
        (header::CACHE_CONTROL, asset.cache_control),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_response(uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = routes::<()>().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes().to_vec();
        (parts.status, parts.headers, body)
    }

    #[tokio::test]
    async fn page_is_html_under_a_strict_csp_and_loads_the_assets() {
        let (status, headers, body) = get_response("/docs").await;
        let html = String::from_utf8(body).unwrap();

        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
        );
        assert!(html.contains("<title>vellum API</title>"));
        assert!(html.contains(r#"href="/docs/swagger-ui.css?v="#));
        assert!(html.contains(r#"src="/docs/swagger-ui-bundle.js?v="#));
        assert!(html.contains(r#"src="/docs/init.js""#));
        assert!(
            !html.contains("<script>"),
            "an inline script would be blocked by the CSP"
        );
    }

    #[tokio::test]
    async fn initializer_points_swagger_ui_at_the_openapi_document() {
        let (_, _, body) = get_response("/docs/init.js").await;
        let script = String::from_utf8(body).unwrap();

        assert!(script.contains(r#"url: "/openapi.json""#));
        assert!(script.contains(r##"dom_id: "#swagger-ui""##));
    }

    #[tokio::test]
    async fn each_asset_is_served_with_its_content_type_and_caching() {
        for (uri, content_type, cache_control) in [
            (
                "/docs/swagger-ui-bundle.js",
                "text/javascript; charset=utf-8",
                CACHE_FOR_A_YEAR,
            ),
            (
                "/docs/swagger-ui.css",
                "text/css; charset=utf-8",
                CACHE_FOR_A_YEAR,
            ),
            (
                "/docs/init.js",
                "text/javascript; charset=utf-8",
                REVALIDATE,
            ),
        ] {
            let (status, headers, body) = get_response(uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{uri}");
            assert_eq!(headers[header::CACHE_CONTROL], cache_control, "{uri}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
            assert!(body.len() > 100, "{uri} is {} bytes", body.len());
        }
    }

    #[tokio::test]
    async fn anything_else_under_docs_is_not_found() {
        for uri in [
            "/docs/swagger-ui-bundle.js.map",
            "/docs/LICENSE",
            "/docs/index.html",
            "/docs/init.js/x",
            "/docs/..%2FCargo.toml",
        ] {
            let (status, _, _) = get_response(uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        }
    }

    #[tokio::test]
    async fn trailing_slash_redirects_to_the_page() {
        let (status, headers, _) = get_response("/docs/").await;

        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(headers[header::LOCATION], "/docs");
    }

    #[test]
    fn page_requests_the_vendored_version() {
        let bundle = ASSETS
            .iter()
            .find(|asset| asset.name == "swagger-ui-bundle.js")
            .map(|asset| std::str::from_utf8(asset.body).unwrap())
            .unwrap();
        let (_, after) = bundle.split_once(r#"PACKAGE_VERSION:""#).unwrap();
        let (version, _) = after.split_once('"').unwrap();

        assert_eq!(version.split('.').count(), 3, "not a version: {version}");
        assert_eq!(
            INDEX_HTML.matches(&format!("?v={version}\"")).count(),
            2,
            "assets/docs/index.html must request both vendored files with ?v={version}"
        );
    }
}
