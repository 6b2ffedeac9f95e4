"""A tiny HTTP server on 127.0.0.1 for the download tests: no test touches the internet.

Import the fixtures into a test module (``from http_server import server, closed_port_url``).
"""
from __future__ import annotations

import http.server
import socket
import threading

import pytest

from lightgcn_helpers import data


class FakeServer:
    """Serves ``routes[path] = (body, mode)``; mode ``"ok"`` or ``"truncated"``
    (announces the full Content-Length, sends half the body, closes). ``fail_first[path] = n``
    answers the first ``n`` requests of ``path`` with a truncated body (a flaky network)."""

    def __init__(self):
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.fail_first: dict[str, int] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                server.requests.append(self.path)
                if self.path not in server.routes:
                    self.send_error(404)
                    return
                body, mode = server.routes[self.path]
                if server.fail_first.get(self.path, 0) > 0:
                    server.fail_first[self.path] -= 1
                    mode = "truncated"
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "truncated":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(body)

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, body: bytes, mode: str = "ok") -> str:
        self.routes[path] = (body, mode)
        return self.url(path)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    """A running FakeServer. Downloads are not retried unless a test says so (``data.RETRIES``)."""
    monkeypatch.setattr(data, "RETRIES", 0)
    srv = FakeServer()
    srv.thread.start()
    yield srv
    srv.stop()
    srv.thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/ml-latest-small.zip"
