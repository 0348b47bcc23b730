//! docs/configuration.md documents every config key, and only those: the keys of the default
//! config, walked from its YAML form (sections whose default is null, such as `feed.mirror`,
//! included), must each appear as `section.key` in the reference, and every key of the
//! reference's tables must be one of them.

use serde_yaml::{Mapping, Value};
use spikewatch::config::Config;

fn reference() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md")).unwrap()
}

/// `(path, value)` of every leaf under `value`; empty mappings and nulls are leaves.
fn leaves(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            for (key, value) in map {
                let key = key.as_str().expect("config keys are strings");
                let path = if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") };
                leaves(&path, value, out);
            }
        }
        _ => out.push((prefix.to_string(), value.clone())),
    }
}

fn set(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    for part in path.split('.') {
        node = node.as_mapping_mut().expect("a section").get_mut(part).expect("a key of the walk");
    }
    *node = value;
}

/// Every key of the config: the default config's leaves, and the keys of each section whose
/// default is null (a null that also reads as `{}` is an optional section: it is filled with
/// its defaults and walked, as deep as such sections nest). The optional sections themselves
/// are keys too (`feed.mirror: null` turns the mirror off).
fn config_keys() -> Vec<String> {
    let mut config = serde_yaml::to_value(Config::default()).unwrap();
    let mut sections = Vec::new();
    loop {
        let mut found = Vec::new();
        leaves("", &config, &mut found);
        let opened = found.into_iter().filter(|(_, value)| value.is_null()).find_map(|(path, _)| {
            let mut probe = config.clone();
            set(&mut probe, &path, Value::Mapping(Mapping::new()));
            let filled = serde_yaml::from_value::<Config>(probe).ok()?;
            Some((path, serde_yaml::to_value(filled).unwrap()))
        });
        match opened {
            Some((path, filled)) => {
                sections.push(path);
                config = filled;
            }
            None => break,
        }
    }
    let mut found = Vec::new();
    leaves("", &config, &mut found);
    let mut keys: Vec<String> = found.into_iter().map(|(path, _)| path).chain(sections).collect();
    keys.sort();
    keys
}

#[test]
fn every_config_key_is_in_the_reference() {
    let reference = reference();
    let keys = config_keys();
    assert!(keys.len() > 30, "{keys:?}");
    for key in ["feed.mirror", "feed.mirror.dir", "feed.mirror.max_bytes", "feed.mirror.max_age_secs"] {
        assert!(keys.iter().any(|k| k == key), "the walk misses {key}: {keys:?}");
    }
    let missing: Vec<&String> = keys.iter().filter(|key| !reference.contains(&format!("`{key}`"))).collect();
    assert!(missing.is_empty(), "docs/configuration.md does not document {missing:?}");
}

#[test]
fn the_reference_documents_no_key_the_config_lacks() {
    let keys = config_keys();
    let documented: Vec<String> = reference()
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split_once('`').map(|(key, _)| key.to_string()))
        .filter(|key| key.contains('.') && key.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '.'))
        .collect();
    assert!(documented.len() > 30, "{documented:?}");
    let unknown: Vec<&String> = documented.iter().filter(|key| !keys.contains(key)).collect();
    assert!(unknown.is_empty(), "docs/configuration.md documents keys the config does not have: {unknown:?}");
}

#[test]
fn the_reference_example_is_a_valid_config() {
    let reference = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md")).unwrap();
    let start = reference.find("```yaml\n").expect("example block") + "```yaml\n".len();
    let end = start + reference[start..].find("```").unwrap();
    let (example, unknown) = Config::from_yaml_reporting_unknown(&reference[start..end]).expect("the example parses");
    // Unknown keys are ignored (and reported) when loading, so a renamed or removed key shows here.
    assert_eq!(unknown, Vec::<String>::new(), "keys the config no longer has");
    assert_eq!(example, Config::default(), "the example shows the defaults");
}
