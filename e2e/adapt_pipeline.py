"""Rewrites examples/pipeline.yaml (as JSON on stdin) into the end-to-end test's pipeline.

Kept: products, topic names, monitoring. Changed for a hermetic test cluster:
- the source: the recording of a ConfigMap, replayed in a loop ten times faster than recorded
  (no internet access needed);
- Kafka: the in-cluster broker, plaintext, replication factor 1, topics through the Admin API
  or as Strimzi KafkaTopics, deleted with the pipeline;
- the model: the ML model bundled in the workload image (no registry);
- rollback checks every 10 s over 30 s (the test breaks the model and waits for the rollback);
- autoscaling off (the test turns it on once it has made a backlog);
- one replica per workload, default resources; the workload image when given.

Environment: E2E_NAMESPACE, E2E_TOPICS (admin or strimzi), E2E_BOOTSTRAP, E2E_STRIMZI_CLUSTER
(strimzi), E2E_RECORDING_CONFIGMAP and E2E_RECORDING_KEY, optional WORKLOAD_IMAGE.
"""

import json
import os
import sys


def main() -> int:
    pipeline = json.load(sys.stdin)
    env = os.environ
    pipeline["metadata"]["namespace"] = env["E2E_NAMESPACE"]
    spec = pipeline["spec"]

    spec["source"] = {
        "type": "replay",
        "replay": {
            "speed": "10",
            "recording": {"configMap": {"name": env["E2E_RECORDING_CONFIGMAP"], "key": env["E2E_RECORDING_KEY"]}},
        },
    }

    kafka = spec["kafka"]
    for key in ("authSecretRef", "saslMechanism", "caFromSecret", "strimziCluster"):
        kafka.pop(key, None)
    kafka.update(
        bootstrapServers=env["E2E_BOOTSTRAP"],
        securityProtocol="PLAINTEXT",
        partitions=3,
        replicationFactor=1,
        deletionPolicy="Delete",
    )
    topics = env.get("E2E_TOPICS", "admin")
    if topics == "strimzi":
        kafka["topicManagement"] = "strimzi"
        kafka["strimziCluster"] = env["E2E_STRIMZI_CLUSTER"]
    elif topics == "admin":
        kafka["topicManagement"] = "admin"
    else:
        print(f"E2E_TOPICS must be admin or strimzi, not {topics!r}", file=sys.stderr)
        return 2

    spec["model"] = {"variant": "ml"}
    spec["workloads"] = {name: {"replicas": 1} for name in ("ingestor", "featurizer", "predictor", "api")}
    spec["autoscaling"] = {"enabled": False}
    spec["rollback"] = {
        "enabled": True,
        "intervalSeconds": 10,
        "windowSeconds": 30,
        "failureThreshold": 2,
        "notReadyGraceSeconds": 120,
        "recovery": "Manual",
    }
    # No Prometheus in the test cluster: the operator scrapes the pods itself.
    spec.setdefault("monitoring", {}).pop("prometheusUrl", None)

    image = env.get("WORKLOAD_IMAGE", "")
    if image:
        repository, _, tag = image.rpartition(":")
        spec["image"] = {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"}
    json.dump(pipeline, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
