from __future__ import annotations

import pytest

from kaudit.workloads import containers, effective_security_context, pod_spec

CONTAINERS = {"containers": [{"name": "app"}], "initContainers": [{"name": "init"}],
              "ephemeralContainers": [{"name": "debug"}]}


@pytest.mark.parametrize(
    "body, path",
    [
        ({"kind": "Pod", "spec": CONTAINERS}, ("spec",)),
        ({"kind": "Deployment", "spec": {"template": {"spec": CONTAINERS}}}, ("spec", "template", "spec")),
        ({"kind": "ReplicaSet", "spec": {"template": {"spec": CONTAINERS}}}, ("spec", "template", "spec")),
        ({"kind": "StatefulSet", "spec": {"template": {"spec": CONTAINERS}}}, ("spec", "template", "spec")),
        ({"kind": "DaemonSet", "spec": {"template": {"spec": CONTAINERS}}}, ("spec", "template", "spec")),
        ({"kind": "Job", "spec": {"template": {"spec": CONTAINERS}}}, ("spec", "template", "spec")),
        ({"kind": "ReplicationController", "spec": {"template": {"spec": CONTAINERS}}}, ("spec", "template", "spec")),
        ({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": CONTAINERS}}}}},
         ("spec", "jobTemplate", "spec", "template", "spec")),
        ({"kind": "Rollout", "spec": {"template": {"spec": CONTAINERS}}}, ("spec", "template", "spec")),
        ({"kind": "PodTemplate", "template": {"spec": CONTAINERS}}, ("template", "spec")),
    ],
)
def test_pod_spec_of_every_workload_kind(body: dict, path: tuple) -> None:  # type: ignore[type-arg]
    pod = pod_spec(body)
    assert pod is not None and pod.path == path
    found = [(c.name, c.kind, c.path[len(path):]) for c in containers(pod)]
    assert found == [("app", "container", ("containers", 0)), ("init", "initContainer", ("initContainers", 0)),
                     ("debug", "ephemeralContainer", ("ephemeralContainers", 0))]


@pytest.mark.parametrize("body", [
    {"kind": "Service", "spec": {"ports": []}},
    {"kind": "Thing", "spec": {"template": {"spec": {"replicas": 1}}}},  # a template that is not a pod
    {"kind": "Pod", "spec": None},
    {"kind": "Deployment", "spec": {"template": "oops"}},
])
def test_objects_without_a_pod_spec(body: dict) -> None:  # type: ignore[type-arg]
    assert pod_spec(body) is None


def test_container_settings_override_pod_settings_and_sources_are_tracked() -> None:
    body = {"kind": "Pod", "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"},
                            "windowsOptions": {"runAsUserName": "pod"}},
        "containers": [{"name": "a", "securityContext": {"runAsUser": 0, "privileged": True,
                                                          "windowsOptions": {"hostProcess": False}}}],
    }}
    pod = pod_spec(body)
    assert pod is not None
    [container] = containers(pod)
    effective = effective_security_context(pod, container)
    assert effective.values == {"runAsNonRoot": True, "runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"},
                                "privileged": True,
                                "windowsOptions": {"runAsUserName": "pod", "hostProcess": False}}
    assert effective.object_path(("runAsUser",)) == ("spec", "containers", 0, "securityContext", "runAsUser")
    assert effective.object_path(("runAsNonRoot",)) == ("spec", "securityContext", "runAsNonRoot")
    assert effective.object_path(("seccompProfile", "type")) == ("spec", "securityContext", "seccompProfile", "type")
    # a field set nowhere belongs in the container's own securityContext
    assert effective.object_path(("readOnlyRootFilesystem",)) == (
        "spec", "containers", 0, "securityContext", "readOnlyRootFilesystem")


def test_null_and_wrongly_typed_fields_do_not_break_extraction() -> None:
    body = {"kind": "Pod", "spec": {"securityContext": None, "containers": [None, "x", {"name": "ok",
                                                                                        "securityContext": "bad"}]}}
    pod = pod_spec(body)
    assert pod is not None
    [container] = containers(pod)
    assert container.name == "ok" and effective_security_context(pod, container).values == {}
