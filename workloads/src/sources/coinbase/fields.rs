//! Field-level decoding shared by both feeds: decimal strings, timestamps, tick invariants.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::FrameError;
use crate::domain::{Side, Tick};

/// A numeric field as Coinbase sends it: a decimal string (`"103472.28"`), or occasionally a
/// JSON number. Borrowed from the frame when it has no escapes, so decoding does not allocate.
#[derive(Debug, Clone)]
pub(crate) enum Decimal<'a> {
    Text(Cow<'a, str>),
    Value(f64),
}

impl<'de: 'a, 'a> Deserialize<'de> for Decimal<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DecimalVisitor;
        impl<'de> Visitor<'de> for DecimalVisitor {
            type Value = Decimal<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal string or a number")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Decimal::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Decimal::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Decimal::Text(Cow::Owned(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Decimal::Value(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Decimal::Value(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Decimal::Value(v as f64))
            }
        }
        deserializer.deserialize_any(DecimalVisitor)
    }
}

/// Parses a decimal field and rejects NaN and infinities (which `f64::from_str` accepts).
pub(crate) fn number(field: &'static str, value: Option<&Decimal<'_>>) -> Result<f64, FrameError> {
    let value = value.ok_or(FrameError::MissingField(field))?;
    let parsed = match value {
        Decimal::Value(v) => *v,
        Decimal::Text(text) => {
            text.trim().parse::<f64>().map_err(|_| FrameError::InvalidNumber { field, value: truncate(text) })?
        }
    };
    if !parsed.is_finite() {
        let text = match value {
            Decimal::Text(t) => truncate(t),
            Decimal::Value(v) => v.to_string(),
        };
        return Err(FrameError::NonFinite { field, value: text });
    }
    Ok(parsed)
}

pub(crate) fn price(field: &'static str, value: Option<&Decimal<'_>>) -> Result<f64, FrameError> {
    let v = number(field, value)?;
    if v <= 0.0 {
        return Err(FrameError::NonPositivePrice { field, value: v });
    }
    Ok(v)
}

pub(crate) fn size(field: &'static str, value: Option<&Decimal<'_>>) -> Result<Option<f64>, FrameError> {
    match value {
        None => Ok(None),
        Some(_) => {
            let v = number(field, value)?;
            if v < 0.0 {
                return Err(FrameError::NegativeSize { field, value: v });
            }
            Ok(Some(v))
        }
    }
}

/// RFC 3339 with any fraction; a timestamp without offset (as the Python recorder wrote
/// receive times) is read as UTC.
pub(crate) fn timestamp(field: &'static str, value: Option<&str>) -> Result<DateTime<Utc>, FrameError> {
    let text = value.ok_or(FrameError::MissingField(field))?;
    parse_timestamp(text).ok_or_else(|| FrameError::InvalidTimestamp { field, value: truncate(text) })
}

pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc())
}

pub(crate) fn side(value: Option<&str>) -> Result<Option<Side>, FrameError> {
    match value {
        None => Ok(None),
        Some("buy") => Ok(Some(Side::Buy)),
        Some("sell") => Ok(Some(Side::Sell)),
        Some(other) => Err(FrameError::InvalidField { field: "side", reason: format!("{:?}", truncate(other)) }),
    }
}

pub(crate) fn required<'a>(field: &'static str, value: &'a Option<Cow<'_, str>>) -> Result<&'a str, FrameError> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(FrameError::MissingField(field)),
    }
}

/// The last invariant a [`Tick`] must hold before it leaves the parser.
pub(crate) fn check_book(tick: &Tick) -> Result<(), FrameError> {
    if tick.best_bid > tick.best_ask {
        return Err(FrameError::CrossedBook { bid: tick.best_bid, ask: tick.best_ask });
    }
    Ok(())
}

/// Error messages quote at most this much of a bad value, so a hostile frame cannot bloat logs.
fn truncate(text: &str) -> String {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
