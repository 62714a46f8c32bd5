//! Bearer-token authentication and what each role may do.
//!
//! Tokens are random 32-byte strings shown once; the database keeps only their SHA-256.
//! No token is 401, a role without the right is 403, and another organisation's object
//! is 404 (the handlers look objects up within the caller's organisation only), so a
//! caller cannot even learn that someone else's flight exists.

use crate::error::{ApiError, ServerError};
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use base64::Engine as _;
use besikta_store::{Principal, Role};
use sha2::{Digest, Sha256};

/// The actions a role may be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Create flights, upload photos, start processing.
    Upload,
    /// See a flight's state and progress (crews watch their uploads being processed).
    FlightStatus,
    /// Read findings, maps and photos.
    Read,
    /// Download exports and set work-order status.
    Plan,
    /// Confirm, reject or correct findings.
    Review,
    /// Upload registers and create tokens.
    Admin,
}

/// Whether `role` has `right`; admin has every right in its organisation.
pub fn allows(role: Role, right: Right) -> bool {
    match role {
        Role::Admin => true,
        Role::Crew => matches!(right, Right::Upload | Right::FlightStatus),
        Role::Viewer => matches!(right, Right::FlightStatus | Right::Read),
        Role::Planner => matches!(
            right,
            Right::FlightStatus | Right::Read | Right::Plan | Right::Review
        ),
    }
}

/// The caller, found by its bearer token.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl Auth {
    pub fn org_id(&self) -> i64 {
        self.0.org.id
    }

    /// 403 unless the caller's role has `right`.
    pub fn require(&self, right: Right) -> Result<(), ApiError> {
        if allows(self.0.role, right) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("the {} role may not do this", self.0.role.as_str()),
            ))
        }
    }
}

/// SHA-256 of a token, lower-case hex: how tokens are stored.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token (`bsk_` and 43 URL-safe characters).
pub fn new_token() -> Result<String, ServerError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ServerError::Random(e.to_string()))?;
    Ok(format!(
        "bsk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m.to_string());
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("send the API token as 'Authorization: Bearer TOKEN'"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer TOKEN'"))?;
        let principal = state
            .store()
            .principal(&token_hash(token))?
            .ok_or_else(|| unauthorized("unknown API token"))?;
        Ok(Auth(principal))
    }
}
