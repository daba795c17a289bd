"""A fake, read-only Kubernetes API server speaking the real REST protocol over HTTPS on 127.0.0.1.

    with FakeApiServer([pod, secret], forbidden={("secrets", None)}) as api:
        cfg = api.kubeconfig(tmp_path / "kubeconfig")
        ...  # point the real `kubernetes` client (or kaudit) at cfg
        assert api.requests[0].path == "/version"

See README.md beside this file for what is served and every knob.
"""
from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from ..loopback import LoopbackServer
from .certs import ServerCerts, make_server_certs
from .fields import matcher

Obj = dict[str, Any]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
META_GROUP_VERSIONS = ("v1", "v1beta1")
# What `malformed={"services"}` serves (200, application/json): a list cut off mid-object.
MALFORMED_BODY = b'{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":'
HUGE_CHUNK = 1 << 20  # `huge` bodies are written in pieces of about this size
NOT_ACCEPTABLE = "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
DEFAULT_TIMESTAMP = "2024-01-01T00:00:00Z"


@dataclass(frozen=True)
class ResourceType:
    """One served resource (an APIResource in discovery)."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def discovery(self) -> Obj:
        singular = self.kind.lower()
        return {"name": self.plural, "singularName": singular, "namespaced": self.namespaced,
                "kind": self.kind, "verbs": list(self.verbs)}


def _rt(group_version: str, kind: str, namespaced: bool = True, plural: str | None = None) -> ResourceType:
    group, _, version = group_version.rpartition("/")
    return ResourceType(group, version, kind, plural or plural_of(kind), namespaced)


# Kinds named by their plural, or whose English plural is not kind.lower() + "s".
PLURAL_EXCEPTIONS = {"Endpoints": "endpoints", "ComponentStatus": "componentstatuses"}
# Cluster-scoped kinds that may appear without being in BUILTIN_RESOURCES.
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "CustomResourceDefinition", "StorageClass", "PriorityClass",
    "RuntimeClass", "IngressClass", "CSIDriver", "APIService", "PodSecurityPolicy",
    "CertificateSigningRequest", "CiliumClusterwideNetworkPolicy", "GlobalNetworkPolicy",
    "ClusterIssuer", "ClusterPolicy",
})


def plural_of(kind: str) -> str:
    """The resource name the API server uses for `kind` (NetworkPolicy -> networkpolicies)."""
    if kind in PLURAL_EXCEPTIONS:
        return PLURAL_EXCEPTIONS[kind]
    lower = kind.lower()
    if re.search(r"[^aeiou]y$", lower):
        return lower[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", lower):
        return lower + "es"
    return lower + "s"


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key in the API server's version priority (apimachinery's CompareKubeAwareVersionStrings):
    GA before beta before alpha, higher numbers first, anything else last by name. A group's
    versions are listed in this order and the first is its preferredVersion (a CRD's too)."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -int(major), -int(minor or 0), version)


BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    _rt("v1", "Pod"), _rt("v1", "Service"), _rt("v1", "Namespace", False), _rt("v1", "ServiceAccount"),
    _rt("v1", "Secret"), _rt("v1", "ConfigMap"), _rt("v1", "Node", False), _rt("v1", "ReplicationController"),
    _rt("apps/v1", "Deployment"), _rt("apps/v1", "StatefulSet"), _rt("apps/v1", "DaemonSet"),
    _rt("apps/v1", "ReplicaSet"),
    _rt("batch/v1", "Job"), _rt("batch/v1", "CronJob"),
    _rt("networking.k8s.io/v1", "NetworkPolicy"), _rt("networking.k8s.io/v1", "Ingress"),
    _rt("rbac.authorization.k8s.io/v1", "Role"), _rt("rbac.authorization.k8s.io/v1", "RoleBinding"),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRole", False),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", False),
    _rt("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", False),
    _rt("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", False),
    _rt("policy/v1", "PodDisruptionBudget"),
)
BUILTIN_GROUPS = frozenset(rt.group for rt in BUILTIN_RESOURCES)


class RecordedRequest(NamedTuple):
    method: str
    path: str  # without the query string, percent-decoded
    query: dict[str, str]  # last value wins
    accept: str | None
    headers: Mapping[str, str] = {}  # every request header, names lower-cased (User-Agent, Accept, ...)

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("user-agent")

    @property
    def field_selector(self) -> str | None:
        return self.query.get("fieldSelector")


# (verb, API group, plural, namespace or None for the cluster scope) -> allowed? See `authorize`.
Authorizer = Callable[[str, str, str, "str | None"], bool]


@dataclass
class _Reply:
    status: int
    body: Obj
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    drop: bool = False
    hang: bool = False  # never answer (until stop())
    raw: bytes | None = None  # served verbatim instead of json.dumps(body) (`malformed`)
    huge: int = 0  # stream a valid list body of this many bytes instead of `body`
    chunked: bool = False  # `huge` without Content-Length (Transfer-Encoding: chunked)
    trickle: float = 0.0  # send the body one byte every `trickle` seconds


def status_body(code: int, reason: str, message: str, details: Obj | None = None,
                metadata: Obj | None = None) -> Obj:
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": metadata or {}, "status": "Failure",
                 "message": message, "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return body


def _error(code: int, reason: str, message: str, details: Obj | None = None, metadata: Obj | None = None,
           headers: list[tuple[str, str]] | None = None) -> _Reply:
    return _Reply(code, status_body(code, reason, message, details, metadata), headers=headers or [])


def _not_found() -> _Reply:
    return _error(404, "NotFound", "the server could not find the requested resource", {})


FLAKY_REASONS = {
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    500: ("InternalError", "Internal error occurred: etcdserver: request timed out"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
}


def _negotiate(accept: str | None, allowed_as: Iterable[str]) -> str | None:
    """Pick a response form from an Accept header: "" = plain JSON, "X" = `as=X` (meta.k8s.io),
    None = nothing acceptable (406). Media ranges are tried in order, as the API server does."""
    if not accept:
        return ""
    for media_range in accept.split(","):
        kind, *raw_params = (part.strip() for part in media_range.split(";"))
        if kind.lower() not in ("application/json", "application/*", "*/*"):
            continue
        params = {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in raw_params)}
        wanted = params.get("as")
        if wanted is None:
            return ""
        if wanted in allowed_as and params.get("g") == "meta.k8s.io" and params.get("v") in META_GROUP_VERSIONS:
            return wanted
    return None


def _encode_continue(key: tuple[str, str], resource_version: str, inconsistent: bool = False) -> str:
    token: Obj = {"v": "meta.k8s.io/v1", "rv": resource_version, "start": list(key)}
    if inconsistent:
        token["inconsistent"] = True
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode_continue(token: str) -> Obj | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("start"), list) or len(data["start"]) != 2:
        return None
    return data


def _version_info(version: str | Mapping[str, str]) -> Obj:
    if isinstance(version, Mapping):
        return dict(version)
    match = re.match(r"v?(\d+)\.(\d+)", version)
    major, minor = match.groups() if match else ("1", "0")
    return {"major": major, "minor": minor, "gitVersion": version,
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": DEFAULT_TIMESTAMP, "goVersion": "go1.22.2", "compiler": "gc", "platform": "linux/amd64"}


HUGE_ITEM = (b'{"metadata":{"name":"huge-%010d","uid":"00000000-0000-4000-8000-%012d",'
             b'"resourceVersion":"1","annotations":{"pad":"%s"}}}')
HUGE_PAD = 4000  # bytes of padding in each regular item: about 4 KiB an item


def huge_list_pieces(list_body: Obj, total: int) -> Iterator[bytes]:
    """The pieces of a JSON list (`list_body`'s kind, apiVersion, metadata; generated items) whose
    concatenation is exactly `total` bytes long and parses. Made lazily: nothing of that size is held."""
    head = (json.dumps({k: list_body.get(k) for k in ("kind", "apiVersion", "metadata")})[:-1]
            + ',"items":[').encode()
    tail = b"]}"
    smallest = len(HUGE_ITEM % (0, 0, b""))
    regular = len(HUGE_ITEM % (0, 0, b"x" * HUGE_PAD))
    room = total - len(head) - len(tail) - smallest
    if room < 0:
        raise ValueError(f"a huge list needs at least {total - room} bytes")
    count = room // (regular + 1)  # regular items, each followed by a comma
    last_pad = room - count * (regular + 1)
    pad = b"x" * HUGE_PAD
    piece = bytearray(head)
    for number in range(count):
        piece += HUGE_ITEM % (number, number, pad)
        piece += b","
        if len(piece) >= HUGE_CHUNK:
            yield bytes(piece)
            piece.clear()
    piece += HUGE_ITEM % (count, count, b"x" * last_pad)
    piece += tail
    yield bytes(piece)


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, api: FakeApiServer, context: ssl.SSLContext) -> None:
        self.api = api
        self.ssl_context = context
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # TLS handshakes refused by clients, resets, timeouts: all expected in tests

    def close_open_sockets(self) -> None:
        with self.sockets_lock:
            open_sockets, self.open_sockets = list(self.open_sockets), set()
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's pool expects
    timeout = 30  # idle keep-alive connections give up after this
    server: _TLSServer

    def setup(self) -> None:
        raw: socket.socket = self.request
        raw.settimeout(10)
        self.request = self.server.ssl_context.wrap_socket(raw, server_side=True)  # handshake here, not in accept()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.request)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.request)
        self.request.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        api = self.server.api
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = api._handle(self.command, self.path, headers)
        if reply.hang:
            api._stopping.wait()  # no answer at all; stop() drops the connection
            self.close_connection = True
            return
        if reply.delay and api._stopping.wait(reply.delay):
            self.close_connection = True
            return
        try:
            if reply.huge:
                self._stream_huge(reply)
                return
            body = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
            self._send_head(reply, len(body))
            if reply.drop:
                self.wfile.write(body[: len(body) // 2])
                self.connection.shutdown(socket.SHUT_RDWR)  # no close_notify: an abrupt EOF mid-body
                self.close_connection = True
                return
            if reply.trickle:
                for offset in range(len(body)):
                    if api._stopping.wait(reply.trickle):
                        self.close_connection = True
                        return
                    self.wfile.write(body[offset:offset + 1])
                return
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _send_head(self, reply: _Reply, length: int | None) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()

    def _stream_huge(self, reply: _Reply) -> None:
        """A valid list of exactly `reply.huge` bytes, made and written piece by piece (never held)."""
        stopping = self.server.api._stopping
        self._send_head(reply, None if reply.chunked else reply.huge)
        for piece in huge_list_pieces(reply.body, reply.huge):
            if stopping.is_set():
                self.close_connection = True
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if reply.chunked else piece)
        if reply.chunked:
            self.wfile.write(b"0\r\n\r\n")

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_PATCH = _serve
    do_DELETE = _serve


class FakeApiServer(LoopbackServer):
    """Serve `objects` (plain dicts, as `kubectl get -o json` shows them) like kube-apiserver does.

    Knobs (all optional): see README.md. `forbidden` holds (plural, namespace) pairs: namespace None
    means every scope, "" the cluster-wide (all-namespaces) request only, "x" requests in namespace x.
    """

    thread_name = "fake-kube-apiserver"

    def __init__(
        self,
        objects: Iterable[Mapping[str, Any]] = (),
        *,
        version: str | Mapping[str, str] = "v1.29.4",
        token: str | None = None,
        user: str = "system:serviceaccount:kaudit:scanner",
        resources: Iterable[ResourceType] = (),
        forbidden: Iterable[tuple[str, str | None]] = (),
        unauthorized: bool = False,
        flaky: Mapping[str, int] | None = None,
        flaky_status: int = 500,
        retry_after: int | None = None,
        slow: Mapping[str, float] | None = None,
        expire_continue: Iterable[str] = (),
        drop_connection: Iterable[str] | Mapping[str, int] = (),
        malformed: Iterable[str] | Mapping[str, bytes] = (),
        huge: Mapping[str, int] | None = None,
        huge_chunked: bool = False,
        hang: Iterable[str] = (),
        trickle: Mapping[str, float] | None = None,
        revoke_after: int | None = None,
        authorize: Authorizer | None = None,
        item_typemeta: bool = False,
        resource_version: str = "123456",
    ) -> None:
        self.token = token if token is not None else secrets.token_urlsafe(24)
        self.user = user
        self.version_info = _version_info(version)
        self.forbidden = set(forbidden)
        self.unauthorized = unauthorized
        self.flaky = dict(flaky or {})
        self.flaky_status = flaky_status
        self.retry_after = retry_after
        self.slow = dict(slow or {})
        self.expire_continue = set(expire_continue)
        # plural -> how many of its 200s are answered whole before every later one is dropped
        self.drop_connection: dict[str, int] = (dict(drop_connection) if isinstance(drop_connection, Mapping)
                                                else dict.fromkeys(drop_connection, 0))
        self.malformed: dict[str, bytes] = (dict(malformed) if isinstance(malformed, Mapping)
                                            else dict.fromkeys(malformed, MALFORMED_BODY))
        self.huge = dict(huge or {})
        self.huge_chunked = huge_chunked
        self.hang = set(hang)
        self.trickle = dict(trickle or {})
        self.revoke_after = revoke_after
        self.authorize = authorize
        self.item_typemeta = item_typemeta
        self.resource_version = resource_version

        self._types: dict[tuple[str, str, str], ResourceType] = {}  # (group, version, plural)
        for rt in (*BUILTIN_RESOURCES, *resources):
            self._types[(rt.group, rt.version, rt.plural)] = rt
        self._store: dict[ResourceType, list[Obj]] = {}
        for number, obj in enumerate(objects):
            prepared = self._prepare(obj, number)
            self._store.setdefault(self._type_of(prepared), []).append(prepared)
        for items in self._store.values():
            items.sort(key=_key)

        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._flaky_seen: dict[str, int] = {}
        self._answered: dict[str, int] = {}  # 200s per plural (drop_connection)
        self._resource_requests = 0  # list / get requests (revoke_after)
        self._revoked = False
        self._stopping = threading.Event()
        self._tmp: Path | None = None
        super().__init__()
        self.certs: ServerCerts | None = None

    # ---- lifecycle (tests/loopback.py) -----------------------------------------------------------
    def _make_server(self) -> _TLSServer:
        self._stopping.clear()
        self._tmp = Path(tempfile.mkdtemp(prefix="kaudit-fake-apiserver-"))
        self.certs = make_server_certs(self._tmp)
        return _TLSServer(self, self.certs.server_context())

    def _before_shutdown(self) -> None:
        self._stopping.set()  # wakes `slow` handlers

    def _after_shutdown(self) -> None:
        assert isinstance(self._server, _TLSServer)
        self._server.close_open_sockets()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    # ---- what tests use --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        if self.certs is None:
            raise RuntimeError("FakeApiServer is not started")
        return self.certs.ca_file

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def kubeconfig(self, path: str | Path, context: str = "test", token: str | None = None,
                   ca: bool | str | Path = True, server: str | None = None, namespace: str | None = None,
                   insecure: bool = False) -> Path:
        """Write (or merge into) a kubeconfig with one cluster/user/context named `context`.

        token None -> this server's token, "" -> no token at all. ca True -> this server's CA file,
        False -> none (the system store, which does not trust us), a path -> that CA file.
        """
        path = Path(path)
        cluster: Obj = {"server": server or self.url}
        if insecure:
            cluster["insecure-skip-tls-verify"] = True
        elif ca is True:
            cluster["certificate-authority"] = str(self.ca_file)
        elif ca:
            cluster["certificate-authority"] = str(ca)
        secret = self.token if token is None else token
        ctx: Obj = {"cluster": context, "user": context}
        if namespace:
            ctx["namespace"] = namespace
        config: Obj = {"apiVersion": "v1", "kind": "Config", "preferences": {},
                       "clusters": [], "users": [], "contexts": [], "current-context": context}
        if path.exists():
            config.update(yaml.safe_load(path.read_text()) or {})
        for section, entry in (("clusters", {"name": context, "cluster": cluster}),
                               ("users", {"name": context, "user": {"token": secret} if secret else {}}),
                               ("contexts", {"name": context, "context": ctx})):
            config[section] = [e for e in config.get(section) or [] if e.get("name") != context] + [entry]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # ---- the object store --------------------------------------------------------------------------
    def _type_of(self, obj: Obj) -> ResourceType:
        group, _, version = str(obj["apiVersion"]).rpartition("/")
        kind = str(obj["kind"])
        for rt in self._types.values():
            if (rt.group, rt.version, rt.kind) == (group, version, kind):
                return rt
        rt = ResourceType(group, version, kind, plural_of(kind),
                          kind not in CLUSTER_SCOPED_KINDS and "namespace" in obj["metadata"])
        self._types[(group, version, rt.plural)] = rt
        return rt

    def _prepare(self, source: Mapping[str, Any], number: int) -> Obj:
        obj: Obj = copy.deepcopy(dict(source))
        meta: Obj = obj.setdefault("metadata", {})
        kind = str(obj.get("kind", ""))
        group, _, _ = str(obj.get("apiVersion", "")).rpartition("/")
        if "namespace" not in meta and kind not in CLUSTER_SCOPED_KINDS and any(
                (rt.group, rt.kind) == (group, kind) and rt.namespaced for rt in self._types.values()):
            meta["namespace"] = "default"
        ident = f"{obj.get('apiVersion')}/{kind}/{meta.get('namespace', '')}/{meta.get('name', '')}"
        meta.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, ident)))
        meta.setdefault("resourceVersion", str(1000 + number))
        meta.setdefault("creationTimestamp", DEFAULT_TIMESTAMP)
        meta.setdefault("managedFields", [{
            "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": obj.get("apiVersion"),
            "time": meta["creationTimestamp"], "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {".": {}}, "f:labels": {".": {}}}},
        }])
        return obj

    # ---- the protocol ------------------------------------------------------------------------------
    def _handle(self, method: str, raw_path: str, headers: Mapping[str, str]) -> _Reply:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        authorization, accept = headers.get("authorization"), headers.get("accept")
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, accept, dict(headers)))
        if self.unauthorized or self._revoked or authorization != f"Bearer {self.token}":
            return _error(401, "Unauthorized", "Unauthorized")
        if method != "GET":
            return _error(405, "MethodNotAllowed", "the fake API server is read-only", {})
        parts = [p for p in path.split("/") if p]
        if parts == ["version"]:
            return _Reply(200, self.version_info)
        if parts[:1] == ["api"]:
            return self._route("", parts[1:], query, accept, core=True)
        if parts[:1] == ["apis"]:
            return self._route(parts[1] if len(parts) > 1 else None, parts[2:], query, accept, core=False)
        return _not_found()

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for rt in self._types.values():
            if rt.group and rt.version not in groups.setdefault(rt.group, []):
                groups[rt.group].append(rt.version)
        return groups

    def _route(self, group: str | None, rest: list[str], query: dict[str, str], accept: str | None,
               core: bool) -> _Reply:
        groups = self._groups()
        if not core and group is None:  # GET /apis
            return self._discovery(accept, {"kind": "APIGroupList", "apiVersion": "v1",
                                            "groups": [self._group_doc(g, vs) for g, vs in groups.items()]})
        if not core and (group not in groups):
            return _not_found()
        assert group is not None
        if not rest:
            if core:  # GET /api
                return self._discovery(accept, {"kind": "APIVersions", "versions": ["v1"],
                                                "serverAddressByClientCIDRs": [
                                                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]})
            return self._discovery(accept, {"apiVersion": "v1", **self._group_doc(group, groups[group])})
        version, rest = rest[0], rest[1:]
        types = {rt.plural: rt for rt in self._types.values() if (rt.group, rt.version) == (group, version)}
        if not types:
            return _not_found()
        if not rest:  # GET /api/v1, /apis/{group}/{version}
            group_version = f"{group}/{version}" if group else version
            return self._discovery(accept, {"kind": "APIResourceList", "apiVersion": "v1",
                                            "groupVersion": group_version,
                                            "resources": [rt.discovery() for rt in types.values()]})
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 2 or rest[0] not in types:
            return _not_found()
        rt = types[rest[0]]
        name = rest[1] if len(rest) == 2 else None
        if namespace is not None and not rt.namespaced:
            return _not_found()
        if name is not None and namespace is None and rt.namespaced:
            return _not_found()
        return self._resource(rt, namespace, name, query, accept)

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> Obj:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in sorted(versions, key=version_priority)]
        return {"kind": "APIGroup", "name": group, "versions": gvs, "preferredVersion": gvs[0]}

    @staticmethod
    def _discovery(accept: str | None, body: Obj) -> _Reply:
        if _negotiate(accept, ()) is None:
            return _error(406, "NotAcceptable", NOT_ACCEPTABLE, {})
        return _Reply(200, body)

    def _resource(self, rt: ResourceType, namespace: str | None, name: str | None, query: dict[str, str],
                  accept: str | None) -> _Reply:
        with self._lock:
            self._resource_requests += 1
            if self.revoke_after is not None and self._resource_requests > self.revoke_after:
                self._revoked = True  # the token is revoked: this request and every later one are 401s
        if self._revoked:
            return _error(401, "Unauthorized", "Unauthorized")
        reply = self._resource_reply(rt, namespace, name, query, accept)
        reply.delay = self.slow.get(rt.plural, 0.0)
        reply.hang = rt.plural in self.hang
        if reply.status == 200:
            with self._lock:
                answered = self._answered.get(rt.plural, 0)
                self._answered[rt.plural] = answered + 1
            reply.drop = rt.plural in self.drop_connection and answered >= self.drop_connection[rt.plural]
            reply.raw = self.malformed.get(rt.plural)
            if name is None and rt.plural in self.huge and reply.raw is None:
                reply.huge, reply.chunked = self.huge[rt.plural], self.huge_chunked
            reply.trickle = self.trickle.get(rt.plural, 0.0)
        return reply

    def _is_forbidden(self, rt: ResourceType, verb: str, namespace: str | None) -> bool:
        if self.authorize is not None and not self.authorize(verb, rt.group, rt.plural, namespace):
            return True
        return any(p == rt.plural and (ns is None or ns == (namespace or "")) for p, ns in self.forbidden)

    def _resource_reply(self, rt: ResourceType, namespace: str | None, name: str | None,
                        query: dict[str, str], accept: str | None) -> _Reply:
        verb = "list" if name is None else "get"
        if self._is_forbidden(rt, verb, namespace):
            subject = rt.plural if name is None else f'{rt.plural} "{name}"'
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            message = (f'{subject} is forbidden: User "{self.user}" cannot {verb} resource "{rt.plural}" '
                       f'in API group "{rt.group}" {scope}')
            details: Obj = {"kind": rt.plural} if name is None else {"name": name, "kind": rt.plural}
            if rt.group:
                details["group"] = rt.group
            return _error(403, "Forbidden", message, details)
        with self._lock:
            seen = self._flaky_seen.get(rt.plural, 0)
            self._flaky_seen[rt.plural] = seen + 1
        if seen < self.flaky.get(rt.plural, 0):
            reason, message = FLAKY_REASONS.get(self.flaky_status, ("InternalError", "Internal error occurred"))
            headers = [("Retry-After", str(self.retry_after))] if self.retry_after is not None else []
            details = {"retryAfterSeconds": self.retry_after} if self.retry_after is not None else {}
            return _error(self.flaky_status, reason, message, details, headers=headers)

        wanted = _negotiate(accept, ["PartialObjectMetadataList" if name is None else "PartialObjectMetadata"])
        if wanted is None:
            return _error(406, "NotAcceptable", NOT_ACCEPTABLE, {})
        content_type = f"application/json;as={wanted};g=meta.k8s.io;v=v1" if wanted else "application/json"
        items = [o for o in self._store.get(rt, []) if namespace is None or o["metadata"].get("namespace") == namespace]
        if name is None and query.get("fieldSelector"):
            try:
                selected = matcher(rt.group, rt.plural, query["fieldSelector"])
            except ValueError as error:  # an unsupported field label too: a 400, as on the real server
                return _error(400, "BadRequest", str(error))
            items = [o for o in items if selected(o)]

        if name is not None:
            found = [o for o in items if o["metadata"].get("name") == name]
            if not found:
                return _error(404, "NotFound", f'{rt.plural} "{name}" not found', {"name": name, "kind": rt.plural})
            obj = found[0]
            if wanted:
                return _Reply(200, _partial(obj, "PartialObjectMetadata"), content_type)
            return _Reply(200, copy.deepcopy(obj), content_type)

        token = query.get("continue")
        if token:
            decoded = _decode_continue(token)
            if decoded is None:
                return _error(400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            start = (str(decoded["start"][0]), str(decoded["start"][1]))
            if rt.plural in self.expire_continue and not decoded.get("inconsistent"):
                message = ("The provided continue parameter is too old to display a consistent list result. "
                           "You can start a new list without the continue parameter, or use the continue token "
                           "in this response to retrieve the remainder of the results. Continuing with the "
                           "provided token results in an inconsistent list - objects that were created, modified, "
                           "or deleted between the time the first chunk was returned and now may show up in the list.")
                return _error(410, "Expired", message, metadata={
                    "continue": _encode_continue(start, self.resource_version, inconsistent=True)})
            items = [o for o in items if _key(o) > start]
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            return _error(400, "BadRequest", f'invalid limit "{query.get("limit")}"')
        page = items[:limit] if limit > 0 else items
        list_meta: Obj = {"resourceVersion": self.resource_version}
        if len(page) < len(items):
            list_meta["continue"] = _encode_continue(_key(page[-1]), self.resource_version)
            list_meta["remainingItemCount"] = len(items) - len(page)
        if wanted:
            return _Reply(200, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                "metadata": list_meta,
                                "items": [_partial(o, "PartialObjectMetadata") for o in page]}, content_type)
        keep_typemeta = self.item_typemeta or rt.group not in BUILTIN_GROUPS  # custom resources keep it
        served = [copy.deepcopy(o) if keep_typemeta else
                  {k: copy.deepcopy(v) for k, v in o.items() if k not in ("apiVersion", "kind")} for o in page]
        return _Reply(200, {"kind": f"{rt.kind}List", "apiVersion": rt.group_version, "metadata": list_meta,
                            "items": served}, content_type)


def _key(obj: Obj) -> tuple[str, str]:
    """etcd key order: namespace, then name."""
    meta = obj["metadata"]
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _partial(obj: Obj, kind: str) -> Obj:
    return {"kind": kind, "apiVersion": "meta.k8s.io/v1", "metadata": copy.deepcopy(obj["metadata"])}
