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
