//! Who may pull the lever: a bearer token read from `api.admin_token_file`. Without a token
//! file the admin endpoints are disabled (403): an unauthenticated switch to a worse model is
//! not a safe default. Tokens are compared in constant time, and failed authentications are
//! rate-limited per client address (429 after a burst: `admin/auth_failures.rs`).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::auth_failures::{FailedAuthentications, retry_after_secs};
use crate::http::ApiError;

/// How admin requests are authenticated.
#[derive(Clone)]
pub enum AdminAuth {
    /// Admin endpoints answer 403.
    Disabled,
    /// SHA-256 of the expected token: comparing fixed-length digests in constant time leaks
    /// neither the token's bytes nor its length. With the failed attempts per client address.
    Token { digest: [u8; 32], failures: Arc<FailedAuthentications> },
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAuth::Disabled => f.write_str("AdminAuth::Disabled"),
            AdminAuth::Token { .. } => f.write_str("AdminAuth::Token(<redacted>)"),
        }
    }
}

impl AdminAuth {
    pub fn token(token: &str) -> Self {
        AdminAuth::Token { digest: Sha256::digest(token.as_bytes()).into(), failures: Arc::default() }
    }

    /// Reads the token from `path` (surrounding whitespace ignored; Kubernetes secrets often
    /// end with a newline). An empty file is an error, not an open door.
    pub fn from_file(path: Option<&str>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(AdminAuth::Disabled);
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read admin token file {path}: {e}"))?;
        let token = text.trim();
        anyhow::ensure!(!token.is_empty(), "admin token file {path} is empty");
        Ok(AdminAuth::token(token))
    }

    /// Accepts `Authorization: Bearer <token>` with the expected token, and nothing else, from
    /// `client` (`None`: unknown, all such requests share one bucket). A client address that
    /// failed too often gets [`ApiError::TooManyAttempts`] before its token is looked at.
    pub fn check(&self, client: Option<IpAddr>, authorization: Option<&str>) -> Result<(), ApiError> {
        let AdminAuth::Token { digest, failures } = self else {
            return Err(ApiError::Forbidden {
                reason: "admin endpoints are disabled: set api.admin_token_file (or SPIKEWATCH_ADMIN_TOKEN_FILE)",
            });
        };
        let client = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let too_many = |wait| ApiError::TooManyAttempts { retry_after_secs: retry_after_secs(wait) };
        failures.admit(client).map_err(too_many)?;
        let refused = match authorization {
            None => "missing Authorization: Bearer <token> header",
            Some(value) => match value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
                None => "Authorization must use the Bearer scheme",
                Some(token) => {
                    let given: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
                    if bool::from(given.ct_eq(digest)) {
                        return Ok(());
                    }
                    "invalid bearer token"
                }
            },
        };
        failures.failed(client).map_err(too_many)?;
        Err(ApiError::Unauthorized { reason: refused })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_check() {
        let auth = AdminAuth::token("s3cret");
        assert!(auth.check(None, Some("Bearer s3cret")).is_ok());
        assert!(matches!(auth.check(None, Some("Bearer s3cre")), Err(ApiError::Unauthorized { .. })));
        assert!(matches!(auth.check(None, Some("Basic s3cret")), Err(ApiError::Unauthorized { .. })));
        assert!(matches!(auth.check(None, None), Err(ApiError::Unauthorized { .. })));
        assert!(matches!(AdminAuth::Disabled.check(None, Some("Bearer s3cret")), Err(ApiError::Forbidden { .. })));
    }

    #[test]
    fn a_client_that_failed_too_often_is_refused_even_with_the_right_token() {
        let auth = AdminAuth::token("s3cret");
        let attacker = Some(IpAddr::from([192, 0, 2, 1]));
        let operator = Some(IpAddr::from([192, 0, 2, 2]));
        let statuses: Vec<u16> =
            (0..30).map(|_| auth.check(attacker, Some("Bearer guess")).unwrap_err().status().as_u16()).collect();
        assert_eq!(statuses.iter().filter(|&&s| s == 401).count(), 10, "{statuses:?}");
        assert!(statuses[10..].iter().all(|&s| s == 429), "{statuses:?}");
        let refused = auth.check(attacker, Some("Bearer s3cret")).unwrap_err();
        assert!(matches!(refused, ApiError::TooManyAttempts { retry_after_secs: 1..=6 }), "{refused:?}");
        assert!(auth.check(operator, Some("Bearer s3cret")).is_ok(), "other addresses are not affected");
    }

    #[test]
    fn token_file_is_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").unwrap();
        let auth = AdminAuth::from_file(path.to_str()).unwrap();
        assert!(auth.check(None, Some("Bearer abc")).is_ok());
        std::fs::write(&path, " \n").unwrap();
        assert!(AdminAuth::from_file(path.to_str()).is_err());
        assert!(matches!(AdminAuth::from_file(None).unwrap(), AdminAuth::Disabled));
    }
}
