{{- define "pod.spec" -}}
serviceAccountName: {{ .Release.Name }}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- /* 300 lines the values leave out: more than one search used to reach */}}
{{- if .Values.legacy }}
initContainers:
  - name: legacy-0
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-1
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-2
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-3
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-4
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-5
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-6
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-7
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-8
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-9
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-10
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-11
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-12
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-13
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-14
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-15
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-16
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-17
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-18
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-19
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-20
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-21
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-22
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-23
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-24
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-25
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-26
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-27
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-28
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-29
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-30
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-31
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-32
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-33
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-34
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-35
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-36
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-37
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-38
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-39
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-40
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-41
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-42
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-43
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-44
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-45
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-46
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-47
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-48
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-49
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-50
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-51
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-52
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-53
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-54
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-55
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-56
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-57
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-58
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-59
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-60
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-61
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-62
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-63
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-64
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-65
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-66
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-67
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-68
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-69
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-70
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-71
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-72
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-73
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-74
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-75
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-76
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-77
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-78
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-79
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-80
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-81
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-82
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-83
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-84
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-85
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-86
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-87
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-88
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-89
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-90
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-91
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-92
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-93
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-94
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-95
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-96
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-97
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-98
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-99
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-100
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-101
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-102
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-103
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-104
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-105
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-106
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-107
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-108
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-109
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-110
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-111
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-112
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-113
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-114
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-115
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-116
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-117
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-118
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-119
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-120
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-121
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-122
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-123
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-124
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-125
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-126
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-127
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-128
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-129
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-130
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-131
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-132
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-133
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-134
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-135
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-136
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-137
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-138
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-139
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-140
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-141
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-142
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-143
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-144
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-145
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-146
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-147
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-148
    image: "busybox:{{ .Values.legacy }}"
  - name: legacy-149
    image: "busybox:{{ .Values.legacy }}"
{{- end }}
containers:
  {{- if .Values.sidecar.enabled }}
  - name: sidecar
    image: {{ .Values.sidecar.image }}
    imagePullPolicy: {{ .Values.sidecar.pullPolicy }}
    volumeMounts:
      {{- range .Values.extraMounts }}
      - name: {{ .name }}
        mountPath: {{ .path }}
      {{- end }}
      - name: storage
        mountPath: /var/lib/storage
  {{- end }}
  - name: {{ .Chart.Name }}
    image: nginx:1.27
    imagePullPolicy: {{ .Values.sidecar.pullPolicy }}
volumes:
  - name: storage
    emptyDir: {}
  {{- if .Values.sidecar.enabled }}
  - name: sidecar-volume
    {{- if .Values.sidecar.sizeLimit }}
    emptyDir:
      sizeLimit: {{ .Values.sidecar.sizeLimit }}
    {{- else }}
    emptyDir: {}
    {{- end }}
  {{- end }}
  {{- range .Values.extraEmptyDirs }}
  - name: {{ . }}
    emptyDir: {}
  {{- end }}
{{- end }}
