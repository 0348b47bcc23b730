//! The feature set as text, from the one declaration (`domain::FEATURES`):
//! JSON for the training pipeline (`models/feature_set.json`) and the Markdown table of
//! `docs/features.md`. Tests fail when either file differs from what this build renders;
//! `scripts/generate` rewrites them.

use serde_json::json;

use crate::domain::{FEATURE_SET_VERSION, FEATURES, Impute};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The feature set as JSON (`models/feature_set.json`).
    Json,
    /// The table of docs/features.md.
    Markdown,
}

pub fn render(format: Format) -> String {
    match format {
        Format::Json => json_text(),
        Format::Markdown => markdown_table(),
    }
}

/// `{"feature_set": "v3", "features": [{"name", "seed", "unit", "min", "min_inclusive", "max",
/// "impute", "doc"}, ...]}`, pretty-printed, with a final newline.
pub fn json_text() -> String {
    let features: Vec<_> = FEATURES
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "seed": f.seed,
                "unit": f.unit,
                "min": f.range.min,
                "min_inclusive": f.range.min_inclusive,
                "max": f.range.max,
                "impute": match f.impute { Impute::Median => "median", Impute::Missing => "missing" },
                "doc": f.doc,
            })
        })
        .collect();
    let value = json!({ "feature_set": FEATURE_SET_VERSION, "features": features });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// One line per feature: number, name, formula, unit, accepted values, when absent.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| # | name | formula | unit | accepted | absent from a request |\n|---|---|---|---|---|---|\n");
    for (i, f) in FEATURES.iter().enumerate() {
        let name = if f.seed { format!("`{}` (original)", f.name) } else { format!("`{}`", f.name) };
        let absent = match f.impute {
            Impute::Median => "training median",
            Impute::Missing => "missing (also `null`)",
        };
        out.push_str(&format!("| {} | {name} | {} | {} | {} | {absent} |\n", i + 1, f.doc, f.unit, f.range.interval()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_is_described_once() {
        let json: serde_json::Value = serde_json::from_str(&json_text()).unwrap();
        assert_eq!(json["feature_set"], FEATURE_SET_VERSION);
        assert_eq!(json["features"].as_array().unwrap().len(), FEATURES.len());
        assert_eq!(markdown_table().lines().count(), FEATURES.len() + 2);
    }
}
