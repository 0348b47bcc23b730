"""Rewrites examples/pipeline.yaml (as JSON on stdin) for the end-to-end test cluster.

Kept: products, topics, partitions, workloads, policies. Changed: the Kafka connection (the
in-cluster test broker, plaintext, one replica), the model (the baseline bundled in the
workload image, no registry), the namespace, and optionally the workload image.
"""

import json
import os
import sys

pipeline = json.load(sys.stdin)
pipeline["metadata"]["namespace"] = os.environ["E2E_NAMESPACE"]
spec = pipeline["spec"]
kafka = spec["kafka"]
kafka["bootstrapServers"] = "kafka:9092"
kafka["securityProtocol"] = "PLAINTEXT"
kafka["replicationFactor"] = 1
kafka["deletionPolicy"] = "Delete"
for key in ("authSecretRef", "saslMechanism", "caFromSecret"):
    kafka.pop(key, None)
spec["model"] = {"variant": "baseline"}
image = os.environ.get("WORKLOAD_IMAGE", "")
if image:
    repository, _, tag = image.rpartition(":")
    spec["image"] = {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"}
json.dump(pipeline, sys.stdout)
