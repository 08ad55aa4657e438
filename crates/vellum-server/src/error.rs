//! Errors as RFC 9457 problem details (`application/problem+json`).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;
use vellum::{Change, ChangeClass, CompatibilityMode, FailingDocument, Version, Violation};

/// The media type of every error response.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// An error response: a stable `type` per kind of error, a human `detail`, and for invalid
/// documents every violation with its JSON pointer. Never carries SQL or internal detail.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Problem {
    /// Stable identifier of the kind of error, e.g. `urn:vellum:problem:not-found`.
    #[serde(rename = "type")]
    kind: String,
    /// Short summary of the kind of error.
    title: &'static str,
    /// The HTTP status code.
    status: u16,
    /// What went wrong in this request.
    detail: String,
    /// For invalid documents: every violation, with its JSON pointer into the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    violations: Option<Vec<Violation>>,
    /// For an incompatible schema version: the registered version it was compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    against: Option<Version>,
    /// For an incompatible schema version: the compatibility mode of the schema id.
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<CompatibilityMode>,
    /// For an incompatible schema version: the bump its number declares from `against`.
    #[serde(skip_serializing_if = "Option::is_none")]
    declared: Option<ChangeClass>,
    /// For an incompatible schema version: the class of the change detected from `against`.
    #[serde(skip_serializing_if = "Option::is_none")]
    detected: Option<ChangeClass>,
    /// For an incompatible schema version: every change from `against`, with its class.
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<Vec<Change>>,
    /// For `/transactions`: the index of the operation that failed (in `operations`).
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<usize>,
    /// For `/transactions`: the index of the event that was refused (in `events`).
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<usize>,
    /// For a refused migration: up to 20 current documents it fails on, each with its
    /// violations (keyword `migration` when an operation could not be applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    samples: Option<Vec<FailingDocument>>,
}

/// Why a schema version was refused as incompatible, for the problem body.
#[derive(Debug)]
struct Refusal {
    against: Version,
    mode: CompatibilityMode,
    declared: ChangeClass,
    detected: ChangeClass,
    changes: Vec<Change>,
}

/// An error a handler returns; turned into a problem+json response.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    violations: Option<Box<[Violation]>>,
    refusal: Option<Box<Refusal>>,
    /// Which operation or event of a transaction request failed.
    culprit: Option<Culprit>,
    /// Boxed, like `refusal`: rare, and every handler's `Result` carries an `ApiError`.
    samples: Option<Box<[FailingDocument]>>,
}

/// The part of a `/transactions` request an error is about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Culprit {
    Operation(usize),
    Event(usize),
}

impl ApiError {
    fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            violations: None,
            refusal: None,
            culprit: None,
            samples: None,
        }
    }

    /// Names the operation or event of a transaction request this error is about.
    pub(crate) fn at(mut self, culprit: Culprit) -> Self {
        self.detail = match culprit {
            Culprit::Operation(i) => format!("operations[{i}]: {}", self.detail),
            Culprit::Event(i) => format!("events[{i}]: {}", self.detail),
        };
        self.culprit = Some(culprit);
        self
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    pub(crate) fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed for this token",
            detail,
        )
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub(crate) fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
            detail,
        )
    }

    pub(crate) fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }

    pub(crate) fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Version precondition failed",
            detail,
        )
    }

    /// A well-formed transaction request that cannot be committed as it is (empty, too large).
    pub(crate) fn invalid_transaction(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-transaction",
            "Invalid transaction",
            detail,
        )
    }

    pub(crate) fn timeout(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "Request timed out",
            detail,
        )
    }

    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
    }

    /// A version conflict, answered 412 when the client sent `If-Match` and 409 otherwise.
    pub(crate) fn from_store(err: vellum::Error, if_match: bool) -> Self {
        match err {
            vellum::Error::VersionConflict { .. } if if_match => {
                Self::precondition_failed(err.to_string())
            }
            err => err.into(),
        }
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<vellum::Error> for ApiError {
    fn from(err: vellum::Error) -> Self {
        use vellum::Error as E;
        let detail = err.to_string();
        match err {
            E::NotFound { .. } => Self::not_found(detail),
            E::VersionConflict { .. } => Self::new(
                StatusCode::CONFLICT,
                "version-conflict",
                "Version conflict",
                detail,
            ),
            E::AlreadyExists { .. } => Self::new(
                StatusCode::CONFLICT,
                "already-exists",
                "Already exists",
                detail,
            ),
            E::UniqueViolation { .. } => Self::new(
                StatusCode::CONFLICT,
                "unique-violation",
                "Unique value already used",
                detail,
            ),
            E::InvalidReference { pointer, .. } => Self {
                violations: Some(Box::new([vellum::Violation {
                    pointer,
                    keyword: "x-vellum-ref".into(),
                    message: "references an entity that does not exist or is deleted".into(),
                }])),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-reference",
                    "Reference to a missing entity",
                    detail,
                )
            },
            E::InvalidQuery { .. } => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                "Invalid query",
                detail,
            ),
            E::NotAllowed(_) | E::UnitOfWorkFailed { .. } => Self::new(
                StatusCode::CONFLICT,
                "not-allowed",
                "Not allowed in the current state",
                detail,
            ),
            E::Immutable(_) => Self::new(
                StatusCode::CONFLICT,
                "immutable",
                "History is immutable",
                detail,
            ),
            E::Validation { violations, .. } => Self {
                violations: Some(violations.into()),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation-failed",
                    "Document does not match its schema",
                    detail,
                )
            },
            E::IncompatibleSchema {
                against,
                mode,
                declared,
                detected,
                changes,
                ..
            } => Self {
                refusal: Some(Box::new(Refusal {
                    against,
                    mode,
                    declared: declared.into(),
                    detected,
                    changes,
                })),
                ..Self::new(
                    StatusCode::CONFLICT,
                    "incompatible-schema",
                    "Incompatible schema version",
                    detail,
                )
            },
            E::InvalidMigration { samples, .. } => Self {
                samples: Some(samples.into_boxed_slice()),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-migration",
                    "Migration refused",
                    detail,
                )
            },
            E::NotConvertible { violations, .. } => Self {
                violations: (!violations.is_empty()).then(|| violations.into()),
                ..Self::new(
                    StatusCode::CONFLICT,
                    "not-convertible",
                    "Not convertible to the schema version asked for",
                    detail,
                )
            },
            E::InvalidInput(vellum_core_err) => invalid_input(vellum_core_err),
            E::InvalidEvent(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-event",
                "Invalid event",
                detail,
            ),
            E::InvalidSchema(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-schema",
                "Invalid schema definition",
                detail,
            ),
            E::Timeout => {
                Self::timeout("the database statement took longer than the configured timeout")
            }
            E::Pool(_) => {
                tracing::error!(error = %detail, "database pool");
                Self::unavailable("the database is not reachable right now; retry later")
            }
            other => {
                // Database and I/O errors may carry SQL or paths: log them, answer generically.
                tracing::error!(error = %other, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "an internal error occurred; it was logged",
                )
            }
        }
    }
}

/// Malformed names, versions and schema definitions from `vellum-core`.
fn invalid_input(err: vellum::CoreError) -> ApiError {
    let detail = err.to_string();
    match err {
        vellum::CoreError::InvalidSchema { problems } => ApiError {
            violations: Some(problems.into()),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-schema",
                "Invalid schema definition",
                detail,
            )
        },
        vellum::CoreError::InvalidDocument { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "Document does not match its schema",
            detail,
        ),
        _ => ApiError::bad_request(detail),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let refusal = self.refusal.map(|r| *r);
        let problem = Problem {
            kind: format!("urn:vellum:problem:{}", self.slug),
            title: self.title,
            status: self.status.as_u16(),
            detail: self.detail,
            violations: self.violations.map(Vec::from),
            against: refusal.as_ref().map(|r| r.against),
            mode: refusal.as_ref().map(|r| r.mode),
            declared: refusal.as_ref().map(|r| r.declared),
            detected: refusal.as_ref().map(|r| r.detected),
            changes: refusal.map(|r| r.changes),
            operation: match self.culprit {
                Some(Culprit::Operation(i)) => Some(i),
                _ => None,
            },
            event: match self.culprit {
                Some(Culprit::Event(i)) => Some(i),
                _ => None,
            },
            samples: self.samples.map(Vec::from),
        };
        let mut response = (self.status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vellum\""),
            );
        }
        response
    }
}
