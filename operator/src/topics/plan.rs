//! What to change on the broker so its topics match the pipeline: a pure function of the
//! desired topics and the observed ones.
//!
//! Kafka can add partitions to a topic but never remove them (the keys already hashed onto a
//! partition would move), so a desired count below the observed one is reported, not attempted.
//! The replication factor of an existing topic is left alone: changing it is a partition
//! reassignment, an operation for a cluster administrator rather than a per-pipeline reconcile.

use std::collections::BTreeMap;

/// One topic as the pipeline wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    /// `retention.ms`; `None` leaves the broker's default.
    pub retention_ms: Option<i64>,
}

/// One topic as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTopic {
    pub name: String,
    pub partitions: i32,
    /// Effective `retention.ms` (`None` when the broker did not say).
    pub retention_ms: Option<i64>,
}

/// A change the executor makes on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicChange {
    Create(TopicSpec),
    GrowPartitions { name: String, from: i32, to: i32 },
    SetRetention { name: String, from: Option<i64>, to: i64 },
}

impl TopicChange {
    pub fn topic(&self) -> &str {
        match self {
            TopicChange::Create(spec) => &spec.name,
            TopicChange::GrowPartitions { name, .. } | TopicChange::SetRetention { name, .. } => name,
        }
    }
}

impl std::fmt::Display for TopicChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicChange::Create(spec) => write!(
                f,
                "created topic {} ({} partitions, replication factor {})",
                spec.name, spec.partitions, spec.replication_factor
            ),
            TopicChange::GrowPartitions { name, from, to } => {
                write!(f, "grew topic {name} from {from} to {to} partitions")
            }
            TopicChange::SetRetention { name, to, .. } => {
                write!(f, "set retention.ms={to} on topic {name}")
            }
        }
    }
}

/// A desired partition count below the observed one: Kafka cannot shrink a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShrinkRefused {
    pub name: String,
    pub observed: i32,
    pub desired: i32,
}

impl std::fmt::Display for ShrinkRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "topic {} has {} partitions, the spec asks for {}: Kafka cannot remove partitions, keeping {}",
            self.name, self.observed, self.desired, self.observed
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPlan {
    pub changes: Vec<TopicChange>,
    pub shrink_refused: Vec<ShrinkRefused>,
}

impl TopicPlan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Compares desired with observed topics and lists the changes, in the order of `desired`.
pub fn plan(desired: &[TopicSpec], observed: &[ObservedTopic]) -> TopicPlan {
    let observed: BTreeMap<&str, &ObservedTopic> = observed.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut plan = TopicPlan::default();
    for want in desired {
        let Some(have) = observed.get(want.name.as_str()) else {
            plan.changes.push(TopicChange::Create(want.clone()));
            continue;
        };
        if want.partitions > have.partitions {
            plan.changes.push(TopicChange::GrowPartitions {
                name: want.name.clone(),
                from: have.partitions,
                to: want.partitions,
            });
        } else if want.partitions < have.partitions {
            plan.shrink_refused.push(ShrinkRefused {
                name: want.name.clone(),
                observed: have.partitions,
                desired: want.partitions,
            });
        }
        if let Some(retention) = want.retention_ms
            && have.retention_ms != Some(retention)
        {
            plan.changes.push(TopicChange::SetRetention {
                name: want.name.clone(),
                from: have.retention_ms,
                to: retention,
            });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, partitions: i32, retention_ms: Option<i64>) -> TopicSpec {
        TopicSpec { name: name.into(), partitions, replication_factor: 1, retention_ms }
    }

    fn seen(name: &str, partitions: i32, retention_ms: Option<i64>) -> ObservedTopic {
        ObservedTopic { name: name.into(), partitions, retention_ms }
    }

    #[test]
    fn missing_topics_are_created() {
        let plan = plan(&[spec("ticks.raw", 3, None)], &[]);
        assert_eq!(plan.changes, vec![TopicChange::Create(spec("ticks.raw", 3, None))]);
        assert!(plan.shrink_refused.is_empty());
    }

    #[test]
    fn matching_topics_need_nothing() {
        let plan = plan(&[spec("a", 3, Some(60_000))], &[seen("a", 3, Some(60_000)), seen("other", 1, None)]);
        assert!(plan.is_empty(), "{plan:?}");
        assert!(plan.shrink_refused.is_empty());
    }

    #[test]
    fn partitions_only_grow() {
        let plan = plan(&[spec("a", 6, None), spec("b", 2, None)], &[seen("a", 3, None), seen("b", 4, None)]);
        assert_eq!(plan.changes, vec![TopicChange::GrowPartitions { name: "a".into(), from: 3, to: 6 }]);
        assert_eq!(plan.shrink_refused, vec![ShrinkRefused { name: "b".into(), observed: 4, desired: 2 }]);
    }

    #[test]
    fn retention_is_set_when_it_differs_and_left_alone_when_unspecified() {
        let plan =
            plan(&[spec("a", 3, Some(3_600_000)), spec("b", 3, None)], &[seen("a", 3, None), seen("b", 3, Some(5))]);
        assert_eq!(plan.changes, vec![TopicChange::SetRetention { name: "a".into(), from: None, to: 3_600_000 }]);
    }
}
