"""Corrupt or tampered model files, per-video caches and weight edits (issue 11, hardening item 2).

Every damaged ``model.safetensors`` / ``model.json`` must end in one :class:`ModelError` naming the file (never a
raw SafetensorError / KeyError / TypeError, never a model that loads and predicts something else); cached vectors
that fail their checksum are encoded again; a weight edit must be finite as float32.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from dance.cli import app
from dance.config import load_settings
from dance.data.index import VideoIndex, VideoRecord
from dance.encoders.video_cache import cache_checksum, encode_videos_cached, video_cache_key
from dance.errors import ModelError
from dance.explain.intervene import check_weight, weight_edit, with_weight
from dance.model.dance import ConceptTargets, DanceModel
from dance.model.io import load_model, meta_digest, save_model, tensor_digest
from dance.model.versions import base_version, list_versions, save_edit
from dance.pipeline.artifacts import save_arrays
from dance.progress import Reporter

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py

D = 10
CLASSES = ["c0", "c1", "c2"]
runner = CliRunner()


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    wm, wo, ws = rng.normal(size=(D, 3)), rng.normal(size=(D, 2)), rng.normal(size=(D, 2))
    v = 2.0 * rng.normal(size=(7, len(CLASSES)))

    def split(n: int):
        x = rng.normal(size=(n, D)).astype(np.float32)
        m = (x @ wm > 0).astype(np.float32)
        o, s = 1 / (1 + np.exp(-x @ wo / 3)), 1 / (1 + np.exp(-x @ ws / 3))
        y = (np.c_[m - 0.5, o - 0.5, s - 0.5] @ v).argmax(axis=1)
        return x, y, {"motion": ConceptTargets(["m0", "m1", "m2"], m, "bce"),
                      "object": ConceptTargets(["ball", "net"], o, "cos3"),
                      "scene": ConceptTargets(["pool", "field"], s, "cos3")}

    return split(120), split(40), split(40)


def _fit(hidden: int | None = None) -> tuple[DanceModel, np.ndarray]:
    (x, y, c), (xv, yv, cv), (xt, _, _) = _problem()
    model = DanceModel(concept_steps=30, concept_lr=1e-2, concept_hidden=hidden, n_lambdas=3, clip_cutoff=0.0,
                       interpretability_cutoff=-1.0).fit(x, y, c, xv, yv, cv, classes=CLASSES)
    return model, xt


@pytest.fixture(scope="module")
def fitted() -> tuple[DanceModel, np.ndarray]:
    return _fit()


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory) -> Path:
    return save_model(fitted[0], tmp_path_factory.mktemp("pristine") / "model")


@pytest.fixture(scope="module")
def saved_mlp(tmp_path_factory) -> Path:
    return save_model(_fit(hidden=4)[0], tmp_path_factory.mktemp("pristine-mlp") / "model")


# ---------------------------------------------------------------------------------------------- tamper helpers


def _meta(folder: Path) -> dict:
    return json.loads((folder / "model.json").read_text())


def _rehash(folder: Path) -> None:
    """Recompute the integrity record, as a careless tool rewriting the files would: the other checks must hold."""
    meta, tensors = _meta(folder), load_file(str(folder / "model.safetensors"))
    meta["integrity"]["tensors"] = {k: {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                                        "sha256": tensor_digest(t)} for k, t in tensors.items()}
    meta["integrity"]["meta_sha256"] = meta_digest(meta["classes"], meta["feature_dim"], meta["blocks"])
    (folder / "model.json").write_text(json.dumps(meta))


def _edit_meta(fn: Callable[[dict], object], rehash: bool = False) -> Callable[[Path], None]:
    """Change model.json in place (``fn``'s return value is ignored)."""
    def apply(folder: Path) -> None:
        meta = _meta(folder)
        fn(meta)
        (folder / "model.json").write_text(json.dumps(meta))
        if rehash:
            _rehash(folder)
    return apply


def _edit_tensors(fn: Callable[[dict], None], rehash: bool = False) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        tensors = load_file(str(folder / "model.safetensors"))
        fn(tensors)
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
        if rehash:
            _rehash(folder)
    return apply


def _write_bytes(fn: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        p = folder / "model.safetensors"
        p.write_bytes(fn(p.read_bytes()))
    return apply


def _poke_w_bytes(data: bytes) -> bytes:
    """Overwrite W's first float in place (header untouched), as a bit flip on disk would."""
    n = struct.unpack("<Q", data[:8])[0]
    start = 8 + n + json.loads(data[8:8 + n])["W"]["data_offsets"][0]
    old = struct.unpack("<f", data[start:start + 4])[0]
    return data[:start] + struct.pack("<f", old + 0.5) + data[start + 4:]


def _set(name: str, value: float, index: tuple = (0,)) -> Callable[[dict], None]:
    def fn(t: dict) -> None:
        t[name] = t[name].clone()
        t[name][index] = value
    return fn


def _first_layer(t: dict) -> str:
    return next(k for k in t if k.startswith("layer."))


def _nan_layer(t: dict) -> None:
    k = _first_layer(t)
    t[k] = t[k].clone()
    t[k][0, 0] = float("nan")


def _pop(name: str) -> Callable[[dict], None]:
    return lambda t: t.pop(name if name != "layer" else _first_layer(t))


def _swap(lst: list, i: int = 0, j: int = 1) -> None:
    lst[i], lst[j] = lst[j], lst[i]


def _pickled(data: bytes) -> bytes:
    buf = io.BytesIO()
    torch.save({"W": torch.zeros(3, 7)}, buf)
    return buf.getvalue()


ST, JS = "model.safetensors", "model.json"

CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    # --- the safetensors file does not open
    "st-empty": (_write_bytes(lambda b: b""), ST),
    "st-truncated-half": (_write_bytes(lambda b: b[: len(b) // 2]), ST),
    "st-truncated-header": (_write_bytes(lambda b: b[:20]), ST),
    "st-truncated-8-bytes": (_write_bytes(lambda b: b[:8]), ST),
    "st-torch-pickle": (_write_bytes(_pickled), ST),
    "st-python-pickle": (_write_bytes(lambda b: pickle.dumps({"W": np.zeros((3, 7), np.float32)})), ST),
    "st-garbage": (_write_bytes(lambda b: bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8))), ST),
    "st-huge-header-length": (_write_bytes(lambda b: b"\xff" * 8 + b[8:]), ST),
    "st-header-not-json": (_write_bytes(lambda b: struct.pack("<Q", 16) + b"{not json at all" + b[24:]), ST),
    # --- tensors missing, extra, wrong dtype
    "missing-W": (_edit_tensors(_pop("W")), ST),
    "missing-feature-std": (_edit_tensors(_pop("feature_std")), ST),
    "missing-layer": (_edit_tensors(_pop("layer")), ST),
    "extra-tensor": (_edit_tensors(lambda t: t.update(extra=torch.zeros(2))), ST),
    "W-int64": (_edit_tensors(lambda t: t.update(W=t["W"].round().to(torch.int64))), ST),
    "W-int64-rehashed": (_edit_tensors(lambda t: t.update(W=t["W"].round().to(torch.int64)), rehash=True), ST),
    "W-float64-rehashed": (_edit_tensors(lambda t: t.update(W=t["W"].double()), rehash=True), ST),
    "feature-mean-float16": (_edit_tensors(lambda t: t.update(feature_mean=t["feature_mean"].half())), ST),
    # --- values that are not finite (rehashed: the value check holds without the record)
    "W-nan": (_edit_tensors(_set("W", float("nan"), (0, 0))), ST),
    "W-nan-rehashed": (_edit_tensors(_set("W", float("nan"), (0, 0)), rehash=True), ST),
    "W-inf-rehashed": (_edit_tensors(_set("W", float("inf"), (1, 1)), rehash=True), ST),
    "b-inf-rehashed": (_edit_tensors(_set("b", float("-inf")), rehash=True), ST),
    "feature-mean-nan-rehashed": (_edit_tensors(_set("feature_mean", float("nan")), rehash=True), ST),
    "feature-std-zero-rehashed": (_edit_tensors(_set("feature_std", 0.0), rehash=True), ST),
    "z-mean-nan-rehashed": (_edit_tensors(_set("z_mean", float("nan")), rehash=True), ST),
    "z-std-inf-rehashed": (_edit_tensors(_set("z_std", float("inf")), rehash=True), ST),
    "layer-nan-rehashed": (_edit_tensors(_nan_layer, rehash=True), ST),
    # --- finite values changed: only the checksums notice
    "W-value-changed": (_edit_tensors(_set("W", 5.0, (0, 0))), ST),
    "W-bytes-poked": (_write_bytes(_poke_w_bytes), ST),
    "feature-mean-zeroed": (_edit_tensors(lambda t: t.update(feature_mean=torch.zeros_like(t["feature_mean"]))), ST),
    "layers-swapped": (_edit_tensors(lambda t: t.update({"layer.object.weight": t["layer.scene.weight"],
                                                         "layer.scene.weight": t["layer.object.weight"]})), ST),
    # --- shapes inconsistent with each other or the names (rehashed: the shape check holds without the record)
    "W-transposed-rehashed": (_edit_tensors(lambda t: t.update(W=t["W"].T.contiguous()), rehash=True), ST),
    "b-short-rehashed": (_edit_tensors(lambda t: t.update(b=t["b"][:2]), rehash=True), ST),
    "layer-row-dropped-rehashed": (_edit_tensors(
        lambda t: t.update({"layer.scene.weight": t["layer.scene.weight"][:1]}), rehash=True), ST),
    "feature-dim-changed": (_edit_meta(lambda m: m.update(feature_dim=D + 1), rehash=True), ST),
    "class-added": (_edit_meta(lambda m: m["classes"].append("c3"), rehash=True), ST),
    "concept-removed": (_edit_meta(lambda m: m["blocks"][1]["names"].pop(), rehash=True), ST),
    "concept-hidden-set": (_edit_meta(lambda m: m["params"].update(concept_hidden=4)), ST),
    # --- names swapped or renamed (the model would load and predict wrong)
    "classes-swapped": (_edit_meta(lambda m: _swap(m["classes"])), JS),
    "class-renamed": (_edit_meta(lambda m: m["classes"].__setitem__(0, "c9")), JS),
    "motion-concepts-swapped": (_edit_meta(lambda m: _swap(m["blocks"][0]["names"])), JS),
    "object-concepts-swapped": (_edit_meta(lambda m: _swap(m["blocks"][1]["names"])), JS),
    "concept-types-swapped": (_edit_meta(lambda m: m["blocks"][1].update(type="scene") or m["blocks"][2].update(
        type="object")), JS),
    "activation-changed": (_edit_meta(lambda m: m["blocks"][0].update(
        activation="sigmoid" if m["blocks"][0]["activation"] == "identity" else "identity")), JS),
    "activation-deleted": (_edit_meta(lambda m: m["blocks"][0].pop("activation")), JS),
    # --- model.json not JSON, not an object, keys missing, wrong types, wrong nesting
    "json-invalid": (lambda f: (f / JS).write_text("{broken"), JS),
    "json-empty": (lambda f: (f / JS).write_text(""), JS),
    "json-not-utf8": (lambda f: (f / JS).write_bytes(b"\xff\xfe\x00{"), JS),
    "json-list": (lambda f: (f / JS).write_text("[1, 2]"), JS),
    "json-null": (lambda f: (f / JS).write_text("null"), JS),
    "json-string": (lambda f: (f / JS).write_text('"model"'), JS),
    "format-missing": (_edit_meta(lambda m: m.pop("format")), JS),
    "format-2": (_edit_meta(lambda m: m.update(format=2)), JS),
    "format-string": (_edit_meta(lambda m: m.update(format="1")), JS),
    "missing-classes": (_edit_meta(lambda m: m.pop("classes")), JS),
    "missing-blocks": (_edit_meta(lambda m: m.pop("blocks")), JS),
    "missing-params": (_edit_meta(lambda m: m.pop("params")), JS),
    "missing-feature-dim": (_edit_meta(lambda m: m.pop("feature_dim")), JS),
    "classes-string": (_edit_meta(lambda m: m.update(classes="c0,c1,c2")), JS),
    "classes-numbers": (_edit_meta(lambda m: m.update(classes=[0, 1, 2])), JS),
    "classes-duplicate": (_edit_meta(lambda m: m["classes"].__setitem__(1, "c0")), JS),
    "classes-nested": (_edit_meta(lambda m: m.update(classes=[m["classes"]])), JS),
    "feature-dim-string": (_edit_meta(lambda m: m.update(feature_dim="10")), JS),
    "feature-dim-float": (_edit_meta(lambda m: m.update(feature_dim=10.5)), JS),
    "feature-dim-negative": (_edit_meta(lambda m: m.update(feature_dim=-1)), JS),
    "blocks-object": (_edit_meta(lambda m: m.update(blocks={"motion": m["blocks"][0]})), JS),
    "blocks-empty": (_edit_meta(lambda m: m.update(blocks=[])), JS),
    "block-not-object": (_edit_meta(lambda m: m["blocks"].__setitem__(0, "motion")), JS),
    "block-missing-names": (_edit_meta(lambda m: m["blocks"][0].pop("names")), JS),
    "block-missing-type": (_edit_meta(lambda m: m["blocks"][0].pop("type")), JS),
    "block-names-nested": (_edit_meta(lambda m: m["blocks"][0].update(names=[m["blocks"][0]["names"]])), JS),
    "block-names-string": (_edit_meta(lambda m: m["blocks"][0].update(names="m0 m1 m2")), JS),
    "block-bad-loss": (_edit_meta(lambda m: m["blocks"][0].update(loss="mse")), JS),
    "block-type-twice": (_edit_meta(lambda m: m["blocks"][2].update(type="object")), JS),
    "params-list": (_edit_meta(lambda m: m.update(params=[1, 2])), JS),
    "params-unknown-key": (_edit_meta(lambda m: m["params"].update(warp_speed=9)), JS),
    "params-lam-string": (_edit_meta(lambda m: m["params"].update(lam="small")), JS),
    "params-hidden-string": (_edit_meta(lambda m: m["params"].update(concept_hidden="4")), JS),
    "params-bad-activation": (_edit_meta(lambda m: m["params"].update(binary_activation="tanh")), JS),
    "params-bad-device": (_edit_meta(lambda m: m["params"].update(device="warp-drive")), JS),
    "dropped-strings": (_edit_meta(lambda m: m.update(dropped=["a", "b"])), JS),
    "dropped-missing-reason": (_edit_meta(lambda m: m.update(dropped=[{"type": "object", "name": "x"}])), JS),
    "concept-quality-list": (_edit_meta(lambda m: m.update(concept_quality=[1])), JS),
    "integrity-string": (_edit_meta(lambda m: m.update(integrity="ok")), JS),
    "integrity-bad-sha": (_edit_meta(lambda m: m["integrity"]["tensors"]["W"].update(sha256="abc")), JS),
    "integrity-tensor-removed": (_edit_meta(lambda m: m["integrity"]["tensors"].pop("b")), ST),
    "integrity-dtype-changed": (_edit_meta(lambda m: m["integrity"]["tensors"]["W"].update(dtype="int64")), ST),
}


def test_there_are_enough_tamper_cases() -> None:
    assert len(CASES) >= 29


@pytest.mark.parametrize("case", list(CASES))
def test_tampered_model_is_one_model_error(case: str, saved: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(saved, tmp_path / "model")
    tamper, file = CASES[case]
    tamper(folder)
    with pytest.raises(ModelError) as info:  # any other exception fails the test
        load_model(folder)
    msg = str(info.value)
    assert file in msg, msg
    assert "\n" not in msg and len(msg) < 1500, msg


MLP_CASES: dict[str, Callable[[Path], None]] = {
    "mlp-missing-hidden-layer": _edit_tensors(lambda t: t.pop("layer.motion.0.weight")),
    "mlp-hidden-nan-rehashed": _edit_tensors(_set("layer.object.0.weight", float("nan"), (0, 0)), rehash=True),
    "mlp-hidden-size-changed": _edit_meta(lambda m: m["params"].update(concept_hidden=5)),
    "mlp-made-linear": _edit_meta(lambda m: m["params"].update(concept_hidden=None)),
}


@pytest.mark.parametrize("case", list(MLP_CASES))
def test_tampered_mlp_model_is_one_model_error(case: str, saved_mlp: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(saved_mlp, tmp_path / "model")
    MLP_CASES[case](folder)
    with pytest.raises(ModelError, match="model.safetensors"):
        load_model(folder)


def test_untampered_model_loads_and_predicts_the_same(fitted, saved: Path, saved_mlp: Path) -> None:
    model, xt = fitted
    loaded = load_model(saved)
    np.testing.assert_array_equal(loaded.decision_function(xt), model.decision_function(xt))
    np.testing.assert_array_equal(loaded.predict(xt), model.predict(xt))
    assert loaded.classes_ == model.classes_ and loaded.concept_names_ == model.concept_names_
    record = _meta(saved)["integrity"]
    assert record["algorithm"] == "sha256" and len(record["meta_sha256"]) == 64
    tensors = load_file(str(saved / "model.safetensors"))
    assert set(record["tensors"]) == set(tensors)
    for name, t in tensors.items():
        assert record["tensors"][name] == {"dtype": "float32", "shape": list(t.shape), "sha256": tensor_digest(t)}
    # an integrity record and a reload do not change the safetensors layout: saving again gives the same bytes
    again = save_model(loaded, saved.parent / "again")
    assert (again / "model.safetensors").read_bytes() == (saved / "model.safetensors").read_bytes()
    assert _meta(again)["integrity"] == record
    mlp = load_model(saved_mlp)
    assert mlp.concept_hidden == 4 and mlp.predict(xt).shape == (len(xt),)


def test_models_saved_before_the_integrity_record_load_with_one_warning(fitted, saved: Path, tmp_path: Path,
                                                                        caplog) -> None:
    model, xt = fitted
    folder = shutil.copytree(saved, tmp_path / "old")
    _edit_meta(lambda m: m.pop("integrity"))(folder)
    with caplog.at_level(logging.WARNING, logger="dance.model.io"):
        first = load_model(folder)
        load_model(folder)
    warnings = [r for r in caplog.records if "integrity record" in r.getMessage()]
    assert len(warnings) == 1 and str(folder) in warnings[0].getMessage()
    np.testing.assert_array_equal(first.decision_function(xt), model.decision_function(xt))
    # the documented migration: saving it again adds the record
    resaved = shutil.copytree(folder, tmp_path / "resaved")
    save_model(load_model(resaved), resaved)
    assert _meta(resaved)["integrity"] == _meta(saved)["integrity"]
    # renames cannot be noticed without the record, but structure, dtype and values are still checked
    for tamper in (_edit_tensors(_set("W", float("nan"), (0, 0))), _edit_tensors(
            lambda t: t.update(W=t["W"].round().to(torch.int64))), _edit_tensors(lambda t: t.pop("z_std")),
            _edit_meta(lambda m: m["classes"].append("c3"))):
        broken = shutil.copytree(folder, tmp_path / f"old-{len(list(tmp_path.iterdir()))}")
        tamper(broken)
        with pytest.raises(ModelError):
            load_model(broken)


def test_layer_shapes_match_make_layer() -> None:
    from dance.model.concept_layers import make_layer
    from dance.model.io import _layer_shapes

    for hidden in (None, 6):
        layer = make_layer(7, 3, hidden, 0)
        assert {k: tuple(v.shape) for k, v in layer.state_dict().items()} == _layer_shapes(7, 3, hidden)


# ---------------------------------------------------------------------------------------------- weight edits


def test_weight_must_be_finite_as_float32(fitted, tmp_path: Path) -> None:
    model = fitted[0]
    concept = model.concept_names_[0]
    assert check_weight(3e38) == 3e38 and check_weight(-1.5) == -1.5 and check_weight(1e-300) == 1e-300
    for bad in (1e300, -1e39, float("inf"), float("nan"), "x", None):
        with pytest.raises(ModelError, match="weight must be"):
            check_weight(bad)
    with pytest.raises(ModelError, match="float32"):
        with_weight(model, "c0", concept, 1e300)
    z = model.concept_activations(fitted[1])
    with pytest.raises(ModelError, match="float32"):
        weight_edit(model, z, model.predict_index(fitted[1]), "c0", concept, 1e300)
    # a model that got an infinite weight some other way is never saved
    broken = model.copy()
    broken.W_ = broken.W_.copy()
    broken.W_[0, 0] = np.inf
    with pytest.raises(ModelError, match="W"):
        save_model(broken, tmp_path / "never")
    assert not (tmp_path / "never").exists()
    run = tmp_path / "run"
    save_model(model, run / "train" / "model")
    with pytest.raises(ModelError, match="W"):
        save_edit(run, base_version(run), broken, {"class": "c0", "concept": concept, "old_weight": 0.0,
                                                   "new_weight": float("inf")})
    assert not (run / "edits").exists() and [v.name for v in list_versions(run)] == ["v000"]


# ---------------------------------------------------------------------------------------------- CLI


def _mini_run(root: Path, model: DanceModel, x: np.ndarray) -> Path:
    """The parts of a finished run that `dance explain` / `dance intervene` read before any video is decoded."""
    run = root / "run"
    save_model(model, run / "train" / "model")
    splits = ["train", "val", "test", "test"]
    recs = [VideoRecord(f"v{i}", root / f"v{i}.mp4", model.classes_[int(p)], splits[i % 4])
            for i, p in enumerate(model.predict_index(x))]
    VideoIndex(root, recs, model.classes_, "test").to_csv(run / "index" / "index.csv")
    save_arrays(run / "features" / "features.npz", x=x, ok=np.ones(len(x), bool))
    (run / "config.yaml").write_text(yaml.safe_dump(load_settings(None, []).model_dump(), sort_keys=False))
    for name in ("motion/motion.npz", "poses/skeleton.json"):
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text("{}")
    return run


def _one_error_line(res) -> str:
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    return lines[0]


@pytest.mark.parametrize("case", ["st-truncated-half", "W-nan", "classes-swapped", "missing-blocks"])
def test_cli_on_a_tampered_run_prints_one_line(case: str, fitted, tmp_path: Path) -> None:
    model, xt = fitted
    run = _mini_run(tmp_path, model, xt)
    tamper, file = CASES[case]
    tamper(run / "train" / "model")
    env = {"COLUMNS": "5000"}
    concept = model.concept_names_[0]
    for args in (["explain", str(tmp_path / "clip.mp4"), "--run", str(run)],
                 ["intervene", str(run), "--sample", "v0", "--off", concept],
                 ["intervene", str(run), "--class", "c0", "--concept", concept, "--weight", "1"]):
        line = _one_error_line(runner.invoke(app, args, env=env))
        assert file in line, line
    assert not (run / "edits").exists()


def test_cli_weight_edit_of_1e300_is_refused(fitted, tmp_path: Path) -> None:
    model, xt = fitted
    run = _mini_run(tmp_path, model, xt)
    concept = model.concept_names_[0]
    for w in ("1e300", "-1e39", "inf", "nan"):
        line = _one_error_line(runner.invoke(app, ["intervene", str(run), "--class", "c0", "--concept", concept,
                                                   "--weight", w], env={"COLUMNS": "5000"}))
        assert "finite" in line and "float32" in line, line
    assert not (run / "edits").exists()
    ok = runner.invoke(app, ["intervene", str(run), "--class", "c0", "--concept", concept, "--weight", "2.5"])
    assert ok.exit_code == 0 and "saved as v001" in ok.output, ok.output
    assert load_model(run / "edits" / "v001" / "model").W_[0, 0] == np.float32(2.5)


def test_damaged_edit_json_is_not_a_version(fitted, tmp_path: Path) -> None:
    model, xt = fitted
    run = _mini_run(tmp_path, model, xt)
    for name, text in (("v001", "[1, 2]"), ("v002", json.dumps({"class": "c0", "new_weight": "x"}))):
        (run / "edits" / name / "model").mkdir(parents=True)
        (run / "edits" / name / "edit.json").write_text(text)
    versions = list_versions(run)
    assert [v.name for v in versions] == ["v000", "v002"]
    assert "edit.json" in versions[1].label
    listing = runner.invoke(app, ["intervene", str(run), "--list"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0, listing.output


# ---------------------------------------------------------------------------------------------- per-video caches

DIM = 6


class _Encoder:
    """Deterministic vectors from each video's frames; counts the videos it encodes."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def read(self, rec: VideoRecord) -> np.ndarray:
        self.encoded.append(rec.video_id)
        return np.full(DIM, float(rec.video_id[1:]) + 1, np.float32)

    def encode(self, frames: list[np.ndarray]) -> np.ndarray:
        return np.stack([f * np.arange(1, DIM + 1) for f in frames])


def _records(root: Path, n: int = 4) -> list[VideoRecord]:
    out = []
    for i in range(n):
        p = root / f"v{i}.mp4"
        p.write_bytes(b"video %d" % i)
        out.append(VideoRecord(f"v{i}", p, "a", "train"))
    return out


def _entry(cache: Path, rec: VideoRecord) -> Path:
    (path,) = cache.glob(f"{video_cache_key(rec)}.*.npy")
    return path


def _encode(recs, cache, enc):
    return encode_videos_cached(recs, enc.read, enc.encode, DIM, cache, 2, Reporter(), "features (test)")


def _npy(v: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, v)
    return buf.getvalue()


def test_cache_entries_are_checksummed_and_reused(tmp_path: Path) -> None:
    recs, cache = _records(tmp_path), tmp_path / "cache"
    first = _Encoder()
    x, ok, skipped, reused = _encode(recs, cache, first)
    assert ok.all() and not skipped and reused == 0 and len(first.encoded) == 4
    for rec, row in zip(recs, x):
        key = video_cache_key(rec)
        assert _entry(cache, rec).name == f"{key}.{cache_checksum(key, row)}.npy"
    again = _Encoder()
    x2, ok2, _, reused2 = _encode(recs, cache, again)
    assert again.encoded == [] and reused2 == 4
    np.testing.assert_array_equal(x2, x)


CACHE_DAMAGE: dict[str, Callable[[Path, Path, list[VideoRecord]], None]] = {
    # the outside tester's case: zeros, finite, right shape, same file name
    "zeroed": lambda p, cache, recs: p.write_bytes(_npy(np.zeros(DIM, np.float32))),
    "one-value-changed": lambda p, cache, recs: p.write_bytes(_npy(np.load(p) + np.eye(DIM, dtype=np.float32)[0])),
    "nan": lambda p, cache, recs: p.write_bytes(_npy(np.full(DIM, np.nan, np.float32))),
    "wrong-shape": lambda p, cache, recs: p.write_bytes(_npy(np.zeros(DIM + 1, np.float32))),
    "float64": lambda p, cache, recs: p.write_bytes(_npy(np.load(p).astype(np.float64))),
    "truncated": lambda p, cache, recs: p.write_bytes(p.read_bytes()[:40]),
    "empty": lambda p, cache, recs: p.write_bytes(b""),
    "pickle": lambda p, cache, recs: p.write_bytes(pickle.dumps([1.0] * DIM)),
    # another video's vector and checksum under this video's key
    "copied-from-other-video": lambda p, cache, recs: (
        p.unlink(), (cache / f"{video_cache_key(recs[1])}.{_entry(cache, recs[2]).name.split('.')[-2]}.npy")
        .write_bytes(_entry(cache, recs[2]).read_bytes())),
    # written by an older dance: no checksum in the name
    "legacy-without-checksum": lambda p, cache, recs: p.rename(cache / f"{video_cache_key(recs[1])}.npy"),
}


@pytest.mark.parametrize("damage", list(CACHE_DAMAGE))
def test_damaged_cache_entry_is_encoded_again(damage: str, tmp_path: Path, caplog) -> None:
    recs, cache = _records(tmp_path), tmp_path / "cache"
    x, _, _, _ = _encode(recs, cache, _Encoder())
    CACHE_DAMAGE[damage](_entry(cache, recs[1]), cache, recs)
    enc = _Encoder()
    with caplog.at_level(logging.WARNING, logger="dance.encoders.video_cache"):
        x2, ok, skipped, reused = _encode(recs, cache, enc)
    assert enc.encoded == ["v1"] and reused == 3 and ok.all() and not skipped
    np.testing.assert_array_equal(x2, x)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "v1" in messages[0] and "encoded again" in messages[0], messages
    # the bad entry is gone, the new one is valid and reused next time
    assert [p.name for p in cache.glob(f"{video_cache_key(recs[1])}*")] == [_entry(cache, recs[1]).name]
    third = _Encoder()
    _encode(recs, cache, third)
    assert third.encoded == []


def test_dual_encoder_embedding_cache_recomputes_a_zeroed_entry(tmp_path: Path) -> None:
    from dance.spatial.dual_labels import DualEncoderLabelSource

    class Fake:
        name, dim, size, n_frames = "fake", DIM, 8, 2

        def __init__(self) -> None:
            self.videos = 0

        def fingerprint(self) -> dict:
            return {"name": "fake"}

        def encode_texts(self, texts):
            return np.eye(len(texts), DIM, dtype=np.float32)

        def encode_videos(self, videos):
            self.videos += len(videos)
            return np.stack([v / np.linalg.norm(v) for v in videos]).astype(np.float32)

    recs = _records(tmp_path)
    reader = _Encoder().read
    concepts = {"object": ["ball", "net"], "scene": ["pool"]}
    first = Fake()
    out = DualEncoderLabelSource(first, concepts, cache_dir=tmp_path / "cache", read_frames=reader).labels(recs)
    (entry,) = (tmp_path / "cache").rglob(f"{video_cache_key(recs[0])}.*.npy")
    entry.write_bytes(_npy(np.zeros(DIM, np.float32)))
    second = Fake()
    again = DualEncoderLabelSource(second, concepts, cache_dir=tmp_path / "cache", read_frames=reader).labels(recs)
    assert first.videos == 4 and second.videos == 1
    for t in ("object", "scene"):
        np.testing.assert_array_equal(again.labels[t], out.labels[t])
