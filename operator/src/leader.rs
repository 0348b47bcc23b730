//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it:
//! the holder renews `renewTime` every retry period; another replica takes the Lease over once
//! `renewTime + leaseDurationSeconds` has passed. Every write carries the `resourceVersion` it
//! read, so two replicas racing for an expired Lease cannot both win (the loser gets 409).
//!
//! kube 5 ships no leader-election helper, hence this module.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// Who we are in `holderIdentity` (the pod name).
    pub identity: String,
    /// How long a Lease stays ours without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps leading while renewals fail before it steps down. Shorter
    /// than `lease_duration`, so we stop before anyone else may start.
    pub renew_deadline: Duration,
    /// Pause between acquisition attempts and between renewals.
    pub retry_period: Duration,
}

impl LeaseConfig {
    pub fn new(
        name: impl Into<String>,
        namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        LeaseConfig {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What to do with the Lease as observed, given who we are and the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// No Lease object yet: create it with us as holder.
    Create,
    /// We hold it: bump `renewTime`.
    Renew,
    /// Free or expired: take it over (a new term, `leaseTransitions + 1`).
    TakeOver,
    /// Someone else holds a live Lease.
    HeldBy(String),
}

pub fn lease_decision(
    lease: Option<&LeaseSpec>,
    identity: &str,
    now: Timestamp,
    default_duration: Duration,
) -> LeaseDecision {
    let Some(spec) = lease else {
        return LeaseDecision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == identity {
        return LeaseDecision::Renew;
    }
    if holder.is_empty() {
        return LeaseDecision::TakeOver;
    }
    let duration = spec
        .lease_duration_seconds
        .map(|s| SignedDuration::from_secs(i64::from(s)))
        .unwrap_or_else(|| {
            SignedDuration::try_from(default_duration).unwrap_or(SignedDuration::from_secs(15))
        });
    match &spec.renew_time {
        Some(MicroTime(renewed)) if *renewed + duration > now => {
            LeaseDecision::HeldBy(holder.to_string())
        }
        _ => LeaseDecision::TakeOver,
    }
}

pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

impl LeaderElector {
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// One round: acquire or renew. `Ok(true)` when we hold the Lease afterwards; `Ok(false)`
    /// when someone else does or we lost a race.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = self.api.get_opt(&self.config.name).await?;
        let decision = lease_decision(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.config.identity,
            now,
            self.config.lease_duration,
        );
        let result = match decision {
            LeaseDecision::HeldBy(_) => return Ok(false),
            LeaseDecision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.held_spec(now, now, 0)),
                };
                self.api
                    .create(&PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            LeaseDecision::Renew | LeaseDecision::TakeOver => {
                let mut lease =
                    current.expect("Renew and TakeOver are decided on an existing Lease");
                let old = lease.spec.clone().unwrap_or_default();
                let spec = if decision == LeaseDecision::Renew {
                    let acquired = old.acquire_time.map(|t| t.0).unwrap_or(now);
                    self.held_spec(acquired, now, old.lease_transitions.unwrap_or(0))
                } else {
                    self.held_spec(now, now, old.lease_transitions.unwrap_or(0) + 1)
                };
                lease.spec = Some(spec);
                // `lease.metadata.resource_version` is the one we read: a concurrent writer makes this a 409.
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up on shutdown so a standby replica takes over at once instead of after
    /// `leaseDurationSeconds`. Best effort: errors are logged, not returned.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        if let Err(e) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %e, "could not release the leader Lease");
        }
    }

    fn held_spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(
                self.config
                    .lease_duration
                    .as_secs()
                    .try_into()
                    .unwrap_or(15),
            ),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIFTEEN: Duration = Duration::from_secs(15);

    fn held(holder: &str, renewed: Timestamp, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(seconds),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn no_lease_is_created() {
        assert_eq!(
            lease_decision(None, "me", Timestamp::now(), FIFTEEN),
            LeaseDecision::Create
        );
    }

    #[test]
    fn our_lease_is_renewed() {
        let now = Timestamp::now();
        assert_eq!(
            lease_decision(Some(&held("me", now, 15)), "me", now, FIFTEEN),
            LeaseDecision::Renew
        );
    }

    #[test]
    fn a_live_lease_of_another_replica_is_respected() {
        let now = Timestamp::now();
        let renewed = now - SignedDuration::from_secs(5);
        assert_eq!(
            lease_decision(Some(&held("other", renewed, 15)), "me", now, FIFTEEN),
            LeaseDecision::HeldBy("other".into())
        );
    }

    #[test]
    fn an_expired_or_released_lease_is_taken_over() {
        let now = Timestamp::now();
        let stale = now - SignedDuration::from_secs(16);
        assert_eq!(
            lease_decision(Some(&held("other", stale, 15)), "me", now, FIFTEEN),
            LeaseDecision::TakeOver
        );
        let released = LeaseSpec {
            holder_identity: None,
            ..held("x", now, 15)
        };
        assert_eq!(
            lease_decision(Some(&released), "me", now, FIFTEEN),
            LeaseDecision::TakeOver
        );
    }
}
