"""A fake Kubernetes API server for tests: real REST protocol, HTTPS on 127.0.0.1."""
from .certs import ServerCerts, make_server_certs, make_unrelated_ca
from .server import (BUILTIN_RESOURCES, MALFORMED_BODY, FakeApiServer, RecordedRequest, ResourceType,
                     huge_list_pieces, plural_of, status_body)

__all__ = [
    "BUILTIN_RESOURCES", "MALFORMED_BODY", "FakeApiServer", "RecordedRequest", "ResourceType", "ServerCerts",
    "huge_list_pieces", "make_server_certs", "make_unrelated_ca", "plural_of", "status_body",
]
