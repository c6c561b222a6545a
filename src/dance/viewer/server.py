"""The viewer's HTTP layer: a FastAPI app served by uvicorn, in front of :class:`~dance.viewer.state.ViewerState`.

Routes (JSON unless noted; errors are ``{"error": message}``: 400 bad request, 404 unknown, 422 invalid input,
403 / 415 / 413 / 408 refused by the guard below)::

    GET  /                               the page (HTML; carries the per-launch token)
    GET  /static/viewer.js               the page's script
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
    GET  /openapi.json                   the schema of the above (no /docs: it would load scripts from a CDN)

Since the page can write model versions into the run, every request passes a guard (:class:`Guard`):

* the ``Host`` header must name this server (127.0.0.1, localhost or [::1] with its port, the ``--host`` given,
  or an ``--allow-host``), else 400 — a DNS-rebinding page reaches the socket but not the app;
* a POST (anything but GET / HEAD / OPTIONS) must carry no foreign ``Origin`` (403), a
  ``Content-Type: application/json`` (415) and the per-launch ``X-Dance-Token`` that only the served page knows
  (403), and a body of at most :data:`MAX_BODY` bytes (413) that arrives within the request timeout (408);
* request bodies are validated by strict pydantic models (422 with a readable ``error``), so bad input never
  reaches the model code as a 500;
* every response says ``nosniff``, no framing, same-origin resources only; the page has a Content-Security-Policy
  allowing only its own script, plotly.js and its own requests.

At the connection level (:class:`_GuardedH11Protocol`) a request must arrive whole — head and body — within
``request_timeout`` seconds of the connection opening (or of the previous response), so a client that sends
unfinished headers or a short body is disconnected; request heads are capped at :data:`MAX_HEAD` bytes and idle
keep-alive connections close after :data:`KEEP_ALIVE` seconds.

It binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import h11
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from dance.errors import DanceError
from dance.viewer.page import SCRIPT, TOKEN_HEADER, render_page
from dance.viewer.state import NotFound, ViewerState

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # bytes of a request body
MAX_HEAD = 64 << 10  # bytes of a request line + headers (h11's incomplete-event bound)
REQUEST_TIMEOUT = 10.0  # seconds for a whole request (head and body) to arrive
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PAGE_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
            "style-src 'self' 'unsafe-inline'; font-src 'self' data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")  # inline styles: the page's own and plotly.js's (it injects <style>)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


# ---------------------------------------------------------------------------------------------- the guard


def _host_name(host: str) -> str:
    """A bind address as a browser writes it in ``Host`` (IPv6 in brackets, lower case)."""
    host = host.strip().lower()
    try:
        return f"[{ipaddress.IPv6Address(host)}]"
    except ValueError:
        return host


class Guard:
    """Which ``Host`` and ``Origin`` values a server accepts and the token its page carries."""

    def __init__(self, port: int, host: str = "127.0.0.1", token: str | None = None,
                 extra_hosts: Iterable[str] = ()):
        self.port = int(port)
        self.token = token or secrets.token_urlsafe(32)
        names = {*LOOPBACK, _host_name(host), *(_host_name(h) for h in extra_hosts)}
        names -= {"0.0.0.0", "[::]", ""}  # wildcard binds are not names a browser reaches the server by
        self.hosts = {f"{n}:{self.port}" for n in names}
        if self.port == 80:
            self.hosts |= names
        self.origins = {f"http://{h}" for h in self.hosts}

    def host_ok(self, host: str) -> bool:
        return host.lower() in self.hosts

    def origin_ok(self, origin: str) -> bool:
        return origin.lower() in self.origins

    def token_ok(self, token: str | None) -> bool:
        return token is not None and secrets.compare_digest(token.encode(), self.token.encode())


def _error_response(status: int, message: str) -> tuple[dict[str, Any], dict[str, Any]]:
    body = json.dumps({"error": message}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json; charset=utf-8"),
                         (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store"),
                         (b"connection", b"close")]}
    return start, {"type": "http.response.body", "body": body}


class GuardMiddleware:
    """ASGI middleware: Host allow-list for every request; Origin, Content-Type, token, size and time of POSTs;
    security headers on every response."""

    def __init__(self, app, guard: Guard, max_body: int = MAX_BODY, body_timeout: float = REQUEST_TIMEOUT):
        self.app, self.guard, self.max_body, self.body_timeout = app, guard, max_body, body_timeout

    async def _refuse(self, send, status: int, message: str) -> None:
        start, body = _error_response(status, message)
        start["headers"] += SECURITY_HEADERS + [(b"content-security-policy", API_CSP.encode())]
        await send(start)
        await send(body)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return  # no websockets
        headers: dict[str, list[str]] = {}
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        for k, v in scope["headers"]:
            headers.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
            size += len(k) + len(v) + 4
        if size > MAX_HEAD:  # h11 bounds only a head that arrives in pieces; one sent whole is counted here
            return await self._refuse(send, 431, f"request head too large (more than {MAX_HEAD} bytes)")
        hosts = headers.get("host", [])
        if len(hosts) != 1 or not self.guard.host_ok(hosts[0]):
            log.warning("viewer: refused Host %r", hosts)
            return await self._refuse(send, 400, "unknown Host: this server answers only to "
                                                 + ", ".join(sorted(self.guard.hosts)))
        if scope["method"] not in SAFE_METHODS:
            receive = await self._check_write(scope, headers, receive, send)
            if receive is None:
                return

        head = scope["method"] == "HEAD"
        if head:  # answered as a GET without its body
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in have]
                if b"content-security-policy" not in have:
                    extra.append((b"content-security-policy", API_CSP.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            elif head and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _check_write(self, scope, headers: dict[str, list[str]], receive, send):
        """The checks of a state-changing request; its body read whole, or None when refused (answer sent)."""
        origins = headers.get("origin", [])
        if len(origins) > 1 or (origins and not self.guard.origin_ok(origins[0])):
            log.warning("viewer: refused %s %s from Origin %r", scope["method"], scope["path"], origins)
            await self._refuse(send, 403, "cross-origin request refused")
            return None
        if headers.get("sec-fetch-site", [""])[-1].lower() == "cross-site":
            await self._refuse(send, 403, "cross-site request refused")
            return None
        ctype = headers.get("content-type", [""])
        if len(ctype) != 1 or ctype[0].split(";", 1)[0].strip().lower() != "application/json":
            await self._refuse(send, 415, "the request body must be sent as Content-Type: application/json")
            return None
        tokens = headers.get(TOKEN_HEADER.lower(), [])
        if len(tokens) != 1 or not self.guard.token_ok(tokens[0]):
            log.warning("viewer: refused %s %s without the page's token", scope["method"], scope["path"])
            await self._refuse(send, 403, f"missing or wrong {TOKEN_HEADER} header (reload the page: the server "
                                          "makes a new token at each launch)")
            return None
        lengths = headers.get("content-length", [])
        if lengths:
            try:
                n = int(lengths[-1])
            except ValueError:
                n = -1
            if n < 0:
                await self._refuse(send, 400, "bad Content-Length")
                return None
            if n > self.max_body:
                await self._refuse(send, 413, f"request body too large ({n} bytes; at most {self.max_body})")
                return None
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.body_timeout
        while True:
            left = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.001))
            except asyncio.TimeoutError:
                await self._refuse(send, 408, "the request body did not arrive in time")
                return None
            if message["type"] == "http.disconnect":
                return None  # the client left (or the connection guard closed it): nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(send, 413, f"request body too large (more than {self.max_body} bytes)")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as a server would

        return replay


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline: a request must arrive whole (head and body) within
    ``request_timeout`` seconds of the connection opening or of the previous response, else the connection is
    closed (a 408 is written when no request is under way). uvicorn itself only times out idle keep-alive
    connections, so without this a client sending unfinished headers or a short body would hold a connection
    forever."""

    request_timeout: float = REQUEST_TIMEOUT
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _check(self) -> None:
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the request has arrived whole (or the connection is ending)

    def handle_events(self) -> None:
        super().handle_events()
        self._check()

    def on_response_complete(self) -> None:
        self._arm()  # before: the base class may go on to a pipelined request, which _check then sees
        super().on_response_complete()
        self._check()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        idle = self.conn.our_state is h11.IDLE and self.conn.their_state is h11.IDLE
        if idle and (self.cycle is None or self.cycle.response_complete):
            body = b'{"error": "the request did not arrive in time"}'
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        log.info("viewer: closed a connection whose request did not arrive within %gs", self.request_timeout)
        self.transport.close()


def _protocol(request_timeout: float) -> type[_GuardedH11Protocol]:
    return type("GuardedH11Protocol", (_GuardedH11Protocol,), {"request_timeout": float(request_timeout)})


# ---------------------------------------------------------------------------------------------- requests

Name = Annotated[str, Field(strict=True, min_length=1, max_length=500)]
VersionName = Annotated[str, Field(strict=True, min_length=1, max_length=64)]


class PredictRequest(BaseModel):
    """``POST /api/predict``: a sample's explanation with some concepts switched off."""

    model_config = ConfigDict(extra="forbid", strict=True)
    sample: Name
    off: Annotated[list[Name], Field(max_length=1000)] = []
    version: VersionName | None = None
    k: Annotated[int, Field(strict=True, ge=1, le=20)] = 5


class WeightRequest(BaseModel):
    """``POST /api/weight``: the effect of W[class, concept] = weight on a split; ``save`` makes a new version."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    cls: Name = Field(alias="class")
    concept: Name
    weight: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-1e6, le=1e6)]
    split: Name = "test"
    version: VersionName | None = None
    save: StrictBool = False


# ---------------------------------------------------------------------------------------------- responses


def _plain(obj: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python, non-finite floats to null."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


class JSON(Response):
    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200, cache: bool = False):
        super().__init__(content, status_code, headers={"cache-control": "max-age=3600" if cache else "no-store"})

    def render(self, content: Any) -> bytes:
        return json.dumps(_plain(content), allow_nan=False, separators=(",", ":")).encode()


def _bytes(data: bytes, media_type: str, cache: bool = True) -> Response:
    return Response(data, media_type=media_type,
                    headers={"cache-control": "max-age=3600" if cache else "no-store"})


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {e.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _plotly_js() -> Path | None:
    try:
        import plotly
    except ImportError:
        return None
    p = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return p if p.is_file() else None


# ---------------------------------------------------------------------------------------------- the app


def create_app(state: ViewerState, guard: Guard) -> FastAPI:
    """The viewer's ASGI app (wrapped in :class:`GuardMiddleware`); no socket, so tests can drive it in-process."""
    app = FastAPI(title="DANCE viewer", version="1", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.viewer = state
    app.state.guard = guard
    write_lock = threading.Lock()
    page = render_page(guard.token).encode()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSON:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]  # no 'input' / 'ctx': they may hold inf, bytes, anything
        return JSON({"error": _validation_message(errors), "detail": errors}, 422)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSON:
        return JSON({"error": str(exc)}, 404)

    @app.exception_handler(DanceError)
    async def _dance_error(request: Request, exc: DanceError) -> JSON:
        return JSON({"error": str(exc)}, 400)

    @app.exception_handler(ValueError)
    @app.exception_handler(TypeError)
    async def _bad_value(request: Request, exc: Exception) -> JSON:
        return JSON({"error": str(exc) or type(exc).__name__}, 400)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSON:  # a bug: the page shows the message, the log the trace
        return JSON({"error": f"internal error: {type(exc).__name__}: {exc}"}, 500)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSON:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}"
        return JSON({"error": detail}, exc.status_code)

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return Response(page, media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-store", "content-security-policy": PAGE_CSP})

    @app.get("/index.html", include_in_schema=False)
    def index_html() -> Response:
        return index()

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204, headers={"cache-control": "max-age=3600"})

    @app.get("/static/viewer.js", include_in_schema=False)
    def script() -> Response:
        return _bytes(SCRIPT.encode(), "text/javascript; charset=utf-8", cache=False)

    plotly_cache: dict[str, bytes] = {}

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        if "js" not in plotly_cache:
            js = _plotly_js()
            if js is None:
                raise NotFound("plotly is not installed (pip install plotly)")
            plotly_cache["js"] = js.read_bytes()
        return _bytes(plotly_cache["js"], "text/javascript; charset=utf-8")

    @app.get("/api/info")
    def info() -> JSON:
        return JSON(state.info())

    @app.get("/api/versions")
    def versions() -> JSON:
        return JSON(state.versions())

    @app.get("/api/samples")
    def samples(split: Annotated[str, Query(max_length=500)] = "test",
                version: Annotated[str | None, Query(max_length=64)] = None) -> JSON:
        return JSON(state.samples(split, version))

    @app.post("/api/predict")
    def predict(body: PredictRequest) -> JSON:
        return JSON(state.predict(body.sample, body.off, body.version, body.k))

    @app.get("/api/class")
    def class_concepts(name: Annotated[str, Query(max_length=500)] = "",
                       version: Annotated[str | None, Query(max_length=64)] = None) -> JSON:
        return JSON(state.class_concepts(name, version))

    @app.post("/api/weight")
    def weight(body: WeightRequest) -> JSON:
        if not body.save:
            return JSON(state.weight(body.cls, body.concept, body.weight, body.split, body.version, False))
        with write_lock:  # one version at a time: two saves must not pick the same name
            return JSON(state.weight(body.cls, body.concept, body.weight, body.split, body.version, True))

    @app.get("/api/sankey")
    def sankey(classes: Annotated[str, Query(max_length=5000)] = "",
               top: Annotated[int, Query(ge=1, le=40)] = 8,
               version: Annotated[str | None, Query(max_length=64)] = None) -> JSON:
        return JSON(state.sankey([c for c in classes.split(",") if c], top, version))

    @app.get("/media/sample/{sample_id:path}.gif", response_class=Response)
    def sample_gif(sample_id: str) -> Response:
        return _bytes(state.sample_gif(sample_id), "image/gif")

    @app.get("/media/concept/{name:path}.gif", response_class=Response)
    def concept_gif(name: str) -> Response:
        return _bytes(state.concept_gif(name), "image/gif")

    return app


def guarded_app(state: ViewerState, guard: Guard, request_timeout: float = REQUEST_TIMEOUT) -> GuardMiddleware:
    """:func:`create_app` behind :class:`GuardMiddleware`: what the server runs and what tests should drive."""
    return GuardMiddleware(create_app(state, guard), guard, body_timeout=request_timeout)


# ---------------------------------------------------------------------------------------------- the server


class ViewerServer:
    """A bound socket, the guarded app and a uvicorn server: ``serve_forever()`` in the foreground, or
    ``start_background()`` then ``shutdown()`` and ``server_close()`` (tests, notebooks)."""

    def __init__(self, state: ViewerState, sock: socket.socket, host: str = "127.0.0.1",
                 extra_hosts: Iterable[str] = (), request_timeout: float = REQUEST_TIMEOUT,
                 token: str | None = None):
        import uvicorn

        self.state = state
        self.socket = sock
        self.host = host
        self.port = int(sock.getsockname()[1])
        self.guard = Guard(self.port, host, token, extra_hosts)
        self.app = guarded_app(state, self.guard, request_timeout)
        config = uvicorn.Config(
            self.app, http=_protocol(request_timeout), ws="none", lifespan="off", log_config=None,
            access_log=False, server_header=False, timeout_keep_alive=KEEP_ALIVE,
            h11_max_incomplete_event_size=MAX_HEAD, limit_concurrency=64, timeout_graceful_shutdown=5)
        self._uvicorn = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def token(self) -> str:
        return self.guard.token

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "", "::", "[::]") else "127.0.0.1"
        return f"http://{_host_name(host)}:{self.port}/"

    def serve_forever(self) -> None:
        """Serve until Ctrl+C (KeyboardInterrupt is raised after a clean shutdown) or :meth:`shutdown`."""
        self._uvicorn.run(sockets=[self.socket])

    def start_background(self, timeout: float = 30.0) -> threading.Thread:
        """Serve in a daemon thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.serve_forever, name="dance-viewer", daemon=True)
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > end:
                raise DanceError("the viewer server did not start")
            time.sleep(0.02)
        return self._thread

    def shutdown(self, timeout: float = 10.0) -> None:
        self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def server_close(self) -> None:
        self.socket.close()


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise DanceError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    last: OSError | None = None
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.set_inheritable(True)
            return sock
        except OSError as e:
            sock.close()
            last = e
    raise DanceError(f"cannot listen on {host}:{port} ({getattr(last, 'strerror', None) or last}); "
                     "try another --port")


def make_server(run: Path | str, host: str = "127.0.0.1", port: int = 7860, version: str | None = None,
                extra_hosts: Iterable[str] = (), request_timeout: float = REQUEST_TIMEOUT) -> ViewerServer:
    """Open a finished run and bind the viewer (port 0 picks a free port); call ``serve_forever()`` to serve.

    ``extra_hosts`` are more names the server may be reached by (``Host`` / ``Origin``), e.g. the machine's name
    when binding 0.0.0.0.
    """
    state = ViewerState(run, version)
    sock = _bind(host, port)
    try:
        return ViewerServer(state, sock, host, extra_hosts, request_timeout)
    except BaseException:
        sock.close()
        raise
