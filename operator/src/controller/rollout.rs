//! Whether a workload's Deployment has finished rolling out its current pod template, judged as
//! `kubectl rollout status` does: the Deployment controller has seen the current generation,
//! every replica runs the new template, no old replica is left, and the new ones are available.
//! Ready pods of an old template do not count: mid-rollout, a workload is not ready.

use kube::api::DynamicObject;

use crate::crd::WorkloadStatus;

/// A Deployment as observed, reduced to what the status and the readiness check need.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedDeployment {
    pub replicas: WorkloadStatus,
    /// `None` when rolled out; otherwise what is still missing, for the condition message.
    pub pending: Option<String>,
}

impl ObservedDeployment {
    pub fn from_object(observed: &DynamicObject) -> ObservedDeployment {
        let int = |pointer: &str| observed.data.pointer(pointer).and_then(|v| v.as_i64());
        let desired = int("/spec/replicas").unwrap_or(1) as i32;
        let replicas = WorkloadStatus {
            replicas: desired,
            ready_replicas: int("/status/readyReplicas").unwrap_or(0) as i32,
            updated_replicas: int("/status/updatedReplicas").unwrap_or(0) as i32,
            available_replicas: int("/status/availableReplicas").unwrap_or(0) as i32,
        };
        let generation = observed.metadata.generation.unwrap_or(0);
        let seen = int("/status/observedGeneration").unwrap_or(0);
        let total = int("/status/replicas").unwrap_or(0) as i32;
        let pending = rollout_pending(generation, seen, total, &replicas);
        ObservedDeployment { replicas, pending }
    }
}

/// What keeps a rollout from being complete, or `None` when it is.
pub fn rollout_pending(generation: i64, observed_generation: i64, total: i32, r: &WorkloadStatus) -> Option<String> {
    if observed_generation < generation {
        return Some(format!(
            "the Deployment controller has not seen generation {generation} yet (observed {observed_generation})"
        ));
    }
    if r.updated_replicas < r.replicas {
        return Some(format!("{} of {} replicas updated", r.updated_replicas, r.replicas));
    }
    if total > r.updated_replicas {
        return Some(format!("{} old replicas pending termination", total - r.updated_replicas));
    }
    if r.available_replicas < r.updated_replicas || r.available_replicas < r.replicas {
        return Some(format!("{} of {} updated replicas available", r.available_replicas, r.replicas));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(replicas: i32, ready: i32, updated: i32, available: i32) -> WorkloadStatus {
        WorkloadStatus { replicas, ready_replicas: ready, updated_replicas: updated, available_replicas: available }
    }

    #[test]
    fn a_finished_rollout_has_every_replica_updated_and_available() {
        assert_eq!(rollout_pending(3, 3, 2, &counts(2, 2, 2, 2)), None);
    }

    #[test]
    fn an_unseen_generation_is_pending_even_with_every_old_pod_ready() {
        let pending = rollout_pending(4, 3, 2, &counts(2, 2, 2, 2)).unwrap();
        assert!(pending.contains("generation 4"), "{pending}");
    }

    #[test]
    fn ready_pods_of_the_old_template_do_not_make_a_rollout_complete() {
        // A surge rollout: two old pods ready, one new pod starting.
        let pending = rollout_pending(2, 2, 3, &counts(2, 2, 1, 2)).unwrap();
        assert_eq!(pending, "1 of 2 replicas updated");
        // Every new pod is up, an old one is still terminating.
        let pending = rollout_pending(2, 2, 3, &counts(2, 3, 2, 3)).unwrap();
        assert_eq!(pending, "1 old replicas pending termination");
        // New pods created but not yet available.
        let pending = rollout_pending(2, 2, 2, &counts(2, 1, 2, 1)).unwrap();
        assert_eq!(pending, "1 of 2 updated replicas available");
    }

    #[test]
    fn a_paused_workload_is_rolled_out_with_zero_replicas() {
        assert_eq!(rollout_pending(5, 5, 0, &counts(0, 0, 0, 0)), None);
    }
}
