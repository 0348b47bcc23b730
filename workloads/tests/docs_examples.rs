//! The documentation's examples, against the server: every `curl` to `localhost:8000` in
//! README.md and docs/*.md that is followed by an answer is sent to the API (the committed
//! model, the admin token of the tests), and the answer must have the documented shape. So the
//! examples stay true when the code changes.
//!
//! How a documented answer is read: its keys are exactly the answer's; a string is compared
//! verbatim (`"..."` stands for any value: write it for what varies, such as versions and
//! times); a number only says "a number"; an array ending in `...` lists the answer's first
//! elements.

mod api_support;

use std::path::{Path, PathBuf};

use api_support::*;
use axum::body::Body;
use axum::http::{Request, header};
use serde_json::Value;
use spikewatch::api;
use spikewatch::domain::ModelVariant;

/// A `curl` of a documentation file and the answer written under it.
#[derive(Debug)]
struct Example {
    file: String,
    line: usize,
    command: String,
    answer: Option<String>,
}

fn documentation() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Quotes still open at the end of `text` (single or double, shell rules without expansion).
fn open_quote(text: &str) -> Option<char> {
    let mut open = None;
    for c in text.chars() {
        match (open, c) {
            (None, '\'' | '"') => open = Some(c),
            (Some(q), c) if c == q => open = None,
            _ => {}
        }
    }
    open
}

fn examples_of(path: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut examples = vec![];
    let mut in_block = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with("```") {
            in_block = !in_block;
            i += 1;
            continue;
        }
        if !(in_block && line.starts_with("curl ") && line.contains("localhost:8000")) {
            i += 1;
            continue;
        }
        let start = i;
        let mut command = String::new();
        loop {
            let part = lines[i].trim();
            command.push_str(part.trim_end_matches('\\'));
            command.push(' ');
            i += 1;
            if (open_quote(&command).is_none() && !part.ends_with('\\')) || i >= lines.len() {
                break;
            }
        }
        // The answer: the lines up to the end of the block or the next command.
        let mut answer = String::new();
        while i < lines.len() && !lines[i].trim().starts_with("```") && !lines[i].trim().starts_with("curl ") {
            answer.push_str(lines[i].trim());
            answer.push('\n');
            i += 1;
        }
        let answer = answer.trim().starts_with('{').then(|| answer.trim().to_string());
        examples.push(Example {
            file: path.file_name().unwrap().to_string_lossy().into(),
            line: start + 1,
            command,
            answer,
        });
    }
    examples
}

/// Shell words of a command (quotes removed, no expansion).
fn words(command: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut started) = (vec![], String::new(), None, false);
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (_, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// The request a `curl` command sends (curl's defaults: GET, or POST with a form content type
/// when there is a body).
fn request(command: &str) -> Request<Body> {
    let command = command.replace("$(cat /run/secrets/admin-token)", TOKEN).replace("$TOKEN", TOKEN);
    let words = words(&command);
    let (mut method, mut url, mut headers, mut body) = (None, None, vec![], None::<String>);
    let mut args = words.iter().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-X" => method = args.next().cloned(),
            "-H" => headers.push(args.next().unwrap().clone()),
            "-d" | "--data" => body = args.next().cloned(),
            "-s" | "-sS" | "-f" => {}
            other if other.contains("localhost:8000") => url = Some(other.to_string()),
            other => panic!("an option this test does not know: {other} in {command}"),
        }
    }
    let path = url.unwrap().split_once("localhost:8000").unwrap().1.to_string();
    let method = method.unwrap_or_else(|| if body.is_some() { "POST".into() } else { "GET".into() });
    let mut builder = Request::builder().method(method.as_str()).uri(if path.is_empty() { "/".into() } else { path });
    let mut typed = false;
    for header in headers {
        let (name, value) = header.split_once(':').unwrap();
        typed |= name.trim().eq_ignore_ascii_case("content-type");
        builder = builder.header(name.trim(), value.trim());
    }
    if body.is_some() && !typed {
        builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    builder.body(body.map(Body::from).unwrap_or_default()).unwrap()
}

/// The documented answer as JSON: a trailing `...` in an array becomes the marker `"...more"`.
fn documented(answer: &str) -> Value {
    let json = answer.replace(",...]", r#","...more"]"#).replace(", ...]", r#", "...more"]"#);
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("the documented answer is not JSON ({e}):\n{answer}"))
}

/// Differences between a documented value and the server's, with their paths.
fn differences(doc: &Value, got: &Value, path: &str, out: &mut Vec<String>) {
    match (doc, got) {
        (Value::String(s), _) if s == "..." => {}
        (Value::String(a), Value::String(b)) if a == b => {}
        (Value::Number(_), Value::Number(_)) => {}
        (Value::Bool(a), Value::Bool(b)) if a == b => {}
        (Value::Null, Value::Null) => {}
        (Value::Array(a), Value::Array(b)) => {
            let prefix = a.last().is_some_and(|last| last == "...more");
            let listed = if prefix { &a[..a.len() - 1] } else { &a[..] };
            if (prefix && b.len() < listed.len()) || (!prefix && b.len() != listed.len()) {
                out.push(format!("{path}: {} elements documented, {} answered", listed.len(), b.len()));
            }
            for (i, (x, y)) in listed.iter().zip(b).enumerate() {
                differences(x, y, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().filter(|k| !b.contains_key(*k)) {
                out.push(format!("{path}.{key}: documented, not answered"));
            }
            for key in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}.{key}: answered, not documented"));
            }
            for (key, value) in a {
                if let Some(answered) = b.get(key) {
                    differences(value, answered, &format!("{path}.{key}"), out);
                }
            }
        }
        _ => out.push(format!("{path}: documented {doc}, answered {got}")),
    }
}

#[tokio::test]
async fn documented_answers_are_what_the_server_answers() {
    let examples: Vec<Example> = documentation().iter().flat_map(|p| examples_of(p)).collect();
    let answered: Vec<&Example> = examples.iter().filter(|e| e.answer.is_some()).collect();
    assert!(answered.len() >= 4, "the examples were not found: {examples:#?}");
    let mut failures = vec![];
    for example in answered {
        // A fresh server per example, serving the default variant: an admin switch must not
        // change the next one's answer.
        let app = api::router(state(ModelVariant::Baseline).await);
        let reply = call(&app, request(&example.command)).await;
        let doc = documented(example.answer.as_deref().unwrap());
        let mut found = vec![];
        if !reply.status.is_success() && doc.get("error").is_none() {
            found.push(format!("status {}", reply.status));
        }
        differences(&doc, &reply.body, "", &mut found);
        if !found.is_empty() {
            failures.push(format!(
                "{}:{}: {}\n  answered: {}\n  {}",
                example.file,
                example.line,
                example.command.trim(),
                reply.text,
                found.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "documented examples that the server contradicts:\n{}", failures.join("\n\n"));
}

#[test]
fn the_reading_of_documented_answers_catches_what_it_is_for() {
    let mut found = vec![];
    let doc = documented(r#"{"model_name":"zscore-baseline","v":"...","n":0.5,"list":["a",...]}"#);
    let got: Value =
        serde_json::from_str(r#"{"model_name":"spikewatch-zscore","v":"2","n":0.7,"list":["a","b"],"extra":1}"#)
            .unwrap();
    differences(&doc, &got, "", &mut found);
    assert_eq!(
        found,
        [
            ".extra: answered, not documented",
            r#".model_name: documented "zscore-baseline", answered "spikewatch-zscore""#
        ]
    );
    let curl =
        r#"curl -s -X POST localhost:8000/admin/variant -H "authorization: Bearer $TOKEN" -d '{"variant": "ml"}'"#;
    let request = request(curl);
    assert_eq!((request.method().as_str(), request.uri().path()), ("POST", "/admin/variant"));
    assert_eq!(request.headers()[header::AUTHORIZATION], format!("Bearer {TOKEN}"));
    assert_eq!(request.headers()[header::CONTENT_TYPE], "application/x-www-form-urlencoded", "curl's default");
}
