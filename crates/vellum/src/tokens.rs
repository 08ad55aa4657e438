//! Per-service API tokens with scopes (SPEC §7), stored hashed.
//!
//! A token is `vlm_` followed by 64 lowercase hex digits: 32 bytes from a cryptographically
//! secure generator. Only the SHA-256 of the token text is stored, so the database never holds
//! a usable secret; authentication hashes the presented token and looks the hash up in a unique
//! index, so no comparison of secret bytes happens in vellum's code.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_postgres::Row;
use uuid::Uuid;
use vellum_core::ServiceName;

use crate::{Error, Result, Store, sql};

/// The prefix of every token, so that a leaked token is recognisable (secret scanners, logs).
const PREFIX: &str = "vlm_";
/// Random bytes in a token.
const SECRET_BYTES: usize = 32;
/// The longest token description accepted, in characters.
const MAX_DESCRIPTION: usize = 256;

/// What a token allows on its service. Scopes are explicit: none implies another, so a token
/// that may read and write carries both `read` and `write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read entities, history, schemas and events.
    Read,
    /// Write entities (units of work, transactions).
    Write,
    /// Register, activate and delete schema versions.
    Schema,
    /// Administer the service: issue and revoke its tokens.
    Admin,
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Schema, Scope::Admin];

    /// The scope's name: `read`, `write`, `schema` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Schema => "schema",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    /// Parses a scope name, exactly as displayed.
    ///
    /// ```
    /// use vellum::Scope;
    ///
    /// assert_eq!("write".parse::<Scope>()?, Scope::Write);
    /// let err = "owner".parse::<Scope>().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"invalid scope "owner": expected one of read, write, schema, admin"#
    /// );
    /// # Ok::<(), vellum::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidInput(vellum_core::Error::InvalidName {
                    kind: "scope",
                    value: s.to_owned(),
                    reason: "expected one of read, write, schema, admin".to_owned(),
                })
            })
    }
}

/// A token just issued by [`Store::issue_token`], with its secret.
///
/// `token` is shown once: only its hash is stored, so it cannot be read back later. `Debug`
/// leaves it out, so the secret does not end up in logs; serializing includes it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedToken {
    /// The token's id, to list and revoke it by.
    pub token_id: Uuid,
    /// The service it gives access to.
    pub service: ServiceName,
    /// What it allows, sorted.
    pub scopes: Vec<Scope>,
    /// What the token is for, as given when it was issued.
    pub description: Option<String>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// The secret bearer token: `vlm_` and 64 hex digits.
    pub token: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token_id", &self.token_id)
            .field("service", &self.service)
            .field("scopes", &self.scopes)
            .field("description", &self.description)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A live token without its secret, as returned by [`Store::authenticate`] and
/// [`Store::tokens`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    /// The token's id.
    pub token_id: Uuid,
    /// The service it gives access to.
    pub service: ServiceName,
    /// What it allows, sorted.
    pub scopes: Vec<Scope>,
    /// What the token is for.
    pub description: Option<String>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
}

impl TokenInfo {
    /// Whether the token allows `scope` on `service`: it must be a token of that very service,
    /// and carry that very scope (`admin` does not imply the others).
    ///
    /// ```
    /// # use vellum::{Scope, ServiceName, TokenInfo};
    /// # fn check(token: &TokenInfo) -> vellum::Result<()> {
    /// let orders = ServiceName::new("orders")?;
    /// if !token.allows(&orders, Scope::Write) {
    ///     // answer 403
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn allows(&self, service: &ServiceName, scope: Scope) -> bool {
        self.service == *service && self.scopes.contains(&scope)
    }

    fn from_row(row: &Row) -> Result<TokenInfo> {
        let service = ServiceName::new(row.try_get::<_, String>(1)?)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let scopes = row
            .try_get::<_, Vec<String>>(2)?
            .iter()
            .map(|s| s.parse().map_err(|e: Error| Error::Corrupt(e.to_string())))
            .collect::<Result<Vec<Scope>>>()?;
        Ok(TokenInfo {
            token_id: row.try_get(0)?,
            service,
            scopes,
            description: row.try_get(3)?,
            created_at: row.try_get(4)?,
        })
    }
}

/// The columns [`TokenInfo::from_row`] reads, in order.
const COLUMNS: &str = "t.token_id, t.service, t.scopes, t.description, t.created_at";

impl Store {
    /// Issues a token for `service` with `scopes`, and returns it with its secret, which is
    /// shown only this once.
    ///
    /// Scopes are sorted and deduplicated. Fails with [`Error::NotFound`] if the service does
    /// not exist, and with [`Error::NotAllowed`] if `scopes` is empty or the description is
    /// longer than 256 characters or containing U+0000.
    pub async fn issue_token(
        &self,
        service: &ServiceName,
        scopes: &[Scope],
        description: Option<&str>,
    ) -> Result<IssuedToken> {
        let mut scopes = scopes.to_vec();
        scopes.sort_unstable();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(Error::NotAllowed(
                "a token needs at least one scope (read, write, schema, admin)".into(),
            ));
        }
        if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION || d.contains('\0')) {
            return Err(Error::NotAllowed(format!(
                "a token description is at most {MAX_DESCRIPTION} characters, without U+0000"
            )));
        }
        let token = generate();
        let token_id = Uuid::now_v7();
        let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO vellum.api_tokens (token_id, service, scopes, token_hash, description)
                 VALUES ($1, $2, $3, $4, $5) RETURNING created_at",
                &[
                    &token_id,
                    &service.as_str(),
                    &names,
                    &hash(&token).as_slice(),
                    &description,
                ],
            )
            .await
            .map_err(|err| match sql::db_error(&err) {
                Some(("23503", _)) => Error::NotFound {
                    what: format!("service {service}"),
                },
                _ => err.into(),
            })?;
        Ok(IssuedToken {
            token_id,
            service: service.clone(),
            scopes,
            description: description.map(str::to_owned),
            created_at: row.try_get(0)?,
            token,
        })
    }

    /// The live token whose secret is `token`, or `None` if it is unknown, revoked or not even
    /// shaped like a token. Never an error for a bad token: errors are the database's.
    ///
    /// A malformed token is refused without a database round trip. Check what the token allows
    /// with [`TokenInfo::allows`].
    pub async fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>> {
        if !well_formed(token) {
            return Ok(None);
        }
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM vellum.api_tokens t
                     WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
                ),
                &[&hash(token).as_slice()],
            )
            .await?;
        row.as_ref().map(TokenInfo::from_row).transpose()
    }

    /// Revokes a token of `service`; it stops authenticating at once. Returns whether a live
    /// token was revoked (`false` for an unknown, already revoked or other service's token).
    pub async fn revoke_token(&self, service: &ServiceName, token_id: Uuid) -> Result<bool> {
        let client = self.client().await?;
        let revoked = client
            .execute(
                "UPDATE vellum.api_tokens SET revoked_at = clock_timestamp()
                 WHERE token_id = $1 AND service = $2 AND revoked_at IS NULL",
                &[&token_id, &service.as_str()],
            )
            .await?;
        Ok(revoked == 1)
    }

    /// The live (not revoked) tokens of `service`, oldest first, without their secrets;
    /// [`Error::NotFound`] if the service does not exist.
    pub async fn tokens(&self, service: &ServiceName) -> Result<Vec<TokenInfo>> {
        let client = self.client().await?;
        // One round trip that also tells an unknown service from one without tokens.
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM vellum.services s
                     LEFT JOIN vellum.api_tokens t ON t.service = s.name AND t.revoked_at IS NULL
                     WHERE s.name = $1 ORDER BY t.created_at, t.token_id"
                ),
                &[&service.as_str()],
            )
            .await?;
        if rows.is_empty() {
            return Err(Error::NotFound {
                what: format!("service {service}"),
            });
        }
        rows.iter()
            .filter(|row| matches!(row.try_get::<_, Option<Uuid>>(0), Ok(Some(_))))
            .map(TokenInfo::from_row)
            .collect()
    }
}

/// A fresh token: the prefix and 32 random bytes in lowercase hex.
fn generate() -> String {
    let mut secret = [0u8; SECRET_BYTES];
    // The thread-local generator is a CSPRNG seeded and periodically reseeded from the OS.
    rand::rng().fill_bytes(&mut secret);
    format!("{PREFIX}{}", hex::encode(secret))
}

/// Whether `token` has the shape of a token: prefix, then exactly 64 lowercase hex digits.
fn well_formed(token: &str) -> bool {
    token.strip_prefix(PREFIX).is_some_and(|secret| {
        secret.len() == SECRET_BYTES * 2
            && secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// What is stored for a token: the SHA-256 of its whole text.
fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let (a, b) = (generate(), generate());
        assert!(well_formed(&a), "{a}");
        assert_eq!(a.len(), 4 + 64);
        assert_ne!(a, b);
    }

    #[test]
    fn only_the_exact_token_shape_is_well_formed() {
        let good = format!("vlm_{}", "0123456789abcdef".repeat(4));
        assert!(well_formed(&good));
        for bad in [
            String::new(),
            "vlm_".into(),
            good.to_uppercase(),
            good.replace("vlm_", "vlx_"),
            good[..good.len() - 1].into(),
            format!("{good}0"),
            good.replace('a', "g"),
            good.replace('a', "A"),
            format!(" {}", &good[1..]),
            good.replacen('0', "é", 1),
        ] {
            assert!(!well_formed(&bad), "{bad:?}");
        }
    }

    #[test]
    fn the_hash_is_sha256_of_the_token_text() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hex::encode(hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn scopes_parse_display_and_serialize_lowercase() {
        for scope in Scope::ALL {
            assert_eq!(scope.to_string().parse::<Scope>().unwrap(), scope);
            assert_eq!(
                serde_json::to_value(scope).unwrap(),
                serde_json::Value::String(scope.to_string())
            );
        }
        assert!("Read".parse::<Scope>().is_err());
        assert!(serde_json::from_str::<Scope>(r#""owner""#).is_err());
    }
}
