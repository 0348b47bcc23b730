//! A VolatilityPipeline checked as the API server checks it before storing it: the CRD's
//! defaults applied, then its OpenAPI schema (types, required fields, bounds, lengths, patterns,
//! enums, unknown fields) and its validation rules (`x-kubernetes-validations`, CEL, evaluated
//! with the `cel` crate). The errors read as `kubectl apply` prints them:
//!
//! ```text
//! The VolatilityPipeline "btc" is invalid: spec.kafka.partitions: Invalid value: 0: spec.kafka.partitions in body should be greater than or equal to 1
//! ```
//!
//! `render` runs it so that a manifest it renders without error is one the cluster accepts.
//! Transition rules (those reading `oldSelf`) need the stored object and are not evaluated.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use kube::CustomResourceExt;
use serde_json::{Map, Value};

use crate::crd::VolatilityPipeline;

/// The served version's `openAPIV3Schema`.
static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let crd = serde_json::to_value(VolatilityPipeline::crd()).expect("the CRD serializes");
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema").cloned().expect("the CRD has a schema")
});

/// What the API server found wrong, in the order it reports it.
#[derive(Default)]
struct Findings {
    /// Fields the schema does not declare: refused while decoding, before any validation.
    unknown: Vec<String>,
    /// Schema violations.
    errors: Vec<String>,
    /// A value of the wrong type: the API server then skips the validation rules.
    type_error: bool,
}

/// Checks `object` (a whole VolatilityPipeline) in place: fills the schema's defaults, then
/// validates. `Err` holds the API server's message.
pub fn validate(object: &mut Value) -> Result<(), String> {
    let schema = &*SCHEMA;
    let mut found = Findings::default();
    if let Value::Object(fields) = &*object {
        for key in fields.keys() {
            if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "spec" | "status") {
                found.unknown.push(format!("unknown field {}", quoted(key)));
            }
        }
    }
    if let Some(name) = object.pointer("/metadata/name").and_then(Value::as_str)
        && !is_dns_subdomain(name)
    {
        found.errors.push(format!(
            "metadata.name: Invalid value: {}: a lowercase RFC 1123 subdomain must consist of lower case \
             alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            quoted(name)
        ));
    }
    // The API server owns metadata and status; the schema covers the spec.
    let spec_schema = schema.pointer("/properties/spec").unwrap_or(&Value::Null);
    match object.get_mut("spec") {
        Some(spec) => {
            apply_defaults(spec_schema, spec);
            check(spec_schema, spec, "spec", &mut found);
            if found.unknown.is_empty() && !found.type_error {
                check_rules_below(spec_schema, spec, "spec", &mut found.errors);
            }
        }
        None if schema_requires(schema, "spec") => found.errors.push("spec: Required value".into()),
        None => {}
    }
    if !found.unknown.is_empty() {
        return Err(format!(
            "VolatilityPipeline in version \"v1alpha1\" cannot be handled as a VolatilityPipeline: strict decoding error: {}",
            found.unknown.join(", ")
        ));
    }
    let mut errors = found.errors;
    if errors.is_empty() {
        return Ok(());
    }
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let detail = if errors.len() == 1 { errors.remove(0) } else { format!("[{}]", errors.join(", ")) };
    Err(format!("The VolatilityPipeline {} is invalid: {detail}", quoted(name)))
}

fn schema_requires(schema: &Value, key: &str) -> bool {
    schema.get("required").and_then(Value::as_array).is_some_and(|r| r.iter().any(|k| k == key))
}

/// Fills absent fields that have a `default`, top down (a defaulted object gets its own
/// fields' defaults too), as the API server does when it decodes an object.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(fields) => {
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for (key, property) in properties {
                    if !fields.contains_key(key)
                        && let Some(default) = property.get("default")
                    {
                        fields.insert(key.clone(), default.clone());
                    }
                    if let Some(field) = fields.get_mut(key) {
                        apply_defaults(property, field);
                    }
                }
            } else if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for field in fields.values_mut() {
                    apply_defaults(additional, field);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// A value as the API server prints it in an error: strings quoted, numbers and booleans bare.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => quoted(s),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => true,
    }
}

/// Validates `value` against `schema` at `path` (not the rules); records what the API server
/// reports.
fn check(schema: &Value, value: &Value, path: &str, found: &mut Findings) {
    let errors = &mut found.errors;
    let int_or_string = schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) {
            errors.push(format!(
                "{path}: Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                expected_type(schema)
            ));
            found.type_error = true;
        }
        return;
    }
    if int_or_string {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errors.push(format!(
                "{path}: Invalid value: {}: {path} in body must be of type integer or string: {}",
                shown(value),
                quoted(type_name(value))
            ));
            found.type_error = true;
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(expected, value)
    {
        errors.push(format!(
            "{path}: Invalid value: {}: {path} in body must be of type {expected}: {}",
            shown(value),
            quoted(type_name(value))
        ));
        found.type_error = true;
        return;
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed.iter().map(shown).collect();
        errors.push(format!("{path}: Unsupported value: {}: supported values: {}", shown(value), supported.join(", ")));
    }
    match value {
        Value::Number(number) => check_number(schema, number.as_f64().unwrap_or(f64::NAN), value, path, errors),
        Value::String(text) => check_string(schema, text, path, errors),
        Value::Array(items) => check_array(schema, items, path, found),
        Value::Object(fields) => check_object(schema, fields, path, found),
        _ => {}
    }
}

fn expected_type(schema: &Value) -> &str {
    schema.get("type").and_then(Value::as_str).unwrap_or("object")
}

fn check_number(schema: &Value, number: f64, value: &Value, path: &str, errors: &mut Vec<String>) {
    let flag = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    // As the API server prints it: `1`, not `1.0`.
    let show_bound = |key: &str| bound(key).map(|b| format!("{b}")).unwrap_or_default();
    if let Some(min) = bound("minimum") {
        if flag("exclusiveMinimum") && number <= min {
            errors.push(format!(
                "{path}: Invalid value: {value}: {path} in body should be greater than {}",
                show_bound("minimum")
            ));
        } else if number < min {
            errors.push(format!(
                "{path}: Invalid value: {value}: {path} in body should be greater than or equal to {}",
                show_bound("minimum")
            ));
        }
    }
    if let Some(max) = bound("maximum") {
        if flag("exclusiveMaximum") && number >= max {
            errors.push(format!(
                "{path}: Invalid value: {value}: {path} in body should be less than {}",
                show_bound("maximum")
            ));
        } else if number > max {
            errors.push(format!(
                "{path}: Invalid value: {value}: {path} in body should be less than or equal to {}",
                show_bound("maximum")
            ));
        }
    }
}

fn check_string(schema: &Value, text: &str, path: &str, errors: &mut Vec<String>) {
    let length = text.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        errors.push(format!(
            "{path}: Invalid value: {}: {path} in body should be at least {min} chars long",
            quoted(text)
        ));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        errors.push(format!("{path}: Too long: may not be more than {max} bytes"));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(regex) if !regex.is_match(text) => {
                errors.push(format!("{path}: Invalid value: {}: {path} in body should match '{pattern}'", quoted(text)))
            }
            Ok(_) => {}
            Err(e) => errors.push(format!("{path}: Internal error: pattern {pattern:?} does not compile: {e}")),
        }
    }
}

fn check_array(schema: &Value, items: &[Value], path: &str, found: &mut Findings) {
    let errors = &mut found.errors;
    let count = items.len() as u64;
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && count < min
    {
        errors.push(format!("{path}: Invalid value: {count}: {path} in body should have at least {min} items"));
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && count > max
    {
        errors.push(format!("{path}: Too many: {count}: must have at most {max} items"));
    }
    let set = schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set")
        || schema.get("uniqueItems").and_then(Value::as_bool) == Some(true);
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            if set && items[..i].contains(item) {
                found.errors.push(format!("{item_path}: Duplicate value: {}", shown(item)));
            }
            check(item_schema, item, &item_path, found);
        }
    }
}

fn check_object(schema: &Value, fields: &Map<String, Value>, path: &str, found: &mut Findings) {
    if let Some(Value::Array(required)) = schema.get("required") {
        for key in required.iter().filter_map(Value::as_str) {
            if !fields.contains_key(key) {
                found.errors.push(format!("{path}.{key}: Required value"));
            }
        }
    }
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
    match (schema.get("properties"), schema.get("additionalProperties")) {
        (Some(Value::Object(properties)), _) => {
            for (key, value) in fields {
                match properties.get(key) {
                    Some(property) => check(property, value, &format!("{path}.{key}"), found),
                    None if preserve => {}
                    None => found.unknown.push(format!("unknown field {}", quoted(&format!("{path}.{key}")))),
                }
            }
        }
        (_, Some(additional)) if additional.is_object() => {
            for (key, value) in fields {
                check(additional, value, &format!("{path}[{key}]"), found);
            }
        }
        _ => {}
    }
}

/// The rules of the node and of every node below it, deepest first.
fn check_rules_below(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                let field_schema = match (schema.get("properties"), schema.get("additionalProperties")) {
                    (Some(Value::Object(properties)), _) => properties.get(key),
                    (_, Some(additional)) if additional.is_object() => Some(additional),
                    _ => None,
                };
                if let Some(field_schema) = field_schema {
                    let field_path = if schema.get("properties").is_some() {
                        format!("{path}.{key}")
                    } else {
                        format!("{path}[{key}]")
                    };
                    check_rules_below(field_schema, field, &field_path, errors);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_rules_below(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
    check_rules(schema, value, path, errors);
}

/// The node's `x-kubernetes-validations` rules, with `self` bound to the value.
fn check_rules(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(Value::Array(rules)) = schema.get("x-kubernetes-validations") else { return };
    let this = to_cel(schema, value);
    for rule in rules {
        let Some(source) = rule.get("rule").and_then(Value::as_str) else { continue };
        if source.contains("oldSelf") {
            continue;
        }
        let field_path = rule.get("fieldPath").and_then(Value::as_str).unwrap_or_default();
        let at = format!("{path}{field_path}");
        let message = rule
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| format!("failed rule: {source}"), str::to_string);
        let subject = format!("\"{}\"", expected_type(schema));
        match evaluate(source, &this) {
            Ok(true) => {}
            Ok(false) => errors.push(format!("{at}: Invalid value: {subject}: {message}")),
            Err(reason) => errors.push(format!("{at}: Invalid value: {subject}: {message} ({source}: {reason})")),
        }
    }
}

/// Evaluates one rule; an error (a missing field, a failed conversion) fails it.
pub fn evaluate(source: &str, this: &cel::Value) -> Result<bool, String> {
    let program = cel::Program::compile(source).map_err(|e| format!("does not compile: {e}"))?;
    let mut context = cel::Context::default();
    context.add_variable_from_value("self", this.clone());
    match program.execute(&context) {
        Ok(cel::Value::Bool(result)) => Ok(result),
        Ok(other) => Err(format!("evaluates to {other:?}, not a boolean")),
        Err(e) => Err(e.to_string()),
    }
}

/// A JSON value as CEL sees it under its schema: an integer in a `number` field is a double, as
/// the API server converts it.
fn to_cel(schema: &Value, value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (schema.get("type").and_then(Value::as_str), n.as_i64()) {
            (Some("number"), _) | (_, None) => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            (_, Some(i)) => cel::Value::Int(i),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => {
            let item_schema = schema.get("items").unwrap_or(&Value::Null);
            cel::Value::List(Arc::new(items.iter().map(|item| to_cel(item_schema, item)).collect()))
        }
        Value::Object(fields) => {
            let map: HashMap<cel::objects::Key, cel::Value> = fields
                .iter()
                .map(|(key, field)| {
                    let field_schema = schema
                        .pointer(&format!("/properties/{}", key.replace('~', "~0").replace('/', "~1")))
                        .or_else(|| schema.get("additionalProperties"))
                        .unwrap_or(&Value::Null);
                    (cel::objects::Key::String(Arc::new(key.clone())), to_cel(field_schema, field))
                })
                .collect();
            cel::Value::Map(map.into())
        }
    }
}

/// A lowercase RFC 1123 subdomain (a Kubernetes object name).
fn is_dns_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.starts_with(alnum)
                && label.ends_with(alnum)
                && label.chars().all(|c| alnum(c) || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(schema: &Value, out: &mut Vec<String>) {
        match schema {
            Value::Object(fields) => {
                if let Some(Value::Array(list)) = fields.get("x-kubernetes-validations") {
                    out.extend(list.iter().filter_map(|r| r["rule"].as_str().map(String::from)));
                }
                fields.values().for_each(|v| rules(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| rules(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_rule_of_the_crd_compiles() {
        let mut found = vec![];
        rules(&SCHEMA, &mut found);
        assert!(found.len() >= 10, "{found:?}");
        for rule in found {
            cel::Program::compile(&rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        }
    }

    #[test]
    fn the_shipped_examples_are_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut checked = 0;
        for dir in ["examples", "examples/gitops/pipelines"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for document in serde_yaml::Deserializer::from_str(&text) {
                    let Ok(mut object) = <Value as serde::Deserialize>::deserialize(document) else { continue };
                    if object["kind"] == "VolatilityPipeline" {
                        validate(&mut object).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked >= 3, "{checked}");
    }

    fn pipeline(spec: Value) -> Value {
        serde_json::json!({"apiVersion": "spikewatch.io/v1alpha1", "kind": "VolatilityPipeline",
                           "metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn defaults_are_applied_before_the_rules_run() {
        let mut object = pipeline(serde_json::json!({"products": ["BTC-USD"], "image": {"tag": "1"},
                                                      "kafka": {"bootstrapServers": "k:9092"}}));
        validate(&mut object).unwrap();
        assert_eq!(object["spec"]["kafka"]["partitions"], 3, "the CRD's default");
        let mut too_many = pipeline(serde_json::json!({"products": ["BTC-USD"],
            "kafka": {"bootstrapServers": "k:9092"}, "workloads": {"predictor": {"replicas": 4}}}));
        let err = validate(&mut too_many).unwrap_err();
        assert!(err.contains("workloads.predictor.replicas must not exceed kafka.partitions"), "{err}");
    }

    #[test]
    fn messages_follow_the_api_server() {
        let mut object = pipeline(serde_json::json!({"products": ["btc"], "kafka": {"bootstrapServers": "k:9092",
                                                      "partitions": "three"}}));
        let err = validate(&mut object).unwrap_err();
        assert!(err.starts_with("The VolatilityPipeline \"p\" is invalid: ["), "{err}");
        assert!(err.contains("spec.kafka.partitions: Invalid value: \"three\": spec.kafka.partitions in body must be of type integer: \"string\""), "{err}");
        assert!(
            err.contains("spec.products[0]: Invalid value: \"btc\": spec.products[0] in body should match"),
            "{err}"
        );
        let mut missing = pipeline(serde_json::json!({"kafka": {"bootstrapServers": "k:9092"}}));
        assert!(validate(&mut missing).unwrap_err().contains("spec.products: Required value"));
        let mut bad_name =
            pipeline(serde_json::json!({"products": ["BTC-USD"], "kafka": {"bootstrapServers": "k:9092"}}));
        bad_name["metadata"]["name"] = "Bad_Name".into();
        assert!(validate(&mut bad_name).unwrap_err().contains("metadata.name: Invalid value: \"Bad_Name\""));
    }
}
