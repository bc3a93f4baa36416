{{/*
Probes. The kubelet's native gRPC probe calls grpc.health.v1.Health/Check, in plaintext only: with TLS on,
the probes fall back to a TCP connect on the gRPC port.

- startup: health turns SERVING only after the first Kafka connection, so it waits long (probes.startup);
  a pod that never reaches Kafka in that time is restarted.
- readiness: "venus.v1.IngestService"; NOT_SERVING before the first Kafka connection and once shutdown
  starts, so the pod leaves the Service's endpoints.
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
  {{- if $root.Values.tls.existingSecret }}
  tcpSocket:
    port: grpc
  {{- else }}
  grpc:
    port: {{ $port }}
    service: {{ $service | quote }}
  {{- end }}
  periodSeconds: {{ (get $probes $kind).periodSeconds }}
  failureThreshold: {{ (get $probes $kind).failureThreshold }}
  timeoutSeconds: 2
{{- end }}
{{- end }}
