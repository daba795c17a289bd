"""Push minimal OCI images through the registry HTTP API (OCI distribution spec), for tests.

Independent of kaudit's own registry client on purpose: the tests check kaudit against this one.

    digest = push_image(registry, "team/app", "1.0")          # a new random image, tagged 1.0
    new_digest = push_image(registry, "team/app", "1.0")      # same tag, a different image: the tag moves
    tag_manifest(registry, "team/app", digest, "1.0")         # move the tag back to the first image
    delete_manifest(registry, "team/app", digest)

`registry` is a RunningRegistry (its credentials are used) or a RegistryClient.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import secrets
import ssl
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    from .registry import RunningRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
# distribution 2.8 answers 404 MANIFEST_UNKNOWN for an OCI manifest unless Accept names the OCI type.
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST])


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryError(RuntimeError):
    def __init__(self, message: str, response: Response) -> None:
        super().__init__(f"{message}: HTTP {response.status} {response.body[:500]!r}")
        self.response = response


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    token_refusal: Response | None = None  # the token server's answer when it refused a token

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="x",service="y",scope="z"` -> ("bearer", {"realm": "x", ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        while i < len(rest) and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            end = i + 1
            value = []
            while end < len(rest) and rest[end] != '"':
                if rest[end] == "\\" and end + 1 < len(rest):
                    end += 1
                value.append(rest[end])
                end += 1
            params[key] = "".join(value)
            i = end + 1
        else:
            end = rest.find(",", i)
            end = len(rest) if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


@dataclass
class RegistryClient:
    """A small distribution-API client: Basic-authenticated Docker token flow on a Bearer challenge."""

    base_url: str
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = 15
    tokens: dict[str, str] = field(default_factory=dict)  # repository ("" for /v2/ itself) -> bearer token
    token_requests: int = 0
    _actions: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)

    # ---- plumbing --------------------------------------------------------------------------------
    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _send(self, url: str, method: str, body: bytes | None, headers: dict[str, str]) -> Response:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        host, port = parts.hostname or self._host, parts.port or (443 if https else 80)
        connection: http.client.HTTPConnection
        if https:
            connection = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._context())
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            all_headers = dict(headers)
            if body is not None:
                all_headers.setdefault("Content-Length", str(len(body)))
            connection.request(method, target or "/", body=body, headers=all_headers)
            raw = connection.getresponse()
            data = raw.read()
            merged: dict[str, str] = {}
            for name, value in raw.getheaders():
                key = name.lower()
                merged[key] = f"{merged[key]}, {value}" if key in merged else value
            return Response(raw.status, merged, data)
        finally:
            connection.close()

    def _absolute(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.base_url.rstrip("/") + path_or_url

    def fetch_token(self, challenge: dict[str, str]) -> str:
        """Ask the challenge's realm for a token (GET, Basic credentials when the client has them)."""
        query = [("service", challenge["service"])] if "service" in challenge else []
        query += [("scope", s) for s in challenge.get("scope", "").split(" ") if s]
        realm = challenge["realm"]
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        headers = {}
        if self.username is not None:
            basic = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        self.token_requests += 1
        response = self._send(url, "GET", None, headers)
        if response.status != 200:
            raise RegistryError("token request refused", response)
        answer = response.json()
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError("token response without a token", response)
        return token

    def request(self, method: str, path_or_url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, auth: bool = True) -> Response:
        """One registry request; on a 401 Bearer challenge, get a token for its scope and retry once.

        Tokens are kept per repository; a new one asks for every action granted before on that
        repository plus the challenged ones (pull, then pull+push, ...), as docker does. When the token
        server refuses, the registry's own 401 is returned (its `token_refusal` is the refusal).
        auth=False: send the request as is, no token flow.
        """
        url = self._absolute(path_or_url)
        repo = _repo_of(url)
        headers = dict(headers or {})
        if repo in self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[repo]}"
        response = self._send(url, method, body, headers)
        if response.status != 401 or not auth:
            return response
        scheme, challenge = parse_challenge(response.header("WWW-Authenticate") or "")
        if scheme != "bearer" or "realm" not in challenge:
            return response
        scopes = []
        for scope in challenge.get("scope", "").split(" "):
            kind, name, actions = _split_scope(scope)
            if kind == "repository" and name:
                granted = self._actions.setdefault(name, set())
                granted.update(actions)
                scope = f"repository:{name}:{','.join(sorted(granted))}"
            if scope:
                scopes.append(scope)
        try:
            token = self.fetch_token({**challenge, "scope": " ".join(scopes)})
        except RegistryError as refusal:
            if refusal.response.status not in (401, 403):
                raise
            response.token_refusal = refusal.response
            return response
        self.tokens[repo] = token
        headers["Authorization"] = f"Bearer {token}"
        return self._send(url, method, body, headers)

    # ---- API -------------------------------------------------------------------------------------
    def ping(self) -> Response:
        return self.request("GET", "/v2/")

    def blob_exists(self, repo: str, digest: str) -> bool:
        return self.request("HEAD", f"/v2/{repo}/blobs/{digest}").status == 200

    def upload_blob(self, repo: str, data: bytes) -> str:
        """POST an upload session, then PUT the whole blob with `?digest=`; returns the digest."""
        digest = sha256_digest(data)
        if self.blob_exists(repo, digest):
            return digest
        started = self.request("POST", f"/v2/{repo}/blobs/uploads/", body=b"")
        if started.status != 202 or not started.header("Location"):
            raise RegistryError(f"starting a blob upload to {repo}", started)
        location = started.header("Location") or ""
        separator = "&" if "?" in location else "?"
        done = self.request("PUT", f"{location}{separator}{urlencode({'digest': digest})}", body=data,
                            headers={"Content-Type": "application/octet-stream"})
        if done.status != 201:
            raise RegistryError(f"finishing the upload of {digest}", done)
        answered = done.header("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(f"registry stored {answered}, not {digest}", done)
        return digest

    def get_blob(self, repo: str, digest: str) -> bytes:
        response = self.request("GET", f"/v2/{repo}/blobs/{digest}")
        if response.status != 200:
            raise RegistryError(f"fetching blob {digest}", response)
        return response.body

    def put_manifest(self, repo: str, reference: str, manifest: bytes, media_type: str = OCI_MANIFEST) -> str:
        """PUT a manifest under a tag or digest; returns its digest (checked against Docker-Content-Digest)."""
        response = self.request("PUT", f"/v2/{repo}/manifests/{reference}", body=manifest,
                                headers={"Content-Type": media_type})
        if response.status != 201:
            raise RegistryError(f"pushing manifest {repo}:{reference}", response)
        digest = sha256_digest(manifest)
        answered = response.header("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(f"registry says the manifest is {answered}, we hashed {digest}", response)
        return digest

    def get_manifest(self, repo: str, reference: str, accept: str = MANIFEST_ACCEPT) -> Response:
        """The raw response (status 200 or 404 ...); `.body` is the manifest, digest in Docker-Content-Digest."""
        return self.request("GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept})

    def manifest_json(self, repo: str, reference: str) -> tuple[dict[str, Any], str]:
        """(manifest, digest) or RegistryError."""
        response = self.get_manifest(repo, reference)
        if response.status != 200:
            raise RegistryError(f"fetching manifest {repo}:{reference}", response)
        return json.loads(response.body), sha256_digest(response.body)

    def delete_manifest(self, repo: str, digest: str) -> None:
        response = self.request("DELETE", f"/v2/{repo}/manifests/{digest}")
        if response.status != 202:
            raise RegistryError(f"deleting manifest {repo}@{digest}", response)

    def tags(self, repo: str) -> list[str]:
        response = self.request("GET", f"/v2/{repo}/tags/list")
        if response.status != 200:
            raise RegistryError(f"listing tags of {repo}", response)
        return list(response.json().get("tags") or [])


def _repo_of(url: str) -> str:
    path = urlsplit(url).path
    if not path.startswith("/v2/"):
        return ""
    rest = path[len("/v2/"):]
    for marker in ("/manifests/", "/blobs/", "/tags/"):
        if marker in rest:
            return rest.split(marker, 1)[0]
    return ""


def _split_scope(scope: str) -> tuple[str, str, list[str]]:
    """`repository:team/app:pull,push` -> ("repository", "team/app", ["pull", "push"])."""
    head, sep, actions = scope.rpartition(":")
    kind, sep2, name = head.partition(":")
    if not sep or not sep2:
        return "", "", []
    return kind, name, [a for a in actions.split(",") if a]


RegistryLike = Union["RunningRegistry", RegistryClient]


def client_for(registry: RegistryLike) -> RegistryClient:
    return registry if isinstance(registry, RegistryClient) else registry.client()


# ---- images ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Image:
    """A built (not yet pushed) image: its manifest bytes and the blobs it names."""

    manifest: bytes
    config: bytes
    layers: tuple[bytes, ...]

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def _layer(content: bytes) -> tuple[bytes, bytes]:
    """(gzip'd tar, the uncompressed tar) of one small file; mtime 0 so only `content` varies."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("kaudit-test/data.txt")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), tar_bytes


def descriptor(media_type: str, data: bytes, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if annotations:
        out["annotations"] = annotations
    return out


def manifest_bytes(config: bytes, layers: list[tuple[bytes, dict[str, Any]]], config_media_type: str = OCI_CONFIG,
                   annotations: dict[str, str] | None = None) -> bytes:
    """An OCI image manifest: `layers` are (blob, descriptor) pairs."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config_media_type, config),
        "layers": [d for _, d in layers],
    }
    if annotations:
        manifest["annotations"] = annotations
    return json.dumps(manifest, separators=(",", ":")).encode()


def build_image(layer_count: int = 1, labels: dict[str, str] | None = None) -> Image:
    """A minimal linux/amd64 OCI image with random content, so every call gives a new digest."""
    layers, diff_ids = [], []
    for _ in range(layer_count):
        gz, tar_bytes = _layer(f"kaudit test layer {secrets.token_hex(16)}\n".encode())
        layers.append(gz)
        diff_ids.append(sha256_digest(tar_bytes))
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"dev.kaudit.test/nonce": secrets.token_hex(8), **(labels or {})}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, separators=(",", ":")).encode()
    manifest = manifest_bytes(config, [(blob, descriptor(OCI_LAYER_GZIP, blob)) for blob in layers])
    return Image(manifest, config, tuple(layers))


def push_built(registry: RegistryLike, repo: str, image: Image, tag: str | None = None) -> str:
    """Upload the blobs of `image`, then its manifest under `tag` (or by digest); returns the digest."""
    client = client_for(registry)
    client.upload_blob(repo, image.config)
    for layer in image.layers:
        client.upload_blob(repo, layer)
    return client.put_manifest(repo, tag or image.digest, image.manifest)


def push_image(registry: RegistryLike, repo: str, tag: str | None = "latest", *, layers: int = 1,
               labels: dict[str, str] | None = None) -> str:
    """Push a new random image to `repo` (tagged `tag`; tag=None: by digest only); returns its digest.

    Pushing to a tag that exists moves the tag to the new image, as `docker push` does.
    """
    return push_built(registry, repo, build_image(layers, labels), tag)


def tag_manifest(registry: RegistryLike, repo: str, digest: str, tag: str) -> str:
    """Point `tag` at the manifest `digest` that is already in `repo`."""
    client = client_for(registry)
    response = client.get_manifest(repo, digest)
    if response.status != 200:
        raise RegistryError(f"fetching {repo}@{digest} to tag it", response)
    media_type = (response.header("Content-Type") or OCI_MANIFEST).split(";")[0].strip()
    return client.put_manifest(repo, tag, response.body, media_type)


def delete_manifest(registry: RegistryLike, repo: str, digest: str) -> None:
    """DELETE the manifest (by digest: distribution refuses deletes by tag); its tags go with it."""
    client_for(registry).delete_manifest(repo, digest)
