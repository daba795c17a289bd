{{- define "tplvalues.render" -}}
{{- if typeIs "string" .value }}
{{- tpl .value .context }}
{{- else }}
{{- tpl (.value | toYaml) .context }}
{{- end }}
{{- end -}}

{{- define "redis.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "securityContext.render" -}}
{{- omit . "enabled" | toYaml -}}
{{- end -}}

{{- define "affinities.pods" -}}
{{- if eq .type "soft" }}
preferredDuringSchedulingIgnoredDuringExecution: []
{{- end }}
{{- end -}}

{{- define "redis.image" -}}
{{ printf "docker.io/%s:%s" .Values.image.repository .Values.image.tag }}
{{- end -}}

{{- define "labels.standard" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
