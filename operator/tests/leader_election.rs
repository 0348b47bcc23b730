//! Leader election on a coordination.k8s.io Lease, against the mock API server.

use spikewatch_operator::fixtures::{self, ApiServer};
use spikewatch_operator::leader::{LeaderElector, LeaseConfig};

fn elector(client: kube::Client, identity: &str) -> LeaderElector {
    LeaderElector::new(client, LeaseConfig::new("spikewatch-operator", fixtures::NAMESPACE, identity))
}

#[tokio::test]
async fn the_first_replica_creates_the_lease_and_keeps_renewing_it() {
    let (client, server) = ApiServer::start();
    let a = elector(client, "pod-a");

    assert!(a.try_acquire_or_renew().await.unwrap(), "no Lease yet: created, we lead");
    assert!(a.try_acquire_or_renew().await.unwrap(), "our Lease: renewed");

    let lease = server.get(&fixtures::path("coordination.k8s.io/v1", "leases", "spikewatch-operator")).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "pod-a");
    assert_eq!(lease["spec"]["leaseTransitions"], 0);
}

#[tokio::test]
async fn a_second_replica_stays_on_standby_until_the_leader_releases_the_lease() {
    let (client, server) = ApiServer::start();
    let a = elector(client.clone(), "pod-a");
    let b = elector(client, "pod-b");
    assert!(a.try_acquire_or_renew().await.unwrap());

    assert!(!b.try_acquire_or_renew().await.unwrap(), "pod-a holds a live Lease");

    a.release().await;
    assert!(b.try_acquire_or_renew().await.unwrap(), "a released Lease is taken over at once");
    let lease = server.get(&fixtures::path("coordination.k8s.io/v1", "leases", "spikewatch-operator")).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "pod-b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert!(!a.try_acquire_or_renew().await.unwrap(), "the old leader does not come back while pod-b renews");
}

// --------------------------------------------------------------------------------------------
// Expiry by observation, and a leader that stops before anyone else may start. These run on
// tokio's paused clock: time only moves when every task waits, so the order of events is exact
// however slow the machine is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use spikewatch_operator::leader::lead_while_elected;
use tokio::time::Instant;

const LEASE: &str = "spikewatch-operator";

fn lease_path() -> String {
    fixtures::path("coordination.k8s.io/v1", "leases", LEASE)
}

/// Rewrites the stored Lease's `renewTime`, as a holder with a skewed clock would have written it.
fn set_renew_time(server: &ApiServer, renew_time: &str) {
    let mut lease = server.get(&lease_path()).unwrap();
    lease["spec"]["renewTime"] = json!(renew_time);
    server.insert(&lease_path(), lease);
}

fn holder(server: &ApiServer) -> Option<String> {
    server.get(&lease_path()).and_then(|l| l["spec"]["holderIdentity"].as_str().map(String::from))
}

#[tokio::test(start_paused = true)]
async fn a_standby_judges_expiry_by_observed_changes_never_by_the_holders_clock() {
    let (client, server) = ApiServer::start();
    let a = elector(client.clone(), "pod-a");
    let b = elector(client, "pod-b");
    assert!(a.try_acquire_or_renew().await.unwrap());
    // pod-a's clock is 26 years behind: compared with ours, its Lease expired long ago.
    set_renew_time(&server, "2000-01-01T00:00:00.000000Z");
    assert!(!b.try_acquire_or_renew().await.unwrap(), "first sight of a held Lease");
    for _ in 0..6 {
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(a.try_acquire_or_renew().await.unwrap(), "pod-a renews");
        set_renew_time(&server, "2000-01-01T00:00:00.000000Z");
        assert!(
            !b.try_acquire_or_renew().await.unwrap(),
            "a Lease that keeps changing is alive, whatever its renewTime says"
        );
    }

    // pod-a stops renewing; its clock is now 74 years ahead of ours.
    set_renew_time(&server, "2100-01-01T00:00:00.000000Z");
    assert!(!b.try_acquire_or_renew().await.unwrap());
    tokio::time::advance(Duration::from_secs(14)).await;
    assert!(!b.try_acquire_or_renew().await.unwrap(), "unchanged for 14 s of a 15 s lease");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(
        b.try_acquire_or_renew().await.unwrap(),
        "unchanged for a whole lease duration: taken over, renewTime in the future or not"
    );
    assert_eq!(holder(&server).as_deref(), Some("pod-b"));
}

/// What a replica's controller did: when it wrote, and whether it finished on its own.
#[derive(Default)]
struct WorkLog {
    writes: Vec<Instant>,
    finished: bool,
}

/// A controller that writes every 500 ms; once told to stop, it keeps writing for `wind_down`
/// (a reconcile in flight) and then returns. `None`: it never stops on its own.
fn controller(
    log: Arc<Mutex<WorkLog>>,
    wind_down: Option<Duration>,
) -> impl FnMut(tokio::sync::oneshot::Receiver<()>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    move |mut stop| {
        let log = log.clone();
        Box::pin(async move {
            let mut stopping_until: Option<Instant> = None;
            loop {
                log.lock().unwrap().writes.push(Instant::now());
                if stopping_until.is_none() && stop.try_recv().is_ok() {
                    match wind_down {
                        Some(d) => stopping_until = Some(Instant::now() + d),
                        None => stopping_until = Some(Instant::now() + Duration::from_secs(3600)),
                    }
                }
                if stopping_until.is_some_and(|until| Instant::now() >= until) {
                    log.lock().unwrap().finished = true;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }
}

/// Tries to become leader every retry period until it succeeds; returns when.
async fn standby_until_leader(b: &spikewatch_operator::leader::LeaderElector) -> Instant {
    loop {
        if b.try_acquire_or_renew().await.unwrap_or(false) {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_stops_its_controller_before_a_standby_can_take_over() {
    let (client, server) = ApiServer::start();
    let a = Arc::new(elector(client.clone(), "pod-a"));
    let b = elector(client, "pod-b");
    let log = Arc::new(Mutex::new(WorkLog::default()));
    let leading = Arc::new(Mutex::new(vec![]));
    let (_shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let replica_a = tokio::spawn({
        let (a, log, leading) = (a.clone(), log.clone(), leading.clone());
        async move {
            let on_leading = move |is: bool| leading.lock().unwrap().push(is);
            // A reconcile that never returns: only the abort at the end of the term stops it.
            lead_while_elected(&a, shutdown, on_leading, controller(log, None)).await
        }
    });
    while holder(&server).as_deref() != Some("pod-a") {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;

    // pod-a's renewals stop reaching the API server (its node is cut off); reads still work.
    server.refuse(|request| {
        request.method == "PUT"
            && request.body.pointer("/spec/holderIdentity").and_then(|h| h.as_str()) == Some("pod-a")
    });
    let took_over = standby_until_leader(&b).await;

    let log = log.lock().unwrap();
    let last_write = *log.writes.last().unwrap();
    assert!(last_write < took_over, "pod-a's controller wrote {:?} after pod-b took over", last_write - took_over);
    assert!(!log.finished, "the stuck reconcile was aborted, not finished");
    assert_eq!(*leading.lock().unwrap(), [true, false], "pod-a stepped down");
    replica_a.abort();
}

#[tokio::test(start_paused = true)]
async fn on_shutdown_the_leader_keeps_its_lease_while_the_controller_finishes_then_releases_it() {
    let (client, server) = ApiServer::start();
    let a = Arc::new(elector(client.clone(), "pod-a"));
    let b = elector(client, "pod-b");
    let log = Arc::new(Mutex::new(WorkLog::default()));
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let replica_a = tokio::spawn({
        let (a, log) = (a.clone(), log.clone());
        // The reconciles in flight need 18 s to finish: longer than a lease duration (15 s),
        // within the stop grace (20 s).
        async move { lead_while_elected(&a, shutdown, |_| {}, controller(log, Some(Duration::from_secs(18)))).await }
    });
    while holder(&server).as_deref() != Some("pod-a") {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let standby = async { standby_until_leader(&b).await };
    let stop = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        shutdown_tx.send(true).unwrap();
        replica_a.await.unwrap();
        Instant::now()
    };
    let (took_over, stopped) = tokio::join!(standby, stop);

    let log = log.lock().unwrap();
    assert!(log.finished, "the controller finished its reconciles");
    assert!(*log.writes.last().unwrap() < took_over, "pod-b waited for pod-a's last write");
    assert!(stopped <= took_over, "pod-b took over once pod-a had stopped and released the Lease");
    assert_eq!(holder(&server).as_deref(), Some("pod-b"));
}
