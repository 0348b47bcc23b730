//! Finding a JSON object that names the same key twice.
//!
//! serde_json keeps the last value of a repeated key in a map (and the request types read rows
//! as maps), while other parsers keep the first: a proxy or firewall in front could have judged
//! a different request than the one served. So every JSON body is walked once before it is
//! parsed, and a repeated key is refused (400) with its path.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The path (`rows[2].price`) of the first key that repeats one of its object, `None` when
/// there is none or `bytes` is not JSON (the parse proper reports that).
pub fn first_duplicate_key(bytes: &[u8]) -> Option<String> {
    let mut path = Vec::new();
    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = Walk { path: &mut path, found: &mut found }.deserialize(&mut de);
    found
}

enum Segment {
    Key(String),
    Index(usize),
}

fn render(path: &[Segment]) -> String {
    let mut text = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Segment::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// Visits one value; stops the walk (with an error) at the first repeated key.
struct Walk<'p> {
    path: &'p mut Vec<Segment>,
    found: &'p mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            self.path.push(Segment::Index(index));
            let more = seq.next_element_seed(Walk { path: self.path, found: self.found })?;
            self.path.pop();
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key_seed(Key)? {
            self.path.push(Segment::Key(key.to_string()));
            if !keys.insert(key) {
                *self.found = Some(render(self.path));
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(Walk { path: self.path, found: self.found })?;
            self.path.pop();
        }
        Ok(())
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_found_with_their_path() {
        let cases = [
            (r#"{"price": 1, "price": 2}"#, Some("price")),
            (r#"{"rows": [{"price": 1}, {"spread": 1, "price": 2, "spread": 3}]}"#, Some("rows[1].spread")),
            (r#"{"a": {"b": [0, {"c": 1, "c": 1}]}}"#, Some("a.b[1].c")),
            // The same key written with an escape is the same key.
            (r#"{"price": 1, "pr\u0069ce": 2}"#, Some("price")),
            (r#"{"price": 1, "size": {"price": 2}}"#, None),
            (r#"[{"price": 1}, {"price": 2}]"#, None),
            (r#"{"price": 1, "#, None),
            ("not json", None),
            ("", None),
        ];
        for (body, expected) in cases {
            assert_eq!(first_duplicate_key(body.as_bytes()).as_deref(), expected, "{body}");
        }
    }

    #[test]
    fn deep_nesting_is_no_stack_overflow() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(first_duplicate_key(body.as_bytes()), None);
    }
}
