//! The one error type of the API: every failure becomes a status code and a JSON body naming the
//! offending field and the reason, and is counted by kind in `volatility_api_errors_total`.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::excerpt;

/// Why a request failed. Client mistakes are 4xx; only the server's own failures are 5xx.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The body is not JSON at all (syntax error, truncated, wrong encoding).
    MalformedJson {
        reason: String,
    },
    /// A required field is absent.
    MissingField {
        field: String,
    },
    /// Features absent from a row that cannot be filled in (strict mode, or no training
    /// medians); `field` is the first of them.
    Incomplete {
        field: String,
        missing: Vec<&'static str>,
        why: &'static str,
    },
    /// A JSON object names the same key twice (`field` is the second one's path): parsers
    /// disagree on which value counts, so a proxy in front may have judged the other one.
    DuplicateKey {
        field: String,
    },
    /// A field has the wrong JSON type (string where a number is expected, `"NaN"`, ...).
    InvalidType {
        field: String,
        reason: String,
    },
    /// A number that is not finite, or too large to be represented.
    NonFinite {
        field: String,
    },
    /// A finite value outside the plausible range of its feature.
    OutOfRange {
        field: String,
        reason: String,
    },
    /// A structurally valid request that cannot be served as asked (empty batch, bad tensor shape...).
    Invalid {
        field: String,
        reason: String,
    },
    /// More rows than `api.max_rows`.
    TooManyRows {
        field: String,
        rows: usize,
        max: usize,
    },
    /// Body larger than `api.max_body_bytes`.
    BodyTooLarge {
        max: usize,
    },
    /// `Content-Type` is not JSON.
    UnsupportedMediaType {
        got: Option<String>,
    },
    /// No route for this path (or an unknown OIP model name).
    NotFound {
        field: &'static str,
        reason: String,
    },
    MethodNotAllowed,
    /// Admin endpoint without a valid bearer token.
    Unauthorized {
        reason: &'static str,
    },
    /// Too many failed admin authentications from this client address; refused before its
    /// token is even compared.
    TooManyAttempts {
        retry_after_secs: u64,
    },
    /// Admin endpoints are disabled (no token file configured).
    Forbidden {
        reason: &'static str,
    },
    /// No model is loaded yet (or any more).
    ModelNotReady {
        reason: String,
    },
    /// The model failed on valid input: a server fault.
    Inference {
        reason: String,
    },
    /// Reloading or switching the model failed; the previous model keeps serving.
    ModelUpdate {
        reason: String,
    },
    /// The request took longer than `api.request_timeout_ms`.
    Timeout {
        after_ms: u64,
    },
    /// The client had not sent its whole body within `api.request_timeout_ms`.
    BodyTimeout {
        after_ms: u64,
    },
    /// Live predictions were asked for, but nothing feeds them to this server.
    PredictionsUnavailable {
        reason: String,
    },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            MalformedJson { .. } | DuplicateKey { .. } | InvalidType { .. } | NonFinite { .. } => {
                StatusCode::BAD_REQUEST
            }
            MissingField { .. } | Incomplete { .. } | OutOfRange { .. } | Invalid { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            TooManyRows { .. } | BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            NotFound { .. } => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Forbidden { .. } => StatusCode::FORBIDDEN,
            ModelNotReady { .. } | Timeout { .. } | PredictionsUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Inference { .. } | ModelUpdate { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Label of `volatility_api_errors_total{error_type}`.
    pub fn kind(&self) -> &'static str {
        use ApiError::*;
        match self {
            MalformedJson { .. } => "malformed_json",
            DuplicateKey { .. } => "duplicate_key",
            MissingField { .. } | Incomplete { .. } => "missing_field",
            InvalidType { .. } => "invalid_type",
            NonFinite { .. } => "non_finite",
            OutOfRange { .. } => "out_of_range",
            Invalid { .. } => "invalid_request",
            TooManyRows { .. } => "too_many_rows",
            BodyTooLarge { .. } => "body_too_large",
            UnsupportedMediaType { .. } => "unsupported_media_type",
            NotFound { .. } => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Unauthorized { .. } => "unauthorized",
            TooManyAttempts { .. } => "too_many_attempts",
            Forbidden { .. } => "forbidden",
            ModelNotReady { .. } => "model_not_ready",
            Inference { .. } => "inference",
            ModelUpdate { .. } => "model_update",
            Timeout { .. } => "timeout",
            BodyTimeout { .. } => "body_timeout",
            PredictionsUnavailable { .. } => "predictions_unavailable",
        }
    }

    /// The request field at fault (`rows[2].price`, `inputs[0].shape`), when there is one.
    pub fn field(&self) -> Option<Cow<'_, str>> {
        use ApiError::*;
        match self {
            MissingField { field }
            | DuplicateKey { field }
            | Incomplete { field, .. }
            | InvalidType { field, .. }
            | NonFinite { field }
            | OutOfRange { field, .. }
            | Invalid { field, .. }
            | TooManyRows { field, .. } => Some(Cow::Borrowed(field)),
            MalformedJson { .. } | BodyTooLarge { .. } | BodyTimeout { .. } => Some(Cow::Borrowed("body")),
            UnsupportedMediaType { .. } => Some(Cow::Borrowed("content-type")),
            NotFound { field, .. } => Some(Cow::Borrowed(field)),
            Unauthorized { .. } | Forbidden { .. } | TooManyAttempts { .. } => Some(Cow::Borrowed("authorization")),
            MethodNotAllowed
            | ModelNotReady { .. }
            | Inference { .. }
            | ModelUpdate { .. }
            | Timeout { .. }
            | PredictionsUnavailable { .. } => None,
        }
    }

    pub fn reason(&self) -> String {
        use ApiError::*;
        match self {
            MalformedJson { reason } => format!("not valid JSON: {reason}"),
            MissingField { .. } => "required field is missing".into(),
            DuplicateKey { .. } => "duplicate key: a JSON object may name each key once".into(),
            Incomplete { missing, why, .. } => format!("missing {}: {why}", missing.join(", ")),
            InvalidType { reason, .. } => reason.clone(),
            NonFinite { .. } => "must be a finite number".into(),
            OutOfRange { reason, .. } | Invalid { reason, .. } => reason.clone(),
            TooManyRows { rows, max, .. } => format!("{rows} rows exceed the limit of {max} per request"),
            BodyTooLarge { max } => format!("body exceeds the limit of {max} bytes"),
            UnsupportedMediaType { got: Some(got) } => format!("expected application/json, got {got}"),
            UnsupportedMediaType { got: None } => "expected application/json, got no Content-Type".into(),
            NotFound { reason, .. } => reason.clone(),
            MethodNotAllowed => "method not allowed on this path".into(),
            Unauthorized { reason } | Forbidden { reason } => (*reason).into(),
            TooManyAttempts { retry_after_secs } => {
                format!("too many failed authentications from this address: retry in {retry_after_secs} s")
            }
            ModelNotReady { reason } => reason.clone(),
            Inference { reason } => format!("inference failed: {reason}"),
            ModelUpdate { reason } => reason.clone(),
            Timeout { after_ms } => format!("request not answered within {after_ms} ms"),
            BodyTimeout { after_ms } => format!("request body not received within {after_ms} ms"),
            PredictionsUnavailable { reason } => reason.clone(),
        }
    }

    /// The body the Open Inference Protocol prescribes: `{"error": "<message>"}`.
    pub fn into_oip(self) -> OipError {
        OipError(self)
    }

    fn finish(self, body: Response) -> Response {
        let mut response = (self.status(), body).into_response();
        if matches!(self, ApiError::Unauthorized { .. }) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::TooManyAttempts { retry_after_secs } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        // The metrics middleware reads the kind to count the error.
        response.extensions_mut().insert(ErrorKind(self.kind()));
        response
    }
}

/// Field paths and reasons as answered: the client's own input quoted by a short prefix only
/// (`http/excerpt.rs`).
impl ApiError {
    fn shown_field(&self) -> Option<String> {
        self.field().map(|field| excerpt::cap(field.into_owned()))
    }

    fn shown_reason(&self) -> String {
        excerpt::shorten(&self.reason())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shown_field() {
            Some(field) => write!(f, "{field}: {}", self.shown_reason()),
            None => f.write_str(&self.shown_reason()),
        }
    }
}

impl std::error::Error for ApiError {}

/// Marker left on error responses so the metrics middleware can count them by kind.
#[derive(Debug, Clone, Copy)]
pub struct ErrorKind(pub &'static str);

/// `{"error": {"field": ..., "reason": ...}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The request field at fault (`price`, `rows[3].spread_rel`, `body`, `content-type`), or null.
    pub field: Option<String>,
    pub reason: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::warn!(kind = self.kind(), "{self}");
        }
        let body = ErrorBody { error: ErrorDetail { field: self.shown_field(), reason: self.shown_reason() } };
        let body = Json(body).into_response();
        self.finish(body)
    }
}

/// An [`ApiError`] rendered the Open Inference Protocol way.
#[derive(Debug)]
pub struct OipError(pub ApiError);

/// `{"error": "<field>: <reason>"}` (Open Inference Protocol error object).
#[derive(Debug, Serialize, ToSchema)]
pub struct OipErrorBody {
    pub error: String,
}

impl From<ApiError> for OipError {
    fn from(err: ApiError) -> Self {
        OipError(err)
    }
}

impl IntoResponse for OipError {
    fn into_response(self) -> Response {
        let body = Json(OipErrorBody { error: self.0.to_string() }).into_response();
        self.0.finish(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_are_4xx_and_server_faults_5xx() {
        let client = [
            ApiError::MalformedJson { reason: "x".into() },
            ApiError::MissingField { field: "price".into() },
            ApiError::InvalidType { field: "price".into(), reason: "x".into() },
            ApiError::NonFinite { field: "price".into() },
            ApiError::OutOfRange { field: "price".into(), reason: "x".into() },
            ApiError::Invalid { field: "rows".into(), reason: "x".into() },
            ApiError::TooManyRows { field: "rows".into(), rows: 2, max: 1 },
            ApiError::BodyTooLarge { max: 1 },
            ApiError::UnsupportedMediaType { got: None },
            ApiError::BodyTimeout { after_ms: 1 },
            ApiError::Unauthorized { reason: "x" },
            ApiError::DuplicateKey { field: "price".into() },
            ApiError::TooManyAttempts { retry_after_secs: 6 },
            ApiError::Forbidden { reason: "x" },
        ];
        for err in client {
            assert!(err.status().is_client_error(), "{err:?}");
            assert!(err.field().is_some(), "{err:?} names no field");
        }
        assert!(ApiError::Inference { reason: "x".into() }.status().is_server_error());
        assert!(ApiError::Timeout { after_ms: 1 }.status().is_server_error());
    }

    #[test]
    fn display_names_field_and_reason() {
        let err = ApiError::OutOfRange { field: "rows[1].spread_rel".into(), reason: "must be in [0, 1]".into() };
        assert_eq!(err.to_string(), "rows[1].spread_rel: must be in [0, 1]");
    }
}
