//! The drift report of `spikewatch drift`: each feature's PSI against the model's training bins,
//! as a text table and as a self-contained HTML page with the two distributions side by side.

use std::fmt::Write;

use super::drift::DriftMonitor;
use crate::domain::FEATURE_NAMES;

/// PSI above which a feature has moved enough to question the model's scores.
pub const SHIFTED: f64 = 0.25;
/// PSI above which a feature has moved noticeably.
pub const MODERATE: f64 = 0.1;
/// How far above the training days' largest PSI a feature must be to count as beyond them: a
/// shift of its own (the last minute of each segment, which the training rows lack, moves a PSI
/// by a few hundredths).
pub const BEYOND_MARGIN: f64 = SHIFTED;

/// How a feature's PSI reads, and the comparison that decided it.
///
/// A feature the model uses has a limit (the largest PSI of one training day against all of
/// them): one day of data is always far from the pooled training rows, so such a feature is
/// judged against the drift the model was trained across, `limit` + [`BEYOND_MARGIN`]. A feature
/// the model ignores has no limit and gets the usual cuts ([`MODERATE`], [`SHIFTED`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub label: &'static str,
    /// The threshold applied, as the report prints it (`≤ 8.533 (limit + 0.25)`, `> 0.25`).
    pub rule: String,
}

pub fn verdict(psi: Option<f64>, limit: Option<f64>) -> Verdict {
    let verdict = |label, rule: String| Verdict { label, rule };
    match (psi, limit) {
        (None, _) => verdict("no rows", "-".into()),
        (Some(p), Some(l)) if p > l + BEYOND_MARGIN => {
            verdict("beyond training", format!("> {:.3} (limit + {BEYOND_MARGIN})", l + BEYOND_MARGIN))
        }
        (Some(_), Some(l)) => {
            verdict("within training", format!("≤ {:.3} (limit + {BEYOND_MARGIN})", l + BEYOND_MARGIN))
        }
        (Some(p), None) if p > SHIFTED => verdict("shifted", format!("> {SHIFTED}")),
        (Some(p), None) if p > MODERATE => verdict("moderate", format!("> {MODERATE}, ≤ {SHIFTED}")),
        (Some(_), None) => verdict("stable", format!("≤ {MODERATE}")),
    }
}

fn number(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

/// One feature of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDrift {
    pub name: &'static str,
    pub psi: Option<f64>,
    /// The training days' largest PSI; `None` for a feature the model ignores.
    pub limit: Option<f64>,
    pub edges: Vec<f64>,
    /// Training share per bin.
    pub expected: Vec<f64>,
    /// Share of the report's rows per bin.
    pub actual: Vec<f64>,
}

/// Every feature, most shifted first.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftReport {
    pub model_version: String,
    pub rows: u64,
    pub features: Vec<FeatureDrift>,
}

impl DriftReport {
    pub fn new(model_version: &str, monitor: &DriftMonitor) -> DriftReport {
        let limits = monitor.limits();
        let mut features: Vec<FeatureDrift> = monitor
            .psi()
            .into_iter()
            .enumerate()
            .map(|(i, (name, psi))| FeatureDrift {
                name,
                psi,
                limit: limits[i].1,
                edges: monitor.edges(i).to_vec(),
                expected: monitor.expected(i).to_vec(),
                actual: monitor.shares(i),
            })
            .collect();
        features.sort_by(|a, b| b.psi.unwrap_or(f64::NEG_INFINITY).total_cmp(&a.psi.unwrap_or(f64::NEG_INFINITY)));
        DriftReport { model_version: model_version.to_string(), rows: monitor.rows(), features }
    }

    /// Features whose PSI is above `limit`.
    pub fn above(&self, limit: f64) -> Vec<&FeatureDrift> {
        self.features.iter().filter(|f| f.psi.is_some_and(|p| p > limit)).collect()
    }

    /// Features further from the training rows than any training day was.
    pub fn beyond_training(&self) -> Vec<&FeatureDrift> {
        self.features.iter().filter(|f| verdict(f.psi, f.limit).label == "beyond training").collect()
    }

    pub fn text(&self) -> String {
        let width = FEATURE_NAMES.iter().map(|n| n.len()).max().unwrap_or(0);
        let mut out = format!("{} rows against the training rows of model {}\n", self.rows, self.model_version);
        let verdicts: Vec<Verdict> = self.features.iter().map(|f| verdict(f.psi, f.limit)).collect();
        let rule_width = verdicts.iter().map(|v| v.rule.chars().count()).max().unwrap_or(0).max("threshold".len());
        let _ =
            writeln!(out, "{:width$}  {:>8}  {:>8}  {:rule_width$}  verdict", "feature", "PSI", "limit", "threshold");
        for (f, v) in self.features.iter().zip(&verdicts) {
            let _ = writeln!(
                out,
                "{:width$}  {:>8}  {:>8}  {:rule_width$}  {}",
                f.name,
                number(f.psi),
                number(f.limit),
                v.rule,
                v.label
            );
        }
        out
    }

    /// A page that needs nothing else: inline SVG, no script, no external resource.
    pub fn html(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Feature drift: model {version}</title>\n<style>\
             body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
             table{{border-collapse:collapse}}td,th{{padding:.25em .8em;text-align:left}}\
             tr:nth-child(even){{background:#f4f4f4}}.beyond-training{{color:#b00020;font-weight:bold}}.shifted{{color:#b00020}}\
             .moderate{{color:#a65e00}}figure{{display:inline-block;margin:1em}}\
             </style></head><body>\n<h1>Feature drift</h1>\n<p>{rows} rows against the training rows of \
             model <code>{version}</code>. PSI = Σ (a − e)·ln(a / e) over the training quantile bins; \
             a feature the model uses is beyond training when its PSI is above its limit (the largest PSI \
             of one training day against all of them) by more than {BEYOND_MARGIN}, else within training; \
             a feature it ignores is stable up to {MODERATE}, shifted above {SHIFTED}. The threshold column \
             gives the comparison behind each verdict.</p>\n<table><tr><th>feature</th>\
             <th>PSI</th><th>limit</th><th>threshold</th><th>verdict</th></tr>\n",
            version = escape(&self.model_version),
            rows = self.rows,
        );
        for f in &self.features {
            let verdict = verdict(f.psi, f.limit);
            let _ = writeln!(
                out,
                "<tr><td><a href=\"#{name}\">{name}</a></td><td>{psi}</td><td>{limit}</td><td>{rule}</td>\
                 <td class=\"{class}\">{label}</td></tr>",
                name = f.name,
                psi = number(f.psi),
                limit = number(f.limit),
                rule = escape(&verdict.rule),
                label = verdict.label,
                class = verdict.label.replace(' ', "-"),
            );
        }
        out.push_str("</table>\n<p>Bars: share of rows per training bin, training (grey) and these rows (blue).</p>\n");
        for f in &self.features {
            out.push_str(&histogram(f));
        }
        out.push_str("</body></html>\n");
        out
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Grouped bars of one feature: per bin, the training share and the current share.
fn histogram(f: &FeatureDrift) -> String {
    const W: f64 = 420.0;
    const H: f64 = 160.0;
    const BOTTOM: f64 = 40.0;
    let bins = f.expected.len().max(1);
    let top = f.expected.iter().chain(&f.actual).fold(0.0f64, |m, v| m.max(*v)).max(1e-9);
    let slot = W / bins as f64;
    let bar = slot * 0.4;
    let y = |share: f64| (H - BOTTOM) * (1.0 - share / top);
    let mut svg = format!(
        "<figure id=\"{name}\"><figcaption>{name}: PSI {psi}</figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"{name} shares per bin\">",
        name = f.name,
        psi = number(f.psi),
    );
    for (i, (e, a)) in f.expected.iter().zip(&f.actual).enumerate() {
        let x = i as f64 * slot + slot * 0.1;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{ye:.1}\" width=\"{bar:.1}\" height=\"{he:.1}\" fill=\"#9e9e9e\"><title>training {e:.3}</title></rect>\
             <rect x=\"{xa:.1}\" y=\"{ya:.1}\" width=\"{bar:.1}\" height=\"{ha:.1}\" fill=\"#1f77b4\"><title>current {a:.3}</title></rect>",
            ye = y(*e),
            he = H - BOTTOM - y(*e),
            xa = x + bar,
            ya = y(*a),
            ha = H - BOTTOM - y(*a),
        );
    }
    // Bin boundaries under the bars, at the edges between slots.
    for (i, edge) in f.edges.iter().enumerate() {
        let x = (i + 1) as f64 * slot;
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"{ty:.1}\" font-size=\"9\" text-anchor=\"end\" transform=\"rotate(-35 {x:.1} {ty:.1})\">{edge:.3e}</text>",
            ty = H - BOTTOM + 12.0,
        );
    }
    svg.push_str("</svg></figure>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Reference;

    fn reference() -> Reference {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/artifacts/spikewatch-gbdt/reference.json");
        Reference::load(&path).unwrap()
    }

    #[test]
    fn verdicts_name_the_threshold_they_applied() {
        let label = |psi, limit| verdict(psi, limit).label;
        assert_eq!(
            [label(None, None), label(Some(0.05), None), label(Some(0.2), None), label(Some(0.3), None)],
            ["no rows", "stable", "moderate", "shifted"],
            "the usual cuts for a feature without a limit"
        );
        assert_eq!(verdict(Some(0.3), None).rule, "> 0.25");
        assert_eq!(verdict(Some(0.05), None).rule, "≤ 0.1");
        // A feature the model uses: against the training days' own drift, not the usual cuts.
        assert_eq!(
            verdict(Some(3.0), Some(2.5)),
            Verdict { label: "beyond training", rule: "> 2.750 (limit + 0.25)".into() }
        );
        assert_eq!(
            verdict(Some(2.0), Some(2.5)),
            Verdict { label: "within training", rule: "≤ 2.750 (limit + 0.25)".into() }
        );
        assert_eq!(label(Some(2.6), Some(2.5)), "within training", "within the margin");
    }

    #[test]
    fn rows_piled_into_one_bin_are_the_most_shifted() {
        let reference = reference();
        let mut monitor = DriftMonitor::new(&reference, 0);
        let medians = crate::domain::Features(reference.medians());
        for _ in 0..50 {
            monitor.observe(&medians);
        }
        let report = DriftReport::new(&reference.model_version, &monitor);
        assert_eq!(report.rows, 50);
        assert_eq!(report.features.len(), FEATURE_NAMES.len());
        assert!(report.features.windows(2).all(|w| w[0].psi >= w[1].psi), "sorted, most shifted first");
        assert!(report.above(SHIFTED).len() > FEATURE_NAMES.len() / 2);
        let text = report.text();
        assert!(text.starts_with("50 rows against the training rows of model "), "{text}");
        assert!(text.contains("shifted"), "{text}");
        let html = report.html();
        assert_eq!(html.matches("<svg").count(), FEATURE_NAMES.len());
        assert!(!html.contains("NaN") && !html.contains("inf"), "every number is finite");
        assert!(
            !html.contains("http://")
                || html.matches("http://").count() == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
            "no external resource"
        );
    }
}
