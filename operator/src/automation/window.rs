//! Windows from successive scrapes: what the Prometheus queries compute, done by the operator
//! itself when no Prometheus is configured.
//!
//! For each pod, the increase of a counter over the window is the newest sample minus the
//! latest sample at least one window old (or the oldest sample, while the history is shorter
//! than the window); a counter that went down was reset by a restart, and its newest value is
//! the increase, as `increase()` assumes. Increases are summed over pods. The p95 comes from
//! the summed bucket increases with Prometheus' `histogram_quantile` interpolation.

use k8s_openapi::jiff::Timestamp;

use super::time::elapsed_seconds;

/// The counters a check needs from one scrape of one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// `volatility_api_requests_total`, all label sets.
    pub requests: f64,
    /// `volatility_api_requests_total{status=~"5.."}`.
    pub server_errors: f64,
    /// `volatility_prediction_latency_seconds_bucket`: cumulative counts by upper bound
    /// (`+Inf` last), summed over label sets.
    pub latency_buckets: Vec<(f64, f64)>,
    /// `volatility_consumer_messages_processed_total`.
    pub consumed: f64,
    /// `volatility_consumer_errors_total{error_type="inference"}`.
    pub inference_errors: f64,
    /// `volatility_online_alert_precision{variant="ml"}`, mean over the products that alerted
    /// (a gauge; the newest scrape's value is used).
    pub alert_precision: Option<f64>,
}

/// One scrape of one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub pod: String,
    pub time: Timestamp,
    pub counters: Counters,
}

/// Increases over the window, summed over pods.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Increases {
    pub requests: f64,
    pub server_errors: f64,
    pub latency_buckets: Vec<(f64, f64)>,
    pub consumed: f64,
    pub inference_errors: f64,
    /// Mean of the pods' newest precision values.
    pub alert_precision: Option<f64>,
    /// Pods that had two samples or more (and so contributed increases).
    pub pods: usize,
    /// The longest span, in seconds, between the two samples used for a pod.
    pub span_seconds: f64,
}

/// Increases over `window_seconds` before `now`, from `samples` (any order, any pods).
pub fn increases(samples: &[Sample], window_seconds: f64, now: Timestamp) -> Increases {
    let mut pods: Vec<&str> = samples.iter().map(|s| s.pod.as_str()).collect();
    pods.sort_unstable();
    pods.dedup();
    let mut out = Increases::default();
    let mut precisions = vec![];
    for pod in pods {
        let mut mine: Vec<&Sample> = samples.iter().filter(|s| s.pod == pod && s.time <= now).collect();
        mine.sort_by_key(|s| s.time);
        let Some(newest) = mine.last() else { continue };
        if let Some(p) = newest.counters.alert_precision {
            precisions.push(p);
        }
        let base = mine
            .iter()
            .rev()
            .find(|s| elapsed_seconds(s.time, now) >= window_seconds)
            .or(mine.first())
            .copied()
            .filter(|b| b.time < newest.time);
        let Some(base) = base else { continue };
        let (n, b) = (&newest.counters, &base.counters);
        out.requests += increase(b.requests, n.requests);
        out.server_errors += increase(b.server_errors, n.server_errors);
        out.consumed += increase(b.consumed, n.consumed);
        out.inference_errors += increase(b.inference_errors, n.inference_errors);
        out.latency_buckets =
            add_buckets(&out.latency_buckets, &bucket_increases(&b.latency_buckets, &n.latency_buckets));
        out.pods += 1;
        out.span_seconds = out.span_seconds.max(elapsed_seconds(base.time, newest.time));
    }
    if !precisions.is_empty() {
        out.alert_precision = Some(precisions.iter().sum::<f64>() / precisions.len() as f64);
    }
    out
}

fn increase(before: f64, after: f64) -> f64 {
    if after >= before { after - before } else { after }
}

fn bucket_increases(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    // A reset shows in the total (+Inf) count going down: then every bucket restarted.
    let reset = total(after) < total(before);
    after
        .iter()
        .map(|&(le, count)| {
            let earlier = if reset { 0.0 } else { before.iter().find(|(b, _)| *b == le).map_or(0.0, |(_, c)| *c) };
            (le, increase(earlier, count))
        })
        .collect()
}

fn add_buckets(a: &[(f64, f64)], b: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = a.to_vec();
    for &(le, count) in b {
        match out.iter_mut().find(|(l, _)| *l == le) {
            Some(slot) => slot.1 += count,
            None => out.push((le, count)),
        }
    }
    out.sort_by(|x, y| x.0.total_cmp(&y.0));
    out
}

fn total(buckets: &[(f64, f64)]) -> f64 {
    buckets.iter().find(|(le, _)| le.is_infinite()).or(buckets.last()).map_or(0.0, |(_, c)| *c)
}

/// Prometheus' `histogram_quantile(q, buckets)` on cumulative bucket counts: `None` without
/// observations. Linear interpolation inside the bucket holding the rank; a rank in the `+Inf`
/// bucket answers the highest finite bound.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let mut sorted = buckets.to_vec();
    sorted.sort_by(|x, y| x.0.total_cmp(&y.0));
    let count = total(&sorted);
    // `count` may be NaN (a malformed scrape): only a positive count has quantiles.
    if count.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * count;
    let mut previous = (0.0, 0.0);
    for (i, &(le, cumulative)) in sorted.iter().enumerate() {
        if cumulative >= rank {
            if le.is_infinite() {
                return Some(if i == 0 { 0.0 } else { sorted[i - 1].0 });
            }
            let (start, below) = if i == 0 && le <= 0.0 { (le, 0.0) } else { previous };
            let in_bucket = cumulative - below;
            if in_bucket <= 0.0 {
                return Some(le);
            }
            return Some(start + (le - start) * (rank - below) / in_bucket);
        }
        previous = (le, cumulative);
    }
    sorted.iter().rev().find(|(le, _)| le.is_finite()).map(|(le, _)| *le)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn sample(pod: &str, t: i64, requests: f64, errors: f64) -> Sample {
        Sample {
            pod: pod.into(),
            time: at(t),
            counters: Counters { requests, server_errors: errors, ..Counters::default() },
        }
    }

    #[test]
    fn increases_over_the_window_summed_over_pods() {
        let samples = [
            sample("a", 0, 100.0, 0.0),
            sample("a", 30, 200.0, 5.0),
            sample("a", 60, 400.0, 50.0),
            sample("b", 30, 10.0, 0.0),
            sample("b", 60, 30.0, 10.0),
        ];
        let inc = increases(&samples, 30.0, at(60));
        // a: 400-200 (the sample 30 s old), b: 30-10.
        assert_eq!((inc.requests, inc.server_errors), (220.0, 55.0));
        assert_eq!(inc.pods, 2);
        // A window longer than the history uses the oldest sample.
        let inc = increases(&samples, 600.0, at(60));
        assert_eq!(inc.requests, 320.0);
    }

    #[test]
    fn a_restarted_pod_counts_from_zero_and_a_lone_sample_counts_nothing() {
        let samples = [sample("a", 0, 500.0, 0.0), sample("a", 15, 20.0, 4.0), sample("c", 15, 99.0, 9.0)];
        let inc = increases(&samples, 60.0, at(15));
        assert_eq!((inc.requests, inc.server_errors, inc.pods), (20.0, 4.0, 1));
        assert_eq!(increases(&[sample("c", 15, 99.0, 9.0)], 60.0, at(15)).pods, 0);
    }

    #[test]
    fn samples_after_now_are_ignored() {
        let samples = [sample("a", 0, 0.0, 0.0), sample("a", 10, 10.0, 0.0), sample("a", 20, 99.0, 0.0)];
        assert_eq!(increases(&samples, 60.0, at(10)).requests, 10.0);
    }

    #[test]
    fn quantiles_like_prometheus() {
        let inf = f64::INFINITY;
        // 100 observations: 50 ≤ 0.1, 90 ≤ 0.5, 100 ≤ 1.
        let buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (inf, 100.0)];
        assert_eq!(histogram_quantile(0.5, &buckets), Some(0.1));
        let p95 = histogram_quantile(0.95, &buckets).unwrap();
        assert!((p95 - 0.75).abs() < 1e-12, "{p95}");
        let p25 = histogram_quantile(0.25, &buckets).unwrap();
        assert!((p25 - 0.05).abs() < 1e-12, "{p25}");
        // Rank in +Inf: the highest finite bound.
        assert_eq!(histogram_quantile(0.99, &[(0.1, 10.0), (inf, 100.0)]), Some(0.1));
        assert_eq!(histogram_quantile(0.95, &[(0.1, 0.0), (inf, 0.0)]), None);
        assert_eq!(histogram_quantile(0.95, &[]), None);
    }

    #[test]
    fn bucket_increases_are_summed_per_bound() {
        let inf = f64::INFINITY;
        let a0 = Counters { latency_buckets: vec![(0.1, 10.0), (1.0, 10.0), (inf, 10.0)], ..Counters::default() };
        let a1 = Counters { latency_buckets: vec![(0.1, 10.0), (1.0, 30.0), (inf, 30.0)], ..Counters::default() };
        let samples = [
            Sample { pod: "a".into(), time: at(0), counters: a0 },
            Sample { pod: "a".into(), time: at(15), counters: a1 },
        ];
        let inc = increases(&samples, 60.0, at(15));
        assert_eq!(inc.latency_buckets, vec![(0.1, 0.0), (1.0, 20.0), (inf, 20.0)]);
        let p95 = histogram_quantile(0.95, &inc.latency_buckets).unwrap();
        assert!((p95 - (0.1 + 0.9 * 0.95)).abs() < 1e-12, "{p95}");
    }
}
