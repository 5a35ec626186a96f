{{/* Name of a component's objects (also its in-cluster DNS name): <release>-<component>,
     at most 63 characters as DNS labels require; dict: root, component. */}}
{{- define "pmp.name" -}}
{{- printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of a component's headless Service, which resolves to the addresses of its ready
     pods: callers re-resolve it and spread their calls over every replica (one HTTP/2
     connection to a ClusterIP Service would stick to one pod); dict: root, component. */}}
{{- define "pmp.peersName" -}}
{{- printf "%s-peers" (include "pmp.name" . | trunc 57 | trimSuffix "-") -}}
{{- end -}}

{{/* The URL at which callers reach every ready replica of a component; dict: root,
     component, port. */}}
{{- define "pmp.peersUrl" -}}
{{- printf "%s://%s:%v" (include "pmp.scheme" .root) (include "pmp.peersName" .) .port -}}
{{- end -}}

{{/* A component's headless Service (see pmp.peersName); dict: root, component, port. */}}
{{- define "pmp.peersService" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "pmp.peersName" . }}
  labels: {{- include "pmp.labels" . | nindent 4 }}
spec:
  clusterIP: None
  publishNotReadyAddresses: false
  selector: {{- include "pmp.selectorLabels" . | nindent 4 }}
  ports:
    - name: grpc
      port: {{ .port }}
      targetPort: grpc
      appProtocol: grpc
{{- end -}}

{{/* Labels that select a component's pods; dict: root, component. */}}
{{- define "pmp.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Recommended labels of every object of a component; dict: root, component. */}}
{{- define "pmp.labels" -}}
{{ include "pmp.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: {{ .root.Chart.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* Pod security: Pod Security Standard "restricted". */}}
{{- define "pmp.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile: { type: RuntimeDefault }
{{- end -}}

{{/* Container security: Pod Security Standard "restricted", read-only root file system. */}}
{{- define "pmp.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: { drop: [ALL] }
{{- end -}}

{{/* Spreads a component's replicas over nodes and zones where it can; dict: root, component. */}}
{{- define "pmp.spread" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels: {{- include "pmp.selectorLabels" . | nindent 8 }}
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels: {{- include "pmp.selectorLabels" . | nindent 8 }}
{{- end -}}

{{/* Environment shared by every service: logs, traces, service identity. */}}
{{- define "pmp.commonEnv" -}}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otlpEndpoint | quote }}
{{- end -}}


{{/* "https" when TLS is on, else "http". */}}
{{- define "pmp.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}

{{/* Service identity, HSM and TLS environment; dict: prefix (e.g. PMP_REGISTRY), component
     (registry, certstore or ftm), root. With hsm.enabled the identity key is a key pair in
     the token, by label, and no private key is mounted. */}}
{{- define "pmp.identityEnv" -}}
{{- if .root.Values.hsm.enabled }}
- { name: {{ .prefix }}__SERVICE_IDENTITY__PRIVATE_KEY_LABEL, value: {{ index .root.Values.hsm.identityKeyLabels .component | quote }} }
- { name: {{ .prefix }}__HSM__MODULE, value: {{ .root.Values.hsm.module | quote }} }
- { name: {{ .prefix }}__HSM__TOKEN_LABEL, value: {{ .root.Values.hsm.tokenLabel | quote }} }
- { name: {{ .prefix }}__HSM__PIN_FILE, value: /secrets/hsm/pin }
{{- range .root.Values.hsm.moduleEnv }}
- { name: {{ .name }}, value: {{ .value | quote }} }
{{- end }}
{{- else }}
- { name: {{ .prefix }}__SERVICE_IDENTITY__PRIVATE_KEY_FILE, value: /secrets/identity/service-key.pem }
{{- end }}
- { name: {{ .prefix }}__SERVICE_IDENTITY__GENERATE_KEY, value: "false" }
- { name: {{ .prefix }}__SERVICE_IDENTITY__PUBLIC_KEYS_DIR, value: /etc/pmp/service-keys }
{{- if .root.Values.tls.enabled }}
- { name: {{ .prefix }}__TLS__CERTIFICATE_FILE, value: /secrets/tls/tls.crt }
- { name: {{ .prefix }}__TLS__KEY_FILE, value: /secrets/tls/tls.key }
- { name: {{ .prefix }}__TLS__CA_FILE, value: /secrets/tls/ca.crt }
- { name: {{ .prefix }}__TLS__CLIENT_AUTH, value: {{ .root.Values.tls.clientAuth | quote }} }
{{- end }}
{{- end -}}

{{/* Allows fetching token keys over plain text when TLS is off; dict: prefix, root. */}}
{{- define "pmp.plaintextKeys" -}}
{{- if not .root.Values.tls.enabled }}
- { name: {{ .prefix }}__USER_TOKENS__ALLOW_PLAINTEXT_KEY_FETCH, value: "true" }
{{- end }}
{{- end -}}

{{/* Mounts of the identity key (or the HSM's PIN and configuration), the public keys and
     the TLS files. */}}
{{- define "pmp.identityMounts" -}}
{{- if .Values.hsm.enabled }}
- { name: hsm-pin, mountPath: /secrets/hsm, readOnly: true }
{{- if .Values.hsm.configSecret }}
- { name: hsm-config, mountPath: /etc/pmp/hsm, readOnly: true }
{{- end }}
{{- else }}
- { name: identity, mountPath: /secrets/identity, readOnly: true }
{{- end }}
- { name: service-keys, mountPath: /etc/pmp/service-keys, readOnly: true }
{{- if .Values.tls.enabled }}
- { name: tls, mountPath: /secrets/tls, readOnly: true }
{{- end }}
{{- end -}}

{{/* Volumes of pmp.identityMounts; dict: keySecret, tlsSecret, root. */}}
{{- define "pmp.identityVolumes" -}}
{{- if .root.Values.hsm.enabled }}
- name: hsm-pin
  secret: { secretName: {{ .root.Values.hsm.pinSecret }}, defaultMode: 0400 }
{{- if .root.Values.hsm.configSecret }}
- name: hsm-config
  secret: { secretName: {{ .root.Values.hsm.configSecret }}, defaultMode: 0440 }
{{- end }}
{{- else }}
- name: identity
  secret: { secretName: {{ .keySecret }}, defaultMode: 0400 }
{{- end }}
- name: service-keys
  configMap: { name: {{ .root.Values.serviceIdentity.publicKeysConfigMap }} }
{{- if .root.Values.tls.enabled }}
- name: tls
  secret: { secretName: {{ .tlsSecret }}, defaultMode: 0400 }
{{- end }}
{{- end -}}

{{/* gRPC probes, or TCP probes when TLS is on (the kubelet's gRPC probe speaks no TLS);
     dict: port, service, root. Readiness asks the service's own name (NOT_SERVING until
     its database, keys and upstreams are ready, and from SIGTERM on); start-up and liveness
     ask "liveness", which is SERVING whenever the process serves gRPC at all, so waiting
     for a database or the registry never gets a pod restarted. */}}
{{- define "pmp.probes" -}}
{{- if .root.Values.tls.enabled }}
startupProbe:
  tcpSocket: { port: {{ .port }} }
  periodSeconds: 2
  failureThreshold: 60
readinessProbe:
  tcpSocket: { port: {{ .port }} }
  periodSeconds: 5
livenessProbe:
  tcpSocket: { port: {{ .port }} }
  periodSeconds: 20
  failureThreshold: 6
{{- else }}
startupProbe:
  grpc: { port: {{ .port }}, service: liveness }
  periodSeconds: 2
  failureThreshold: 60
readinessProbe:
  grpc: { port: {{ .port }}, service: {{ .service }} }
  periodSeconds: 5
livenessProbe:
  grpc: { port: {{ .port }}, service: liveness }
  periodSeconds: 20
  failureThreshold: 6
{{- end }}
{{- end -}}

{{/* The database URL, read from the mounted Secret file (never an environment variable, so
     a password in it does not show in the process environment); dict: prefix. */}}
{{- define "pmp.databaseEnv" -}}
- { name: {{ .prefix }}__DATABASE__URL_FILE, value: /secrets/database/url }
{{- end -}}

{{/* The database Secret's key as the file `url`; dict: secret, key. */}}
{{- define "pmp.databaseVolume" -}}
- name: database
  secret:
    secretName: {{ .secret }}
    defaultMode: 0400
    items: [{ key: {{ .key }}, path: url }]
{{- end -}}

{{/* A service's own extra environment, volumes and mounts (e.g. Keycloak keys); dict:
     values (the service's values), what (extraEnv | extraVolumes | extraVolumeMounts). */}}
{{- define "pmp.extra" -}}
{{- with (get .values .what) }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Shutdown timing of a service; dict: prefix, root. */}}
{{- define "pmp.shutdownEnv" -}}
- { name: {{ .prefix }}__SERVER__SHUTDOWN_DELAY_SECONDS, value: {{ .root.Values.shutdown.delaySeconds | quote }} }
- { name: {{ .prefix }}__SERVER__SHUTDOWN_GRACE_SECONDS, value: {{ .root.Values.shutdown.graceSeconds | quote }} }
{{- end -}}

{{/* terminationGracePeriodSeconds: the shutdown delay and grace, plus 5 s to flush spans. */}}
{{- define "pmp.terminationGrace" -}}
{{ add .Values.shutdown.delaySeconds .Values.shutdown.graceSeconds 5 }}
{{- end -}}
