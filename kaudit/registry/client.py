"""A small OCI distribution client: manifests, blobs, and the registry auth challenge flow.

- HTTPS with the system trust store (or a custom CA); plain HTTP only for registries listed as
  insecure.
- Anonymous access, then the `WWW-Authenticate` challenge: Bearer (a token from the realm the
  registry names, for the scope it names) or Basic.
- Credentials come from a docker `config.json` and are only ever used for the registry they are
  stored under: never for another registry, and never sent over plain HTTP unless that registry
  was explicitly listed as insecure.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Optional

from kaudit.value import field, record, value



MANIFEST_TYPES = ",".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
MAX_MANIFEST = 4 * 1024 * 1024
MAX_BLOB = 8 * 1024 * 1024  # signature payloads are tiny; refuse anything large
DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """The registry could not answer: unreachable, auth refused, or a protocol error."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@value
class RegistryOptions:
    """How to reach registries: CA bundle, credentials file, plain-HTTP hosts."""

    ca_file: Optional[str] = None
    insecure: frozenset[str] = frozenset()  # registries reached over plain HTTP
    docker_config: Optional[str] = None  # default: ~/.docker/config.json
    timeout: float = 10.0


@record
class _Credentials:
    """One registry's credentials, from the Docker config."""

    by_registry: dict[str, tuple[str, str]] = field(default_factory=dict)  # host -> (user, secret)

    @classmethod
    def load(cls, path: Optional[str]) -> "_Credentials":
        file = Path(path) if path else Path.home() / ".docker" / "config.json"
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if path:
                raise RegistryError(f"{path}: registry config not found") from None
            return cls()
        except (OSError, ValueError) as error:
            raise RegistryError(f"{file}: cannot read registry config: {error}") from None
        found: dict[str, tuple[str, str]] = {}
        for key, entry in (data.get("auths") or {}).items() if isinstance(data, dict) else ():
            if not isinstance(entry, dict):
                continue
            host = _host_of(str(key))
            if entry.get("auth"):
                try:
                    user, _, secret = base64.b64decode(str(entry["auth"])).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    continue
                found[host] = (user, secret)
            elif entry.get("username") and entry.get("password"):
                found[host] = (str(entry["username"]), str(entry["password"]))
            elif entry.get("identitytoken"):
                found[host] = ("<token>", str(entry["identitytoken"]))
        return cls(found)

    def for_registry(self, registry: str) -> Optional[tuple[str, str]]:
        if registry == "docker.io":
            return next((self.by_registry[k] for k in ("docker.io", "index.docker.io", "registry-1.docker.io")
                         if k in self.by_registry), None)
        return self.by_registry.get(registry)


def _host_of(key: str) -> str:
    """`https://index.docker.io/v1/` -> `index.docker.io`; `registry:5000` stays as it is."""
    host = key.split("://", 1)[-1].split("/", 1)[0].lower()
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host


class RegistryClient:
    def __init__(self, options: RegistryOptions = RegistryOptions()) -> None:
        self.options = options
        self.credentials = _Credentials.load(options.docker_config)
        self.context = ssl.create_default_context(cafile=options.ca_file) if options.ca_file else \
            ssl.create_default_context()
        self._tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.round_trips = 0  # requests sent, for tests and benchmarks

    # -- public --------------------------------------------------------------------------------------

    def manifest(self, registry: str, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
        """(digest, manifest JSON) of a tag or digest."""
        body, headers = self._get(registry, repository, f"/v2/{repository}/manifests/{reference}",
                                  MANIFEST_TYPES, MAX_MANIFEST)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        announced = headers.get("docker-content-digest")
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"manifest {reference} does not hash to its digest (got {digest})")
        if announced and announced != digest and announced.startswith("sha256:"):
            raise RegistryError(f"registry announced digest {announced} for a manifest hashing to {digest}")
        try:
            return digest, json.loads(body)
        except ValueError:
            raise RegistryError(f"manifest {repository}:{reference} is not JSON") from None

    def blob(self, registry: str, repository: str, digest: str) -> bytes:
        body, _ = self._get(registry, repository, f"/v2/{repository}/blobs/{digest}", "*/*", MAX_BLOB)
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise RegistryError(f"blob {digest} of {repository} does not match its digest")
        return body

    # -- HTTP ----------------------------------------------------------------------------------------

    def _base(self, registry: str) -> str:
        host = "registry-1.docker.io" if registry == "docker.io" else registry
        scheme = "http" if registry in self.options.insecure else "https"
        return f"{scheme}://{host}"

    def _get(self, registry: str, repository: str, path: str, accept: str, limit: int) -> tuple[bytes, dict[str, str]]:
        url = self._base(registry) + path
        scope = f"repository:{repository}:pull"
        headers = {"Accept": accept, "User-Agent": "kaudit"}
        token = self._tokens.get((registry, scope))
        if token:
            headers["Authorization"] = token
        status, body, reply = self._request(url, headers, limit)
        if status == 401:
            authorization = self._authorize(registry, scope, reply.get("www-authenticate", ""))
            headers["Authorization"] = authorization
            status, body, reply = self._request(url, headers, limit)
            if status == 401:
                raise RegistryError(f"{registry}: authentication refused for {repository}", 401)
        if status == 404:
            raise RegistryError(f"{registry}/{repository}: not found ({path.rsplit('/', 1)[-1]})", 404)
        if status >= 400:
            raise RegistryError(f"{registry}: HTTP {status} for {path}", status)
        return body, reply

    def _request(self, url: str, headers: Mapping[str, str], limit: int) -> tuple[int, bytes, dict[str, str]]:
        with self._lock:
            self.round_trips += 1
        request = urllib.request.Request(url, headers=dict(headers), method="GET")
        try:
            with urllib.request.urlopen(request, timeout=self.options.timeout,
                                        context=self.context if url.startswith("https") else None) as response:
                body = response.read(limit + 1)
                status, reply = response.status, {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as error:
            body = error.read(64 * 1024)
            status, reply = error.code, {k.lower(): v for k, v in error.headers.items()}
        except (urllib.error.URLError, OSError, ssl.SSLError) as error:
            reason = getattr(error, "reason", error)
            raise RegistryError(f"{urllib.parse.urlsplit(url).netloc}: unreachable: {reason}") from None
        if len(body) > limit:
            raise RegistryError(f"{url}: response larger than {limit} bytes")
        return status, body, reply

    def _authorize(self, registry: str, scope: str, challenge: str) -> str:
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE.findall(params_text))
        credentials = self.credentials.for_registry(registry)
        if scheme.lower() == "basic":
            if credentials is None:
                raise RegistryError(f"{registry}: needs credentials (basic auth) and none are configured", 401)
            return "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        if scheme.lower() != "bearer" or "realm" not in params:
            raise RegistryError(f"{registry}: unsupported authentication challenge {challenge!r}", 401)
        realm = params["realm"]
        if not realm.startswith("https://") and registry not in self.options.insecure:
            raise RegistryError(f"{registry}: refusing a token realm over plain HTTP ({realm})", 401)
        query = {"service": params.get("service", ""), "scope": params.get("scope", scope)}
        headers = {"User-Agent": "kaudit", "Accept": "application/json"}
        if credentials is not None:  # only this registry's own credentials, only to the realm it named
            headers["Authorization"] = "Basic " + base64.b64encode(
                f"{credentials[0]}:{credentials[1]}".encode()).decode()
        status, body, _ = self._request(f"{realm}?{urllib.parse.urlencode(query)}", headers, 64 * 1024)
        if status != 200:
            raise RegistryError(f"{registry}: token request refused (HTTP {status})", 401)
        try:
            answer = json.loads(body)
            token = str(answer.get("token") or answer.get("access_token"))
        except (ValueError, AttributeError):
            raise RegistryError(f"{registry}: token server answered without a token", 401) from None
        bearer = f"Bearer {token}"
        self._tokens[(registry, scope)] = bearer
        return bearer
