"""The pod specs inside any workload, their containers, and their effective security context.

An object holds zero, one or several pod specs (a RayCluster's head and worker groups, a JobSet's
replicated jobs). They are found three ways, cheapest first:

- core kinds at their API paths (Pod `spec`, Deployment `spec.template.spec`, …);
- custom resources of well-known controllers at the paths their API documents (KNOWN_KINDS);
- any other custom resource by shape: a mapping holding a `containers` or `initContainers` list of
  container-like mappings, at any depth below `spec`, within bounds (MAX_DEPTH, MAX_POD_SPECS,
  MAX_NODES) so a huge or hostile object costs little.

At a known path the pod spec is judged even without `containers` (a kustomize patch or a Helm
partial is what a pre-commit hook sees): its pod-level fields are facts whatever else is missing.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional

from kaudit.model import CustomWorkload, FieldPath, Resource, format_path
from kaudit.value import value

EMPTY: Mapping[str, Any] = {}

CONTAINER_LISTS: tuple[tuple[str, str], ...] = (
    ("containers", "container"),
    ("initContainers", "initContainer"),
    ("ephemeralContainers", "ephemeralContainer"),
)
# Where a pod spec's containers are, relative to it: (path pattern, kind); "*" is every item of a
# list. The PodSpec API's lists by default.
ContainerPlaces = tuple[tuple[tuple[str, ...], str], ...]
POD_CONTAINERS: ContainerPlaces = tuple(((name, "*"), kind) for name, kind in CONTAINER_LISTS)

# Fields of the pod-level securityContext that a container-level one overrides (kubelet semantics:
# DetermineEffectiveSecurityContext); windowsOptions is merged field by field.
OVERRIDABLE_FIELDS = ("runAsUser", "runAsGroup", "runAsNonRoot", "seLinuxOptions", "seccompProfile", "appArmorProfile")
CONTAINER_ONLY_FIELDS = ("privileged", "allowPrivilegeEscalation", "capabilities", "readOnlyRootFilesystem", "procMount")

# Bounds of the search by shape: deeper than any real CRD nests a pod template (JobSet: 5).
MAX_DEPTH = 12
MAX_POD_SPECS = 64
MAX_NODES = 20_000


@value
class PodSpec:
    """A pod spec found in an object (its own, or a controller's template), with where it is."""

    spec: Mapping[str, Any]
    path: FieldPath
    metadata: Mapping[str, Any]
    metadata_path: FieldPath
    container_places: ContainerPlaces = POD_CONTAINERS
    found_by: str = "kind"  # kind (a core kind, or a known custom kind) | shape
    # False where only containers are declared and the pod-level fields come from elsewhere (a
    # Tekton Task's steps: the TaskRun's podTemplate sets them): pod rules do not judge it.
    pod_level: bool = True

    @property
    def security_context(self) -> Mapping[str, Any]:
        return mapping(self.spec.get("securityContext"))

    @property
    def is_windows(self) -> bool:
        return mapping(self.spec.get("os")).get("name") == "windows"


@value
class Container:
    """One container (or init or ephemeral container) of a pod spec, with where it is."""

    body: Mapping[str, Any]
    path: FieldPath
    name: str
    kind: str  # container | initContainer | ephemeralContainer

    @property
    def security_context(self) -> Mapping[str, Any]:
        return mapping(self.body.get("securityContext"))


@value
class EffectiveSecurityContext:
    """The security context a container runs with; `sources` says where each field was set."""

    values: Mapping[str, Any]
    sources: Mapping[str, FieldPath]
    container_path: FieldPath

    def object_path(self, view_path: FieldPath) -> FieldPath:
        """Map a path inside this view to the path in the object where it is (or belongs)."""
        if not view_path:
            return self.container_path + ("securityContext",)
        head, rest = view_path[0], view_path[1:]
        source = self.sources.get(head) if isinstance(head, str) else None
        if source is None:
            return self.container_path + ("securityContext",) + view_path
        return source + rest


def mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is a mapping, else an empty one: rules must survive `securityContext: null`."""
    return value if isinstance(value, dict) else EMPTY


def sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- where pod specs are -------------------------------------------------------------------------
# A place is a path to a pod spec; "*" stands for every item of a list or every value of a mapping.
# Its metadata is the `metadata` beside a final `spec` (a PodTemplateSpec's).
Place = tuple[tuple[str, ...], ContainerPlaces, bool]  # (path, its containers, pod_level)
TEMPLATE = ("spec", "template", "spec")
# Argo: the workflow's pod-level fields (securityContext, hostNetwork, volumes, the token) apply to
# every step's pod; each template adds one container (or script) and its init containers and sidecars.
ARGO_CONTAINERS: ContainerPlaces = (
    (("templates", "*", "container"), "container"), (("templates", "*", "script"), "container"),
    (("templates", "*", "initContainers", "*"), "initContainer"), (("templates", "*", "sidecars", "*"), "container"))
TEKTON_STEPS: ContainerPlaces = ((("steps", "*"), "container"), (("sidecars", "*"), "container"))
# A Spark driver or executor is a pod and its main container in one mapping (SparkPodSpec).
SPARK_POD: ContainerPlaces = (((), "container"), (("initContainers", "*"), "initContainer"),
                              (("sidecars", "*"), "container"))


def _places(*paths: tuple[str, ...], fields: ContainerPlaces = POD_CONTAINERS, pod_level: bool = True
            ) -> tuple[Place, ...]:
    return tuple((path, fields, pod_level) for path in paths)


def _argo(prefix: tuple[str, ...]) -> tuple[Place, ...]:
    return _places(prefix, fields=ARGO_CONTAINERS)


def _ray(prefix: tuple[str, ...]) -> tuple[Place, ...]:
    return _places(prefix + ("headGroupSpec", "template", "spec"),
                   prefix + ("workerGroupSpecs", "*", "template", "spec"))


def _replica_specs(field: str) -> tuple[Place, ...]:
    return _places(("spec", field, "*", "template", "spec"))


CORE_WORKLOADS: dict[tuple[str, str], tuple[Place, ...]] = {
    ("", "Pod"): _places(("spec",)),
    ("", "PodTemplate"): _places(("template", "spec")),
    ("", "ReplicationController"): _places(TEMPLATE),
    **{(group, kind): _places(TEMPLATE) for group in ("apps", "extensions")
       for kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet")},
    ("batch", "Job"): _places(TEMPLATE),
    ("batch", "CronJob"): _places(("spec", "jobTemplate", "spec", "template", "spec")),
}

_CORE_BY_KIND = {kind: places for (_, kind), places in CORE_WORKLOADS.items()}

# Custom resources of well-known controllers, by API group and kind, at the paths of their API docs
# (tests/data/crds/ holds one of each). KubeVirt VirtualMachines hold no PodSpec: not judged here.
KNOWN_KINDS: dict[tuple[str, str], tuple[Place, ...]] = {
    ("argoproj.io", "Rollout"): _places(TEMPLATE),
    **{("apps.kruise.io", kind): _places(TEMPLATE)
       for kind in ("CloneSet", "StatefulSet", "DaemonSet", "BroadcastJob")},
    ("apps.kruise.io", "AdvancedCronJob"): _places(("spec", "template", "jobTemplate", "spec", "template", "spec"),
                                                   ("spec", "template", "broadcastJobTemplate", "spec", "template",
                                                    "spec")),
    ("apps.openshift.io", "DeploymentConfig"): _places(TEMPLATE),
    ("serving.knative.dev", "Service"): _places(TEMPLATE),
    ("serving.knative.dev", "Configuration"): _places(TEMPLATE),
    ("serving.knative.dev", "Revision"): _places(("spec",)),
    # Tekton: a Task's steps and sidecars are containers; its pod's fields come from the run's podTemplate.
    ("tekton.dev", "Task"): _places(("spec",), fields=TEKTON_STEPS, pod_level=False),
    ("tekton.dev", "ClusterTask"): _places(("spec",), fields=TEKTON_STEPS, pod_level=False),
    ("tekton.dev", "TaskRun"): _places(("spec", "podTemplate"), fields=()) + _places(
        ("spec", "taskSpec"), fields=TEKTON_STEPS, pod_level=False),
    ("tekton.dev", "Pipeline"): _places(("spec", "tasks", "*", "taskSpec"), ("spec", "finally", "*", "taskSpec"),
                                        fields=TEKTON_STEPS, pod_level=False),
    ("argoproj.io", "Workflow"): _argo(("spec",)),
    ("argoproj.io", "WorkflowTemplate"): _argo(("spec",)),
    ("argoproj.io", "ClusterWorkflowTemplate"): _argo(("spec",)),
    ("argoproj.io", "CronWorkflow"): _argo(("spec", "workflowSpec")),
    ("sparkoperator.k8s.io", "SparkApplication"): _places(("spec", "driver"), ("spec", "executor"),
                                                          fields=SPARK_POD),
    ("sparkoperator.k8s.io", "ScheduledSparkApplication"): _places(("spec", "template", "driver"),
                                                                   ("spec", "template", "executor"),
                                                                   fields=SPARK_POD),
    ("flink.apache.org", "FlinkDeployment"): _places(("spec", "podTemplate", "spec"),
                                                     ("spec", "jobManager", "podTemplate", "spec"),
                                                     ("spec", "taskManager", "podTemplate", "spec")),
    ("ray.io", "RayCluster"): _ray(("spec",)),
    ("ray.io", "RayJob"): _ray(("spec", "rayClusterSpec")) + _places(("spec", "submitterPodTemplate", "spec")),
    ("ray.io", "RayService"): _ray(("spec", "rayClusterConfig")),
    ("kubeflow.org", "PyTorchJob"): _replica_specs("pytorchReplicaSpecs"),
    ("kubeflow.org", "TFJob"): _replica_specs("tfReplicaSpecs"),
    ("kubeflow.org", "MPIJob"): _replica_specs("mpiReplicaSpecs"),
    ("kubeflow.org", "XGBoostJob"): _replica_specs("xgbReplicaSpecs"),
    ("kubeflow.org", "PaddleJob"): _replica_specs("paddleReplicaSpecs"),
    ("kubeflow.org", "JAXJob"): _replica_specs("jaxReplicaSpecs"),
    ("kubeflow.org", "Notebook"): _places(TEMPLATE),
    ("batch.volcano.sh", "Job"): _places(("spec", "tasks", "*", "template", "spec")),
    ("jobset.x-k8s.io", "JobSet"): _places(("spec", "replicatedJobs", "*", "template", "spec", "template", "spec")),
    ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"): _places(
        ("spec", "leaderWorkerTemplate", "leaderTemplate", "spec"),
        ("spec", "leaderWorkerTemplate", "workerTemplate", "spec")),
    ("agents.x-k8s.io", "Sandbox"): _places(("spec", "podTemplate", "spec")),
    ("extensions.agents.x-k8s.io", "SandboxTemplate"): _places(("spec", "podTemplate", "spec")),
    ("keda.sh", "ScaledJob"): _places(("spec", "jobTargetRef", "template", "spec")),  # a JobSpec (keda.sh docs)
    ("pkg.crossplane.io", "DeploymentRuntimeConfig"): _places(
        ("spec", "deploymentTemplate", "spec", "template", "spec")),
    ("pkg.crossplane.io", "ControllerConfig"): _places(("spec",), fields=()),
}

# Groups of the Kubernetes API itself: their kinds are known, none holds a pod spec besides the
# core workloads above (a CustomResourceDefinition's schema has `containers` properties: never a pod).
CORE_GROUPS = frozenset({
    "", "apps", "batch", "extensions", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io",
    "storage.k8s.io", "apiextensions.k8s.io", "admissionregistration.k8s.io", "apiregistration.k8s.io",
    "certificates.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "node.k8s.io",
    "flowcontrol.apiserver.k8s.io", "scheduling.k8s.io", "resource.k8s.io", "authentication.k8s.io",
    "authorization.k8s.io", "internal.apiserver.k8s.io", "storagemigration.k8s.io", "apiserverinternal.k8s.io",
})
# Custom resources that carry someone else's configuration (Helm values, Application specs): lists
# named `containers` in them are chart values, not pods this object runs.
NOT_WORKLOADS = frozenset({
    ("argoproj.io", "Application"), ("argoproj.io", "ApplicationSet"), ("argoproj.io", "AppProject"),
    ("helm.toolkit.fluxcd.io", "HelmRelease"), ("helm.cattle.io", "HelmChart"),
})
# Any other custom resource with a pod template at one of these paths holding `containers`.
_GENERIC_TEMPLATES = (("spec", "jobTemplate", "spec", "template", "spec"), TEMPLATE)


def api_group(body: Mapping[str, Any]) -> str:
    api_version = body.get("apiVersion")
    return api_version.rpartition("/")[0] if isinstance(api_version, str) else ""


def pod_specs(body: Mapping[str, Any]) -> list[PodSpec]:
    """Every pod spec of the object, in document order of its places."""
    kind = body.get("kind")
    if not isinstance(kind, str):
        return []
    group = api_group(body)
    if "apiVersion" in body:
        places = CORE_WORKLOADS.get((group, kind)) or KNOWN_KINDS.get((group, kind))
    else:  # a bare fragment (a rule fixture, a snippet): the core kind of that name, if any
        places = _CORE_BY_KIND.get(kind)
    if places is not None:
        return [pod for place in places for pod in _at_place(body, place)][:MAX_POD_SPECS]
    if "apiVersion" in body and group in CORE_GROUPS or (group, kind) in NOT_WORKLOADS:
        return []
    for path in _GENERIC_TEMPLATES:
        spec = _get(body, path)
        if isinstance(spec, dict) and isinstance(spec.get("containers"), list):
            return [_pod(body, path, spec, POD_CONTAINERS, "kind")]
    return list(_by_shape(body))


def custom_workload(resource: Resource) -> Optional[CustomWorkload]:
    """How a custom resource was judged as a workload (None for core kinds and non-workloads)."""
    body = resource.body
    if (api_group(body), resource.kind) in CORE_WORKLOADS:
        return None
    pods = pod_specs(body)
    if not pods:
        return None
    return CustomWorkload(resource.ref, pods[0].found_by, tuple(format_path(pod.path) for pod in pods))


def pod_spec(body: Mapping[str, Any]) -> Optional[PodSpec]:
    """The first pod spec of the object (for joins that need one template, e.g. owners)."""
    found = pod_specs(body)
    return found[0] if found else None


def _get(body: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        body = mapping(body).get(key)
    return body


def _pod(body: Mapping[str, Any], path: FieldPath, spec: Mapping[str, Any],
         fields: ContainerPlaces, found_by: str, pod_level: bool = True) -> PodSpec:
    if path == ("spec",) and body.get("kind") == "Pod" and api_group(body) == "":
        metadata_path: FieldPath = ("metadata",)
    elif path and path[-1] == "spec":
        metadata_path = path[:-1] + ("metadata",)
    else:  # no pod metadata of its own (an Argo workflow, a Spark driver): the object's stands in
        metadata_path = ("metadata",)
    metadata = mapping(_get_any(body, metadata_path))
    return PodSpec(spec, path, metadata, metadata_path, fields, found_by, pod_level)


def _get_any(body: Any, path: FieldPath) -> Any:
    for key in path:
        if isinstance(key, int):
            body = body[key] if isinstance(body, list) and 0 <= key < len(body) else None
        else:
            body = mapping(body).get(key)
    return body


def _at_place(body: Mapping[str, Any], place: Place) -> Iterator[PodSpec]:
    pattern, fields, pod_level = place
    for spec, path in matches(body, pattern, ()):
        yield _pod(body, path, spec, fields, "kind", pod_level)


def matches(node: Any, pattern: tuple[str, ...], done: FieldPath) -> Iterator[tuple[Mapping[str, Any], FieldPath]]:
    """The mappings at `pattern` below `node` ("*": every list item or mapping value), with their paths."""
    if not pattern:
        if isinstance(node, dict):
            yield node, done
        return
    key, rest = pattern[0], pattern[1:]
    if key != "*":
        yield from matches(mapping(node).get(key), rest, done + (key,))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from matches(item, rest, done + (index,))
    elif isinstance(node, dict):
        for name, value in node.items():
            yield from matches(value, rest, done + (str(name),))


def _container_like(value: Any) -> bool:
    return isinstance(value, dict) and (isinstance(value.get("image"), str) or isinstance(value.get("name"), str))


def looks_like_pod_spec(node: Mapping[str, Any]) -> bool:
    """A PodSpec by shape: a non-empty `containers` or `initContainers` list of container-like mappings."""
    for key in ("containers", "initContainers"):
        listed = node.get(key)
        if isinstance(listed, list) and listed and all(_container_like(item) for item in listed):
            return True
    return False


def _by_shape(body: Mapping[str, Any]) -> Iterator[PodSpec]:
    """Pod specs anywhere below the object's top level (not in metadata or status), bounded."""
    found = 0
    budget = MAX_NODES
    stack: list[tuple[Any, FieldPath]] = [(value, (key,)) for key, value in reversed(list(body.items()))
                                          if key not in ("apiVersion", "kind", "metadata", "status")]
    while stack and found < MAX_POD_SPECS and budget > 0:
        node, path = stack.pop()
        budget -= 1
        if isinstance(node, dict):
            if looks_like_pod_spec(node):
                found += 1
                yield _pod(body, path, node, POD_CONTAINERS, "shape")
                continue  # a pod spec holds no other pod spec
            if len(path) < MAX_DEPTH:
                stack.extend((value, path + (str(key),)) for key, value in reversed(list(node.items()))
                             if isinstance(value, (dict, list)))
        elif isinstance(node, list) and len(path) < MAX_DEPTH:
            stack.extend((item, path + (index,)) for index, item in reversed(list(enumerate(node)))
                         if isinstance(item, (dict, list)))


def containers(pod: PodSpec) -> list[Container]:
    found = []
    for pattern, kind in pod.container_places:
        for body, path in matches(pod.spec, pattern, pod.path):
            name = body.get("name")
            if not name:  # unnamed: `#<index>` in a list, else the field it sits in (`driver`, `script`)
                last = path[-1] if path else "#0"
                name = f"#{last}" if isinstance(last, int) else last
            found.append(Container(body, path, str(name), kind))
    return found


def effective_security_context(pod: PodSpec, container: Container) -> EffectiveSecurityContext:
    pod_sc, container_sc = pod.security_context, container.security_context
    pod_sc_path = pod.path + ("securityContext",)
    container_sc_path = container.path + ("securityContext",)
    values: dict[str, Any] = {}
    sources: dict[str, FieldPath] = {}
    for name in OVERRIDABLE_FIELDS:
        if container_sc.get(name) is not None:
            values[name], sources[name] = container_sc[name], container_sc_path + (name,)
        elif pod_sc.get(name) is not None:
            values[name], sources[name] = pod_sc[name], pod_sc_path + (name,)
    for name in CONTAINER_ONLY_FIELDS:
        if container_sc.get(name) is not None:
            values[name], sources[name] = container_sc[name], container_sc_path + (name,)
    windows = {**mapping(pod_sc.get("windowsOptions")), **mapping(container_sc.get("windowsOptions"))}
    if windows:
        values["windowsOptions"] = windows
        owner = container_sc_path if container_sc.get("windowsOptions") is not None else pod_sc_path
        sources["windowsOptions"] = owner + ("windowsOptions",)
    return EffectiveSecurityContext(values, sources, container.path)
