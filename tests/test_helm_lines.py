"""kaudit.sources.helm_lines: rendered lines mapped back to the template lines that wrote them.

Every case renders a real chart with Helm's own engine (tests/data/charts/lines-web, and the app
chart) and asserts the template line of specific rendered fields."""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path
from typing import Optional

import pytest

from kaudit.sources import helm_lines
from kaudit.sources.helm import HelmOptions, render_chart
from kaudit.sources.helm_lines import SourceLine, map_documents, map_template_output

CHARTS = Path(__file__).parent / "data" / "charts"
WEB = CHARTS / "lines-web"
DEPLOYMENT = "templates/deployment.yaml"
SERVICE = "templates/service.yaml"
HELPERS = "templates/_helpers.tpl"
DB = "charts/db/templates/statefulset.yaml"

Mapped = dict[str, list[tuple[str, Optional[SourceLine]]]]


def mapped(chart: Path, *set_values: str, kube_version: Optional[str] = None) -> Mapped:
    """template -> (rendered line, its source) for every line of its documents, in order."""
    render = render_chart(str(chart), HelmOptions(set_values=set_values, kube_version=kube_version))
    result: Mapped = {}
    for document, sources in zip(render.documents, map_documents(render.chart, render.documents, render.outputs)):
        lines = document.text.split("\n")
        assert len(sources) == len(lines) - (1 if document.text.endswith("\n") else 0)
        result.setdefault(document.template, []).extend(zip(lines, sources))
    return result


def source(result: Mapped, template: str, text: str, occurrence: int = 0) -> Optional[SourceLine]:
    """The source of the `occurrence`-th rendered line of `template` that reads `text` (stripped)."""
    hits = [found for line, found in result[template] if line.strip() == text]
    assert len(hits) > occurrence, f"{text!r} rendered {len(hits)} times in {template}"
    return hits[occurrence]


def exact(file: str, line: int) -> SourceLine:
    return SourceLine(file=file, line=line, exact=True)


def attributed(file: str, line: int) -> SourceLine:
    return SourceLine(file=file, line=line, exact=False)


@pytest.fixture(scope="module")
def web() -> Mapped:
    return mapped(WEB)


def test_literal_keys_map_to_their_own_line(web: Mapped) -> None:
    assert source(web, DEPLOYMENT, "apiVersion: apps/v1") == exact(DEPLOYMENT, 2)
    assert source(web, DEPLOYMENT, "kind: Deployment") == exact(DEPLOYMENT, 3)
    assert source(web, DEPLOYMENT, "spec:") == exact(DEPLOYMENT, 12)
    assert source(web, DEPLOYMENT, "containers:") == exact(DEPLOYMENT, 26)


def test_interpolated_values_map_to_the_line_holding_the_key(web: Mapped) -> None:
    assert source(web, DEPLOYMENT, "privileged: true") == exact(DEPLOYMENT, 44)
    assert source(web, DEPLOYMENT, "image: nginx:1.27") == exact(DEPLOYMENT, 28)
    assert source(web, DEPLOYMENT, "replicas: 2") == exact(DEPLOYMENT, 13)
    # an include written inline is the key line's output
    assert source(web, DEPLOYMENT, "name: release-name-lines-web") == exact(DEPLOYMENT, 5)


@pytest.mark.parametrize(("set_values", "rendered", "line"), [
    ((), "hostNetwork: true", 20),
    (("hostNetwork=false",), "hostNetwork: false", 22),
    ((), 'args: ["--quiet"]', 32),
    (("debug=true",), 'args: ["--debug"]', 30),
])
def test_each_branch_of_an_if_else_maps_to_its_own_line(set_values: tuple[str, ...], rendered: str,
                                                        line: int) -> None:
    result = mapped(WEB, *set_values)
    assert source(result, DEPLOYMENT, rendered) == exact(DEPLOYMENT, line)
    # and the lines after the conditional are found again
    assert source(result, DEPLOYMENT, "containers:") == exact(DEPLOYMENT, 26)
    assert source(result, DEPLOYMENT, "privileged: true") == exact(DEPLOYMENT, 44)


@pytest.mark.parametrize(("set_values", "rendered"), [
    ((), "imagePullPolicy: IfNotPresent"), (("debug=true",), "imagePullPolicy: Always")])
def test_an_if_else_inside_one_line_maps_to_that_line(set_values: tuple[str, ...], rendered: str) -> None:
    assert source(mapped(WEB, *set_values), DEPLOYMENT, rendered) == exact(DEPLOYMENT, 53)


def test_every_iteration_of_a_range_over_a_list_maps_to_the_loop_body(web: Mapped) -> None:
    for name, value in (("A", '"1"'), ("B", '"2"'), ("C", '"3"')):
        assert source(web, DEPLOYMENT, f"- name: {name}") == exact(DEPLOYMENT, 36)
        assert source(web, DEPLOYMENT, f"value: {value}") == exact(DEPLOYMENT, 37)
    assert source(web, DEPLOYMENT, "- containerPort: 443") == exact(DEPLOYMENT, 41)
    assert source(web, DEPLOYMENT, "ports:") == exact(DEPLOYMENT, 39)  # after the env loop


def test_every_iteration_of_a_range_over_a_dict_maps_to_the_loop_body(web: Mapped) -> None:
    # `{{ $key }}: {{ $value | quote }}`: text without a word of its own is its actions' output
    for rendered in ('owner: "ops"', 'team: "web"', 'tier: "front"'):
        assert source(web, DEPLOYMENT, rendered) == attributed(DEPLOYMENT, 10)
    assert source(web, DEPLOYMENT, "spec:") == exact(DEPLOYMENT, 12)


@pytest.mark.parametrize(("set_values", "debug", "line"), [((), '"false"', 14), (("debug=true",), '"true"', 12)])
def test_lines_an_include_writes_map_to_the_define(set_values: tuple[str, ...], debug: str, line: int) -> None:
    result = mapped(WEB, *set_values)
    assert source(result, DEPLOYMENT, "labels:") == exact(DEPLOYMENT, 6)
    assert source(result, DEPLOYMENT, "app.kubernetes.io/name: lines-web") == exact(HELPERS, 9)
    assert source(result, DEPLOYMENT, "app.kubernetes.io/instance: release-name") == exact(HELPERS, 10)
    assert source(result, DEPLOYMENT, f"debug: {debug}") == exact(HELPERS, line)  # a branch inside the define
    assert source(result, DEPLOYMENT, "annotations:") == exact(DEPLOYMENT, 8)  # back in the template
    # `matchLabels: {{- include ... | nindent 6 }}` and `{{- include ... | indent 4 }}`
    assert source(result, DEPLOYMENT, "app.kubernetes.io/name: lines-web", 1) == exact(HELPERS, 19)
    assert source(result, SERVICE, "app.kubernetes.io/name: lines-web", 1) == exact(HELPERS, 19)


def test_to_yaml_blocks_are_attributed_to_their_action(web: Mapped) -> None:
    # `{{- toYaml .Values.podSecurityContext | nindent 8 }}`
    assert source(web, DEPLOYMENT, "securityContext:") == exact(DEPLOYMENT, 24)
    assert source(web, DEPLOYMENT, "runAsUser: 0") == attributed(DEPLOYMENT, 25)
    assert source(web, DEPLOYMENT, "fsGroup: 2000") == attributed(DEPLOYMENT, 25)
    # `{{- with .Values.securityContext }}{{- toYaml . | nindent 12 }}` after a literal key
    assert source(web, DEPLOYMENT, "allowPrivilegeEscalation: true") == attributed(DEPLOYMENT, 46)
    assert source(web, DEPLOYMENT, "- SYS_ADMIN") == attributed(DEPLOYMENT, 46)
    # `resources: {{- toYaml .Values.resources | nindent 12 }}`
    assert source(web, DEPLOYMENT, "resources:") == exact(DEPLOYMENT, 48)
    assert source(web, DEPLOYMENT, "cpu: 500m") == attributed(DEPLOYMENT, 48)
    # an action alone on its line: `{{ list "sleep" "3600" | toYaml | indent 12 }}`
    assert source(web, DEPLOYMENT, "- sleep") == attributed(DEPLOYMENT, 55)
    assert source(web, DEPLOYMENT, "command:") == exact(DEPLOYMENT, 54)


def test_a_multi_line_action_maps_to_the_line_it_starts_on(web: Mapped) -> None:
    assert source(web, DEPLOYMENT, "- name: side-car") == exact(DEPLOYMENT, 49)
    assert source(web, DEPLOYMENT, "image: busybox") == exact(DEPLOYMENT, 52)


def test_comments_keep_the_lines_in_step(web: Mapped) -> None:
    assert source(web, DEPLOYMENT, "# A deployment with every construct the line mapping must follow.") \
        == exact(DEPLOYMENT, 1)
    assert source(web, SERVICE, "type: NodePort # exposure") == exact(SERVICE, 7)
    # `{{- /* host namespaces */}}` writes nothing
    assert source(web, DEPLOYMENT, "hostNetwork: true") == exact(DEPLOYMENT, 20)


def test_tpl_output_is_attributed_to_the_tpl_line(web: Mapped) -> None:
    assert source(web, SERVICE, "mode: release-name") == attributed(SERVICE, 17)
    assert source(web, SERVICE, "level: debug") == attributed(SERVICE, 17)
    assert source(web, SERVICE, 'static: "yes"') == exact(SERVICE, 18)


def test_the_second_document_of_a_template_maps_past_the_separator(web: Mapped) -> None:
    assert source(web, SERVICE, "kind: ConfigMap") == exact(SERVICE, 12)
    assert source(web, SERVICE, "name: release-name-lines-web-config") == exact(SERVICE, 14)  # `template`
    assert source(web, SERVICE, "apiVersion: v1", 1) == exact(SERVICE, 11)


def test_a_subchart_maps_to_its_own_files_and_to_the_parents_defines(web: Mapped) -> None:
    assert source(web, DB, "name: release-name-db") == exact(DB, 4)
    assert source(web, DB, "app.kubernetes.io/name: db") == exact(HELPERS, 9)  # the parent's define
    assert source(web, DB, "replicas: 1") == exact(DB, 7)
    assert source(web, DB, "privileged: true") == exact("charts/db/templates/_db.tpl", 5)
    assert source(web, DB, "- name: db") == exact("charts/db/templates/_db.tpl", 2)


def test_the_app_chart(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(CHARTS / "app", app)
    with tarfile.open(app / "charts" / "sub-tgz-0.1.0.tgz", "w:gz") as archive:
        archive.add(CHARTS / "sub-tgz", arcname="sub-tgz")
    result = mapped(app, "privileged=true", "ports={80,443,8080}")
    deployment = "templates/deployment.yaml"
    assert source(result, deployment, "name: release-name-app") == exact(deployment, 4)
    assert source(result, deployment, 'built: "built-for-release-name"') == exact(deployment, 7)
    assert source(result, deployment, "- containerPort: 8080") == exact(deployment, 17)
    assert source(result, deployment, "privileged: true") == exact(deployment, 20)
    assert source(result, "templates/pdb.yaml", "apiVersion: policy/v1") == exact("templates/pdb.yaml", 2)
    assert source(result, "templates/pdb.yaml", "kind: PodDisruptionBudget") == exact("templates/pdb.yaml", 6)
    assert source(result, "templates/tests.yaml", "name: release-name-app-test-config") \
        == exact("templates/tests.yaml", 11)
    assert source(result, "charts/cache/templates/statefulset.yaml", "name: release-name-cache-small") \
        == exact("charts/cache/templates/statefulset.yaml", 4)
    # a packed subchart has no template file to point at
    assert [found for _, found in result["charts/sub-tgz/templates/service.yaml"]] == \
        [None] * len(result["charts/sub-tgz/templates/service.yaml"])
    old = mapped(app, kube_version="1.20.0")
    assert source(old, "templates/pdb.yaml", "apiVersion: policy/v1beta1") == exact("templates/pdb.yaml", 4)


def test_output_the_template_cannot_have_written_maps_to_none(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text("kind: ConfigMap\ndata:\n  a: {{ .Values.a }}\n")
    assert map_template_output(str(chart), "templates/cm.yaml", "kind: ConfigMap\ndata:\n  a: 1\n\n") == (
        exact("templates/cm.yaml", 1), exact("templates/cm.yaml", 2), exact("templates/cm.yaml", 3), None)
    assert map_template_output(str(chart), "templates/cm.yaml", "something: else\n") == (None,)
    assert map_template_output(str(chart), "templates/missing.yaml", "kind: ConfigMap\n") == (None,)


def test_a_template_over_the_size_cap_maps_to_none(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    padding = "# padding\n" * (helm_lines.MAX_TEMPLATE_BYTES // 10)
    (chart / "templates" / "big.yaml").write_text("kind: ConfigMap\n" + padding)
    (chart / "templates" / "small.yaml").write_text("kind: ConfigMap\n")
    assert map_template_output(str(chart), "templates/big.yaml", "kind: ConfigMap\n") == (None,)
    assert map_template_output(str(chart), "templates/small.yaml", "kind: ConfigMap\n") == \
        (exact("templates/small.yaml", 1),)


def test_a_long_range_maps_every_iteration(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("items: [" + ", ".join(str(number) for number in range(3000)) + "]\n")
    (chart / "templates" / "cm.yaml").write_text(
        "kind: ConfigMap\ndata:\n{{- range .Values.items }}\n  key-{{ . }}: |\n"
        "    {{- toYaml (list . .) | nindent 4 }}\n"
        "{{- end }}\n  last: x\n")
    result = mapped(chart)
    assert source(result, "templates/cm.yaml", "key-2999: |") == exact("templates/cm.yaml", 4)
    assert source(result, "templates/cm.yaml", "- 2999", 1) == attributed("templates/cm.yaml", 5)
    assert source(result, "templates/cm.yaml", "last: x") == exact("templates/cm.yaml", 7)


POD = "templates/pod.yaml"


def test_a_define_branch_writing_to_yaml_is_not_taken_for_the_literal_branch(web: Mapped) -> None:
    # web.merged: `{{ toYaml .custom }}` in one branch, the same keys as text in the other
    assert source(web, POD, "tier: front") == attributed(POD, 6)
    assert source(web, POD, "app.kubernetes.io/name: pod") == attributed(POD, 6)
    assert source(web, POD, "app.kubernetes.io/name: pod", 1) == exact(HELPERS, 26)
    assert source(web, POD, "app.kubernetes.io/part-of: web") == exact(HELPERS, 27)
    assert source(web, POD, "labels:") == exact(POD, 5)  # spaces after its `| nindent 4 }}`
    # keys at the indentation of the include before them are the template's
    assert source(web, POD, "app.kubernetes.io/name: lines-web") == exact(HELPERS, 19)
    assert source(web, POD, "restartPolicy: Never") == exact(POD, 11)


@pytest.mark.parametrize(("set_values", "line", "fields"), [
    ((), 18, {"periodSeconds: 5": attributed(POD, 18), "exec:": exact(POD, 19)}),
    (("customProbe.periodSeconds=9",), 16, {"periodSeconds: 9": attributed(POD, 16)}),
])
def test_the_same_key_in_each_branch_of_an_else_if_maps_to_the_branch_taken(
        set_values: tuple[str, ...], line: int, fields: dict[str, SourceLine]) -> None:
    result = mapped(WEB, *set_values)
    assert source(result, POD, "livenessProbe:") == exact(POD, line)
    for rendered, expected in fields.items():
        assert source(result, POD, rendered) == expected
    assert source(result, POD, "ports:") == exact(POD, 22)


@pytest.mark.parametrize(("set_values", "lines"), [
    ((), {"- port: 9090": 28, "name: grpc": 29}),
    (("tls=8443",), {"- port: 8443": 24, "name: https": 25, "- port: 9090": 28, "name: grpc": 29}),
])
def test_alike_lines_in_two_conditionals_map_to_the_one_whose_next_line_matches(
        set_values: tuple[str, ...], lines: dict[str, int]) -> None:
    result = mapped(WEB, *set_values)
    for rendered, line in lines.items():
        assert source(result, POD, rendered) == exact(POD, line)


def test_an_indented_block_ends_where_the_template_goes_on_less_indented(web: Mapped) -> None:
    # `{{ toYaml .Values.resources | indent 8 }}` at column 0
    assert source(web, POD, "cpu: 500m") == attributed(POD, 32)
    assert source(web, POD, "dnsPolicy: ClusterFirst") == exact(POD, 33)


@pytest.mark.parametrize("template", [
    "{{", "}}{{ end }}{{ else }}", "{{- define \"x\" }}a: {{ .b", "a: {{ \"}}\" }}\nb: `{{`\n",
    "{{/* }} */}}\nk: v\n{{ /* unterminated", "{{ range . }}{{ if . }}x\n{{ else }}\n{{ end }}",
    "{{ include \"loop\" . }}\n{{ define \"loop\" }}{{ include \"loop\" . }}\n{{ end }}",
    "\x00\xff{{ template `x` }}\r\n- {{ . }}\r\n", "{{-3}}: {{ 3 -}}\n" * 50,
])
def test_bad_templates_never_raise(tmp_path: Path, template: str) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    (chart / "templates" / "t.yaml").write_text(template, encoding="utf-8", errors="surrogateescape")
    output = "a: 1\n\nx\n- 1\nk: v\n" + "line\n" * 20
    mapped_lines = map_template_output(str(chart), "templates/t.yaml", output)
    assert len(mapped_lines) == output.count("\n")
    assert all(found is None or found.file == "templates/t.yaml" for found in mapped_lines)


def test_a_template_or_define_edited_after_the_first_call_is_read_again(tmp_path: Path) -> None:
    # a long-lived process (tests, library use) scans, the user edits the chart, it scans again
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text("kind: ConfigMap\n")
    output = "kind: ConfigMap\n"
    assert map_template_output(str(chart), "templates/cm.yaml", output) == (exact("templates/cm.yaml", 1),)
    assert map_template_output(str(chart), "templates/cm.yaml", output) == (exact("templates/cm.yaml", 1),)
    (chart / "templates" / "cm.yaml").write_text("# moved\nkind: ConfigMap\n")
    assert map_template_output(str(chart), "templates/cm.yaml", output) == (exact("templates/cm.yaml", 2),)
    # a define added in a new file, then moved down in it
    (chart / "templates" / "cm.yaml").write_text('kind: ConfigMap\n{{ include "x" . }}\n')
    output = "kind: ConfigMap\nkey: v\n"
    assert map_template_output(str(chart), "templates/cm.yaml", output)[1] == attributed("templates/cm.yaml", 2)
    (chart / "templates" / "_x.tpl").write_text('{{- define "x" }}\nkey: v\n{{- end }}\n')
    assert map_template_output(str(chart), "templates/cm.yaml", output)[1] == exact("templates/_x.tpl", 2)
    (chart / "templates" / "_x.tpl").write_text('{{/* x */}}\n{{- define "x" }}\nkey: v\n{{- end }}\n')
    assert map_template_output(str(chart), "templates/cm.yaml", output)[1] == exact("templates/_x.tpl", 3)
    (chart / "templates" / "_x.tpl").unlink()
    assert map_template_output(str(chart), "templates/cm.yaml", output)[1] == attributed("templates/cm.yaml", 2)


def test_a_chart_over_the_line_cap_maps_to_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text("kind: ConfigMap\ndata:\n  a: b\n")
    (chart / "templates" / "_helpers.tpl").write_text('{{- define "x" }}\n' + "# line\n" * 20 + "{{- end }}\n")
    monkeypatch.setattr(helm_lines, "MAX_CHART_LINES", 20)
    assert map_template_output(str(chart), "templates/cm.yaml", "kind: ConfigMap\ndata:\n  a: b\n") == (None,) * 3


def test_a_value_with_line_breaks_inside_a_line_goes_to_that_line(web: Mapped) -> None:
    # `motd: {{ .Values.motd }} (end)` with motd "hello\n    world"
    assert source(web, SERVICE, "motd: hello") == exact(SERVICE, 19)
    assert source(web, SERVICE, "world (end)") == attributed(SERVICE, 19)
    assert source(web, SERVICE, 'after: "motd"') == exact(SERVICE, 20)


def test_a_line_of_many_actions_is_matched_without_backtracking(tmp_path: Path) -> None:
    # as a regular expression, `x: .*?,.*?-.*?,.*?-.*?,.*?-END` takes minutes on such an output line
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    (chart / "templates" / "t.yaml").write_text("x: " + "{{ .a }},{{ .b }}-" * 3 + "END\ny: 1\n")
    output = "y: " + ",-" * 1900 + "EN\nx: a,b-c,d-e,f-END\ny: 1\n"
    assert map_template_output(str(chart), "templates/t.yaml", output) == (
        None, exact("templates/t.yaml", 1), exact("templates/t.yaml", 2))
    # a line that only starts as `x: ` is taken for one whose value has line breaks
    output = "x: " + ",-" * 1900 + "EN\ny: 1\n"
    assert map_template_output(str(chart), "templates/t.yaml", output) == (
        exact("templates/t.yaml", 1), exact("templates/t.yaml", 2))


def test_documents_without_their_templates_output_are_mapped_from_their_offsets() -> None:
    # what the `helm template` backend gives: no output kept, the `---` lines missing in between
    render = render_chart(str(WEB), HelmOptions())
    assert map_documents(render.chart, render.documents) == \
        map_documents(render.chart, render.documents, render.outputs)
    assert any(len([d for d in render.documents if d.source == document.source]) > 1 for document in render.documents)


POD_CHART = CHARTS / "lines-pod"
POD_SPEC = "templates/_pod.tpl"


@pytest.mark.parametrize("set_values", [(), ("extraMounts[0].name=cache,extraMounts[0].path=/cache",)])
def test_a_long_define_included_with_nindent_maps_to_its_own_lines(set_values: tuple[str, ...]) -> None:
    # kube-prometheus-stack's grafana: `{{- include "grafana.pod" . | nindent 6 }}`, a define of 1,700 lines
    result = mapped(POD_CHART, *set_values)
    assert source(result, DEPLOYMENT, "serviceAccountName: release-name") == exact(POD_SPEC, 2)
    assert source(result, DEPLOYMENT, "fsGroup: 472") == attributed(DEPLOYMENT, 8)  # the define's own toYaml
    # past 300 lines of a branch not taken
    assert source(result, DEPLOYMENT, "containers:") == exact(POD_SPEC, 311)
    assert source(result, DEPLOYMENT, "image: kiwigrid/k8s-sidecar:2.10.1") == exact(POD_SPEC, 314)
    assert source(result, DEPLOYMENT, "imagePullPolicy: IfNotPresent") == exact(POD_SPEC, 315)
    # the literal `- name: storage` after a range of `- name: {{ .name }}`, empty or not
    assert source(result, DEPLOYMENT, "- name: storage") == exact(POD_SPEC, 321)
    assert source(result, DEPLOYMENT, "mountPath: /var/lib/storage") == exact(POD_SPEC, 322)
    # `  - name: {{ .Chart.Name }}`, not the range's `      - name: {{ .name }}`: the include's
    # indentation plus the define line's own
    assert source(result, DEPLOYMENT, "- name: lines-pod") == exact(POD_SPEC, 324)
    assert source(result, DEPLOYMENT, "imagePullPolicy: IfNotPresent", 1) == exact(POD_SPEC, 326)
    assert source(result, DEPLOYMENT, "- name: storage", 1) == exact(POD_SPEC, 328)
    # `  - name: sidecar-volume` in an `if`, before a range of `  - name: {{ . }}`
    assert source(result, DEPLOYMENT, "- name: sidecar-volume") == exact(POD_SPEC, 331)
    assert source(result, DEPLOYMENT, "emptyDir: {}", 1) == exact(POD_SPEC, 336)
    if set_values:
        assert source(result, DEPLOYMENT, "- name: cache") == exact(POD_SPEC, 318)
        assert source(result, DEPLOYMENT, "mountPath: /cache") == exact(POD_SPEC, 319)


REDIS = CHARTS / "lines-redis"
STATEFULSET = "templates/statefulset.yaml"


@pytest.mark.parametrize("set_values", [(), ("extraPodSpec.priorityClassName=high",)])
def test_lines_after_an_include_in_a_branch_not_taken_map_to_the_template(set_values: tuple[str, ...]) -> None:
    # bitnami redis: `{{- if .Values.extraPodSpec }}{{- include ... | nindent 6 }}{{- end }}` with an
    # empty extraPodSpec, then `hostAliases: {{- include ... }}` not taken either, opens the pod spec
    result = mapped(REDIS, *set_values)
    assert source(result, STATEFULSET, "securityContext:") == exact(STATEFULSET, 19)
    assert source(result, STATEFULSET, "fsGroup: 1001") == attributed(STATEFULSET, 19)
    assert source(result, STATEFULSET, "serviceAccountName: release-name-redis") == exact(STATEFULSET, 21)
    assert source(result, STATEFULSET, "nodeAffinity:") == exact(STATEFULSET, 24)
    assert source(result, STATEFULSET, "containers:") == exact(STATEFULSET, 25)
    assert source(result, STATEFULSET, "image: docker.io/bitnami/redis:8.2.1") == exact(STATEFULSET, 27)
    assert source(result, STATEFULSET, 'imagePullPolicy: "IfNotPresent"') == exact(STATEFULSET, 28)
    if set_values:  # the branch taken: its output is the include's
        assert source(result, STATEFULSET, "priorityClassName: high") == attributed(STATEFULSET, 12)


ENV_CHART = CHARTS / "lines-env"
ENV_EXTRA = ("repoServer.env[0].name=FOO,repoServer.env[0].value=bar,repoServer.env[1].name=BAZ,"
             "repoServer.env[1].valueFrom.secretKeyRef.name=s,repoServer.env[1].valueFrom.secretKeyRef.key=k")


@pytest.mark.parametrize("set_values", [(), (ENV_EXTRA,), ("openshift.enabled=true",)])
def test_a_tpl_block_ends_where_the_literal_lines_resume(set_values: tuple[str, ...]) -> None:
    # argo-cd's repo-server: `{{- with (concat ...env) }}{{- tpl (toYaml .) $ | nindent 10 }}{{- end }}`
    result = mapped(ENV_CHART, *set_values)
    assert source(result, DEPLOYMENT, "env:") == exact(DEPLOYMENT, 12)
    if ENV_EXTRA in set_values:
        for rendered in ("- name: FOO", "value: bar", "- name: BAZ", "secretKeyRef:", "key: k"):
            assert source(result, DEPLOYMENT, rendered) == attributed(DEPLOYMENT, 14)
    if "openshift.enabled=true" in set_values:
        assert source(result, DEPLOYMENT, "- name: USER_NAME") == exact(DEPLOYMENT, 17)
    assert source(result, DEPLOYMENT, "- name: ARGOCD_REPO_SERVER_NAME") == exact(DEPLOYMENT, 20)
    assert source(result, DEPLOYMENT, "key: auth") == exact(DEPLOYMENT, 26)
    assert source(result, DEPLOYMENT, "resources:") == exact(DEPLOYMENT, 27)
    assert source(result, DEPLOYMENT, "initContainers:") == exact(DEPLOYMENT, 29)
    assert source(result, DEPLOYMENT, "imagePullPolicy: IfNotPresent", 1) == exact(DEPLOYMENT, 32)
    assert source(result, DEPLOYMENT, "resources:", 1) == exact(DEPLOYMENT, 33)


def test_the_same_text_in_each_branch_of_an_if_else_maps_to_the_branch_whose_next_line_follows() -> None:
    # kube-prometheus-stack: `namespace: default` {{- else }} `namespace: {{ template ... }}`; with
    # the values' default the else branch writes `namespace: default` (which branch wrote it when
    # the `if` is taken cannot be told from the output: the same line is taken)
    result = mapped(POD_CHART)
    assert source(result, "templates/monitor.yaml", "namespace: default") == exact("templates/monitor.yaml", 8)
    assert source(result, "templates/monitor.yaml", "labels:") == exact("templates/monitor.yaml", 10)


def test_a_key_with_a_block_after_an_action_only_line_not_taken_is_the_keys() -> None:
    # ingress-nginx: `{{- if .extraVolumeMounts }}{{- toYaml ... | nindent 12 }}{{- end }}` (empty), then
    # `resources: {{ toYaml .Values.controller.resources | nindent 12 }}` whose block ends the container
    controller = "templates/controller.yaml"
    result = mapped(ENV_CHART)
    assert source(result, controller, "mountPath: /usr/local/certificates/") == exact(controller, 15)
    assert source(result, controller, "resources:") == exact(controller, 22)
    assert source(result, controller, "cpu: 100m") == attributed(controller, 22)
    assert source(result, controller, "nodeSelector:") == exact(controller, 31)
    assert source(result, controller, "kubernetes.io/os: linux") == attributed(controller, 31)
    assert source(result, controller, "serviceAccountName: release-name-controller") == exact(controller, 33)
