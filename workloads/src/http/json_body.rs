//! `JsonBody<T>`: axum's `Json` with this API's error mapping. Checks the content type (415),
//! the body size (413) and reports a deserialization failure with the path of the field at fault.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct JsonBody<T>(pub T);

/// The largest request body a server accepts (`api.max_body_bytes`), taken from its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    BodyLimit: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = check_content_type(req.headers().get(header::CONTENT_TYPE))?;
        // A body announced larger than the limit is refused before any of it is read.
        let BodyLimit(max) = BodyLimit::from_ref(state);
        let announced = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|length| length > max as u64) {
            return Err(ApiError::BodyTooLarge { max });
        }
        // `Bytes` honours `DefaultBodyLimit` and fails with 413 past it.
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge { max }
            } else {
                ApiError::MalformedJson { reason: rejection.body_text() }
            }
        })?;
        // `curl -d '{...}'` (the runbook's own smoke test) labels a JSON object as a form; such a
        // body is taken for what it is. A real form body is still refused.
        if form && bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::UnsupportedMediaType { got: Some(FORM.into()) });
        }
        parse(&bytes).map(JsonBody)
    }
}

/// The media type `curl -d` sends by default.
const FORM: &str = "application/x-www-form-urlencoded";

/// JSON is `application/json` or any `application/<something>+json`, parameters allowed; a
/// form-encoded body is accepted when it turns out to be a JSON object (`Ok(true)`).
fn check_content_type(value: Option<&header::HeaderValue>) -> Result<bool, ApiError> {
    let Some(value) = value else {
        return Err(ApiError::UnsupportedMediaType { got: None });
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let is_json = essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(false)
    } else if essence == FORM {
        Ok(true)
    } else {
        Err(ApiError::UnsupportedMediaType { got: Some(text.chars().take(100).collect()) })
    }
}

/// Deserializes `bytes`, naming the field at fault on error; a repeated key in any object is an
/// error too ([`super::duplicate_keys`]).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Some(field) = super::duplicate_keys::first_duplicate_key(bytes) {
        return Err(ApiError::DuplicateKey { field });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let mut err = classify(&err);
        prefix_field(&mut err, "");
        err
    })?;
    de.end().map_err(|err| ApiError::MalformedJson { reason: strip_position(&err.to_string()) })?;
    Ok(value)
}

/// Deserializes an already parsed JSON value (a row of a batch), naming the field relative to `prefix`.
pub fn from_value<T: DeserializeOwned>(value: &serde_json::Value, prefix: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut err = classify(&err);
        prefix_field(&mut err, prefix);
        err
    })
}

/// Places a field path found inside a row under `prefix`; the root itself is `body`.
fn prefix_field(err: &mut ApiError, prefix: &str) {
    match err {
        ApiError::MissingField { field }
        | ApiError::InvalidType { field, .. }
        | ApiError::NonFinite { field }
        | ApiError::Invalid { field, .. } => {
            *field = match (prefix.is_empty(), field.is_empty()) {
                (true, true) => "body".to_string(),
                (true, false) => std::mem::take(field),
                (false, true) => prefix.to_string(),
                (false, false) => format!("{prefix}.{field}"),
            };
        }
        _ => {}
    }
}

fn classify(err: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = err.inner();
    let message = strip_position(&inner.to_string());
    let path = path_string(err.path());
    match inner.classify() {
        serde_json::error::Category::Data => {
            if let Some(name) = missing_field_name(&message) {
                let field = if path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
                ApiError::MissingField { field }
            } else if message.starts_with("number out of range") {
                ApiError::NonFinite { field: path }
            } else {
                ApiError::InvalidType { field: path, reason: message }
            }
        }
        // serde_json reports an out-of-range number (1e400) as a syntax error.
        serde_json::error::Category::Syntax if message.starts_with("number out of range") => {
            ApiError::NonFinite { field: path }
        }
        _ => ApiError::MalformedJson { reason: message },
    }
}

/// `price`, `rows[2].price`: the path as a user writes it (serde_path_to_error prints `rows[2].price` too,
/// but `.` for the root).
fn path_string(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." { String::new() } else { text }
}

/// serde's `missing field `price`` message → `price`.
fn missing_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// serde_json appends ` at line 1 column 17`; the field path says more than the position.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Row {
        price: f64,
        size: Option<f64>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Batch {
        rows: Vec<Row>,
    }

    #[test]
    fn names_the_field_of_each_failure() {
        let cases: [(&str, ApiError); 6] = [
            ("{}", ApiError::MissingField { field: "price".into() }),
            (
                r#"{"price":"NaN"}"#,
                ApiError::InvalidType {
                    field: "price".into(),
                    reason: "invalid type: string \"NaN\", expected f64".into(),
                },
            ),
            (r#"{"price":1e400}"#, ApiError::NonFinite { field: "price".into() }),
            (r#"{"rows":[{"price":1},{}]}"#, ApiError::MissingField { field: "rows[1].price".into() }),
            (r#"{"price":1,"#, ApiError::MalformedJson { reason: "EOF while parsing a value".into() }),
            (r#"{"price":1} x"#, ApiError::MalformedJson { reason: "trailing characters".into() }),
        ];
        for (body, expected) in cases {
            let got = if body.contains("rows") {
                parse::<Batch>(body.as_bytes()).map(|_| ())
            } else {
                parse::<Row>(body.as_bytes()).map(|_| ())
            };
            assert_eq!(got.unwrap_err(), expected, "{body}");
        }
    }

    #[test]
    fn repeated_keys_are_refused_with_their_path() {
        assert_eq!(
            parse::<Row>(br#"{"price": 1, "price": 2}"#).unwrap_err(),
            ApiError::DuplicateKey { field: "price".into() }
        );
        assert_eq!(
            parse::<Batch>(br#"{"rows": [{"price": 1, "size": 1, "size": 2}]}"#).unwrap_err(),
            ApiError::DuplicateKey { field: "rows[0].size".into() }
        );
        assert!(parse::<Row>(br#"{"price": 1, "size": 2}"#).is_ok());
    }

    #[test]
    fn content_types() {
        let ok =
            ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"];
        for ct in ok {
            assert_eq!(check_content_type(Some(&header::HeaderValue::from_static(ct))), Ok(false), "{ct}");
        }
        // curl -d's default: accepted when the body turns out to be a JSON object.
        let form = "application/x-www-form-urlencoded";
        assert_eq!(check_content_type(Some(&header::HeaderValue::from_static(form))), Ok(true));
        for ct in ["text/plain", "multipart/form-data"] {
            assert!(check_content_type(Some(&header::HeaderValue::from_static(ct))).is_err(), "{ct}");
        }
        assert!(check_content_type(None).is_err());
    }

    #[test]
    fn batch_rows_are_prefixed() {
        let value = serde_json::json!({"price": "x"});
        let err = from_value::<Row>(&value, "rows[4]").unwrap_err();
        assert!(matches!(err, ApiError::InvalidType { ref field, .. } if field == "rows[4].price"), "{err:?}");
    }
}
