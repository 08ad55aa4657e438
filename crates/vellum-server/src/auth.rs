//! Bearer-token authentication and per-service, per-scope authorization.

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vellum::{Scope, ServiceName, TokenInfo};

use crate::{AppState, error::ApiError};

/// The admin token, kept only as its SHA-256 digest so comparisons take the same time whatever
/// the presented token is.
#[derive(Clone)]
pub(crate) struct AdminToken([u8; 32]);

impl AdminToken {
    pub(crate) fn new(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.ct_eq(&presented).into()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Who is calling: the admin, or a service token with its scopes.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    Admin,
    Service(TokenInfo),
}

impl Caller {
    /// Allows the call if the caller may use `scope` on `service`; 403 otherwise.
    pub(crate) fn require(&self, service: &ServiceName, scope: Scope) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Service(token) if token.allows(service, scope) => Ok(()),
            Caller::Service(token) if &token.service != service => {
                Err(ApiError::forbidden(format!(
                    "this token belongs to service {}, not {service}",
                    token.service
                )))
            }
            Caller::Service(_) => Err(ApiError::forbidden(format!(
                "this token lacks the {scope} scope on service {service}"
            ))),
        }
    }

    /// Allows only the admin token.
    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Service(_) => Err(ApiError::forbidden("this operation needs the admin token")),
        }
    }

    /// The actor recorded in the audit trail when the request names none.
    pub(crate) fn label(&self) -> String {
        match self {
            Caller::Admin => "admin".to_string(),
            Caller::Service(token) => format!("token:{}", token.token_id),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("send a token: Authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be: Bearer <token>")
            })?;
        if state.admin_token().matches(token) {
            return Ok(Caller::Admin);
        }
        match state.store().authenticate(token).await? {
            Some(info) => Ok(Caller::Service(info)),
            None => Err(ApiError::unauthorized("unknown or revoked token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_matches_only_itself() {
        let admin = AdminToken::new("vlm_admin_secret");
        assert!(admin.matches("vlm_admin_secret"));
        assert!(!admin.matches("vlm_admin_secreT"));
        assert!(!admin.matches(""));
        assert!(!format!("{admin:?}").contains("secret"));
    }
}
