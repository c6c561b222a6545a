"""The viewer without a browser: ViewerState, and the HTTP endpoints in-process through FastAPI's TestClient.

The guard (Host, Origin, token, limits, timeouts) and the schema fuzz test are in ``test_viewer_security.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _inspect_runs import copy_run, pose_run
from fastapi.testclient import TestClient

from dance.errors import DanceError
from dance.viewer import Guard, ViewerState, guarded_app

PORT = 7860
BASE = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def server(rgb: Path, tmp_path_factory):
    """A client of the viewer's app on a copy of the run (as the page would talk to a server on 127.0.0.1)."""
    run = copy_run(rgb, tmp_path_factory.mktemp("viewer-api") / "run")
    guard = Guard(PORT)
    with TestClient(guarded_app(ViewerState(run), guard), base_url=BASE) as client:
        client.token = guard.token
        yield client


def _get(client: TestClient, path: str) -> tuple[int, dict | bytes]:
    r = client.get(path)
    return r.status_code, r.json() if r.headers.get("content-type", "").startswith("application/json") else r.content


def _post(client: TestClient, path: str, body: dict) -> tuple[int, dict]:
    """A POST as the page sends it: JSON, its own Origin and the page's token."""
    r = client.post(path, json=body, headers={"X-Dance-Token": client.token, "Origin": BASE})
    return r.status_code, r.json()


def test_state_predict_off_and_weight(rgb: Path) -> None:
    state = ViewerState(rgb)
    info = state.info()
    assert info["version"] == "v000" and "test" in info["splits"] and info["classes"]
    samples = state.samples("test")
    assert len(samples) == info["splits"]["test"]
    sid = samples[0]["id"]
    base = state.predict(sid)
    assert base["off"] == [] and not base["changed"] and base["before"] == base["after"]
    # switching off every concept with a positive contribution changes the predicted class's probability
    on = [c["concept"] for cs in base["before"]["top"].values() for c in cs if c["contribution"] > 0]
    assert on
    # motion concepts carry their presence probability, the other types none
    for t, cs in base["before"]["top"].items():
        assert all((0.0 <= c["probability"] <= 1.0) if t == "motion" else c["probability"] is None for c in cs)
    off = state.predict(sid, on)
    assert off["off"] == on
    assert off["after"]["probabilities"] != base["after"]["probabilities"]
    assert all(c["off"] for cs in off["before"]["top"].values() for c in cs if c["concept"] in on)
    with pytest.raises(DanceError, match="did you mean"):
        state.predict(sid, [on[0] + "zz"])
    # a weight preview saves nothing
    model, _, _ = state.model()
    c, j = np.unravel_index(np.abs(model.W_).argmax(), model.W_.shape)
    eff = state.weight(model.classes_[c], model.concept_names_[j], 0.0, "test")
    assert eff["saved"] is None and eff["n"] == len(samples)
    assert eff["accuracy_before"] == pytest.approx(np.mean([s["correct"] for s in samples]))
    assert not (rgb / "edits").exists()
    weights = state.class_concepts(model.classes_[c])["weights"]
    assert weights[0]["concept"] == model.concept_names_[j]


def test_http_endpoints(server) -> None:
    status, page = _get(server, "/")
    assert status == 200 and b"DANCE viewer" in page
    status, info = _get(server, "/api/info")
    assert status == 200 and info["versions"][0]["name"] == "v000"
    status, samples = _get(server, "/api/samples?split=test")
    sid = samples[0]["id"]
    status, pred = _post(server, "/api/predict", {"sample": sid, "off": []})
    assert status == 200 and pred["label"] == samples[0]["label"]
    concept = next(c["concept"] for cs in pred["before"]["top"].values() for c in cs)
    status, pred2 = _post(server, "/api/predict", {"sample": sid, "off": [concept]})
    assert status == 200 and pred2["off"] == [concept]
    # errors are JSON with a readable message
    status, e = _post(server, "/api/predict", {"sample": sid + "x", "off": []})
    assert status == 400 and "unknown sample" in e["error"]
    status, e = _post(server, "/api/predict", {"sample": sid, "off": "notalist"})
    assert status == 422 and "off" in e["error"]
    status, e = _get(server, "/api/samples?split=nope")
    assert status == 400 and "split" in e["error"]
    status, e = _get(server, "/nothing")
    assert status == 404 and "no route" in e["error"]
    # media
    status, gif = _get(server, f"/media/sample/{sid}.gif")
    assert status == 200 and gif[:6] == b"GIF89a"
    status, gif = _get(server, "/media/concept/motion_000.gif")
    assert status == 200 and gif[:3] == b"GIF"
    status, e = _get(server, "/media/concept/nope.gif")
    assert status == 404


def test_http_weight_save_makes_a_version(server) -> None:
    status, info = _get(server, "/api/info")
    cls = info["classes"][0]
    status, cw = _get(server, f"/api/class?name={cls}")
    concept = cw["weights"][0]["concept"] if cw["weights"] else info["concepts"][0]
    status, eff = _post(server, "/api/weight", {"class": cls, "concept": concept, "weight": 0.25, "split": "test"})
    assert status == 200 and eff["saved"] is None
    for key in ("accuracy_before", "accuracy_after", "fixed", "broken", "changed", "old_weight"):
        assert key in eff
    status, saved = _post(server, "/api/weight", {"class": cls, "concept": concept, "weight": 0.25, "save": True})
    assert status == 200 and saved["saved"] == "v001"
    status, versions = _get(server, "/api/versions")
    assert [v["name"] for v in versions] == ["v000", "v001"]
    status, cw2 = _get(server, f"/api/class?name={cls}&version=v001")
    assert {w["concept"]: w["weight"] for w in cw2["weights"]}[concept] == pytest.approx(0.25)
    status, e = _post(server, "/api/weight", {"class": cls + "zz", "concept": concept, "weight": 1})
    assert status == 400 and "did you mean" in e["error"]
    status, e = _post(server, "/api/weight", {"class": cls, "concept": concept, "weight": "abc"})
    assert status == 422 and "weight" in e["error"]


def test_http_sankey(server) -> None:
    status, info = _get(server, "/api/info")
    a, b = info["classes"][:2]
    status, sk = _get(server, f"/api/sankey?classes={a},{b}&top=4")
    assert status == 200
    if info["sankey"]["available"]:
        fig = json.loads(sk["figure"])
        assert fig["data"][0]["type"] == "sankey"
        status, js = _get(server, "/static/plotly.min.js")
        assert status == 200 and len(js) > 100_000
    else:
        assert sk["figure"] is None and sk["reason"]


def test_pose_run_previews(tmp_path_factory, single_thread) -> None:
    state = ViewerState(pose_run(tmp_path_factory))
    sid = state.samples("test")[0]["id"]
    assert state.sample_gif(sid)[:6] == b"GIF89a"  # the pose sequence drawn (no video)
    assert state.concept_gif("motion:motion_000")[:3] == b"GIF"
