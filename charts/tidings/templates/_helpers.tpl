{{/* Name of every object: the release name, suffixed with the chart name unless it has it. */}}
{{- define "tidings.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tidings.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tidings.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "tidings.relaySelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: relay
{{- end -}}

{{- define "tidings.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "tidings.serviceAccountName" -}}
{{- include "tidings.fullname" . -}}
{{- end -}}

{{- define "tidings.webhookService" -}}
{{- printf "%s-webhook" (include "tidings.fullname" .) -}}
{{- end -}}

{{- define "tidings.webhookTLSSecret" -}}
{{- printf "%s-webhook-tls" (include "tidings.fullname" .) -}}
{{- end -}}

{{- define "tidings.webhookConfiguration" -}}
{{- printf "%s.%s" (include "tidings.fullname" .) "tidings.dev" -}}
{{- end -}}

{{/* The webhook handler id in tidings.admission (WEBHOOK_ID); its URL path on the server. */}}
{{- define "tidings.webhookId" -}}
validate.scheduledreports.tidings.dev
{{- end -}}

{{- define "tidings.checks" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.peering.enabled) -}}
{{- fail "operator.replicas > 1 needs operator.peering.enabled: standalone replicas would all act on every report" -}}
{{- end -}}
{{- if and .Values.webhook.certManager.enabled (not .Values.webhook.enabled) -}}
{{- fail "webhook.certManager.enabled needs webhook.enabled" -}}
{{- end -}}
{{- if and .Values.operator.shard.name (empty .Values.operator.watchNamespaces) -}}
{{- fail "operator.shard.name needs operator.watchNamespaces: a shard without its list would serve every namespace, the other shards' too" -}}
{{- end -}}
{{- if and (not .Values.clusterResources.install) (not .Values.operator.shard.name) -}}
{{- fail "clusterResources.install=false is for a further shard: set operator.shard.name and operator.watchNamespaces" -}}
{{- end -}}
{{- end -}}

{{/* The peering object's name: a shard has one ClusterKopfPeering of its own. */}}
{{- define "tidings.peeringName" -}}
{{- if .Values.operator.shard.name -}}
{{- printf "%s-%s" .Values.operator.peering.name .Values.operator.shard.name -}}
{{- else -}}
{{- .Values.operator.peering.name -}}
{{- end -}}
{{- end -}}
