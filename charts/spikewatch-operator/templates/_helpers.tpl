{{/* Chart name, overridable with nameOverride. */}}
{{- define "spikewatch-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full resource name: the release name when it already contains the chart name
(`helm install spikewatch-operator ...` gives `spikewatch-operator`), otherwise
`<release>-<chart>`; truncated to the 63 characters a DNS label allows.
*/}}
{{- define "spikewatch-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart label value: name and version. */}}
{{- define "spikewatch-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Image reference; the tag defaults to the chart's appVersion. */}}
{{- define "spikewatch-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Labels that select the operator pods. Never change them: Deployment selectors are immutable. */}}
{{- define "spikewatch-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spikewatch-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object of the chart. */}}
{{- define "spikewatch-operator.labels" -}}
helm.sh/chart: {{ include "spikewatch-operator.chart" . }}
{{ include "spikewatch-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: spikewatch
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
What the operator may do where it reconciles pipelines: exactly the verbs its code uses
(`operator/tests/rbac_verbs.rs` fails when this list and the code disagree). A server-side
apply is a `patch`, authorized as a `create` too when it creates the object; every child is
read (`get`) before it is applied, so a converged pipeline makes no write.
*/}}
{{- define "spikewatch-operator.rules" -}}
# The custom resource: listed and watched; the finalizer is added and removed with a JSON patch.
- apiGroups: ["spikewatch.io"]
  resources: ["volatilitypipelines"]
  verbs: ["list", "watch", "patch"]
# The status, written with server-side apply (and merge patches by the automation).
- apiGroups: ["spikewatch.io"]
  resources: ["volatilitypipelines/status"]
  verbs: ["patch"]
# Not called by the operator: the OwnerReferencesPermissionEnforcement admission plugin demands
# it of whoever sets blockOwnerDeletion on the children.
- apiGroups: ["spikewatch.io"]
  resources: ["volatilitypipelines/finalizers"]
  verbs: ["update"]
# Children: read, applied server-side, and watched so drift is repaired.
- apiGroups: [""]
  resources: ["configmaps", "services", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The API's budget is deleted when the API drops below two pods.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The autoscaler sets the predictor's replicas through the scale subresource, under its own
# field manager (autoscaling.engine: operator).
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["patch"]
# The rollback checks find the API and predictor pods (readiness, pod IPs for /metrics,
# /version and the admin endpoints) by label.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# Monitoring objects, when the Prometheus Operator CRDs are installed; applied, not watched.
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors", "prometheusrules"]
  verbs: ["get", "create", "patch"]
# Topics as Strimzi KafkaTopic objects (topicManagement: strimzi): applied, listed and released
# (merge patch) when a pipeline with deletionPolicy Retain is deleted.
- apiGroups: ["kafka.strimzi.io"]
  resources: ["kafkatopics"]
  verbs: ["get", "list", "create", "patch"]
# KEDA objects (autoscaling.engine: keda), applied server-side; not watched.
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects", "triggerauthentications"]
  verbs: ["get", "create", "patch"]
# The Kafka credentials a pipeline references by name, and each pipeline's admin token
# Secret (`<pipeline>-admin-token`): read one at a time, never listed or watched.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
  {{- with .Values.rbac.kafkaSecretNames }}
  resourceNames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
# The admin token Secret is created once per pipeline (create cannot be limited by name).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
# Events on the pipelines for every significant action; repeats update the event's series.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
