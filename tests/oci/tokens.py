"""Docker registry token authentication for tests: a JWT issuer and a tiny HTTPS token server.

The registry (distribution 2.8, `auth: token:`) sends clients a challenge
`WWW-Authenticate: Bearer realm="<token server>",service="<service>",scope="repository:NAME:pull,push"`.
The client asks the realm `GET /token?service=...&scope=...` with HTTP Basic credentials and gets back
`{"token": JWT, "access_token": JWT, "expires_in": 300, "issued_at": ...}`; it then retries the registry
request with `Authorization: Bearer JWT`.

The JWT is ES256 (ECDSA P-256, raw r||s signature, JWS compact form). Its header carries `x5c`, the
DER certificate of the signing key, base64 (standard alphabet): distribution 2.8 verifies that chain
against the `rootcertbundle` file, which here is that same self-signed certificate. Claims: iss, sub,
aud (a plain string: 2.8 does not take a list), exp, nbf, iat, jti, and `access`, the list of
`{"type", "name", "actions"}` records granted.
"""
from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from ..loopback import LoopbackServer

DEFAULT_SERVICE = "kaudit-test-registry"
DEFAULT_ISSUER = "kaudit-test-token-issuer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_scope(scope: str) -> dict[str, Any] | None:
    """`repository:team/app:pull,push` -> {"type": "repository", "name": "team/app", "actions": [...]}."""
    head, sep, actions = scope.rpartition(":")
    kind, sep2, name = head.partition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


class TokenIssuer:
    """Signs registry bearer tokens with a fresh P-256 key; `root_cert_pem` is the registry's rootcertbundle."""

    def __init__(self, service: str = DEFAULT_SERVICE, issuer: str = DEFAULT_ISSUER) -> None:
        self.service = service
        self.issuer = issuer
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kaudit test token signer")])
        now = dt.datetime.now(dt.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def root_cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write_root_cert(self, path: Path) -> Path:
        path.write_bytes(self.root_cert_pem)
        return path

    def issue(self, subject: str, access: list[dict[str, Any]], ttl: int = 300,
              audience: str | None = None) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256",
                  "x5c": [base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": self.issuer, "sub": subject, "aud": audience or self.service, "exp": now + ttl,
                  "nbf": now - 1, "iat": now, "jti": secrets.token_hex(16), "access": access}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server answered: who asked (None: anonymous or refused), what, and the status."""

    method: str
    user: str | None
    service: str | None
    scopes: tuple[str, ...]
    status: int


@dataclass
class _State:
    issuer: TokenIssuer
    users: dict[str, str]
    anonymous_pull: bool
    ttl: int
    requests: list[TokenRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, state: _State, context: ssl.SSLContext | None) -> None:
        self.state = state
        self.ssl_context = context
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # refused handshakes and resets are expected in tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _Server

    def setup(self) -> None:
        raw: socket.socket = self.request
        raw.settimeout(10)
        if self.server.ssl_context is not None:
            self.request = self.server.ssl_context.wrap_socket(raw, server_side=True)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self._token(parts.path, parse_qs(parts.query), self._basic_credentials())

    def do_POST(self) -> None:
        # The OAuth2 form flavour (grant_type=password) some clients use; same answer as GET.
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        credentials = self._basic_credentials()
        if form.get("grant_type", [""])[0] == "password":
            credentials = (form.get("username", [""])[0], form.get("password", [""])[0])
        self._token(urlsplit(self.path).path, form, credentials)

    def _basic_credentials(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user, password

    def _token(self, path: str, query: dict[str, list[str]], credentials: tuple[str, str] | None) -> None:
        state = self.server.state
        service = query.get("service", [None])[0]
        scopes = tuple(s for raw in query.get("scope", []) for s in raw.split(" ") if s)
        user: str | None = None
        if path != "/token":
            return self._record_and_send(TokenRequest(self.command, None, service, scopes, 404),
                                         {"errors": [{"code": "NOT_FOUND", "message": path}]})
        if service is not None and service != state.issuer.service:
            return self._record_and_send(TokenRequest(self.command, None, service, scopes, 400),
                                         {"errors": [{"code": "UNSUPPORTED", "message": "unknown service"}]})
        if credentials is not None:
            expected = state.users.get(credentials[0])
            if expected is None or not hmac.compare_digest(expected.encode(), credentials[1].encode()):
                return self._record_and_send(TokenRequest(self.command, None, service, scopes, 401),
                                             {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                             challenge=True)
            user = credentials[0]
        elif not state.anonymous_pull:
            return self._record_and_send(TokenRequest(self.command, None, service, scopes, 401),
                                         {"errors": [{"code": "UNAUTHORIZED", "message": "credentials required"}]},
                                         challenge=True)
        access = []
        for scope in scopes:
            record = parse_scope(scope)
            if record is None:
                continue
            if user is None:  # anonymous: pull only
                record["actions"] = [a for a in record["actions"] if a == "pull"]
            access.append(record)
        token = state.issuer.issue(user or "", access, ttl=state.ttl)
        issued_at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._record_and_send(TokenRequest(self.command, user, service, scopes, 200),
                              {"token": token, "access_token": token, "expires_in": state.ttl,
                               "issued_at": issued_at})

    def _record_and_send(self, record: TokenRequest, body: dict[str, Any], challenge: bool = False) -> None:
        with self.server.state.lock:
            self.server.state.requests.append(record)
        data = json.dumps(body).encode()
        self.send_response(record.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if challenge:
            self.send_header("WWW-Authenticate", 'Basic realm="kaudit test token server"')
        self.end_headers()
        self.wfile.write(data)


class TokenServer(LoopbackServer):
    """HTTPS (or plain HTTP when `ssl_context` is None) token endpoint at `<url>/token` on 127.0.0.1."""

    thread_name = "registry-token-server"

    def __init__(self, issuer: TokenIssuer, users: dict[str, str], ssl_context: ssl.SSLContext | None,
                 anonymous_pull: bool = False, ttl: int = 300) -> None:
        self.issuer = issuer
        self._state = _State(issuer, dict(users), anonymous_pull, ttl)
        self._context = ssl_context
        super().__init__()

    def _make_server(self) -> _Server:
        return _Server(self._state, self._context)

    @property
    def realm(self) -> str:
        scheme = "https" if self._context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/token"

    @property
    def requests(self) -> list[TokenRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def registry_auth_config(self, root_cert_file: Path) -> dict[str, Any]:
        """The `auth:` section of a distribution config that trusts this server's tokens."""
        return {"token": {"realm": self.realm, "service": self.issuer.service, "issuer": self.issuer.issuer,
                          "rootcertbundle": str(root_cert_file)}}
