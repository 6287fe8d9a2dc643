"""A real HTTP receiver of webhooks for the tests: ``http.server`` in a thread, on 127.0.0.1 and a free port.

Each path answers from a script of status codes (the last one repeats), e.g. ``{"/hook": [500, 200]}``:
the first delivery fails, the next ones are accepted. A status in 300..399 answers with a
``Location`` of ``/target`` on the same receiver, so a test can see that no redirect is followed.
Every request is recorded (path, headers, raw body).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "test-webhook-secret"
#: Settings of the webhook tests: the receiver's host allowed, and a tiny backoff.
WEBHOOK_SETTINGS = {"webhook_allow": "127.0.0.1/32", "webhook_secret": SECRET, "webhook_attempts": 3,
                    "webhook_backoff_seconds": 0.05, "webhook_timeout_seconds": 2.0}


def webhook_env(**extra) -> dict[str, str]:
    """:data:`WEBHOOK_SETTINGS` as the environment of a worker process."""
    env = {f"EOC_NTK_{k.upper()}": str(v) for k, v in WEBHOOK_SETTINGS.items()}
    env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """The receiver; ``with Receiver({"/hook": [500, 200]}) as rx: rx.url("/hook")``."""

    def __init__(self, script: dict[str, list[int]]):
        self.script = {path: list(codes) for path, codes in script.items()}
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.deliveries.append(Delivery(self.path, dict(self.headers.items()), body))
                    codes = receiver.script.get(self.path, [200])
                    code = codes.pop(0) if len(codes) > 1 else codes[0]
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", receiver.url("/target"))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.path == path]

    def wait(self, path: str, count: int, timeout: float = 30.0) -> list[Delivery]:
        """The first ``count`` deliveries to ``path`` (AssertionError when they do not come in time)."""
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count:
            assert time.monotonic() < deadline, f"{len(self.at(path))} of {count} deliveries to {path} came"
            time.sleep(0.02)
        return self.at(path)[:count]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for_callback(client, job_id: str, attempts: int, timeout: float = 30.0, headers=None) -> dict:
    """The job resource once its ``callback`` records ``attempts`` attempts."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if (job.get("callback") or {}).get("attempts", 0) >= attempts:
            return job
        assert time.monotonic() < deadline, f"the callback record did not reach {attempts} attempts: {job}"
        time.sleep(0.02)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus exposition (0 when absent)."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0
