"""Write a synthetic Helm chart shaped like the public ones, for benchmarks/charts.py (issue 15).

    python benchmarks/chart_generator.py --out DIR [--components 5]

Each component (5 by default) has six templates: a Deployment or StatefulSet, a Service, a
ConfigMap, a ServiceAccount, a Role or ClusterRole and its binding - 30 templates beside
_helpers.tpl - and about 40 values keys, so ~200 in all. The templates use what real charts use:
include of _helpers defines with dict arguments, if/with conditionals, range over lists and maps,
toYaml | nindent blocks, quote, printf. Some components carry insecure values (privileged,
hostNetwork, wildcard RBAC, no resources, a LoadBalancer) so the scan has findings whose values
keys the provenance trace must find.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterator

import yaml

COMPONENTS = ("api", "worker", "web", "cache", "db", "queue", "search", "mail")

HELPERS = """\
{{- define "bench.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bench.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "bench.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "bench.image" -}}
{{- $registry := .root.Values.global.imageRegistry -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .image.repository (.image.tag | toString) -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (.image.tag | toString) -}}
{{- end -}}
{{- end -}}
"""

WORKLOAD = """\
{{- $c := .Values.@NAME@ }}
{{- if $c.enabled }}
apiVersion: apps/v1
kind: @KIND@
metadata:
  name: {{ include "bench.fullname" . }}-@NAME@
  labels:
    {{- include "bench.labels" . | nindent 4 }}
spec:
  replicas: {{ $c.replicaCount }}
@STATEFUL@  selector:
    matchLabels:
      {{- include "bench.selectorLabels" (dict "root" . "name" "@NAME@") | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "bench.selectorLabels" (dict "root" . "name" "@NAME@") | nindent 8 }}
      {{- with $c.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "bench.fullname" . }}-@NAME@
      {{- if $c.hostNetwork }}
      hostNetwork: true
      {{- end }}
      {{- with $c.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: @NAME@
          image: {{ include "bench.image" (dict "root" $ "image" $c.image) }}
          imagePullPolicy: {{ $c.image.pullPolicy }}
          ports:
            {{- range $c.ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
            {{- end }}
          env:
            {{- range $key, $value := $c.env }}
            - name: {{ $key }}
              value: {{ $value | quote }}
            {{- end }}
          securityContext:
            privileged: {{ $c.securityContext.privileged }}
            allowPrivilegeEscalation: {{ $c.securityContext.allowPrivilegeEscalation }}
            readOnlyRootFilesystem: {{ $c.securityContext.readOnlyRootFilesystem }}
            {{- with $c.securityContext.capabilities }}
            capabilities:
              {{- toYaml . | nindent 14 }}
            {{- end }}
          {{- with $c.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: {{ (first $c.ports).name }}
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
"""

STATEFUL = """\
  serviceName: {{ include "bench.fullname" . }}-@NAME@
  podManagementPolicy: Parallel
"""

SERVICE = """\
{{- $c := .Values.@NAME@ }}
{{- if and $c.enabled $c.service.enabled }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "bench.fullname" . }}-@NAME@
  labels:
    {{- include "bench.labels" . | nindent 4 }}
spec:
  type: {{ $c.service.type }}
  {{- if eq $c.service.type "LoadBalancer" }}
  externalTrafficPolicy: {{ $c.service.externalTrafficPolicy }}
  {{- end }}
  ports:
    {{- range $c.ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
    {{- end }}
  selector:
    {{- include "bench.selectorLabels" (dict "root" . "name" "@NAME@") | nindent 4 }}
{{- end }}
"""

CONFIGMAP = """\
{{- $c := .Values.@NAME@ }}
{{- if $c.enabled }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "bench.fullname" . }}-@NAME@
  labels:
    {{- include "bench.labels" . | nindent 4 }}
data:
  {{- range $key, $value := $c.config }}
  {{ $key }}: {{ $value | quote }}
  {{- end }}
{{- end }}
"""

SERVICE_ACCOUNT = """\
{{- $c := .Values.@NAME@ }}
{{- if $c.enabled }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "bench.fullname" . }}-@NAME@
  labels:
    {{- include "bench.labels" . | nindent 4 }}
automountServiceAccountToken: {{ $c.serviceAccount.automount }}
{{- end }}
"""

ROLE = """\
{{- $c := .Values.@NAME@ }}
{{- if and $c.enabled $c.rbac.create }}
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ if $c.rbac.clusterWide }}ClusterRole{{ else }}Role{{ end }}
metadata:
  name: {{ include "bench.fullname" . }}-@NAME@
  labels:
    {{- include "bench.labels" . | nindent 4 }}
rules:
  {{- toYaml $c.rbac.rules | nindent 2 }}
{{- end }}
"""

BINDING = """\
{{- $c := .Values.@NAME@ }}
{{- if and $c.enabled $c.rbac.create }}
{{- $kind := ternary "ClusterRole" "Role" (eq (toString $c.rbac.clusterWide) "true") }}
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ $kind }}Binding
metadata:
  name: {{ include "bench.fullname" . }}-@NAME@
  labels:
    {{- include "bench.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: {{ $kind }}
  name: {{ include "bench.fullname" . }}-@NAME@
subjects:
  - kind: ServiceAccount
    name: {{ include "bench.fullname" . }}-@NAME@
    namespace: {{ .Release.Namespace }}
{{- end }}
"""


def component_values(index: int) -> dict[str, Any]:
    """About 40 values keys; components 1-4 each carry some insecure settings."""
    values: dict[str, Any] = {
        "enabled": True,
        "replicaCount": 2,
        "image": {"repository": f"example.org/bench/{COMPONENTS[index]}", "tag": "1.4.2", "pullPolicy": "IfNotPresent"},
        "podAnnotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
        "hostNetwork": False,
        "podSecurityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001,
                               "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {"privileged": False, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}],
        "env": {"LOG_LEVEL": "info", "LOG_FORMAT": "json", "REGION": "eu-west-1", "FEATURE_FLAGS": "a,b"},
        "config": {"setting0": "value-0"},
        "service": {"enabled": True, "type": "ClusterIP", "externalTrafficPolicy": "Local"},
        "serviceAccount": {"automount": False},
        "rbac": {"create": True, "clusterWide": False,
                 "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [],
    }
    if index == 1:  # a privileged worker that may escalate, with the latest tag
        values["securityContext"].update(privileged=True, allowPrivilegeEscalation=True)
        values["image"]["tag"] = "latest"
    elif index == 2:  # on the host network, behind a LoadBalancer, root allowed, token mounted
        values["hostNetwork"] = True
        values["service"]["type"] = "LoadBalancer"
        values["podSecurityContext"] = {"runAsUser": 0}
        values["serviceAccount"]["automount"] = True
    elif index == 3:  # no resources, writable root filesystem, extra capability
        values["resources"] = {}
        values["securityContext"]["readOnlyRootFilesystem"] = False
        values["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    elif index == 4:  # cluster-wide wildcard RBAC, secrets readable
        values["rbac"].update(clusterWide=True, rules=[{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])
        values["env"]["DB_PASSWORD"] = "not-a-real-password"
    return values


def leaves(node: Any) -> Iterator[Any]:
    if isinstance(node, dict) and node:
        for child in node.values():
            yield from leaves(child)
    elif isinstance(node, list) and node:
        for child in node:
            yield from leaves(child)
    else:
        yield node


def generate(out: Path, components: int = 5) -> tuple[int, int]:
    """Write the chart into `out` (created); returns (templates, values keys)."""
    if not 1 <= components <= len(COMPONENTS):
        raise ValueError(f"components: 1 to {len(COMPONENTS)}")
    templates = out / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    (out / "Chart.yaml").write_text(yaml.safe_dump({"apiVersion": "v2", "name": "bench", "version": "0.1.0",
                                                    "appVersion": "1.4.2", "type": "application"}))
    values: dict[str, Any] = {"global": {"imageRegistry": ""}}
    written = 0
    for index, name in enumerate(COMPONENTS[:components]):
        values[name] = component_values(index)
        kind = "Deployment" if index % 5 < 3 else "StatefulSet"
        stateful = STATEFUL if kind == "StatefulSet" else ""
        files = {
            f"{name}-{kind.lower()}.yaml": WORKLOAD.replace("@STATEFUL@", stateful).replace("@KIND@", kind),
            f"{name}-service.yaml": SERVICE,
            f"{name}-configmap.yaml": CONFIGMAP,
            f"{name}-serviceaccount.yaml": SERVICE_ACCOUNT,
            f"{name}-role.yaml": ROLE,
            f"{name}-rolebinding.yaml": BINDING,
        }
        for file, text in files.items():
            (templates / file).write_text(text.replace("@NAME@", name))
            written += 1
    (templates / "_helpers.tpl").write_text(HELPERS)
    (out / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False, width=200))
    return written, sum(1 for _ in leaves(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--components", type=int, default=5)
    arguments = parser.parse_args()
    templates, keys = generate(arguments.out, arguments.components)
    print(f"{arguments.out}: {templates} templates, {keys} values keys")


if __name__ == "__main__":
    main()
