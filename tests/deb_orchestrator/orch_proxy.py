"""A reverse proxy on loopback that buffers whole responses, as some proxies do: an event stream reaches the
client only when it ends (here: when the upstream closes it or after ``hold`` seconds), so clients must fall
back to polling. Other requests pass through unchanged."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@contextmanager
def buffering_proxy(upstream: str, hold: float = 2.0) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP and k.lower() != "host"}
            chunks: list[bytes] = []
            status, answer = 504, httpx.Headers()
            # a stream is cut after ``hold`` seconds (what a proxy's read timeout would do, later); other
            # answers (the hub's long-polls too) are read whole
            streaming = self.path.split("?", 1)[0].endswith("/events/stream")
            with httpx.Client(timeout=httpx.Timeout(120.0, read=hold if streaming else 120.0)) as client:
                try:
                    with client.stream(self.command, upstream + self.path, content=body, headers=headers) as resp:
                        status, answer = resp.status_code, resp.headers
                        deadline = time.monotonic() + hold
                        for chunk in resp.iter_raw():
                            chunks.append(chunk)
                            if streaming and time.monotonic() > deadline:
                                break
                except httpx.ReadTimeout:
                    pass
            data = b"".join(chunks)
            self.send_response(status)
            for k, v in answer.items():
                if k.lower() not in HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = _forward

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = False  # server_close() waits for the requests under way (at most ``hold``)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
