//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it.
//!
//! - The holder renews the Lease every retry period; every write carries the `resourceVersion`
//!   it read, so two replicas racing for a free Lease cannot both win (the loser gets 409).
//! - Expiry is judged by observation, never by comparing `renewTime` (written with another
//!   node's clock) with the local clock: a standby remembers, on its own monotonic clock, when it
//!   last saw the Lease record change (holder, `renewTime`, `resourceVersion`), and takes over
//!   only once the record has stayed the same for `leaseDurationSeconds`.
//! - The leader counts its term from the moment it *sent* its last successful renewal, on its
//!   monotonic clock: no standby can see that renewal before it was sent, so none can take over
//!   before `sent + leaseDuration`. [`lead_while_elected`] stops the leader's work before then,
//!   aborting it if it does not stop on its own.
//!
//! The crates on crates.io (kube-leader-election, kube-lease-manager) compare the remote
//! `renewTime` with the local clock, which clock skew between nodes turns into two leaders or
//! none; hence this module.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// Who we are in `holderIdentity` (the pod name).
    pub identity: String,
    /// How long a Lease stays ours without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps leading while renewals fail before it steps down. Shorter
    /// than `lease_duration`: the difference is the time its work gets to stop.
    pub renew_deadline: Duration,
    /// Pause between acquisition attempts and between renewals.
    pub retry_period: Duration,
    /// How long a stopping leader's work may take to finish (shutdown, or after losing the Lease
    /// while it is still ours); it is aborted after that, or earlier when the Lease runs out.
    pub stop_grace: Duration,
}

impl LeaseConfig {
    pub fn new(name: impl Into<String>, namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaseConfig {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            stop_grace: Duration::from_secs(20),
        }
    }
}

/// Margin before the end of our term by which the leader's work must have stopped: a request
/// sent just before the end may still reach the API server a moment later.
const STOP_MARGIN: Duration = Duration::from_secs(1);

/// What to do with the Lease as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// No Lease object yet: create it with us as holder.
    Create,
    /// We hold it: bump `renewTime`.
    Renew,
    /// Free, or unchanged for a whole lease duration: take it over (`leaseTransitions + 1`).
    TakeOver,
    /// Someone else holds a Lease that changed within the last lease duration.
    HeldBy(String),
}

/// The part of a Lease whose change shows that its holder is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: String,
    pub resource_version: Option<String>,
    pub renew_time: Option<String>,
    pub lease_duration: Duration,
}

impl LeaseRecord {
    pub fn from_lease(lease: &Lease, default_duration: Duration) -> LeaseRecord {
        let spec = lease.spec.clone().unwrap_or_default();
        LeaseRecord {
            holder: spec.holder_identity.unwrap_or_default(),
            resource_version: lease.metadata.resource_version.clone(),
            renew_time: spec.renew_time.map(|t| t.0.to_string()),
            lease_duration: spec
                .lease_duration_seconds
                .filter(|s| *s > 0)
                .map_or(default_duration, |s| Duration::from_secs(s as u64)),
        }
    }
}

/// When this replica last saw the Lease record change, on its own monotonic clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub record: LeaseRecord,
    pub since: Instant,
}

impl Observation {
    /// Folds a fresh read into what was observed: a changed record restarts the clock.
    pub fn update(previous: Option<Observation>, record: LeaseRecord, now: Instant) -> Observation {
        match previous {
            Some(previous) if previous.record == record => previous,
            _ => Observation { record, since: now },
        }
    }

    /// Whether the record has stayed unchanged for a whole lease duration.
    pub fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) >= self.record.lease_duration
    }
}

/// The decision on a Lease read just now, given what we observed of it (already updated with
/// this read).
pub fn lease_decision(observation: Option<&Observation>, identity: &str, now: Instant) -> LeaseDecision {
    let Some(observation) = observation else {
        return LeaseDecision::Create;
    };
    let holder = observation.record.holder.as_str();
    if holder == identity {
        LeaseDecision::Renew
    } else if holder.is_empty() || observation.expired(now) {
        LeaseDecision::TakeOver
    } else {
        LeaseDecision::HeldBy(holder.to_string())
    }
}

pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Mutex<Option<Observation>>,
    /// When our current term ends, if we lead: the send time of the last successful renewal
    /// plus the lease duration.
    term_end: Mutex<Option<Instant>>,
}

impl LeaderElector {
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: Mutex::new(None),
            term_end: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// The end of our current term (no standby can take over before it), when we lead.
    pub fn term_end(&self) -> Option<Instant> {
        *self.term_end.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One round: acquire or renew. `Ok(true)` when we hold the Lease afterwards; `Ok(false)`
    /// when someone else does or we lost a race.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        // Taken before the request: the term can only be shorter than what it really is.
        let sent = Instant::now();
        let current = self.api.get_opt(&self.config.name).await?;
        let observation = current.as_ref().map(|lease| {
            let record = LeaseRecord::from_lease(lease, self.config.lease_duration);
            let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
            let updated = Observation::update(observed.take(), record, Instant::now());
            *observed = Some(updated.clone());
            updated
        });
        let decision = lease_decision(observation.as_ref(), &self.config.identity, Instant::now());
        let written = match decision {
            LeaseDecision::HeldBy(_) => {
                self.end_term();
                return Ok(false);
            }
            LeaseDecision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.config.name.clone()), ..ObjectMeta::default() },
                    spec: Some(self.held_spec(Timestamp::now(), 0)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            LeaseDecision::Renew | LeaseDecision::TakeOver => {
                let Some(mut lease) = current else {
                    return Ok(false);
                };
                let old = lease.spec.clone().unwrap_or_default();
                let now = Timestamp::now();
                let mut spec = if decision == LeaseDecision::Renew {
                    self.held_spec(old.acquire_time.map_or(now, |t| t.0), old.lease_transitions.unwrap_or(0))
                } else {
                    self.held_spec(now, old.lease_transitions.unwrap_or(0) + 1)
                };
                spec.renew_time = Some(MicroTime(now));
                lease.spec = Some(spec);
                // `lease.metadata.resource_version` is the one we read: a concurrent writer makes this a 409.
                self.api.replace(&self.config.name, &PostParams::default(), &lease).await
            }
        };
        match written {
            Ok(lease) => {
                let record = LeaseRecord::from_lease(&lease, self.config.lease_duration);
                *self.observed.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Observation { record, since: Instant::now() });
                *self.term_end.lock().unwrap_or_else(|p| p.into_inner()) = Some(sent + self.config.lease_duration);
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                self.end_term();
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn end_term(&self) {
        *self.term_end.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Gives the Lease up on shutdown so a standby replica takes over at once instead of after
    /// `leaseDurationSeconds`. Best effort: errors are logged, not returned.
    pub async fn release(&self) {
        self.end_term();
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
        if let Err(e) = self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
            tracing::warn!(error = %e, "could not release the leader Lease");
        }
    }

    fn held_spec(&self, acquired: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs().try_into().unwrap_or(15)),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(Timestamp::now())),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }
}

/// Standby → leader → (lost) standby → … until `shutdown`: `lead` runs only while this replica
/// holds the Lease. `lead` gets a future that resolves when it should stop; whatever it has not
/// finished by the end of our term (or `stop_grace`) is aborted, so it never writes after a
/// standby may have taken over. On shutdown the Lease is renewed while `lead` stops, then
/// released. `on_leading` hears every change of leadership (for the metric).
pub async fn lead_while_elected<L, F>(
    elector: &LeaderElector,
    mut shutdown: watch::Receiver<bool>,
    on_leading: impl Fn(bool),
    mut lead: L,
) where
    L: FnMut(tokio::sync::oneshot::Receiver<()>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let config = elector.config().clone();
    tracing::info!(lease = %config.name, namespace = %config.namespace, identity = %config.identity, "waiting for leadership");
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = acquire(elector) => {}
        }
        tracing::info!(identity = %config.identity, "acquired the leader Lease; starting the controller");
        on_leading(true);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut work = tokio::spawn(lead(stop_rx));
        let outcome = hold(elector, &mut shutdown, &mut work).await;
        let _ = stop_tx.send(());
        if outcome != Held::WorkEnded {
            stop(elector, work, outcome == Held::Shutdown).await;
        }
        on_leading(false);
        match outcome {
            Held::Shutdown => {
                elector.release().await;
                return;
            }
            Held::Lost => tracing::warn!("lost the leader Lease; controller stopped, back to standby"),
            Held::WorkEnded => {
                tracing::error!("the controller stopped on its own; releasing the Lease for another replica");
                elector.release().await;
            }
        }
    }
}

async fn acquire(elector: &LeaderElector) {
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
        }
        tokio::time::sleep(elector.config().retry_period).await;
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Held {
    Lost,
    Shutdown,
    WorkEnded,
}

/// Renews every retry period; gives up when another replica holds the Lease or renewals have
/// failed until the renew deadline.
async fn hold(
    elector: &LeaderElector,
    shutdown: &mut watch::Receiver<bool>,
    work: &mut tokio::task::JoinHandle<()>,
) -> Held {
    let config = elector.config();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return Held::Shutdown,
            _ = &mut *work => return Held::WorkEnded,
            () = tokio::time::sleep(config.retry_period) => {}
        }
        match elector.try_acquire_or_renew().await {
            Ok(true) => {}
            Ok(false) => return Held::Lost,
            Err(e) => {
                tracing::warn!(error = %e, "renewing the leader Lease failed");
                let renewed_until = elector.term_end().map(|end| end - config.lease_duration + config.renew_deadline);
                if renewed_until.is_none_or(|deadline| Instant::now() >= deadline) {
                    return Held::Lost;
                }
            }
        }
    }
}

/// Lets `work` finish within the grace period and before the end of our term (renewed meanwhile
/// when `renew` is set, which is the case on shutdown, while the Lease is still ours); aborts
/// it at whichever comes first.
async fn stop(elector: &LeaderElector, mut work: tokio::task::JoinHandle<()>, renew: bool) {
    let config = elector.config();
    let grace_end = Instant::now() + config.stop_grace;
    loop {
        let term_end = elector.term_end().map_or_else(Instant::now, |end| end - STOP_MARGIN);
        let deadline = grace_end.min(term_end);
        let next_renewal = Instant::now() + config.retry_period;
        tokio::select! {
            _ = &mut work => return,
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!("the controller did not stop in time; aborting it before another replica may lead");
                work.abort();
                let _ = work.await;
                return;
            }
            () = tokio::time::sleep_until(next_renewal), if renew => {
                match elector.try_acquire_or_renew().await {
                    Ok(true) => {}
                    Ok(false) => {
                        work.abort();
                        let _ = work.await;
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "renewing the leader Lease while stopping failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIFTEEN: Duration = Duration::from_secs(15);

    fn record(holder: &str, version: &str) -> LeaseRecord {
        LeaseRecord {
            holder: holder.into(),
            resource_version: Some(version.into()),
            renew_time: Some("2000-01-01T00:00:00Z".into()),
            lease_duration: FIFTEEN,
        }
    }

    #[test]
    fn no_lease_is_created() {
        assert_eq!(lease_decision(None, "me", Instant::now()), LeaseDecision::Create);
    }

    #[test]
    fn our_lease_is_renewed() {
        let now = Instant::now();
        let seen = Observation::update(None, record("me", "1"), now);
        assert_eq!(lease_decision(Some(&seen), "me", now), LeaseDecision::Renew);
    }

    #[test]
    fn a_lease_that_keeps_changing_is_respected_whatever_its_renew_time_says() {
        // The holder's clock is 26 years behind ours: its renewTime looks long expired.
        let start = Instant::now();
        let mut seen = Observation::update(None, record("other", "1"), start);
        for (step, version) in [(10, "2"), (20, "3"), (30, "4")] {
            let now = start + Duration::from_secs(step);
            seen = Observation::update(Some(seen), record("other", version), now);
            assert_eq!(lease_decision(Some(&seen), "me", now), LeaseDecision::HeldBy("other".into()));
        }
    }

    #[test]
    fn a_lease_unchanged_for_a_whole_duration_is_taken_over() {
        let start = Instant::now();
        let seen = Observation::update(None, record("other", "1"), start);
        let later = start + Duration::from_secs(14);
        let seen = Observation::update(Some(seen), record("other", "1"), later);
        assert_eq!(lease_decision(Some(&seen), "me", later), LeaseDecision::HeldBy("other".into()));
        let expired = start + FIFTEEN;
        let seen = Observation::update(Some(seen), record("other", "1"), expired);
        assert_eq!(lease_decision(Some(&seen), "me", expired), LeaseDecision::TakeOver);
    }

    #[test]
    fn a_released_lease_is_taken_over_at_once() {
        let now = Instant::now();
        let seen = Observation::update(None, record("", "7"), now);
        assert_eq!(lease_decision(Some(&seen), "me", now), LeaseDecision::TakeOver);
    }
}
