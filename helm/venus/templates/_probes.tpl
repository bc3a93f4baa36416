{{/*
Probes. The kubelet's native gRPC probe calls grpc.health.v1.Health/Check, in plaintext only: with TLS on,
they call Venus's plaintext health-only port (tls.probePort, or config.healthPort), which serves the same
statuses as the TLS port and nothing else.

- startup: health turns SERVING only after the first Kafka connection, so it waits long (probes.startup);
  a pod that never reaches Kafka in that time is restarted.
- readiness: "venus.v1.IngestService"; NOT_SERVING before the first Kafka connection, while the broker stops
  answering, and once shutdown starts, so the pod leaves the Service's endpoints.
- liveness: "" (the server as a whole). A broker outage after startup does not turn it NOT_SERVING: uploads
  get a fast UNAVAILABLE with RetryInfo and the producer reconnects by itself. Restarting pods would not
  bring the broker back; it would only drop in-flight work and add a reconnect storm when it returns.
*/}}
{{- define "venus.probes" -}}
{{- $root := index . 0 }}
{{- $port := index . 1 }}
{{- $probes := $root.Values.probes }}
{{- range $kind, $service := dict "startup" "" "readiness" "venus.v1.IngestService" "liveness" "" }}
{{ $kind }}Probe:
  grpc:
    port: {{ $port }}
    service: {{ $service | quote }}
  periodSeconds: {{ (get $probes $kind).periodSeconds }}
  failureThreshold: {{ (get $probes $kind).failureThreshold }}
  timeoutSeconds: 2
{{- end }}
{{- end }}
