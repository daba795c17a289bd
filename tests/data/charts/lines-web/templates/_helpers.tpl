{{/*
The chart's full name.
*/}}
{{- define "web.fullname" -}}
{{ .Release.Name }}-{{ .Chart.Name }}
{{- end -}}

{{- define "web.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- if .Values.debug }}
debug: "true"
{{- else }}
debug: "false"
{{- end }}
{{- end }}

{{- define "web.selector" }}
app.kubernetes.io/name: {{ .Chart.Name }}
{{- end }}

{{- define "web.merged" -}}
{{- if .custom -}}
{{ toYaml .custom }}
{{- else -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: web
{{- end -}}
{{- end -}}
