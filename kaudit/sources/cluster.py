"""Live clusters through the official `kubernetes` client: the only module that imports it.

The client gives kubeconfig contexts, exec / OIDC auth plugins, TLS and in-cluster config; the
requests themselves are raw GETs decoded as JSON (no generated model objects: several times faster
on large lists). What is read:

- discovery (`/api/v1`, `/apis`; a group's other versions for the types its preferred version does not
  serve), then only the resource types rules need (WANTED), each listed with
  `limit` / `continue`, concurrently, page by page, `managedFields` stripped;
- Secrets only as far as a rule needs them: those of type `kubernetes.io/service-account-token`
  (a field selector), as metadata only (PartialObjectMetadataList, with no plain-JSON fallback).
  Their data is never requested. The `last-applied-configuration` annotation, which holds the data
  of a Secret applied with client-side `kubectl apply`, is dropped while the answer is decoded, and
  from every other object later;
- a 403 is a coverage gap (and a namespaced type forbidden cluster-wide is retried per namespace);
  429 / 5xx / timeouts / dropped connections are retried with backoff, then recorded as gaps;
  an expired `continue` token restarts that list once. An unreachable server, a TLS failure, a
  timeout or rejected credentials stop the scan (exit 2) with one line naming the context and the
  server;
- every request says `User-Agent: kaudit/<version>`, so the cluster's audit log can tell kaudit apart;
- with `ClusterRequest.progress`, a terminal's standard error shows one updating line: types
  listed, pages fetched, objects read (kaudit/progress.py); nothing when it is not a terminal.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Optional, Sequence

import yaml

from kaudit import __version__
from kaudit.errors import KauditError
from kaudit.model import CoverageGap, Origin, Resource, ResourceRef
from kaudit.progress import Progress
from kaudit.value import field, record, value

PAGE_SIZE = 500
TIMEOUT_SECONDS = 20.0
ATTEMPTS = 4
WORKERS = 6
# No `,application/json` fallback: a server that cannot answer metadata-only answers 406 (a gap),
# never the whole objects.
PARTIAL_METADATA = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
USER_AGENT = f"kaudit/{__version__}"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
RETRYABLE = {429, 500, 502, 503, 504}
MAX_RESPONSE = 128 << 20  # one list page; past it the type is a gap, not an out-of-memory kill

# (API group, plural) of what the rules read. Types a server does not offer are simply not listed.
WANTED: tuple[tuple[str, str], ...] = (
    ("", "namespaces"), ("", "pods"), ("", "services"), ("", "serviceaccounts"), ("", "secrets"),
    ("", "replicationcontrollers"), ("", "nodes"), ("", "limitranges"), ("", "resourcequotas"),
    # whole objects: ConfigMaps hold configuration, not Secrets. secret-in-configmap judges their
    # data; kubeadm's kube-system/kubeadm-config and kubelet-config carry the control plane's and
    # the kubelets' configuration
    ("", "configmaps"),
    ("apps", "deployments"), ("apps", "daemonsets"), ("apps", "statefulsets"), ("apps", "replicasets"),
    ("batch", "jobs"), ("batch", "cronjobs"),
    ("networking.k8s.io", "networkpolicies"), ("networking.k8s.io", "ingresses"),
    ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "rolebindings"), ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
    ("cilium.io", "ciliumnetworkpolicies"), ("cilium.io", "ciliumclusterwidenetworkpolicies"),
    ("crd.projectcalico.org", "networkpolicies"), ("crd.projectcalico.org", "globalnetworkpolicies"),
    ("projectcalico.org", "networkpolicies"), ("projectcalico.org", "globalnetworkpolicies"),
    ("argoproj.io", "rollouts"), ("apps.kruise.io", "clonesets"),
    # Gateway API (CRDs, when installed): routes are entry points of the attack graph, like Ingresses.
    # TLSRoute, TCPRoute and UDPRoute are served only in the experimental versions (v1alpha2, v1alpha3),
    # not in the group's preferred v1: discovery looks there for what the preferred version lacks
    ("gateway.networking.k8s.io", "gateways"), ("gateway.networking.k8s.io", "httproutes"),
    ("gateway.networking.k8s.io", "grpcroutes"), ("gateway.networking.k8s.io", "tlsroutes"),
    ("gateway.networking.k8s.io", "tcproutes"), ("gateway.networking.k8s.io", "udproutes"),
)
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"


@value
class MetadataOnly:
    """A type read as metadata only, and only the objects a field selector picks. `fields`: what the
    selector fixes (metadata-only items do not carry it), set on every item so rules can see it."""

    field_selector: str
    fields: tuple[tuple[str, str], ...]


# The only rule that reads Secrets (legacy-service-account-token-secret) needs the token ones.
METADATA_ONLY: dict[tuple[str, str], MetadataOnly] = {
    ("", "secrets"): MetadataOnly(f"type={SERVICE_ACCOUNT_TOKEN}", (("type", SERVICE_ACCOUNT_TOKEN),)),
}
HINT = "pass -n NAMESPACE for the namespaces this credential can read"


@value
class ResourceType:
    """One API resource a cluster scan lists."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def label(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: Optional[str] = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"


@record
class ClusterScan:
    """What a cluster scan read: objects, gaps, version and requests made."""

    context: str
    server: str
    version: str
    resources: list[Resource] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    gaps: list[CoverageGap] = field(default_factory=list)
    requests: int = 0
    warnings: list[str] = field(default_factory=list)  # about the request, e.g. a namespace that does not exist
    kinds_read: set[str] = field(default_factory=set)  # kinds listed with at least one success


@value
class ClusterRequest:
    """Which cluster to scan and how: kubeconfig, context, namespaces, timeout."""

    kubeconfig: Optional[str] = None
    context: Optional[str] = None
    in_cluster: bool = False
    namespaces: tuple[str, ...] = ()
    exclude_namespaces: tuple[str, ...] = ()
    timeout: float = TIMEOUT_SECONDS
    page_size: int = PAGE_SIZE
    progress: bool = False  # an updating line on standard error, when it is a terminal (the CLI's default)


class _Failure(Exception):
    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.status = status  # HTTP status; 0 for connection-level failures
        self.message = message
        self.kind = kind or ("http" if status else "connection")  # http | connection | timeout | tls


def contexts(kubeconfig: Optional[str]) -> list[str]:
    from kubernetes import config

    try:
        found, _ = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as error:
        raise KauditError(f"kubeconfig {kubeconfig or '~/.kube/config'}: {_short(error)}") from None
    return [str(c["name"]) for c in found or []]


class _Api:
    """Raw GETs through the client's configured connection (auth, TLS, proxies), decoded as JSON."""

    def __init__(self, request: ClusterRequest) -> None:
        from kubernetes import client, config

        configuration = client.Configuration()
        try:
            if request.in_cluster:
                config.load_incluster_config(client_configuration=configuration)
                self.context = "in-cluster"
            else:
                config.load_kube_config(config_file=request.kubeconfig, context=request.context,
                                        client_configuration=configuration, persist_config=False)
                self.context = request.context or _current_context(request.kubeconfig)
        except (config.ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as error:
            where = "in-cluster config" if request.in_cluster else f"kubeconfig {request.kubeconfig or '~/.kube/config'}"
            raise KauditError(f"{where}: {error}") from None
        configuration.retries = False  # kaudit retries itself, and records what still fails as a gap
        self.server = str(configuration.host)
        self.timeout = request.timeout
        self.page_size = request.page_size
        self.client = client.ApiClient(configuration)
        self.client.user_agent = USER_AGENT  # audit logs tell kaudit's requests apart by it
        self.requests = 0
        self.tally = _Tally(Progress.on_stderr(request.progress), self.context)

    def get(self, path: str, query: Sequence[tuple[str, Any]] = (), accept: str = "application/json",
            pairs_hook: Optional[Callable[[list[tuple[str, Any]]], Any]] = None) -> Any:
        from kubernetes.client.rest import ApiException

        self.requests += 1
        try:
            prepared = self.client.param_serialize("GET", path, query_params=list(query),
                                                   header_params={"Accept": accept}, auth_settings=["BearerToken"])
            deadline = time.monotonic() + self.timeout
            response = self.client.call_api(*prepared, _request_timeout=self.timeout)
            raw = response.response
            status = response.status
            length = raw.headers.get("Content-Length")
            if length is not None and int(length) > MAX_RESPONSE:
                raw.close()
                raise _Failure(0, f"response too large: {int(length) >> 20} MiB announced, "
                                  f"more than {MAX_RESPONSE >> 20} MiB")
            chunks, size = [], 0
            while True:
                chunk = raw.read1(1 << 16)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_RESPONSE:
                    raw.close()
                    raise _Failure(0, f"response too large: more than {MAX_RESPONSE >> 20} MiB")
                if time.monotonic() > deadline:
                    raw.close()
                    raise self.timed_out()
                chunks.append(chunk)
            body = b"".join(chunks)
        except _Failure:
            raise
        except ApiException as error:  # the client's own wrapping of TLS errors ("SSLError\n[SSL: ...")
            status = int(error.status or 0)
            text = str(error.reason or error)
            raise _Failure(status, _one_line(text), "tls" if not status and "SSL" in text else "") from None
        except Exception as error:  # urllib3 timeouts, refused or dropped connections
            if _is_timeout(error):
                raise self.timed_out() from None
            raise _Failure(0, _short(error)) from None
        if status >= 400:
            raise _Failure(status, _status_message(body) or f"HTTP {status}")
        try:
            data = json.loads(body, object_pairs_hook=pairs_hook)
        except ValueError:
            raise _Failure(0, "the server answered with malformed JSON") from None
        return data

    def timed_out(self) -> _Failure:
        return _Failure(0, f"timed out after {self.timeout:g} s", "timeout")

    def close(self) -> None:
        self.client.close()


class _Tally:
    """What a scan has read so far, for the progress line (lists run in several threads)."""

    def __init__(self, progress: Progress, context: str) -> None:
        self.progress = progress
        self.context = context
        self.types = self.listed = self.pages = self.objects = 0
        self.lock = threading.Lock()

    def start(self, types: int) -> None:
        self.types = types
        self._show(force=True)

    def page(self, objects: int) -> None:
        with self.lock:
            self.pages += 1
            self.objects += objects
        self._show()

    def type_listed(self) -> None:
        with self.lock:
            self.listed += 1
        self._show(force=True)

    def _show(self, force: bool = False) -> None:
        self.progress.update(f"kaudit: context {self.context}: {self.listed}/{self.types} types listed, "
                             f"{self.pages} pages, {self.objects} objects", force)


def _is_timeout(error: BaseException) -> bool:
    """urllib3's read and connect timeouts, also when wrapped in a MaxRetryError."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError, TimeoutError as Urllib3Timeout

    if isinstance(error, MaxRetryError) and error.reason is not None:
        error = error.reason
    if isinstance(error, NewConnectionError):  # a subclass of ConnectTimeoutError, but a refusal
        return False
    return isinstance(error, (Urllib3Timeout, TimeoutError))


def _one_line(text: str) -> str:
    """The client's TLS errors are "SSLError\n[SSL: X] what (_ssl.c:1006)": the type name and the
    C source line say nothing to a user, and a message is one line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) > 1 and re.fullmatch(r"\w+Error", lines[0]):
        lines = lines[1:]
    return re.sub(r"\s*\(_ssl\.c:\d+\)", "", " ".join(lines))


def _without_last_applied(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook: the last-applied annotation (a Secret's data, when applied client-side) is
    never put into a decoded object."""
    return {key: value for key, value in pairs if key != LAST_APPLIED}


def _current_context(kubeconfig: Optional[str]) -> str:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        return str(active["name"]) if active else "current"
    except Exception:
        return "current"


def _short(error: BaseException) -> str:
    text = str(error)
    reason = getattr(error, "reason", None)
    if reason is not None and str(reason):
        text = str(reason)
    elif error.args and isinstance(error.args[0], str):
        text = error.args[0]  # e.g. urllib3's ProtocolError("Connection broken: ...", cause)
    return text if len(text) <= 200 else text[:197] + "..."


def _status_message(body: bytes) -> str:
    try:
        status = json.loads(body)
    except ValueError:
        return ""
    return str(status.get("message", "")) if isinstance(status, dict) else ""


def load_cluster(request: ClusterRequest) -> ClusterScan:
    api = _Api(request)
    try:
        api.tally.progress.update(f"kaudit: context {api.context}: connecting to {api.server}", force=True)
        version = _connect(api)
        scan = ClusterScan(api.context, api.server, version)
        types = _discover(api, scan)
        _collect(api, types, request, scan)
        scan.requests = api.requests
        return scan
    finally:
        api.tally.progress.done()
        api.close()


def _connect(api: _Api) -> str:
    """The first request: failures here mean the scan cannot happen at all (exit 2)."""
    where = f"context {api.context} (server {api.server})"
    try:
        info = api.get("/version")
    except _Failure as failure:
        if failure.status == 401:
            raise KauditError(f"{where}: credentials rejected (401): {failure.message}") from None
        if failure.kind == "timeout":
            raise KauditError(f"{where}: {failure.message}") from None
        if failure.status == 0:
            tls = failure.kind == "tls" or "certificate" in failure.message.lower()
            what = ("TLS verification failed" if "verif" in failure.message.lower() else "TLS failed") \
                if tls else "cannot reach the server"
            raise KauditError(f"{where}: {what}: {failure.message}") from None
        if failure.status != 403:
            raise KauditError(f"{where}: HTTP {failure.status}: {failure.message}") from None
        return "unknown (version forbidden)"
    return str(info.get("gitVersion", "unknown")) if isinstance(info, dict) else "unknown"


def _discover(api: _Api, scan: ClusterScan) -> list[ResourceType]:
    wanted = set(WANTED)
    found: list[ResourceType] = []

    def add(group: str, version: str, listing: Any, only: Optional[set[str]] = None) -> None:
        for entry in listing.get("resources", []) if isinstance(listing, dict) else []:
            name = str(entry.get("name", ""))
            if "/" in name or (group, name) not in wanted or "list" not in entry.get("verbs", ["list"]):
                continue
            if only is not None and name not in only:
                continue
            found.append(ResourceType(group, version, name, str(entry.get("kind")), bool(entry.get("namespaced"))))

    try:
        add("", "v1", api.get("/api/v1"))
        groups = api.get("/apis")
    except _Failure as failure:
        raise KauditError(f"context {api.context} (server {api.server}): discovery failed: {failure.message}") from None
    wanted_groups = {group for group, _ in wanted if group}
    for group in groups.get("groups", []) if isinstance(groups, dict) else []:
        name = str(group.get("name", ""))
        if name not in wanted_groups:
            continue
        for version in _versions(group):
            missing = {plural for g, plural in wanted if g == name} - {t.plural for t in found if t.group == name}
            if not missing:
                break  # each type is listed once, in the first (most preferred) version that serves it
            try:
                add(name, version, api.get(f"/apis/{name}/{version}"), missing)
            except _Failure as failure:
                scan.gaps.append(CoverageGap(name, "", None, "failed", f"discovery: {failure.message}"))
                break
    return found


def _versions(group: Any) -> list[str]:
    """A group's versions, the preferred one first, then the others in the server's order (which is
    its priority order: v1, v1beta1, v1alpha2...). A CRD group may serve a type only in a version that
    is not preferred (Gateway API's TCPRoute: v1alpha2 alone)."""
    if not isinstance(group, dict):
        return []
    preferred = str((group.get("preferredVersion") or {}).get("version") or "")
    others = [str(v.get("version") or "") for v in group.get("versions") or [] if isinstance(v, dict)]
    ordered = [preferred] if preferred else []
    ordered += [v for v in others if v and v not in ordered]
    return ordered


def _collect(api: _Api, types: list[ResourceType], request: ClusterRequest, scan: ClusterScan) -> None:
    excluded = set(request.exclude_namespaces)
    namespace_type = next((t for t in types if t.group == "" and t.plural == "namespaces"), None)
    known_namespaces: list[str] = list(request.namespaces)
    unlisted: list[str] = []  # what this credential cannot list in every namespace (for the -n hint)
    units = [(t, ns) for t in types if t is not namespace_type
             for ns in (request.namespaces if t.namespaced and request.namespaces else [None])
             if ns not in excluded]
    api.tally.start(len(units) + (namespace_type is not None and not request.namespaces))
    if namespace_type is not None and request.namespaces:
        scan.warnings.extend(_missing_namespaces(api, namespace_type, request.namespaces))
    elif namespace_type is not None:
        items, gap = _list(api, namespace_type, None)
        api.tally.type_listed()
        scan.gaps.extend(gap)
        scan.resources.extend(_resources(items, namespace_type, scan, excluded))
        if not gap:
            scan.read.append(namespace_type.label)
            scan.kinds_read.add(namespace_type.kind)
        elif gap[0].reason == "forbidden":
            unlisted.append(namespace_type.label)
        known_namespaces = [str(item.get("metadata", {}).get("name")) for item in items]

    def list_one(unit: tuple[ResourceType, Optional[str]]) -> tuple[Any, Any]:
        listed = _list_with_fallback(api, unit[0], unit[1], known_namespaces, excluded)
        api.tally.type_listed()
        return unit, listed

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(list_one, units))
    for (resource_type, _namespace), (items, gaps, fell_back) in results:
        scan.gaps.extend(gaps)
        scan.resources.extend(_resources(items, resource_type, scan, excluded))
        read_somewhere = fell_back and len(gaps) < len([n for n in known_namespaces if n not in excluded])
        if not gaps or read_somewhere:
            scan.kinds_read.add(resource_type.kind)
        if not gaps and resource_type.label not in scan.read:
            scan.read.append(resource_type.label)
        if read_somewhere and any(g.reason == "forbidden" for g in gaps):
            unlisted.append(resource_type.label)  # readable in some namespaces only: -n helps
    if unlisted and not request.namespaces:
        scan.warnings.append(f"this credential cannot list {', '.join(sorted(unlisted))} in every namespace; {HINT}")


def _missing_namespaces(api: _Api, namespace_type: ResourceType, names: Sequence[str]) -> list[str]:
    """A warning for each `-n` namespace the server says does not exist (a typo scans nothing). A 403
    says nothing about existence: no warning then."""
    missing = []
    for name in names:
        try:
            _get_with_retries(api, f"{namespace_type.path()}/{name}", (), "application/json")
        except _Failure as failure:
            if failure.status == 404:
                missing.append(f"namespace {name} does not exist")
    return missing


def _list_with_fallback(api: _Api, resource_type: ResourceType, namespace: Optional[str], namespaces: list[str],
                        excluded: set[str]) -> tuple[list[Any], list[CoverageGap], bool]:
    """The items, the gaps, and whether the list fell back to one request per namespace."""
    items, gaps = _list(api, resource_type, namespace)
    # Least-privilege setups grant namespaced reads per namespace: retry a forbidden cluster-wide list
    # namespace by namespace, so one missing RoleBinding is one gap, not a blind spot over the cluster.
    if gaps and gaps[0].reason == "forbidden" and namespace is None and resource_type.namespaced and namespaces:
        items, gaps = [], []
        for name in namespaces:
            if name in excluded:
                continue
            found, missing = _list(api, resource_type, name)
            items.extend(found)
            gaps.extend(missing)
        return items, gaps, True
    return items, gaps, False


def _list(api: _Api, resource_type: ResourceType, namespace: Optional[str]) -> tuple[list[Any], list[CoverageGap]]:
    metadata_only = METADATA_ONLY.get((resource_type.group, resource_type.plural))
    accept = PARTIAL_METADATA if metadata_only else "application/json"
    selector = [("fieldSelector", metadata_only.field_selector)] if metadata_only else []
    hook = _without_last_applied if metadata_only else None
    path = resource_type.path(namespace)
    items: list[Any] = []
    token: Optional[str] = None
    paginate = True
    while True:
        query: list[tuple[str, Any]] = selector + ([("limit", api.page_size)] if paginate else []) + (
            [("continue", token)] if token else [])
        try:
            page = _get_with_retries(api, path, query, accept, hook)
        except _Failure as failure:
            if failure.status == 410 and token and paginate:
                # the continue token expired (the list changed too much meanwhile): like client-go's
                # pager, fall back to one consistent list without pagination
                paginate, token, items = False, None, []
                continue
            if failure.status == 401:
                # the credentials stopped working (revoked, expired): nothing more can be read honestly
                raise KauditError(f"context {api.context} (server {api.server}): credentials rejected (401) "
                                  f"during the scan: {failure.message}")
            reason = "forbidden" if failure.status == 403 else "failed"
            return items, [CoverageGap(resource_type.label, resource_type.kind, namespace, reason, failure.message)]
        if not isinstance(page, dict) or not isinstance(page.get("items") or [], list) or \
                not isinstance(page.get("metadata") or {}, dict):
            return items, [CoverageGap(resource_type.label, resource_type.kind, namespace, "failed",
                                       "the server answered with malformed JSON: not a list")]
        if metadata_only:
            # only metadata, whatever the server sent, plus what the selector fixed (the type)
            items.extend({"metadata": item.get("metadata"), **dict(metadata_only.fields)}
                         for item in page.get("items") or [] if isinstance(item, dict))
        else:
            items.extend(page.get("items") or [])
        api.tally.page(len(page.get("items") or []))
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items, []


def _get_with_retries(api: _Api, path: str, query: Sequence[tuple[str, Any]], accept: str,
                      pairs_hook: Optional[Callable[[list[tuple[str, Any]]], Any]] = None) -> Any:
    delay = 0.2
    for attempt in range(ATTEMPTS):
        try:
            return api.get(path, query, accept, pairs_hook)
        except _Failure as failure:
            retryable = failure.status in RETRYABLE or failure.status == 0
            if not retryable or attempt == ATTEMPTS - 1:
                raise
            time.sleep(delay)
            delay *= 2.5
    raise AssertionError("unreachable")


def _resources(items: list[Any], resource_type: ResourceType, scan: ClusterScan,
               excluded: set[str]) -> Iterator[Resource]:
    for item in items:
        if not isinstance(item, dict):
            continue
        raw_metadata = item.get("metadata")
        metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
        namespace = metadata.get("namespace")
        if namespace in excluded or (resource_type.kind == "Namespace" and resource_type.group == ""
                                     and metadata.get("name") in excluded):
            continue  # --exclude-namespace ns: its objects, and the Namespace ns itself
        metadata.pop("managedFields", None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)  # it holds the whole object as applied: a Secret's data too
        # list items carry no apiVersion / kind (and metadata-only ones say PartialObjectMetadata)
        item["apiVersion"], item["kind"] = resource_type.api_version, resource_type.kind
        item["metadata"] = metadata
        name = str(metadata.get("name") or "<unnamed>")
        ref = ResourceRef(resource_type.api_version, resource_type.kind, name,
                          str(namespace) if namespace else None)
        yield Resource(ref, item, Origin(context=scan.context, server=scan.server))


def running_in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(
        "/var/run/secrets/kubernetes.io/serviceaccount/token")
