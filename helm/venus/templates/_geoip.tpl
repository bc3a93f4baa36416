{{/* GeoIP: where Venus finds a database the chart provides, and MaxMind's geoipupdate as a sidecar. */}}
{{/* The path Venus reads its GeoIP database from when the chart provides one, else nothing. Refuses
     contradictory options: two sources for the database, or an updater without credentials. */}}
{{- define "venus.geoipPath" -}}
{{- $geoip := .Values.geoip }}
{{- if and $geoip.volume $geoip.updater.enabled }}
{{- fail "geoip.volume and geoip.updater.enabled: choose one source for the GeoIP database" }}
{{- end }}
{{- if and $geoip.updater.enabled (not $geoip.updater.existingSecret) }}
{{- fail "geoip.updater.existingSecret: the updater needs a Secret with your MaxMind account ID and license key" }}
{{- end }}
{{- if or $geoip.volume $geoip.updater.enabled }}
{{- if .Values.config.geoipDbPath }}
{{- fail "config.geoipDbPath: leave it unset when geoip.volume or geoip.updater provides the database" }}
{{- end }}
{{- $file := $geoip.updater.enabled | ternary (printf "%s.mmdb" $geoip.updater.editionId) $geoip.file }}
{{- printf "%s/%s" (trimSuffix "/" $geoip.mountPath) $file }}
{{- end }}
{{- end }}

{{/* MaxMind's geoipupdate as a native sidecar (an init container with restartPolicy Always): it starts
     before Venus and keeps running beside it. Its startup probe holds Venus back until the first download
     is in place, since Venus does not start without its database; each later download is written to a
     temporary file and renamed over the old one, and Venus reloads it. */}}
{{- define "venus.geoipUpdater" -}}
{{- $updater := .Values.geoip.updater }}
{{- $dir := "/usr/share/GeoIP" -}}
- name: geoipupdate
  image: "{{ $updater.image.repository }}:{{ $updater.image.tag }}"
  imagePullPolicy: {{ $updater.image.pullPolicy }}
  restartPolicy: Always
  env:
    - name: GEOIPUPDATE_ACCOUNT_ID
      valueFrom:
        secretKeyRef:
          name: {{ $updater.existingSecret }}
          key: {{ $updater.accountIdKey }}
    - name: GEOIPUPDATE_LICENSE_KEY
      valueFrom:
        secretKeyRef:
          name: {{ $updater.existingSecret }}
          key: {{ $updater.licenseKeyKey }}
    - name: GEOIPUPDATE_EDITION_IDS
      value: {{ $updater.editionId | quote }}
    - name: GEOIPUPDATE_FREQUENCY
      value: {{ $updater.frequencyHours | int | quote }}
    - name: GEOIPUPDATE_DB_DIR
      value: {{ $dir }}
  startupProbe:
    exec:
      command: [test, -s, {{ printf "%s/%s.mmdb" $dir $updater.editionId }}]
    # geoipupdate itself retries a failing download for 5 minutes.
    periodSeconds: 5
    failureThreshold: 60
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $updater.resources | nindent 4 }}
  volumeMounts:
    - name: geoip
      mountPath: {{ $dir }}
    # The root filesystem is read-only; the image's entry script keeps its last run's report in /tmp.
    - name: tmp
      mountPath: /tmp
      subPath: geoipupdate
{{- end }}
