"""A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1.

    with RunningRegistry(tmp_path) as registry:              # HTTPS, anonymous
        registry.host, registry.url, registry.ca_file
    with RunningRegistry(tmp_path, token_auth=True) as registry:   # + a bearer-token server
        registry.username, registry.password, registry.token_server

The binary is `docker-registry` (`/usr/bin/docker-registry`), started as `docker-registry serve CONFIG`.
Without it the test is skipped, or fails under CI=true (tests/tools.py).
"""
from __future__ import annotations

import http.client
import os
import secrets
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import trustme
import yaml

from ..tools import require_tool
from .tokens import TokenIssuer, TokenServer

if TYPE_CHECKING:
    from .push import RegistryClient

BINARY = "docker-registry"
SERVER_NAMES = ("127.0.0.1", "localhost")
START_TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryStartError(RuntimeError):
    pass


class RunningRegistry:
    """Starts `docker-registry serve` with a config under `tmp_path`; stops it on exit.

    tls: serve HTTPS with a fresh trustme CA (`ca_file`) and a certificate for 127.0.0.1 and localhost;
         tls=False serves plain HTTP (`ca_file` is None).
    token_auth: require bearer tokens from a TokenServer (HTTPS with the same CA) that knows one user,
         `username`/`password`; `anonymous_pull=True` also gives pull-only tokens to callers without
         credentials (as public registries do).
    """

    def __init__(self, tmp_path: Path, tls: bool = True, token_auth: bool = False, *,
                 username: str = "kaudit", password: str | None = None, anonymous_pull: bool = False,
                 token_ttl: int = 300) -> None:
        self.tls = tls
        self.token_auth = token_auth
        self.anonymous_pull = anonymous_pull
        self._token_ttl = token_ttl
        self.username: str | None = username if token_auth else None
        self.password: str | None = (password or secrets.token_urlsafe(12)) if token_auth else None
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.directory = Path(tempfile.mkdtemp(prefix="registry-", dir=tmp_path))
        self.storage_dir = self.directory / "storage"
        self.config_file = self.directory / "config.yml"
        self.log_file = self.directory / "registry.log"
        self.ca_file: Path | None = None
        self._cert_file: Path | None = None
        self._key_file: Path | None = None
        self.port = 0
        self.token_server: TokenServer | None = None
        self.token_issuer: TokenIssuer | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> RunningRegistry:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> RunningRegistry:
        binary = require_tool(BINARY)
        self.storage_dir.mkdir(exist_ok=True)
        server_context: ssl.SSLContext | None = None
        if self.tls or self.token_auth:
            server_context = self._make_certs()
        try:
            if self.token_auth:
                self.token_issuer = TokenIssuer()
                assert self.username is not None and self.password is not None
                self.token_server = TokenServer(self.token_issuer, {self.username: self.password}, server_context,
                                                anonymous_pull=self.anonymous_pull, ttl=self._token_ttl).start()
            last_error: Exception | None = None
            for _ in range(3):  # the free port can be taken between probing and binding it
                self.port = _free_port()
                self._write_config()
                try:
                    self._launch(binary)
                    return self
                except RegistryStartError as error:
                    last_error = error
                    if "address already in use" not in str(error):
                        break
            raise last_error or RegistryStartError("registry did not start")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self.token_server is not None:
            self.token_server.stop()

    def _make_certs(self) -> ssl.SSLContext:
        ca = trustme.CA(organization_name="kaudit registry test CA")
        leaf = ca.issue_cert(*SERVER_NAMES, common_name="registry")
        self.ca_file = self.directory / "ca.crt"
        self._cert_file = self.directory / "registry.crt"
        self._key_file = self.directory / "registry.key"
        ca.cert_pem.write_to_path(str(self.ca_file))
        leaf.private_key_pem.write_to_path(str(self._key_file))
        self._cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._cert_file, self._key_file)
        return context

    def _write_config(self) -> None:
        http_section: dict[str, Any] = {
            "addr": f"127.0.0.1:{self.port}",
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        if self.tls:
            http_section["tls"] = {"certificate": str(self._cert_file), "key": str(self._key_file)}
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage_dir)}, "delete": {"enabled": True}},
            "http": http_section,
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.token_server is not None and self.token_issuer is not None:
            root = self.token_issuer.write_root_cert(self.directory / "token-signer.crt")
            config["auth"] = self.token_server.registry_auth_config(root)
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def _launch(self, binary: str) -> None:
        # REGISTRY_* variables override the config file; keep the caller's out of it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with open(self.log_file, "ab") as log:
            self._process = subprocess.Popen([binary, "serve", str(self.config_file)], stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise RegistryStartError(f"docker-registry exited at start:\n{self.log_text()}")
            try:
                status = self._probe()
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
                continue
            if status in (200, 401):
                return
            time.sleep(0.05)
        self.stop()
        raise RegistryStartError(f"docker-registry did not answer /v2/ in {START_TIMEOUT}s:\n{self.log_text()}")

    def _probe(self) -> int:
        connection = self.connection(timeout=2)
        try:
            connection.request("GET", "/v2/")
            return connection.getresponse().status
        finally:
            connection.close()

    # ---- what tests use --------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """"127.0.0.1:PORT", the registry part of image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this registry's CA (and so its token server)."""
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        return context

    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.ssl_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def client(self, username: str | None = None, password: str | None = None,
               anonymous: bool = False) -> RegistryClient:
        """An HTTP API client (tests/oci/push.py); by default with this registry's credentials."""
        from .push import RegistryClient

        if anonymous:
            username = password = None
        else:
            username = username if username is not None else self.username
            password = password if password is not None else self.password
        return RegistryClient(self.url, ca_file=self.ca_file, username=username, password=password)

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def reference(self, repo: str, tag_or_digest: str) -> str:
        """`127.0.0.1:PORT/team/app:1.0` or `127.0.0.1:PORT/team/app@sha256:...`."""
        separator = "@" if ":" in tag_or_digest else ":"
        return f"{self.host}/{repo}{separator}{tag_or_digest}"
