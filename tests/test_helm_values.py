"""kaudit.sources.helm_values: where a rendered field's value came from, by real perturbed renders
of tests/data/charts/values-app (a chart with one subchart vendored once, used under two aliases)."""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path
from typing import Union

import pytest

from kaudit.sources.helm import HelmOptions, HelmRender, render_chart
from kaudit.sources.helm_values import Provenance, Query, ValuesSource, dotted, parse_set, same_value, trace_values

CHART = Path(__file__).parent / "data" / "charts" / "values-app"
VALUES = str(CHART / "values.yaml")
STORE_VALUES = str(CHART / "charts" / "store" / "values.yaml")
PROD = str(CHART / "ci" / "prod.yaml")
LATER = str(CHART / "ci" / "later.yaml")
CONTAINERS = ("spec", "template", "spec", "containers")
WEB = CONTAINERS + (0,)
SIDECAR = CONTAINERS + (1,)
POD = ("spec", "template", "spec")
FieldPath = tuple[Union[str, int], ...]


def trace(path: FieldPath, document: str = "templates/deployment.yaml", options: HelmOptions = HelmOptions(),
          chart: Path = CHART, **budget: float) -> Provenance:
    """The provenance of `path` in the one document of `document` (a Helm source's tail)."""
    return trace_many([(document, path)], options, chart, **budget)[0]


def trace_many(queries: list[tuple[str, FieldPath]], options: HelmOptions = HelmOptions(), chart: Path = CHART,
               **budget: float) -> list[Provenance]:
    render = render_chart(str(chart), options)
    asked = [Query(index_of(render, document), path) for document, path in queries]
    traced = trace_values(str(chart), options, render, asked, **budget)  # type: ignore[arg-type]
    return [traced[query] for query in asked]


def index_of(render: HelmRender, source_tail: str) -> int:
    found = [index for index, document in enumerate(render.documents) if document.source.endswith(source_tail)]
    assert len(found) == 1, (source_tail, [document.source for document in render.documents])
    return found[0]


def from_values(line: int, key: str, file: str = VALUES) -> Provenance:
    return Provenance(ValuesSource(file, line, key), True)


def test_a_bool_from_values_and_not_the_other_keys_with_the_same_value() -> None:
    # debug.privileged and securityContext.allowPrivilegeEscalation are `true` too, and deeper
    assert trace(WEB + ("securityContext", "privileged")) == from_values(2, "privileged")


def test_a_field_of_a_toyaml_block() -> None:
    assert trace(SIDECAR + ("securityContext", "runAsUser")) == from_values(7, "securityContext.runAsUser")


def test_a_missing_field_of_a_toyaml_block_is_added_in_the_block_s_key() -> None:
    assert trace(SIDECAR + ("securityContext", "runAsNonRoot")) == from_values(6, "securityContext")


def test_a_missing_field_of_a_map_printed_without_its_switch() -> None:
    # securityContext: {{- omit .Values.initSecurityContext "enabled" | toYaml }} renders runAsUser
    # only; securityContext (runAsUser: 1000 too, and a key not rendered) looks alike
    assert trace(POD + ("initContainers", 0, "securityContext", "runAsNonRoot")) == \
        from_values(26, "initSecurityContext")


def test_a_missing_field_of_an_empty_map_from_values() -> None:
    # `securityContext: {}` rendered by toYaml from `podSecurityContext: {}`
    assert trace(POD + ("securityContext", "runAsNonRoot")) == from_values(9, "podSecurityContext")


def test_a_missing_field_of_a_map_written_in_the_template_is_not_from_values() -> None:
    # the web container's securityContext is written in the template; `debug` holds what it holds
    # (privileged: true) but is not rendered there
    assert trace(WEB + ("securityContext", "runAsNonRoot")) == Provenance(None, True)


def test_a_literal_in_the_template_is_not_from_values() -> None:
    # `unused: false` and others have the same value, and do not feed it
    assert trace(POD + ("hostNetwork",)) == Provenance(None, True)
    assert trace(("spec", "ports", 0, "port"), "templates/service.yaml") == Provenance(None, True)


def test_an_item_of_a_list_ranged_over() -> None:
    assert trace(WEB + ("ports", 1, "containerPort")) == from_values(15, "ports[1]")
    assert trace(WEB + ("ports", 0, "containerPort")) == from_values(14, "ports[0]")


def test_an_item_missing_from_a_list_from_values() -> None:
    # tolerations: {{- toYaml .Values.tolerations }} renders `[]`; extraVolumes is `[]` too, unused
    assert trace(POD + ("tolerations", 0, "key")) == from_values(30, "tolerations")
    assert trace(POD + ("tolerations",)) == from_values(30, "tolerations")


def test_a_value_that_feeds_two_objects_is_traced_in_each() -> None:
    assert trace_many([("templates/deployment.yaml", ("metadata", "labels", "team")),
                       ("templates/service.yaml", ("metadata", "labels", "team"))]) == [from_values(17, "team")] * 2


def test_renders_are_shared_across_queries() -> None:
    # one render answers both: the second query's perturbation of `team` is cached
    assert trace_many([("templates/deployment.yaml", ("metadata", "labels", "team")),
                       ("templates/service.yaml", ("metadata", "labels", "team"))],
                      max_renders=1) == [from_values(17, "team")] * 2


def test_a_user_values_file_wins_over_the_chart_s_and_the_last_file_over_earlier_ones() -> None:
    options = HelmOptions(values_files=(PROD, LATER))
    assert trace(SIDECAR + ("securityContext", "runAsUser"), options=options) == \
        from_values(3, "securityContext.runAsUser", PROD)
    assert trace(("spec", "replicas"), options=options) == from_values(2, "replicas", LATER)  # 5 in prod.yaml
    assert trace(("spec", "replicas"), options=HelmOptions(values_files=(PROD,))) == from_values(1, "replicas", PROD)


def test_set_wins_over_values_files() -> None:
    options = HelmOptions(values_files=(PROD, LATER), set_values=("team=ops", "ports[1]=8443"))
    assert trace(("metadata", "labels", "team"), options=options) == \
        Provenance(ValuesSource("--helm-set", None, "team"), True)
    assert trace(WEB + ("ports", 1, "containerPort"), options=options) == \
        Provenance(ValuesSource("--helm-set", None, "ports[1]"), True)


def test_a_subchart_value_from_its_own_values_file_under_each_alias() -> None:
    # both aliases render the same template; `replica` keeps the subchart's defaults
    store = "charts/replica/templates/statefulset.yaml"
    assert trace(("spec", "replicas"), store) == from_values(1, "replicas", STORE_VALUES)
    assert trace(CONTAINERS + (0, "securityContext", "privileged"), store) == \
        from_values(3, "securityContext.privileged", STORE_VALUES)


def test_a_subchart_value_overridden_by_the_parent_under_the_alias() -> None:
    assert trace(("spec", "replicas"), "charts/primary/templates/statefulset.yaml") == \
        from_values(20, "primary.replicas")
    # and by a user file, under the other alias only
    options = HelmOptions(values_files=(LATER,))
    privileged = CONTAINERS + (0, "securityContext", "privileged")
    assert trace(privileged, "charts/replica/templates/statefulset.yaml", options) == \
        from_values(5, "replica.securityContext.privileged", LATER)
    assert trace(privileged, "charts/primary/templates/statefulset.yaml", options) == \
        from_values(3, "securityContext.privileged", STORE_VALUES)


def test_a_global_value_of_the_parent_in_a_subchart() -> None:
    assert trace(("metadata", "labels", "tier"), "charts/replica/templates/statefulset.yaml") == \
        from_values(32, "global.tier")


def test_a_subchart_packed_as_tgz(tmp_path: Path) -> None:
    chart = tmp_path / "values-app"
    shutil.copytree(CHART, chart)
    with tarfile.open(chart / "charts" / "store-0.1.0.tgz", "w:gz") as archive:
        archive.add(chart / "charts" / "store", arcname="store")
    shutil.rmtree(chart / "charts" / "store")
    assert trace(("spec", "replicas"), "charts/replica/templates/statefulset.yaml", chart=chart) == \
        from_values(1, "replicas", f"{chart / 'charts' / 'store-0.1.0.tgz'}:store/values.yaml")


def test_of_several_keys_that_feed_a_field_the_deepest_is_named_and_the_others_noted() -> None:
    # readOnlyRootFilesystem: {{ .Values.web.readOnly | default .Values.readOnlyRootFilesystem }},
    # both false: `default` takes false as empty, so either, set to true, makes the field true. The
    # top-level key, named like the field, is tried first; web.readOnly is deeper, so it is tried too
    assert trace(WEB + ("securityContext", "readOnlyRootFilesystem")) == Provenance(
        ValuesSource(VALUES, 22, "web.readOnly"), True, f"also changes with {VALUES}:23 readOnlyRootFilesystem")


def test_a_value_made_of_two_keys_is_ambiguous() -> None:
    # image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
    assert trace(WEB + ("image",)) == Provenance(None, False, "ambiguous: the value is made of several values keys: "
                                                 f"{VALUES}:11 image.repository, {VALUES}:12 image.tag")


def test_objects_are_matched_by_name_when_a_perturbation_adds_a_document_before_them() -> None:
    # compact: false renders one more ConfigMap, first, from the same template
    assert trace(("data", "compact"), "templates/configs.yaml") == from_values(24, "compact")


def test_a_name_from_values_is_matched_by_its_place_in_the_template() -> None:
    assert trace(("metadata", "name"), "templates/configs.yaml") == from_values(25, "configName")


def test_a_key_whose_perturbation_the_schema_refuses_is_not_known() -> None:
    traced = trace(("metadata", "annotations", "mode"))
    assert traced.source is None and not traced.known
    assert traced.reason.startswith("provenance not traced: mode: render failed (")
    assert "schema" in traced.reason


def test_the_render_budget() -> None:
    # seven values keys are `true`: `privileged`, named like the field, is rendered on its own first,
    # then the deeper ones by group (flipped at once, halved while the field flips)
    privileged = WEB + ("securityContext", "privileged")
    assert trace(privileged, max_renders=1) == Provenance(
        None, False, "provenance not traced: budget of 1 renders reached (6 candidate values keys untried)")
    assert trace(privileged) == from_values(2, "privileged")


def test_the_time_budget() -> None:
    assert trace(("spec", "replicas"), max_seconds=0) == Provenance(
        None, False, "provenance not traced: budget of 0 s reached (1 candidate values keys untried)")


def test_the_candidate_cap() -> None:
    # seven values keys are `true`; only debug.privileged is tried, then privileged too
    privileged = WEB + ("securityContext", "privileged")
    assert trace(privileged, max_candidates=1) == Provenance(
        None, False, "provenance not traced: 7 candidate values keys, over the cap of 1")
    assert trace(privileged, max_candidates=2) == Provenance(
        ValuesSource(VALUES, 2, "privileged"), True, "7 candidate values keys, over the cap of 2")
    # a null in a user file removes the chart's key, as Helm does: debug.privileged is no candidate,
    # and privileged, named like the field, is the first tried
    unset = HelmOptions(values_files=(str(CHART / "ci" / "unset.yaml"),))
    assert trace(privileged, options=unset, max_candidates=1) == Provenance(
        ValuesSource(VALUES, 2, "privileged"), True, "6 candidate values keys, over the cap of 1")


@pytest.mark.parametrize("query", [Query(99, ("spec",)), Query(-1, ()), Query(0, ("spec", True, None, -3)),  # type: ignore[arg-type]
                                   Query(0, ("nothing", "here", 0)), Query(0, ())])
def test_odd_queries_do_not_raise(query: Query) -> None:
    render = render_chart(str(CHART), HelmOptions())
    traced = trace_values(str(CHART), HelmOptions(), render, [query])[query]
    assert isinstance(traced, Provenance)
    if not 0 <= query.document < len(render.documents):
        assert traced == Provenance(None, False, f"no document {query.document} in the render")


def test_an_unreadable_values_file_is_not_known(tmp_path: Path) -> None:
    render = render_chart(str(CHART), HelmOptions())
    query = Query(index_of(render, "templates/deployment.yaml"), ("spec", "replicas"))
    traced = trace_values(str(CHART), HelmOptions(values_files=(str(tmp_path / "gone.yaml"),)), render, [query])
    assert not traced[query].known and traced[query].reason.startswith("values not read: ")


@pytest.mark.parametrize("values_node, rendered, same", [
    (True, True, True), (True, "true", True), (True, 1, False), (1, True, False),
    (1000000, 1e6, True), (8080, "8080", True), ("8080", 8080, True), ("1.27", 1.27, True),
    (None, None, True), (None, "", False), ({}, {}, True), ({"a": 1}, {"a": "1"}, True),
    ({"a": 1}, {"a": 1, "b": 2}, False), ([1, 2], [1, 2], True), ([1, 2], [2, 1], False), ("x", ["x"], False),
])
def test_values_compare_as_templates_print_them(values_node: object, rendered: object, same: bool) -> None:
    assert same_value(values_node, rendered) is same


def test_keys_are_written_as_users_write_them() -> None:
    assert dotted(("a", "b.c", 0, "d")) == "a.b\\.c[0].d"


@pytest.mark.parametrize("expression", [
    "a=1", "a.b=true,c=x", "a\\.b=2", "a[1]=x", "a[0].b=3", "a=null", "a=1.5", "a=007", "a={x,y}", "a=", "a={}",
    "a.b[2].c=z", "a=b=c", "a=-3", "a=-0", "a=1e3", "a=True", "a.b=1,a.c=2", "a=x\\,y", "a=0",
])
def test_set_expressions_are_read_as_helm_reads_them(expression: str) -> None:
    # for the helm binary backend, where Helm's own parser (the SDK's) is not there
    import helm_python

    assert parse_set(expression) == helm_python.parse_set_string(expression)


SWITCH = Path(__file__).parent / "data" / "charts" / "values-switch"
SWITCH_VALUES = str(SWITCH / "values.yaml")
SLOW = HelmOptions(set_values=("slow=3000000",))  # a range loop: each render takes a while


def test_a_bool_that_switches_a_literal_field_on_is_named_as_a_switch() -> None:
    # `{{- if .Values.hostNetwork }} hostNetwork: true {{- end }}`: flipping it removes the field
    assert trace(POD + ("hostNetwork",), chart=SWITCH) == Provenance(
        ValuesSource(SWITCH_VALUES, 1, "hostNetwork", how="switch"), True)
    # `egress: - {}` under `if .Values.networkPolicy.allowExternalEgress`: flipping it writes another
    # item; networkPolicy.enabled removes the whole object and is no switch of the field
    assert trace(("spec", "egress", 0), "templates/networkpolicy.yaml", chart=SWITCH) == Provenance(
        ValuesSource(SWITCH_VALUES, 10, "networkPolicy.allowExternalEgress", how="switch"), True)


def test_a_field_left_out_by_with_on_an_empty_map() -> None:
    # `{{- with .Values.resources }}` of `resources: {}` prints no resources at all
    assert trace(CONTAINERS + (0, "resources", "limits", "cpu"), chart=SWITCH) == from_values(
        6, "resources", SWITCH_VALUES)


def test_one_batch_render_tells_keys_with_equal_values_apart() -> None:
    # name and alias are both "web", port and otherPort both 8080: one render marks all four, and
    # each field shows the marker of the key that fed it
    assert trace_many([("templates/deployment.yaml", ("metadata", "name")),
                       ("templates/deployment.yaml", CONTAINERS + (0, "ports", 0, "containerPort")),
                       ("templates/slow.yaml", ("data", "key3"))], chart=SWITCH, max_renders=1) == [
        from_values(2, "name", SWITCH_VALUES), from_values(4, "port", SWITCH_VALUES),
        from_values(3, "alias", SWITCH_VALUES)]


def test_a_present_value_is_traced_before_fields_the_object_lacks() -> None:
    # the missing fields come first and each has candidates (every map of values); the present
    # value's batch render is the only render allowed, and answers it
    missing = [("templates/deployment.yaml", CONTAINERS + (0, "securityContext", name))
               for name in ("runAsNonRoot", "privileged", "readOnlyRootFilesystem", "runAsUser")]
    traced = trace_many(missing + [("templates/deployment.yaml", ("metadata", "name"))], chart=SWITCH,
                        max_renders=1)
    assert traced[-1] == from_values(2, "name", SWITCH_VALUES)
    assert all(not provenance.known and "budget of 1 renders reached" in provenance.reason
               for provenance in traced[:-1])


def test_no_render_is_started_that_would_end_after_the_deadline() -> None:
    import time

    render = render_chart(str(SWITCH), SLOW)
    start = time.monotonic()
    render_chart(str(SWITCH), SLOW)
    cost = time.monotonic() - start
    # room for one perturbed render and most of a second: the second is not started, and the
    # answer says why (a render that ran into the deadline would say "budget of ... s reached" only)
    query = Query(index_of(render, "templates/deployment.yaml"), CONTAINERS + (0, "resources", "limits", "cpu"))
    traced = trace_values(str(SWITCH), SLOW, render, [query], max_seconds=1.8 * cost)[query]
    # on this shared VM one render's time varies by 2x: when the first render itself ran into the
    # deadline (no estimate yet), it is the only one; else the second is refused before it starts
    assert traced.reason.endswith("(1 candidate values keys untried)") or \
        "s reached (a render takes" in traced.reason, traced.reason
