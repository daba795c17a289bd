"""The start / stop / context-manager / port skeleton shared by the tests' servers on 127.0.0.1
(the Kubernetes API server and the registry's token endpoint)."""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Optional, TypeVar

Server = TypeVar("Server", bound="LoopbackServer")


class LoopbackServer(ABC):
    """A threaded HTTP(S) server on 127.0.0.1, served from a daemon thread while started."""

    thread_name = "loopback-server"

    def __init__(self) -> None:
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ---- what a server provides ------------------------------------------------------------------
    @abstractmethod
    def _make_server(self) -> ThreadingHTTPServer:
        """The server, bound to 127.0.0.1 (a free port), not yet serving."""

    def _before_shutdown(self) -> None:
        """Wake handlers that wait on purpose (slow or hanging answers)."""

    def _after_shutdown(self) -> None:
        """Close what shutdown leaves open (kept-alive connections, temporary files)."""

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self: Server) -> Server:
        if self._server is None:
            self._server = self._make_server()
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._before_shutdown()
        self._server.shutdown()
        self._after_shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self: Server) -> Server:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])
