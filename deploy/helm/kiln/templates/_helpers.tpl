{{/* The chart's name, or nameOverride. */}}
{{- define "kiln.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The objects' name: fullnameOverride, else the release's name if it holds the chart's, else <release>-<chart>. */}}
{{- define "kiln.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "kiln.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "kiln.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels that select the pods; they never change for a release. */}}
{{- define "kiln.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kiln.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Every object's labels. */}}
{{- define "kiln.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" }}
{{ include "kiln.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The Secret holding the token. */}}
{{- define "kiln.tokenSecretName" -}}
{{- default (printf "%s-token" (include "kiln.fullname" .)) .Values.token.existingSecret -}}
{{- end -}}

{{/* Whether an autoscaler owns the replica count: "true" or nothing. */}}
{{- define "kiln.autoscaled" -}}
{{- if and .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled -}}
{{- fail "autoscaling.keda.enabled and autoscaling.hpa.enabled exclude each other: both would drive the same Deployment" -}}
{{- end -}}
{{- if or .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled -}}
true
{{- end -}}
{{- end -}}

{{/* The grace period: the value given, else preStop sleep + drainTimeout + largest responseTimeout + 5 + 10 margin. */}}
{{- define "kiln.terminationGracePeriodSeconds" -}}
{{- $drain := required "config.drainTimeout must be set: the pods' grace period is computed from it" .Values.config.drainTimeout -}}
{{- default (add .Values.preStopSleepSeconds $drain .Values.modelResponseTimeoutSeconds 5 10) .Values.terminationGracePeriodSeconds -}}
{{- end -}}
