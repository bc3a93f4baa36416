{{/* Names, labels and derived values shared by the templates. */}}

{{- define "venus.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: <release>-<chart>, or just <release> when it already contains the chart name. */}}
{{- define "venus.fullname" -}}
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

{{- define "venus.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "venus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "venus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "venus.labels" -}}
helm.sh/chart: {{ include "venus.chart" . }}
{{ include "venus.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: venus
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "venus.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "venus.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* A setting's value: .Values.config.<key>, or the service's default when unset. Call with (list . "key"). */}}
{{- define "venus.setting" -}}
{{- $root := index . 0 }}
{{- $key := index . 1 }}
{{- $value := index $root.Values.config $key }}
{{- if kindIs "invalid" $value }}
{{- $value = index (include "venus.serviceDefaults" $root | fromJson) $key }}
{{- end }}
{{- include "venus.envValue" $value }}
{{- end }}

{{/* A value as an environment variable's text: lists joined with ",", whole numbers without an exponent. */}}
{{- define "venus.envValue" -}}
{{- if kindIs "slice" . }}
{{- join "," . }}
{{- else if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- . }}
{{- end }}
{{- end }}

{{/* Worker processes: config.workers, else one per whole CPU of resources.limits.cpu (at least one). */}}
{{- define "venus.workers" -}}
{{- if not (kindIs "invalid" .Values.config.workers) }}
{{- .Values.config.workers | int }}
{{- else }}
{{- $cpu := toString (dig "limits" "cpu" "1" .Values.resources) }}
{{- $cores := hasSuffix "m" $cpu | ternary (div (trimSuffix "m" $cpu | int) 1000) (floor $cpu | int) }}
{{- max 1 $cores }}
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds: it must cover the preStop pause, Venus's shutdown grace and a margin
     for the supervisor (which kills a worker 5 s past the grace) and the final Kafka flush. */}}
{{- define "venus.terminationGracePeriodSeconds" -}}
{{- $grace := include "venus.setting" (list . "shutdownGraceS") | float64 | ceil | int }}
{{- $minimum := add .Values.preStopSleepSeconds $grace 10 }}
{{- $chosen := .Values.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $chosen }}
{{- $minimum }}
{{- else if lt (int $chosen) (int $minimum) }}
{{- fail (printf "terminationGracePeriodSeconds=%d is too short: at least preStopSleepSeconds (%d) + config.shutdownGraceS (%d) + 10 = %d, or Kubernetes kills Venus before in-flight RPCs finish" (int $chosen) (int .Values.preStopSleepSeconds) $grace (int $minimum)) }}
{{- else }}
{{- int $chosen }}
{{- end }}
{{- end }}

{{/* The port the kubelet probes: the gRPC port, or with TLS on a plaintext health-only port. */}}
{{- define "venus.probePort" -}}
{{- if .Values.tls.existingSecret }}
{{- include "venus.setting" (list . "healthPort") | int | default .Values.tls.probePort }}
{{- else }}
{{- include "venus.setting" (list . "port") }}
{{- end }}
{{- end }}

{{/* "true" when the HTTP port (Connect, gRPC-Web) is on: config.httpEnabled, else the service's default. */}}
{{- define "venus.httpEnabled" -}}
{{- include "venus.setting" (list . "httpEnabled") }}
{{- end }}

{{/* The canary's own labels: another app.kubernetes.io/name, so that no Venus selector picks its pods. */}}
{{- define "venus.canarySelectorLabels" -}}
app.kubernetes.io/name: {{ include "venus.name" . }}-canary
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "venus.canaryLabels" -}}
helm.sh/chart: {{ include "venus.chart" . }}
{{ include "venus.canarySelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: canary
app.kubernetes.io/part-of: venus
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
