#!/usr/bin/env bash
# End-to-end test on a real cluster: install the operator's Helm chart, start a Kafka-protocol
# broker, apply examples/pipeline.yaml (pointed at that broker) and wait for the pipeline's
# Ready condition.
#
# Needs: KUBECONFIG (any cluster; kind in CI), kubectl, helm, python3.
# Optional:
#   OPERATOR_IMAGE   operator image (repository:tag), default ghcr.io/spikewatch/spikewatch-operator:<chart appVersion>
#   WORKLOAD_IMAGE   workload image (repository:tag), default: the pipeline's default image
#   KIND_CLUSTER     load OPERATOR_IMAGE / WORKLOAD_IMAGE into this kind cluster first
#   TANSU_IMAGE      broker image, default ghcr.io/tansu-io/tansu:0.6.0
#   E2E_NAMESPACE    namespace of the pipeline and the broker, default spikewatch-e2e
#   E2E_TIMEOUT      how long to wait for Ready, default 600s
#   E2E_KEEP=1       leave everything installed afterwards (for debugging)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
namespace=${E2E_NAMESPACE:-spikewatch-e2e}
operator_namespace=spikewatch-system
release=spikewatch-operator
timeout=${E2E_TIMEOUT:-600s}
tansu_image=${TANSU_IMAGE:-ghcr.io/tansu-io/tansu:0.6.0}

say() { printf '\n==> %s\n' "$*"; }
fail() { printf 'e2e: %s\n' "$*" >&2; exit 1; }

[[ -n "${KUBECONFIG:-}" ]] || fail "KUBECONFIG is not set: point it at the cluster to test (e.g. kind get kubeconfig)"
for tool in kubectl helm python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
kubectl version >/dev/null || fail "the cluster in $KUBECONFIG does not answer"

diagnose() {
  say "diagnostics"
  kubectl -n "$namespace" get volatilitypipelines -o yaml || true
  kubectl -n "$namespace" describe volatilitypipelines || true
  kubectl -n "$namespace" get all,configmaps,events || true
  kubectl -n "$operator_namespace" logs deployment/"$release" --tail=200 || true
}

cleanup() {
  local status=$?
  if (( status != 0 )); then diagnose; fi
  if [[ "${E2E_KEEP:-0}" != 1 ]]; then
    say "cleanup"
    # The pipeline first, while its broker still runs: deletionPolicy Delete removes the topics
    # before the finalizer is released.
    kubectl -n "$namespace" delete volatilitypipelines --all --wait=true --timeout=120s >/dev/null 2>&1 || true
    kubectl delete namespace "$namespace" --wait=true --timeout=120s >/dev/null 2>&1 || true
    helm uninstall "$release" -n "$operator_namespace" >/dev/null 2>&1 || true
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

say "installing the operator chart"
chart_args=()
if [[ -n "${OPERATOR_IMAGE:-}" ]]; then
  chart_args+=(--set "image.repository=${OPERATOR_IMAGE%:*}" --set "image.tag=${OPERATOR_IMAGE##*:}" --set image.pullPolicy=IfNotPresent)
fi
helm upgrade --install "$release" "$root/charts/spikewatch-operator" \
  --namespace "$operator_namespace" --create-namespace ${chart_args[@]+"${chart_args[@]}"} --wait --timeout 300s
kubectl wait --for=condition=Established crd/volatilitypipelines.spikewatch.io --timeout=60s

say "starting a broker in $namespace"
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
sed "s|TANSU_IMAGE|$tansu_image|" "$root/e2e/manifests/kafka.yaml" | kubectl -n "$namespace" apply -f -
kubectl -n "$namespace" rollout status deployment/kafka --timeout=180s

say "applying examples/pipeline.yaml, pointed at the test broker"
# The example targets an external SASL/TLS cluster and an MLflow registry; in the test the same
# object runs against the in-cluster broker with the bundled baseline model and no secret.
kubectl create --dry-run=client -o json -f "$root/examples/pipeline.yaml" \
  | E2E_NAMESPACE="$namespace" WORKLOAD_IMAGE="${WORKLOAD_IMAGE:-}" python3 "$root/e2e/adapt_pipeline.py" \
  | kubectl apply -f -
name=$(kubectl create --dry-run=client -o jsonpath='{.metadata.name}' -f "$root/examples/pipeline.yaml")

say "waiting up to $timeout for VolatilityPipeline $namespace/$name to be Ready"
kubectl -n "$namespace" wait "volatilitypipeline/$name" --for=condition=Ready --timeout="$timeout"
kubectl -n "$namespace" get volatilitypipelines
for condition in TopicsReady WorkloadsReady; do
  status=$(kubectl -n "$namespace" get "volatilitypipeline/$name" -o jsonpath="{.status.conditions[?(@.type==\"$condition\")].status}")
  [[ "$status" == True ]] || fail "$condition is $status"
done
say "e2e passed"
