"""A scripted HTTP server for unit tests of the model-engine client and modules.

Each test queues responses per (method, path); every request is recorded with its headers and body,
so tests assert on what a real gateway would have received.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeGateway:
    def __init__(self):
        self.routes = defaultdict(deque)  # (method, path) -> deque of (status, body, headers, delay)
        self.defaults = {}
        self.requests = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # silence
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path, _sep, query = self.path.partition("?")
                gateway.requests.append({
                    "method": self.command, "path": path, "query": query,
                    "headers": dict(self.headers), "body": json.loads(raw) if raw else None,
                })
                key = (self.command, path)
                if gateway.routes[key]:
                    status, body, headers = gateway.routes[key].popleft()
                elif key in gateway.defaults:
                    status, body, headers = gateway.defaults[key]
                else:
                    status, body, headers = 404, {"detail": "Not Found"}, {}
                payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def queue(self, method, path, status, body=None, headers=None):
        self.routes[(method, path)].append((status, body, headers))

    def default(self, method, path, status, body=None, headers=None):
        self.defaults[(method, path)] = (status, body, headers)

    def calls(self, method=None, path=None):
        return [r for r in self.requests if (method is None or r["method"] == method) and (path is None or r["path"] == path)]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
