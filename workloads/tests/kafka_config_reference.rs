//! docs/configuration.md documents every config key: the keys of the default config, walked
//! from its YAML form, must each appear as `section.key` in the reference.

use spikewatch::config::Config;

fn leaf_keys(prefix: &str, value: &serde_yaml::Value, keys: &mut Vec<String>) {
    match value {
        serde_yaml::Value::Mapping(map) if !map.is_empty() => {
            for (key, value) in map {
                let key = key.as_str().expect("config keys are strings");
                let path = if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") };
                leaf_keys(&path, value, keys);
            }
        }
        _ => keys.push(prefix.to_string()),
    }
}

#[test]
fn every_config_key_is_in_the_reference() {
    let reference = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md")).unwrap();
    let mut keys = Vec::new();
    leaf_keys("", &serde_yaml::to_value(Config::default()).unwrap(), &mut keys);
    assert!(keys.len() > 30, "{keys:?}");
    let missing: Vec<&String> = keys.iter().filter(|key| !reference.contains(&format!("`{key}`"))).collect();
    assert!(missing.is_empty(), "docs/configuration.md does not document {missing:?}");
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
