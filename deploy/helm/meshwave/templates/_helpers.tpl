{{/*
Object names are fixed (meshwave-collector, meshwave-proxy, …), not derived
from the release name: the collector config, the trace redirect and the
plain manifests in deploy/kubernetes all refer to them, and there is one
install per cluster.
*/}}

{{/* Labels on every meshwave object; pass (dict "root" $ "component" "x"). */}}
{{- define "meshwave.labels" -}}
{{ include "meshwave.selectorLabels" . }}
app.kubernetes.io/part-of: meshwave
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{/* The stable subset used in selectors. */}}
{{- define "meshwave.selectorLabels" -}}
app.kubernetes.io/name: meshwave
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "meshwave.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The proxy's --server: the embedded server, else backend.url. */}}
{{- define "meshwave.backendURL" -}}
{{- if .Values.backend.server.enabled -}}
http://meshwave-server.{{ .Release.Namespace }}.svc:8080
{{- else -}}
{{ required "backend.url is required when backend.server.enabled is false" .Values.backend.url }}
{{- end -}}
{{- end }}

{{/* Pod securityContext for the meshwave image (distroless nonroot, 65532). */}}
{{- define "meshwave.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "meshwave.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{- define "meshwave.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Labels of the Prometheus objects: the integration's, whose Service selects on them. */}}
{{- define "meshwave.prometheusLabels" -}}
app: prometheus
component: server
release: prometheus
app.kubernetes.io/part-of: meshwave
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
