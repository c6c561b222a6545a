"""The viewer's guard: Host allow-list, Origin / Content-Type / token on writes, strict input validation (never a 500),
body and time limits on a real uvicorn server, security headers, and a bounded schemathesis fuzz of the schema."""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from _inspect_runs import copy_run, rgb_run
from fastapi.testclient import TestClient

from dance.viewer import Guard, ViewerState, guarded_app, make_server
from dance.viewer.page import SCRIPT

PORT = 7860
BASE = f"http://127.0.0.1:{PORT}"
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def run(tmp_path_factory, single_thread) -> Path:
    return copy_run(rgb_run(tmp_path_factory), tmp_path_factory.mktemp("viewer-security") / "run")


@pytest.fixture(scope="module")
def app_and_guard(run: Path):
    guard = Guard(PORT)
    return guarded_app(ViewerState(run), guard), guard


@pytest.fixture(scope="module")
def client(app_and_guard):
    app, guard = app_and_guard
    with TestClient(app, base_url=BASE) as c:
        c.token = guard.token
        yield c


@pytest.fixture(scope="module")
def edit(client) -> dict:
    """A weight edit that would save a new version (the weight differs from the current one)."""
    info = client.get("/api/info").json()
    cls = info["classes"][0]
    weights = client.get("/api/class", params={"name": cls}).json()["weights"]
    concept = weights[0]["concept"] if weights else info["concepts"][0]
    old = weights[0]["weight"] if weights else 0.0
    return {"class": cls, "concept": concept, "weight": old + 0.5, "split": "test", "save": True}


def _versions(run: Path) -> int:
    return len(list((run / "edits").glob("v*"))) if (run / "edits").is_dir() else 0


def _no_tracebacks(caplog) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


# ---------------------------------------------------------------------------------------------- Host


@pytest.mark.parametrize("host", ["evil.example", f"evil.example:{PORT}", "127.0.0.1:9999", "localhost",
                                  "127.0.0.1.evil.example:7860", ""])
def test_foreign_host_is_refused(client, host: str) -> None:
    r = client.get("/api/info", headers={"Host": host})
    assert r.status_code == 400 and "Host" in r.json()["error"]
    r = client.get("/", headers={"Host": host})
    assert r.status_code == 400 and b"dance-token" not in r.content  # a rebinding page never sees the token


@pytest.mark.parametrize("host", [f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}", f"LOCALHOST:{PORT}"])
def test_loopback_hosts_are_served(client, host: str) -> None:
    assert client.get("/api/versions", headers={"Host": host}).status_code == 200


def test_guard_names() -> None:
    g = Guard(8000, host="0.0.0.0", extra_hosts=["viewer.lan", "192.168.1.5", "fe80::1"])
    assert g.host_ok("viewer.lan:8000") and g.host_ok("192.168.1.5:8000") and g.host_ok("[fe80::1]:8000")
    assert not g.host_ok("0.0.0.0:8000") and not g.host_ok("viewer.lan") and not g.host_ok("evil.example:8000")
    assert g.origin_ok("http://viewer.lan:8000") and not g.origin_ok("https://viewer.lan:8000")
    assert Guard(80).host_ok("localhost") and Guard(1, token="t").token == "t"
    assert len(Guard(1).token) >= 40 and Guard(1).token != Guard(1).token


# ---------------------------------------------------------------------------------------------- writes


def test_foreign_origin_text_plain_save_writes_nothing(client, run: Path, edit: dict, caplog) -> None:
    """The tester's attack: a text/plain 'simple' POST from another site with save=true."""
    before = _versions(run)
    body = json.dumps(edit)
    for headers in ({"Origin": EVIL, "Content-Type": "text/plain"},
                    {"Origin": EVIL, "Content-Type": "text/plain", "X-Dance-Token": client.token},
                    {"Origin": EVIL, "Content-Type": "application/json", "X-Dance-Token": client.token},
                    {"Origin": "null", "Content-Type": "application/json", "X-Dance-Token": client.token},
                    {"Origin": f"http://127.0.0.1:{PORT + 1}", "Content-Type": "application/json",
                     "X-Dance-Token": client.token},
                    {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json",
                     "X-Dance-Token": client.token}):
        r = client.post("/api/weight", content=body, headers=headers)
        assert r.status_code == 403, (headers, r.text)
        assert "error" in r.json()
    assert _versions(run) == before


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                   "application/jsonx", None])
def test_write_needs_json_content_type(client, run: Path, edit: dict, ctype: str | None) -> None:
    before = _versions(run)
    headers = {"Origin": BASE, "X-Dance-Token": client.token}
    if ctype:
        headers["Content-Type"] = ctype
    r = client.post("/api/weight", content=json.dumps(edit), headers=headers)
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    assert _versions(run) == before


@pytest.mark.parametrize("token", [None, "", "wrong", "x" * 43])
def test_write_needs_the_page_token(client, run: Path, edit: dict, token: str | None) -> None:
    before = _versions(run)
    headers = {"Origin": BASE} | ({"X-Dance-Token": token} if token is not None else {})
    r = client.post("/api/weight", json=edit, headers=headers)
    assert r.status_code == 403 and "X-Dance-Token" in r.json()["error"]
    r = client.post("/api/predict", json={"sample": "x"}, headers=headers)
    assert r.status_code == 403
    assert _versions(run) == before


def test_the_page_carries_the_token_and_a_write_with_it_saves(client, run: Path, edit: dict) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert f'<meta name="dance-token" content="{client.token}">' in page.text
    assert "X-Dance-Token" in SCRIPT and "TOKEN" in SCRIPT
    before = _versions(run)
    # no Origin (a non-browser client) is fine when the token is right; the page's own origin too
    r = client.post("/api/weight", json={**edit, "save": False}, headers={"X-Dance-Token": client.token})
    assert r.status_code == 200 and r.json()["saved"] is None
    r = client.post("/api/weight", json=edit, headers={"X-Dance-Token": client.token, "Origin": BASE,
                                                       "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200 and r.json()["saved"]
    assert _versions(run) == before + 1


def test_body_size_limit(client, run: Path, edit: dict) -> None:
    before = _versions(run)
    big = json.dumps({**edit, "pad": "x" * (1 << 20)})
    r = client.post("/api/weight", content=big, headers={"Origin": BASE, "X-Dance-Token": client.token,
                                                         "Content-Type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]
    assert _versions(run) == before


# ---------------------------------------------------------------------------------------------- validation


def _post_raw(client, path: str, raw: str):
    return client.post(path, content=raw, headers={"Origin": BASE, "X-Dance-Token": client.token,
                                                   "Content-Type": "application/json"})


BAD_PREDICT = ['{"sample": "%s", "k": 1e999}', '{"sample": "%s", "k": 0}', '{"sample": "%s", "k": 21}',
               '{"sample": "%s", "k": true}', '{"sample": "%s", "k": "5"}', '{"sample": "%s", "k": 2.5}',
               '{"sample": "%s", "version": 1}', '{"sample": "%s", "version": ["v000"]}', '["v000"]', '"v000"',
               '{"sample": "%s", "off": [1]}', '{"sample": "%s", "off": "x"}', '{"sample": 7}', '{}', 'null',
               '{"sample": "%s", "extra": 1}', "not json", '{"sample": "%s"', ""]
BAD_WEIGHT = ['"weight": 1e999}', '"weight": NaN}', '"weight": -Infinity}', '"weight": 1e7}', '"weight": "0.5"}',
              '"weight": true}', '"weight": 0.5, "save": "false"}', '"weight": 0.5, "save": "true"}',
              '"weight": 0.5, "save": 1}', '"weight": 0.5, "version": 1}', '"weight": 0.5, "split": null}',
              '"weight": 0.5, "class ": "x"}', '"save": false}']  # after '{"class": ..., "concept": ..., '


def test_bad_input_is_a_json_error_never_a_500(client, run: Path, edit: dict, caplog) -> None:
    caplog.set_level(logging.INFO)
    sid = client.get("/api/samples").json()[0]["id"]
    before = _versions(run)
    for raw in BAD_PREDICT:
        r = _post_raw(client, "/api/predict", raw.replace("%s", sid))
        assert r.status_code == 422, (raw, r.status_code, r.text)
        assert r.json()["error"].startswith("invalid request"), raw
    for rest in [*BAD_WEIGHT, None]:
        raw = f'{{"class": "{edit["class"]}", "concept": "{edit["concept"]}", {rest}' if rest else '["v000"]'
        r = _post_raw(client, "/api/weight", raw)
        assert r.status_code == 422, (raw, r.status_code, r.text)
        assert "error" in r.json()
    assert _versions(run) == before  # "save": "false" (or "true") saves nothing
    # unknown names are 400 with a hint, unknown versions too
    for raw in ('{"sample": "%s", "version": "v999"}', '{"sample": "%s", "version": "../../etc"}',
                '{"sample": "%s", "version": "\u00b2"}', '{"sample": "%s", "off": ["nope:nope"]}',
                '{"sample": "nope"}'):
        r = _post_raw(client, "/api/predict", raw.replace("%s", sid))
        assert r.status_code == 400 and r.json()["error"], (raw, r.text)
    for query in ("top=1e999", "top=0", "top=41", "top=abc", "classes=" + "x" * 6000):
        r = client.get(f"/api/sankey?{query}")
        assert r.status_code == 422 and "error" in r.json(), query
    for path in ("/api/samples?version=1e999", "/api/samples?split=", "/api/class?name=", "/api/class?version=v9",
                 "/media/sample/..%2F..%2Fconfig.yaml.gif", "/media/concept/%00.gif", "/media/sample/.gif"):
        r = client.get(path)
        assert r.status_code in (400, 404, 422) and "error" in r.json(), (path, r.text)
    assert client.put("/api/weight", json=edit, headers={"X-Dance-Token": client.token}).status_code == 405
    _no_tracebacks(caplog)


# ---------------------------------------------------------------------------------------------- headers


def test_security_headers(client) -> None:
    page = client.get("/")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
    for r in (page, client.get("/api/info"), client.get("/static/viewer.js"), client.get("/nothing"),
              client.get("/", headers={"Host": "evil.example"})):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["cross-origin-resource-policy"] == "same-origin"
        assert "access-control-allow-origin" not in r.headers
    assert page.headers["cache-control"] == "no-store"  # the token is not cached
    assert client.get("/docs").status_code == 404  # Swagger UI would load scripts from a CDN
    assert client.get("/openapi.json").json()["paths"]["/api/weight"]


# ---------------------------------------------------------------------------------------------- real server


def _read_until_closed(sock: socket.socket, within: float) -> tuple[bool, bytes, float]:
    """Read until the server closes the connection, for at most ``within`` seconds (and a bounded loop)."""
    sock.settimeout(0.25)
    got, t0 = b"", time.monotonic()
    for _ in range(int(within / 0.25) + 8):
        if time.monotonic() - t0 > within:
            break
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True, got, time.monotonic() - t0
        if not chunk:
            return True, got, time.monotonic() - t0
        got += chunk
    return False, got, time.monotonic() - t0


@pytest.fixture(scope="module")
def live(run: Path):
    srv = make_server(run, port=0, request_timeout=1.5)
    srv.start_background()
    yield srv
    srv.shutdown()
    srv.server_close()


def _connect(srv) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.port), timeout=5)


def test_real_server_slow_clients_are_disconnected(live, caplog) -> None:
    caplog.set_level(logging.INFO)
    host = f"127.0.0.1:{live.port}"
    post = (f"POST /api/weight HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"X-Dance-Token: {live.token}\r\nContent-Length: 5000\r\n\r\n").encode()
    cases = {
        "nothing sent": b"",
        "unfinished headers": f"GET /api/info HTTP/1.1\r\nHost: {host}\r\nX-Slow: 1".encode(),
        "short body with a big Content-Length": post + b'{"class": ',
        "short body without the token": post.replace(live.token.encode(), b"nope") + b"{",
    }
    socks = {}
    for name, data in cases.items():  # all at once: they must not block each other or the server
        socks[name] = _connect(live)
        if data:
            socks[name].sendall(data)
    try:
        with urllib.request.urlopen(live.url + "api/versions", timeout=5) as r:
            assert r.status == 200  # served while the slow clients hang on
        for name, sock in socks.items():
            closed, got, took = _read_until_closed(sock, within=6.0)
            assert closed, f"{name}: still open after {took:.1f}s"
            assert took < 6.0
            if name in ("nothing sent", "unfinished headers"):
                assert got.startswith(b"HTTP/1.1 408"), (name, got[:80])
            if name == "short body without the token":
                assert got.startswith(b"HTTP/1.1 403"), got[:80]  # refused at once, body never awaited
    finally:
        for sock in socks.values():
            sock.close()
    _no_tracebacks(caplog)


@pytest.mark.parametrize("raw, status", [
    (b"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n\r\n", b"400"),
    (b"GET /api/info HTTP/1.1\r\nHost: {host}\r\nX-Big: " + b"a" * (100 << 10) + b"\r\n\r\n", b"431"),
    (b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", b"400"),  # DNS rebinding: right socket, wrong name
    (b"GET / HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\n\r\n", b"400"),
    (b"POST /api/weight HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\n"
     b"Content-Length: 2\r\n\r\n{}", b"403"),
], ids=["negative-length", "huge-head", "foreign-host", "two-hosts", "foreign-origin"])
def test_real_server_bad_requests(live, raw: bytes, status: bytes, caplog) -> None:
    caplog.set_level(logging.INFO)
    with _connect(live) as sock:
        sock.sendall(raw.replace(b"{host}", f"127.0.0.1:{live.port}".encode()))
        closed, got, took = _read_until_closed(sock, within=5.0)
    assert got.split(b" ", 2)[1:2] == [status], got[:200]
    assert closed and took < 5.0
    _no_tracebacks(caplog)


def test_real_server_page_and_write(live, run: Path, edit: dict) -> None:
    with urllib.request.urlopen(live.url, timeout=10) as r:
        page = r.read().decode()
        assert r.headers["Content-Security-Policy"] and live.token in page
    before = _versions(run)
    req = urllib.request.Request(live.url + "api/weight", data=json.dumps({**edit, "weight": edit["weight"] + 1})
                                 .encode(), headers={"Content-Type": "application/json", "X-Dance-Token": live.token,
                                                     "Origin": live.url.rstrip("/")})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200 and json.loads(r.read())["saved"]
    assert _versions(run) == before + 1


# ---------------------------------------------------------------------------------------------- fuzz


def test_schema_fuzz_no_server_errors(app_and_guard, caplog) -> None:
    """Schemathesis generates valid and invalid requests from the OpenAPI schema (in-process, bounded)."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable

    state = app_and_guard[0].app.state.viewer
    guard = Guard(80, extra_hosts=["testserver"])  # schemathesis's in-process client sends Host: testserver
    app = guarded_app(state, guard)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/predict", "/api/weight", "/api/sankey", "/api/samples"}
    caplog.set_level(logging.WARNING)
    t0, runs, statuses = time.monotonic(), 0, {}
    for op in operations:
        for mode in schemathesis.GenerationMode:
            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=10, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case) -> None:
                r = case.call(headers={"X-Dance-Token": guard.token, "Content-Type": "application/json"})
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                assert r.status_code < 500, (case.method, case.path, r.status_code, r.text[:300])

            try:
                fuzz()
            except Unsatisfiable:  # no invalid request exists for an operation without parameters (/api/info)
                assert mode is schemathesis.GenerationMode.NEGATIVE, op.label
            runs += 1
    assert runs == 2 * len(operations)
    assert statuses.get(200) and statuses.get(422), statuses  # past the guard: valid and invalid requests
    assert set(statuses) <= {200, 204, 400, 404, 405, 413, 415, 422, 431}, statuses
    print(f"fuzz: {sum(statuses.values())} requests in {time.monotonic() - t0:.1f}s, statuses {statuses}")
    _no_tracebacks(caplog)


def test_head_and_a_bug_are_answered(app_and_guard, client, monkeypatch) -> None:
    r = client.head("/")
    assert r.status_code == 200 and r.content == b"" and int(r.headers["content-length"]) > 1000
    assert r.headers["content-security-policy"]
    app, _ = app_and_guard
    state = app.app.state.viewer

    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(state, "versions", broken)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        r = c.get("/api/versions")
    assert r.status_code == 500 and r.json()["error"] == "internal error: RuntimeError: a bug"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_real_server_chunked_body_over_the_limit(live, run: Path) -> None:
    """A body without Content-Length is counted as it arrives: past 1 MiB the server answers 413 and hangs up."""
    before = _versions(run)
    head = (f"POST /api/weight HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nContent-Type: application/json\r\n"
            f"X-Dance-Token: {live.token}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"%x\r\n%s\r\n" % (64 << 10, b" " * (64 << 10))
    with _connect(live) as sock:
        try:
            sock.sendall(head)
            for _ in range(17):  # just over 1 MiB, all of which the server reads (no reset on close)
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server already answered and closed
        closed, got, took = _read_until_closed(sock, within=5.0)
    assert got.startswith(b"HTTP/1.1 413"), got[:200]
    assert closed and _versions(run) == before
