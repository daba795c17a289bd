"""Throwaway TLS material for the fake API server, made with `trustme`."""
from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class ServerCerts:
    """A CA (PEM file a client trusts) and the server certificate it signed."""

    ca_file: Path
    cert_file: Path  # leaf + chain, PEM
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_server_certs(directory: Path, names: tuple[str, ...] = SERVER_NAMES) -> ServerCerts:
    """Write a fresh CA and a server certificate for `names` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="kaudit test CA")
    leaf = ca.issue_cert(*names, common_name="kube-apiserver")
    certs = ServerCerts(directory / "ca.crt", directory / "apiserver.crt", directory / "apiserver.key")
    ca.cert_pem.write_to_path(str(certs.ca_file))
    leaf.private_key_pem.write_to_path(str(certs.key_file))
    certs.cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return certs


def make_unrelated_ca(path: Path) -> Path:
    """Write the PEM of a CA that did NOT sign the server certificate (for 'unknown CA' tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    trustme.CA(organization_name="some other CA").cert_pem.write_to_path(str(path))
    return path
