//! Leader election on a coordination.k8s.io Lease, against the mock API server.

use spikewatch_operator::fixtures::{self, ApiServer};
use spikewatch_operator::leader::{LeaderElector, LeaseConfig};

fn elector(client: kube::Client, identity: &str) -> LeaderElector {
    LeaderElector::new(
        client,
        LeaseConfig::new("spikewatch-operator", fixtures::NAMESPACE, identity),
    )
}

#[tokio::test]
async fn the_first_replica_creates_the_lease_and_keeps_renewing_it() {
    let (client, server) = ApiServer::start();
    let a = elector(client, "pod-a");

    assert!(
        a.try_acquire_or_renew().await.unwrap(),
        "no Lease yet: created, we lead"
    );
    assert!(
        a.try_acquire_or_renew().await.unwrap(),
        "our Lease: renewed"
    );

    let lease = server
        .get(&fixtures::path(
            "coordination.k8s.io/v1",
            "leases",
            "spikewatch-operator",
        ))
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "pod-a");
    assert_eq!(lease["spec"]["leaseTransitions"], 0);
}

#[tokio::test]
async fn a_second_replica_stays_on_standby_until_the_leader_releases_the_lease() {
    let (client, server) = ApiServer::start();
    let a = elector(client.clone(), "pod-a");
    let b = elector(client, "pod-b");
    assert!(a.try_acquire_or_renew().await.unwrap());

    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "pod-a holds a live Lease"
    );

    a.release().await;
    assert!(
        b.try_acquire_or_renew().await.unwrap(),
        "a released Lease is taken over at once"
    );
    let lease = server
        .get(&fixtures::path(
            "coordination.k8s.io/v1",
            "leases",
            "spikewatch-operator",
        ))
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "pod-b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert!(
        !a.try_acquire_or_renew().await.unwrap(),
        "the old leader does not come back while pod-b renews"
    );
}
