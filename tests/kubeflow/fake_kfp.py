"""A local HTTP server implementing the Kubeflow Pipelines v2beta1 endpoints the kfp 2.x
client calls to create a run, recording every request it receives."""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List
from urllib.parse import parse_qs, urlparse

API = "/apis/v2beta1"


class FakeKfp:
    def __init__(self, multi_user: bool = False):
        self.multi_user = multi_user
        self.requests: List[Dict[str, Any]] = []  # {"method", "path", "query", "body"}
        self.experiments: List[Dict[str, Any]] = []
        self.runs: List[Dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def calls(self, method: str, path: str) -> List[Dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"] == API + path]

    def _route(self, method: str, path: str, query: Dict[str, List[str]], body: Any):
        if method == "GET" and path == f"{API}/healthz":
            return 200, {"multi_user": self.multi_user}
        if method == "GET" and path == f"{API}/experiments":
            wanted = None
            if "filter" in query:
                predicates = json.loads(query["filter"][0])["predicates"]
                wanted = next(p["stringValue"] for p in predicates if p["key"] == "display_name")
            found = [e for e in self.experiments if wanted is None or e["display_name"] == wanted]
            return 200, ({"experiments": found, "total_size": len(found)} if found else {})
        if method == "POST" and path == f"{API}/experiments":
            experiment = {**body, "experiment_id": str(uuid.uuid4()), "storage_state": "AVAILABLE"}
            self.experiments.append(experiment)
            return 200, experiment
        if method == "POST" and path == f"{API}/runs":
            if body.get("experiment_id") not in {e["experiment_id"] for e in self.experiments}:
                return 400, {"error": "unknown experiment", "code": 3}
            run = {**body, "run_id": str(uuid.uuid4()), "state": "PENDING"}
            self.runs.append(run)
            return 200, run
        return 404, {"error": f"no route for {method} {path}", "code": 5}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method):
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.requests.append({"method": method, "path": parsed.path, "query": parse_qs(parsed.query),
                                      "body": body})
                status, payload = fake._route(method, parsed.path, parse_qs(parsed.query), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def log_message(self, *args):
                pass

        return Handler
