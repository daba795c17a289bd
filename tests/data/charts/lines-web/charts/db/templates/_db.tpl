{{- define "db.container" -}}
- name: db
  image: postgres:16
  securityContext:
    privileged: {{ .Values.privileged }}
{{- end }}
