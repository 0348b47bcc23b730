#!/usr/bin/env bash
# End-to-end test of the operator on a real cluster, hermetic (no internet access needed by the
# pipeline: it replays a recording):
#   1. the prometheus-operator CRDs, a Kafka (E2E_TOPICS=admin: a plain single-node broker and
#      the Admin API; E2E_TOPICS=strimzi: Strimzi in KRaft mode and KafkaTopic objects), the
#      operator's Helm chart;
#   2. examples/pipeline.yaml adapted (e2e/adapt_pipeline.py), replaying a recording from a
#      ConfigMap: waits for Ready (and Reconciling/Stalled False, monitoring applied);
#   3. predictions flow: the predictors' counter grows; on the Strimzi leg, the tick → prediction
#      latency through the real Kafka (p50, p99; the job summary on GitHub Actions);
#   4. a backlog: the predictor scaled to 0 while the replay runs, then autoscaling turned on:
#      the operator scales the predictor up on the lag it recorded in its ScaledUp event;
#   5. a real fault: model.sourceUri pointed at a model that loads but fails every inference
#      (served over HTTP from the cluster): the operator rolls back to the baseline for that
#      reason (PredictionErrorsAboveThreshold; RolledBack=True, MODEL_VARIANT=baseline, the API
#      reports the baseline) and predictions flow again;
#   6. (admin leg) the README's "Deploy on Kubernetes" kubectl lines, verbatim: a broker and the
#      quickstart pipeline in namespace spikewatch, Ready within the README's timeout.
# On failure it prints (and, with E2E_ARTIFACTS, saves) the pipeline's status, events, and the
# logs of every pod involved.
#
# Needs: KUBECONFIG (any cluster; kind in CI), kubectl, helm (v3 or v4), python3 with `onnx`
# (pip install -r e2e/requirements.txt).
# Optional:
#   E2E_TOPICS            admin (default) or strimzi
#   OPERATOR_IMAGE        operator image repository:tag, default the chart's
#   WORKLOAD_IMAGE        workload image repository:tag, default the chart's workloadImage.tag
#   KIND_CLUSTER          load OPERATOR_IMAGE and WORKLOAD_IMAGE into this kind cluster first
#   E2E_NAMESPACE         namespace of the pipeline and its Kafka, default spikewatch-e2e
#   E2E_TIMEOUT           seconds each wait may take, default 600
#   E2E_ARTIFACTS         directory for the diagnostics of a failed run
#   E2E_KEEP=1            leave everything installed afterwards
#   PROMETHEUS_OPERATOR_VERSION  default v0.86.1; STRIMZI_VERSION default 0.49.0;
#   KAFKA_IMAGE           the plain broker and the latency probe, default apache/kafka:4.1.0 (the
#                         image of examples/kafka/kafka.yaml);
#   MODEL_SERVER_IMAGE    default busybox:1.37.0
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
topics=${E2E_TOPICS:-admin}
namespace=${E2E_NAMESPACE:-spikewatch-e2e}
operator_namespace=spikewatch-system
release=spikewatch-operator
timeout=${E2E_TIMEOUT:-600}
artifacts=${E2E_ARTIFACTS:-}
prometheus_operator_version=${PROMETHEUS_OPERATOR_VERSION:-v0.86.1}
strimzi_version=${STRIMZI_VERSION:-0.49.0}
strimzi_namespace=strimzi
kafka_image=${KAFKA_IMAGE:-apache/kafka:4.1.0}
model_server_image=${MODEL_SERVER_IMAGE:-busybox:1.37.0}
recording=$root/data/coinbase/ticks/btc-usd-2026-04-04b.csv.gz
python=${PYTHON:-python3}

say() { printf '\n==> %s\n' "$*"; }
fail() { printf 'e2e: %s\n' "$*" >&2; exit 1; }

# Runs the command until it succeeds, for at most E2E_TIMEOUT seconds.
wait_until() {
  local what=$1
  shift
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    ((SECONDS < deadline)) || fail "gave up after ${timeout}s waiting for $what"
    sleep 5
  done
}

[[ "$topics" == admin || "$topics" == strimzi ]] || fail "E2E_TOPICS must be admin or strimzi, not '$topics'"
[[ -n "${KUBECONFIG:-}" ]] || fail "KUBECONFIG is not set: point it at the cluster to test (e.g. kind get kubeconfig)"
for tool in kubectl helm "$python"; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
"$python" -c 'import onnx' 2>/dev/null || fail "$python cannot import onnx: pip install -r e2e/requirements.txt"
kubectl version >/dev/null || fail "the cluster in $KUBECONFIG does not answer"

# The example's metadata.name (read from the file: the CRD is not installed yet).
name=$(awk '/^metadata:/ { m = 1; next } m && /^  name:/ { print $2; exit }' "$root/examples/pipeline.yaml")
[[ -n "$name" ]] || fail "cannot read metadata.name of examples/pipeline.yaml"

vp() { kubectl -n "$namespace" get volatilitypipeline "$name" -o jsonpath="$1"; }
condition() { vp "{.status.conditions[?(@.type==\"$1\")].status}"; }
condition_is() { [[ "$(condition "$1")" == "$2" ]]; }
pods_of() {
  kubectl -n "$namespace" get pods -o jsonpath='{.items[*].metadata.name}' \
    -l "app.kubernetes.io/instance=$name,app.kubernetes.io/component=$1" --field-selector=status.phase=Running
}
deployment_env() {
  kubectl -n "$namespace" get deployment "$name-$1" \
    -o jsonpath="{.spec.template.spec.containers[0].env[?(@.name==\"$2\")].value}"
}

# Sum of an unlabelled counter over the running pods of a workload, read through the API
# server's pod proxy from the metrics port (8001).
metric_sum() {
  local component=$1 metric=$2 total=0 pod value
  for pod in $(pods_of "$component"); do
    # A pod may go away between the listing and the read: it counts as 0.
    value=$(kubectl get --raw "/api/v1/namespaces/$namespace/pods/$pod:8001/proxy/metrics" 2>/dev/null |
      awk -v m="$metric" '$1 == m { print $2; exit }') || value=0
    total=$(awk -v a="$total" -v b="${value:-0}" 'BEGIN { printf "%.0f", a + b }')
  done
  echo "$total"
}
predictions() { metric_sum predictor volatility_consumer_predictions_made_total; }
greater_than() { (($(awk -v a="$1" -v b="$2" 'BEGIN { print (a > b) }'))); }
predictions_above() { greater_than "$(predictions)" "$1"; }

diagnose() {
  say "diagnostics"
  local dir=${artifacts:-$(mktemp -d)}
  mkdir -p "$dir"
  {
    kubectl -n "$namespace" get volatilitypipelines -o yaml
    kubectl -n "$namespace" describe volatilitypipelines
  } >"$dir/pipeline.txt" 2>&1 || true
  kubectl -n "$namespace" get all,configmaps,kafkatopics,servicemonitors,prometheusrules -o wide >"$dir/objects.txt" 2>&1 || true
  kubectl get events -A --sort-by=.lastTimestamp >"$dir/events.txt" 2>&1 || true
  local ns pod
  for ns in "$namespace" "$operator_namespace" "$strimzi_namespace"; do
    for pod in $(kubectl -n "$ns" get pods -o jsonpath='{.items[*].metadata.name}' 2>/dev/null); do
      kubectl -n "$ns" describe pod "$pod" >"$dir/describe-$ns-$pod.txt" 2>&1 || true
      kubectl -n "$ns" logs "$pod" --all-containers --tail=2000 >"$dir/logs-$ns-$pod.txt" 2>&1 || true
      kubectl -n "$ns" logs "$pod" --all-containers --previous --tail=500 >"$dir/logs-$ns-$pod-previous.txt" 2>/dev/null || true
    done
  done
  cat "$dir/pipeline.txt" || true
  tail -n 100 "$dir/logs-$operator_namespace-"*.txt 2>/dev/null || true
  printf 'e2e: diagnostics in %s\n' "$dir" >&2
}

cleanup() {
  local status=$?
  if ((status != 0)); then diagnose; fi
  if [[ "${E2E_KEEP:-0}" != 1 ]]; then
    say "cleanup"
    # The pipeline first, while its broker still runs: deletionPolicy Delete removes the topics
    # before the finalizer is released.
    for ns in "$namespace" spikewatch; do
      kubectl -n "$ns" delete volatilitypipelines --all --wait=true --timeout=120s >/dev/null 2>&1 || true
    done
    kubectl delete namespace "$namespace" --wait=true --timeout=180s >/dev/null 2>&1 || true
    if [[ "$topics" == admin ]]; then
      kubectl delete namespace spikewatch --wait=true --timeout=180s >/dev/null 2>&1 || true
    fi
    helm uninstall "$release" -n "$operator_namespace" >/dev/null 2>&1 || true
    if [[ "$topics" == strimzi ]]; then
      helm uninstall strimzi -n "$strimzi_namespace" >/dev/null 2>&1 || true
    fi
  fi
  exit "$status"
}
trap cleanup EXIT

if [[ -n "${KIND_CLUSTER:-}" ]]; then
  command -v kind >/dev/null || fail "KIND_CLUSTER is set but kind is not installed"
  for image in ${OPERATOR_IMAGE:-} ${WORKLOAD_IMAGE:-}; do
    say "loading $image into kind cluster $KIND_CLUSTER"
    kind load docker-image "$image" --name "$KIND_CLUSTER"
  done
fi

say "installing the prometheus-operator CRDs $prometheus_operator_version"
kubectl apply --server-side -f \
  "https://github.com/prometheus-operator/prometheus-operator/releases/download/$prometheus_operator_version/stripped-down-crds.yaml"
kubectl wait --for=condition=Established crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com --timeout=60s

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
if [[ "$topics" == strimzi ]]; then
  say "installing Strimzi $strimzi_version and a one-node KRaft Kafka"
  helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator --version "$strimzi_version" \
    --namespace "$strimzi_namespace" --create-namespace --set watchAnyNamespace=true --wait --timeout 600s
  kubectl -n "$namespace" apply -f "$root/e2e/manifests/strimzi-kafka.yaml"
  kubectl -n "$namespace" wait kafka/spikewatch --for=condition=Ready --timeout="${timeout}s"
  bootstrap=spikewatch-kafka-bootstrap:9092
else
  say "starting a single-node Kafka ($kafka_image)"
  # The broker the GitOps example delivers; it advertises kafka.<namespace>.svc:9092.
  sed "s|image: apache/kafka:.*|image: $kafka_image|" "$root/examples/kafka/kafka.yaml" |
    kubectl -n "$namespace" apply -f -
  kubectl -n "$namespace" rollout status deployment/kafka --timeout="${timeout}s"
  # A short name, as a user writes it for the pipeline's namespace: the operator qualifies it.
  bootstrap=kafka:9092
fi

say "installing the operator chart"
chart_args=()
if [[ -n "${OPERATOR_IMAGE:-}" ]]; then
  chart_args+=(--set "image.repository=${OPERATOR_IMAGE%:*}" --set "image.tag=${OPERATOR_IMAGE##*:}" --set image.pullPolicy=IfNotPresent)
fi
if [[ -n "${WORKLOAD_IMAGE:-}" ]]; then
  chart_args+=(--set-string "workloadImage.tag=${WORKLOAD_IMAGE##*:}")
fi
helm upgrade --install "$release" "$root/charts/spikewatch-operator" \
  --namespace "$operator_namespace" --create-namespace ${chart_args[@]+"${chart_args[@]}"} --wait --timeout 300s
kubectl wait --for=condition=Established crd/volatilitypipelines.spikewatch.io --timeout=60s

say "the recording and the broken model"
kubectl -n "$namespace" create configmap recording --from-file="btc-usd.csv.gz=$recording" \
  --dry-run=client -o yaml | kubectl apply --server-side -f -
work=$(mktemp -d)
"$python" "$root/models/fixture_model.py" "$root/models/artifacts/spikewatch-gbdt/model.onnx" "$work/model.onnx" --break-output
kubectl -n "$namespace" create configmap model-files --from-file="model.onnx=$work/model.onnx" \
  --from-file="baseline.json=$root/models/artifacts/spikewatch-gbdt/baseline.json" \
  --dry-run=client -o yaml | kubectl apply --server-side -f -
sed "s|image: busybox:.*|image: $model_server_image|" "$root/e2e/manifests/model-server.yaml" |
  kubectl -n "$namespace" apply -f -
kubectl -n "$namespace" rollout status deployment/model-server --timeout="${timeout}s"

say "applying examples/pipeline.yaml, replaying the recording against the test broker ($topics topics)"
kubectl create --dry-run=client -o json -f "$root/examples/pipeline.yaml" |
  E2E_NAMESPACE="$namespace" E2E_TOPICS="$topics" E2E_BOOTSTRAP="$bootstrap" E2E_STRIMZI_CLUSTER=spikewatch \
    E2E_RECORDING_CONFIGMAP=recording E2E_RECORDING_KEY=btc-usd.csv.gz WORKLOAD_IMAGE="${WORKLOAD_IMAGE:-}" \
    "$python" "$root/e2e/adapt_pipeline.py" |
  kubectl apply --server-side -f -

say "waiting up to ${timeout}s for VolatilityPipeline $namespace/$name to be Ready"
kubectl -n "$namespace" wait "volatilitypipeline/$name" --for=condition=Ready --timeout="${timeout}s"
kubectl -n "$namespace" get volatilitypipelines
# -o wide adds why the pipeline is (not) ready, the predictor's replicas and the consumer lag.
wide=$(kubectl -n "$namespace" get volatilitypipelines -o wide)
echo "$wide"
for column in REASON PREDICTORS LAG; do
  head -n 1 <<<"$wide" | grep -qw "$column" || fail "kubectl get vp -o wide shows no $column column"
done
for expected in TopicsReady=True WorkloadsReady=True MonitoringReady=True Reconciling=False Stalled=False; do
  type=${expected%=*}
  [[ "$(condition "$type")" == "${expected#*=}" ]] || fail "$type is $(condition "$type"), expected ${expected#*=}"
done
[[ "$(vp '{.status.observedGeneration}')" == "$(vp '{.metadata.generation}')" ]] || fail "the status describes an old generation"
kubectl -n "$namespace" get "servicemonitor/$name-api" "prometheusrule/$name" >/dev/null
if [[ "$topics" == strimzi ]]; then
  kubectl -n "$namespace" get kafkatopics -l "app.kubernetes.io/instance=$name" -o name | grep -q . ||
    fail "no KafkaTopic of the pipeline"
fi

say "predictions flow"
wait_until "the predictor's first predictions" predictions_above 0
before=$(predictions)
wait_until "more predictions than $before" predictions_above "$before"
echo "predictions made: $(predictions)"
# The workloads reach the broker at the qualified name the operator renders.
rendered_bootstrap=$(kubectl -n "$namespace" get configmap "$name-config" -o jsonpath='{.data.config\.yaml}' |
  awk '$1 == "bootstrap_servers:" { print $2; exit }')
[[ "$rendered_bootstrap" == *".$namespace.svc:"* ]] || fail "the workloads' bootstrap servers are not qualified: $rendered_bootstrap"

if [[ "$topics" == strimzi ]]; then
  say "tick → prediction latency through Kafka"
  # A one-off pod of the Kafka image reads both topics from now on (console consumers in groups of
  # their own); e2e/latency.py joins each prediction to its tick.
  probe=latency-probe
  raw_topic=$(vp '{.spec.kafka.topics.raw}')
  predictions_topic=$(vp '{.spec.kafka.topics.predictions}')
  consume() {
    printf '/opt/kafka/bin/kafka-console-consumer.sh --bootstrap-server %s --topic %s --group %s' \
      "$rendered_bootstrap" "$1" "e2e-latency-$1-$RANDOM"
    printf ' --consumer-property auto.offset.reset=latest --max-messages %s --timeout-ms 60000' "$latency_messages"
    printf ' --property print.timestamp=true 2>/dev/null | sed "s/^/%s /"' "$2"
  }
  latency_messages=${E2E_LATENCY_MESSAGES:-2000}
  kubectl -n "$namespace" delete pod "$probe" --ignore-not-found >/dev/null
  kubectl -n "$namespace" run "$probe" --image="$kafka_image" --restart=Never --command -- \
    sh -c "$(consume "$raw_topic" tick) > /tmp/ticks & $(consume "$predictions_topic" prediction) > /tmp/predictions; wait; cat /tmp/ticks /tmp/predictions"
  kubectl -n "$namespace" wait "pod/$probe" --for=jsonpath='{.status.phase}'=Succeeded --timeout="${timeout}s"
  latency=$(kubectl -n "$namespace" logs "$probe" | "$python" "$root/e2e/latency.py")
  kubectl -n "$namespace" delete pod "$probe" --ignore-not-found >/dev/null
  echo "$latency"
  if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    printf '### Tick → prediction latency (%s topics, kind)\n\n%s\n' "$topics" "$latency" >>"$GITHUB_STEP_SUMMARY"
  fi
fi

say "a backlog: the predictor scaled to 0 while the replay runs"
kubectl -n "$namespace" scale deployment "$name-predictor" --replicas=0
published() { metric_sum featurizer spikewatch_featurizer_features_published_total; }
start=$(published)
backlog_built() { greater_than "$(published)" $((start + 1000)); }
wait_until "1000 feature vectors without a predictor" backlog_built
say "autoscaling on: the operator scales the predictor on the lag"
kubectl -n "$namespace" patch volatilitypipeline "$name" --type merge -p \
  '{"spec":{"autoscaling":{"enabled":true,"engine":"operator","minReplicas":1,"maxReplicas":3,"lagPerReplica":200,"pollingIntervalSeconds":5,"stabilizationWindowSeconds":900}}}'
scaled_up() {
  local replicas
  replicas=$(kubectl -n "$namespace" get deployment "$name-predictor" -o jsonpath='{.spec.replicas}')
  ((${replicas:-0} >= 2))
}
wait_until "the predictor scaled up" scaled_up
# The lag the decision was made on, as the ScaledUp event recorded it ("predictor 0 → 3 replicas:
# lag N messages on …"): the status holds the latest measurement, after the predictors drained it.
scaled_up_event() {
  kubectl -n "$namespace" get events --field-selector "reason=ScaledUp,involvedObject.name=$name" \
    -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' | head -n 1
}
has_scaled_up_event() { [[ -n "$(scaled_up_event)" ]]; }
wait_until "a ScaledUp event" has_scaled_up_event
event=$(scaled_up_event)
echo "ScaledUp: $event"
lag=$(sed -n 's/.*: lag \([0-9][0-9]*\) messages.*/\1/p' <<<"$event")
[[ -n "$lag" ]] || fail "the ScaledUp event records no lag: $event"
greater_than "$lag" 200 || fail "the scale-up was not driven by a backlog (lag $lag at the decision, lagPerReplica 200)"

say "a real fault: model.sourceUri pointed at a model that loads but fails every inference"
kubectl -n "$namespace" patch volatilitypipeline "$name" --type merge -p \
  "{\"spec\":{\"model\":{\"sourceUri\":\"http://model-server.$namespace.svc:8080/broken/\"}}}"
wait_until "RolledBack=True" condition_is RolledBack True
reason=$(vp '{.status.lastRollback.reason}')
echo "rolled back: $reason: $(vp '{.status.lastRollback.message}')"
# The fault is the model's inferences: nothing else (pods not ready, API errors) may be the cause.
[[ "$reason" == PredictionErrorsAboveThreshold ]] || fail "rolled back for $reason, not PredictionErrorsAboveThreshold"
[[ "$(vp '{.status.rollback.state}')" == RolledBack ]] || fail "status.rollback.state is $(vp '{.status.rollback.state}')"
# What the API pods report on /version, read back by the operator.
active_is_baseline() { [[ "$(vp '{.status.activeModel.variant}')" == baseline ]]; }
wait_until "status.activeModel.variant baseline" active_is_baseline
for workload in predictor api; do
  [[ "$(deployment_env "$workload" SPIKEWATCH_MODEL_VARIANT)" == baseline ]] || fail "the $workload Deployment does not render the baseline"
done
# The baseline is rendered into the Deployments too: wait for their new pods (and counters).
kubectl -n "$namespace" rollout status deployment "$name-predictor" --timeout="${timeout}s"
after=$(predictions)
wait_until "predictions from the baseline" predictions_above "$after"

if [[ "$topics" == admin ]]; then
  # The README's "Deploy on Kubernetes" after its helm install (done above, from the checkout
  # with this commit's images): its kubectl lines, verbatim, from the repository's root.
  say "the README's quickstart, as written"
  quickstart=$(awk '/^## Deploy on Kubernetes/ { s = 1 } s && /^```sh/ { b = 1; next } b && /^```/ { exit } b' "$root/README.md" |
    grep -E '^kubectl (create namespace spikewatch$|apply |wait )')
  [[ $(wc -l <<<"$quickstart") -eq 3 ]] || fail "cannot find the quickstart's kubectl lines in README.md: $quickstart"
  echo "$quickstart"
  (cd "$root" && bash -euo pipefail -c "$quickstart") || fail "the README's quickstart failed"
  kubectl get vp -n spikewatch -o wide
fi

say "e2e passed ($topics topics)"
