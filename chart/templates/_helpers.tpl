{{/* Names and labels shared by every template. */}}

{{- define "svclb.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "svclb.namespace" -}}
{{- .Values.namespace.name -}}
{{- end -}}

{{- define "svclb.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "svclb.labels" -}}
{{ include "svclb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "svclb.controllerImage" -}}
{{- printf "%s:%s" .Values.controller.image.repository (default .Chart.AppVersion .Values.controller.image.tag) -}}
{{- end -}}

{{- define "svclb.proxyImage" -}}
{{- printf "%s:%s" .Values.proxy.image.repository (default .Chart.AppVersion .Values.proxy.image.tag) -}}
{{- end -}}

{{- define "svclb.policyConfigMap" -}}
{{- default (printf "%s-policies" (include "svclb.fullname" .)) .Values.policies.existingConfigMap -}}
{{- end -}}

{{/* The Secret with the shared auth key (the chart's, or an existing one). */}}
{{- define "svclb.authKeySecret" -}}
{{- default "tailscale-svc-lb" .Values.tailscale.authKey.existingSecret -}}
{{- end -}}

{{/* The Secret with the OAuth client, if any. */}}
{{- define "svclb.oauthSecret" -}}
{{- if .Values.tailscale.oauth.existingSecret -}}
{{- .Values.tailscale.oauth.existingSecret -}}
{{- else if .Values.tailscale.oauth.clientSecret -}}
{{- printf "%s-oauth" (include "svclb.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Refuses settings that cannot work together, and a namespace the chart
does not own that lacks the Pod Security level the proxies need. */}}
{{- define "svclb.checks" -}}
{{- if and .Values.policies.existingConfigMap (or .Values.policies.list .Values.policies.planRules) -}}
{{- fail "policies.existingConfigMap replaces the whole policy set: leave policies.list and policies.planRules empty (put them into the ConfigMap's policies.yaml)" -}}
{{- end -}}
{{- if and .Values.tailscale.authKey.value .Values.tailscale.authKey.existingSecret -}}
{{- fail "tailscale.authKey: set value or existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.tailscale.oauth.existingSecret (or .Values.tailscale.oauth.clientId .Values.tailscale.oauth.clientSecret) -}}
{{- fail "tailscale.oauth: set existingSecret, or clientId and clientSecret, not both" -}}
{{- end -}}
{{- if ne (empty .Values.tailscale.oauth.clientId) (empty .Values.tailscale.oauth.clientSecret) -}}
{{- fail "tailscale.oauth: clientId and clientSecret go together" -}}
{{- end -}}
{{- if not .Values.namespace.create -}}
{{- $ns := lookup "v1" "Namespace" "" .Values.namespace.name -}}
{{- if $ns -}}
{{- $level := dig "metadata" "labels" "pod-security.kubernetes.io/enforce" "" $ns -}}
{{- if and $level (ne $level "privileged") -}}
{{- fail (printf "namespace %s enforces Pod Security level %q, but the proxy pods need \"privileged\": run `kubectl label --overwrite namespace %s pod-security.kubernetes.io/enforce=privileged`, or set namespace.create=true for a namespace of the chart's own" .Values.namespace.name $level .Values.namespace.name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
