"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for tests (no network needed).

:class:`FakeLLM` is a ``ThreadingHTTPServer`` on port 0 in a daemon thread that answers
``POST /v1/chat/completions`` from a queue of scripted :class:`Reply` objects (or a function of the request),
records every request, and is shut down by its owner (and by a watchdog timer at the latest).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ENV_VARS = (
    "DANCE_LLM_BASE_URL",
    "OPENAI_BASE_URL",
    "DANCE_LLM_MODEL",
    "DANCE_LLM_API_KEY",
    "OPENAI_API_KEY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def isolate_llm_env(monkeypatch: Any) -> None:
    """No endpoint, key or proxy from the caller's environment: requests go only to the fake server on loopback."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
WATCHDOG_S = 60.0


@dataclass
class Reply:
    """One scripted server answer: an assistant message, or an HTTP error; optionally after a delay."""

    content: str | None = None
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


class FakeLLM:
    """A scripted OpenAI-compatible chat-completions server."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        self.requests: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the access log
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with fake.lock:
                    fake.requests.append(
                        {"path": self.path, "authorization": self.headers.get("Authorization"), "body": body}
                    )
                    reply = fake._next(body)
                if reply.delay and fake.stop.wait(reply.delay):
                    return  # server shutting down
                if self.path.rstrip("/") != "/v1/chat/completions":
                    reply = Reply(status=404, body={"error": {"message": f"no route {self.path}"}})
                self._send(reply, body)

            def _send(self, reply: Reply, request: dict[str, Any]) -> None:
                if reply.status == 200:
                    payload = reply.body or {
                        "id": f"chatcmpl-{len(fake.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": request.get("model", "?"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                    }
                else:
                    payload = reply.body or {
                        "error": {"message": f"scripted error {reply.status}", "type": "server_error", "code": None}
                    }
                data = json.dumps(payload).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.watchdog = threading.Timer(WATCHDOG_S, self.close)
        self.watchdog.daemon = True

    def _next(self, body: dict[str, Any]) -> Reply:
        if self.replies:
            return self.replies.popleft()
        if self.responder is not None:
            return self.responder(body)
        return Reply(status=418, body={"error": {"message": "no scripted reply left"}})

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def prompts(self) -> list[str]:
        """The last user message of every request, in order."""
        return [r["body"]["messages"][-1]["content"] for r in self.requests]

    def start(self) -> FakeLLM:
        self.thread.start()
        self.watchdog.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.watchdog.cancel()
        self.server.shutdown()
        self.server.server_close()
