"""The viewer's HTTP server: one HTML page and JSON endpoints, Python standard library only.

Routes (all JSON unless noted; errors are ``{"error": message}`` with status 400 or 404)::

    GET  /                               the page (HTML)
    GET  /api/info                       run, classes, splits, versions, concept names, Sankey availability
    GET  /api/samples?split=&version=    videos of a split with label and prediction
    POST /api/predict                    {sample, off: [concept...], version?, k?} → before / after explanation
    GET  /api/class?name=&version=       the class's non-zero weights
    POST /api/weight                     {class, concept, weight, split?, version?, save?} → fixed / broken /
                                         accuracy before and after; save=true writes a new model version
    GET  /api/versions                   model versions (v000 = trained model, then saved edits)
    GET  /api/sankey?classes=a,b&top=&version=   plotly figure JSON (or available=false and why)
    GET  /media/sample/<id>.gif          animated preview of a video (or its pose sequence)
    GET  /media/concept/<name>.gif       a motion concept's medoid, animated
    GET  /static/plotly.min.js           plotly.js from the installed plotly package (for the Sankey)

It binds 127.0.0.1 unless told otherwise: the page can write new model versions into the run.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from dance.errors import DanceError
from dance.viewer.page import PAGE
from dance.viewer.state import NotFound, ViewerState

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20


def _plotly_js() -> Path | None:
    try:
        import plotly
    except ImportError:
        return None
    p = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return p if p.is_file() else None


class ViewerHandler(BaseHTTPRequestHandler):
    """Routes requests to the server's :class:`ViewerState`."""

    server: ViewerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s - %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ responses
    def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj, default=str).encode(), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise DanceError(f"request body too large ({n} bytes)")
        raw = self.rfile.read(n) if n else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise DanceError("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise DanceError("the request body must be a JSON object")
        return body

    # ------------------------------------------------------------------ dispatch
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        state = self.server.state
        try:
            path = url.path
            if method == "GET" and path in ("/", "/index.html"):
                self._send(200, PAGE.encode(), "text/html; charset=utf-8")
            elif method == "GET" and path == "/favicon.ico":
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon", cache=True)
            elif method == "GET" and path == "/api/info":
                self._json(state.info())
            elif method == "GET" and path == "/api/versions":
                self._json(state.versions())
            elif method == "GET" and path == "/api/samples":
                self._json(state.samples(q.get("split", "test"), q.get("version")))
            elif method == "POST" and path == "/api/predict":
                b = self._body()
                off = b.get("off") or []
                if not isinstance(off, list):
                    raise DanceError("'off' must be a list of concept names")
                self._json(state.predict(str(b.get("sample", "")), [str(c) for c in off], b.get("version"),
                                         int(b.get("k", 5))))
            elif method == "GET" and path == "/api/class":
                self._json(state.class_concepts(q.get("name", ""), q.get("version")))
            elif method == "POST" and path == "/api/weight":
                b = self._body()
                self._json(state.weight(str(b.get("class", "")), str(b.get("concept", "")), b.get("weight"),
                                        str(b.get("split", "test")), b.get("version"), bool(b.get("save", False))))
            elif method == "GET" and path == "/api/sankey":
                classes = [c for c in q.get("classes", "").split(",") if c]
                self._json(state.sankey(classes, int(q.get("top", 8)), q.get("version")))
            elif method == "GET" and path.startswith("/media/sample/") and path.endswith(".gif"):
                self._send(200, state.sample_gif(unquote(path[len("/media/sample/"):-4])), "image/gif", cache=True)
            elif method == "GET" and path.startswith("/media/concept/") and path.endswith(".gif"):
                self._send(200, state.concept_gif(unquote(path[len("/media/concept/"):-4])), "image/gif",
                           cache=True)
            elif method == "GET" and path == "/static/plotly.min.js":
                js = _plotly_js()
                if js is None:
                    raise NotFound("plotly is not installed (pip install plotly)")
                self._send(200, js.read_bytes(), "text/javascript; charset=utf-8", cache=True)
            else:
                raise NotFound(f"no route {method} {path}")
        except NotFound as e:
            self._error(HTTPStatus.NOT_FOUND, str(e))
        except (DanceError, ValueError, TypeError) as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
        except Exception as e:  # noqa: BLE001 - a bug must not kill the server; the page shows the message
            log.exception("viewer request failed: %s %s", method, self.path)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(e).__name__}: {e}")


class ViewerServer(ThreadingHTTPServer):
    """A threading HTTP server holding one :class:`ViewerState`."""

    daemon_threads = True

    def __init__(self, state: ViewerState, host: str = "127.0.0.1", port: int = 7860):
        self.state = state
        super().__init__((host, port), ViewerHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"

    def start_background(self) -> threading.Thread:
        """Serve in a daemon thread (tests, notebooks); stop with ``shutdown()`` then ``server_close()``."""
        t = threading.Thread(target=self.serve_forever, name="dance-viewer", daemon=True)
        t.start()
        return t


def make_server(run: Path | str, host: str = "127.0.0.1", port: int = 7860, version: str | None = None) -> ViewerServer:
    """Open a finished run and bind the viewer (port 0 picks a free port); call ``serve_forever()`` to serve."""
    state = ViewerState(run, version)
    try:
        return ViewerServer(state, host, port)
    except OSError as e:
        raise DanceError(f"cannot listen on {host}:{port} ({e.strerror or e}); try another --port") from None
