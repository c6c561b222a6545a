"""Save and load a fitted :class:`DanceModel`: ``model.safetensors`` (tensors) + ``model.json`` (everything else).

Never pickle: the JSON holds class and concept names, settings, dropped concepts and the package version; the
safetensors file holds the standardisation statistics, the concept layers and the final layer (all float32).

``model.json`` also holds an **integrity record** (``"integrity"``): per tensor its dtype, shape and the sha256 of
its raw (little-endian) bytes, and ``meta_sha256``, a digest of the class names, the feature dimension and each
concept block's type, concept names, loss and activation, so reordered or renamed classes and concepts are
noticed. :func:`load_model` checks everything before building the model: the JSON's keys and types, that the
safetensors file opens, that exactly the expected tensors are there, float32, with shapes consistent with each
other and with the names, finite, with positive standard deviations, and (when the record is present) that the
hashes match. Any problem is one :class:`~dance.errors.ModelError` naming the file and what is wrong.

``params`` holds the estimator's hyperparameters (``DanceModel.get_params()``, see
:class:`dance.config.DanceParams`); one missing from an older file takes its default when loaded, except
``binary_activation``, which files from before it existed lack and which is then ``logit`` (what they used). So
files written before ``DanceModel`` became a scikit-learn estimator (no ``validation_fraction``, params in
declaration order) load unchanged; no migration is needed. A file whose params name a setting this version does not
know is refused (written by a newer dance).

Models saved before the integrity record existed still load: the same structure, dtype and finiteness checks run,
the hash checks are skipped and a warning is logged once per model folder. The record detects corruption and
accidental edits; it is not a signature (whoever edits a file can also rewrite its record).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dance import __version__
from dance.errors import ModelError
from dance.model.concept_layers import make_layer
from dance.model.dance import BINARY_ACTIVATIONS, ConceptBlock, DanceModel, Dropped
from dance.runs import atomic_write_json, stable_hash

log = logging.getLogger(__name__)

FORMAT = 1
INTEGRITY_ALGORITHM = "sha256"
DTYPE = torch.float32
STATS = ("feature_mean", "feature_std", "z_mean", "z_std")
LOSSES = ("bce", "cos3")
ACTIVATIONS = ("sigmoid", "identity")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_warned_legacy: set[str] = set()


# ---------------------------------------------------------------------------------------------- digests


def tensor_digest(t: torch.Tensor) -> str:
    """sha256 of a tensor's raw bytes as safetensors stores them (C order, little-endian)."""
    arr = t.detach().cpu().contiguous().numpy()
    return hashlib.sha256(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def meta_digest(classes: Sequence[str], feature_dim: int, blocks: Sequence[dict]) -> str:
    """Digest of what model.json says about the tensors: class order, feature dim, blocks with their names."""
    return stable_hash({"classes": list(classes), "feature_dim": int(feature_dim),
                        "blocks": [{"type": b.get("type"), "names": b.get("names"), "loss": b.get("loss"),
                                    "activation": b.get("activation")} for b in blocks]})


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ---------------------------------------------------------------------------------------------- save


def model_tensors(model: DanceModel) -> dict[str, torch.Tensor]:
    """The float32 tensors :func:`save_model` writes; ModelError when one is not finite as float32."""
    model._check_fitted()
    with np.errstate(over="ignore", invalid="ignore"):  # 1e300 becomes inf here and is refused below
        tensors = {
            "feature_mean": torch.from_numpy(np.asarray(model.feature_mean_, np.float32)),
            "feature_std": torch.from_numpy(np.asarray(model.feature_std_, np.float32)),
            "z_mean": torch.from_numpy(np.asarray(model.z_mean_, np.float32)),
            "z_std": torch.from_numpy(np.asarray(model.z_std_, np.float32)),
            "W": torch.from_numpy(np.asarray(model.W_, np.float32)),
            "b": torch.from_numpy(np.asarray(model.b_, np.float32)),
        }
    for block in model.blocks_:
        for name, value in block.layer.state_dict().items():
            tensors[f"layer.{block.type}.{name}"] = value.detach().cpu().to(DTYPE).contiguous()
    bad = [k for k, t in tensors.items() if not bool(torch.isfinite(t).all())]
    if bad:
        raise ModelError(f"the model cannot be saved: {', '.join(bad)} contain NaN or values that are not finite "
                         "as float32 (|x| > 3.4e38)")
    return tensors


def save_model(model: DanceModel, folder: Path | str, extra: dict | None = None) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/model.json`` (with its integrity record); returns the folder.

    Nothing is written when a value is not finite as float32 (e.g. a weight of 1e300): :class:`ModelError`.
    """
    folder = Path(folder)
    tensors = model_tensors(model)
    blocks = [{"type": b.type, "names": list(b.names), "loss": b.loss, "activation": b.activation}
              for b in model.blocks_]
    integrity = {
        "algorithm": INTEGRITY_ALGORITHM,
        "tensors": {k: {"dtype": _dtype_name(t.dtype), "shape": list(t.shape), "sha256": tensor_digest(t)}
                    for k, t in tensors.items()},
        "meta_sha256": meta_digest(model.classes_, model.feature_dim_, blocks),
    }
    meta = {
        "format": FORMAT,
        "version": __version__,
        "params": model.get_params(),
        "classes": model.classes_,
        "feature_dim": model.feature_dim_,
        "blocks": blocks,
        "dropped": [vars(d) for d in model.dropped_],
        "concept_quality": model.concept_quality_,
        "path": model.path_,
        "extra": extra or {},
        "integrity": integrity,
    }
    try:
        _check_meta(json.loads(json.dumps(meta, default=str)), folder / "model.json")  # what load_model will see
    except ModelError as e:
        raise ModelError(f"the model cannot be saved: {e}") from None
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".model.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(folder / "model.safetensors")
    atomic_write_json(folder / "model.json", meta)
    return folder


# ---------------------------------------------------------------------------------------------- model.json checks


def _kind(v: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _str_list(v: Any, what: str, problems: list[str], allow_empty: bool = False) -> bool:
    if not isinstance(v, list):
        problems.append(f"{what} must be a list of strings, got {_kind(v)}")
        return False
    bad = [i for i, s in enumerate(v) if not isinstance(s, str)]
    if bad:
        problems.append(f"{what}[{bad[0]}] must be a string, got {_kind(v[bad[0]])}")
        return False
    if not v and not allow_empty:
        problems.append(f"{what} is empty")
        return False
    dup = sorted({s for s in v if v.count(s) > 1})
    if dup:
        problems.append(f"{what} has duplicates: {', '.join(dup[:5])}")
        return False
    return True


def _check_params(params: Any, problems: list[str]) -> None:
    if not isinstance(params, dict):
        problems.append(f"'params' must be an object, got {_kind(params)}")
        return
    defaults = DanceModel().get_params()
    for key, value in params.items():
        if key not in defaults:
            problems.append(f"params: unknown setting '{key}' (written by a newer dance?)")
            continue
        default = defaults[key]
        if key == "concept_hidden":
            ok = value is None or (_is_int(value) and value >= 1)
            want = "null or a positive integer"
        elif key == "binary_activation":
            ok, want = value in BINARY_ACTIVATIONS, f"one of {', '.join(BINARY_ACTIVATIONS)}"
        elif isinstance(default, bool):
            ok, want = isinstance(value, bool), "a boolean"
        elif isinstance(default, int):
            ok, want = _is_int(value) or (isinstance(value, float) and value.is_integer()), "an integer"
        elif isinstance(default, float):
            ok, want = _is_number(value) and math.isfinite(value), "a finite number"
        elif isinstance(default, str):
            ok, want = isinstance(value, str), "a string"
        else:
            ok, want = True, ""
        if ok and key == "device":
            try:
                torch.device(value)
            except (RuntimeError, TypeError, ValueError):
                ok, want = False, "a torch device name"
        if not ok:
            problems.append(f"params.{key} must be {want}, got {value!r}")


def _check_blocks(blocks: Any, problems: list[str]) -> None:
    if not isinstance(blocks, list):
        problems.append(f"'blocks' must be a list, got {_kind(blocks)}")
        return
    if not blocks:
        problems.append("'blocks' is empty (a model has at least one concept type)")
    types: list[str] = []
    for i, spec in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(spec, dict):
            problems.append(f"{where} must be an object, got {_kind(spec)}")
            continue
        for key in ("type", "names", "loss"):
            if key not in spec:
                problems.append(f"{where} lacks '{key}'")
        t = spec.get("type")
        if "type" in spec:
            if not isinstance(t, str) or not t or ":" in t:
                problems.append(f"{where}.type must be a non-empty string without ':', got {t!r}")
            elif t in types:
                problems.append(f"concept type '{t}' appears twice in 'blocks'")
            else:
                types.append(t)
        if "names" in spec:
            _str_list(spec["names"], f"{where}.names", problems)
        if "loss" in spec and spec["loss"] not in LOSSES:
            problems.append(f"{where}.loss must be one of {', '.join(LOSSES)}, got {spec['loss']!r}")
        if "activation" in spec and spec["activation"] not in ACTIVATIONS:
            problems.append(f"{where}.activation must be one of {', '.join(ACTIVATIONS)}, got {spec['activation']!r}")


def _check_integrity_record(rec: Any, problems: list[str]) -> None:
    if not isinstance(rec, dict):
        problems.append(f"'integrity' must be an object, got {_kind(rec)}")
        return
    if rec.get("algorithm") != INTEGRITY_ALGORITHM:
        problems.append(f"integrity.algorithm must be '{INTEGRITY_ALGORITHM}', got {rec.get('algorithm')!r}")
    if not (isinstance(rec.get("meta_sha256"), str) and _HEX64.match(rec["meta_sha256"])):
        problems.append("integrity.meta_sha256 must be a sha256 hex digest")
    tensors = rec.get("tensors")
    if not isinstance(tensors, dict) or not tensors:
        problems.append(f"integrity.tensors must be a non-empty object, got {_kind(tensors)}")
        return
    for name, entry in tensors.items():
        where = f"integrity.tensors['{name}']"
        if not isinstance(entry, dict):
            problems.append(f"{where} must be an object, got {_kind(entry)}")
            continue
        if not isinstance(entry.get("dtype"), str):
            problems.append(f"{where}.dtype must be a string")
        shape = entry.get("shape")
        if not (isinstance(shape, list) and all(_is_int(s) and s >= 0 for s in shape)):
            problems.append(f"{where}.shape must be a list of non-negative integers")
        if not (isinstance(entry.get("sha256"), str) and _HEX64.match(entry["sha256"])):
            problems.append(f"{where}.sha256 must be a sha256 hex digest")


_OPTIONAL: dict[str, tuple[type, str]] = {
    "version": (str, "a string"), "dropped": (list, "a list"), "concept_quality": (dict, "an object"),
    "path": (list, "a list"), "extra": (dict, "an object"),
}


def _check_meta(meta: Any, path: Path) -> None:
    """Every problem of model.json's structure, as one ModelError naming the file."""
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: not a saved model (expected a JSON object, got {_kind(meta)})")
    if "format" not in meta:
        raise ModelError(f"{path}: not a saved model (no 'format' key)")
    if meta["format"] != FORMAT or isinstance(meta["format"], bool):
        raise ModelError(f"{path}: model format {meta['format']!r} is not supported (expected {FORMAT})")
    problems: list[str] = []
    for key in ("params", "classes", "feature_dim", "blocks"):
        if key not in meta:
            problems.append(f"missing key '{key}'")
    if "params" in meta:
        _check_params(meta["params"], problems)
    if "classes" in meta:
        _str_list(meta["classes"], "'classes'", problems)
    if "feature_dim" in meta and not (_is_int(meta["feature_dim"]) and meta["feature_dim"] >= 1):
        problems.append(f"'feature_dim' must be a positive integer, got {meta['feature_dim']!r}")
    if "blocks" in meta:
        _check_blocks(meta["blocks"], problems)
    for key, (typ, name) in _OPTIONAL.items():
        if key in meta and not isinstance(meta[key], typ):
            problems.append(f"'{key}' must be {name}, got {_kind(meta[key])}")
    if isinstance(meta.get("dropped"), list):
        for i, d in enumerate(meta["dropped"]):
            if not (isinstance(d, dict) and all(isinstance(d.get(k), str) for k in ("type", "name", "reason"))):
                problems.append(f"dropped[{i}] must be an object with string type, name and reason")
                break
    if isinstance(meta.get("concept_quality"), dict):
        for t, q in meta["concept_quality"].items():
            if not (isinstance(q, dict) and all(_is_number(v) for v in q.values())):
                problems.append(f"concept_quality['{t}'] must map concept names to numbers")
                break
    if "integrity" in meta:
        _check_integrity_record(meta["integrity"], problems)
    if problems:
        raise ModelError(f"{path}: invalid saved model: {'; '.join(problems)}")


# ---------------------------------------------------------------------------------------------- tensor checks


def _layer_shapes(d_in: int, n: int, hidden: int | None) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes of :func:`~dance.model.concept_layers.make_layer` without building the layer."""
    if hidden:
        return {"0.weight": (hidden, d_in), "2.weight": (n, hidden)}
    return {"weight": (n, d_in)}


def _expected_shapes(meta: dict, hidden: int | None) -> dict[str, tuple[int, ...]]:
    d, c = meta["feature_dim"], len(meta["classes"])
    m = sum(len(b["names"]) for b in meta["blocks"])
    shapes = {"feature_mean": (d,), "feature_std": (d,), "z_mean": (m,), "z_std": (m,), "W": (c, m), "b": (c,)}
    for b in meta["blocks"]:
        for k, s in _layer_shapes(d, len(b["names"]), hidden).items():
            shapes[f"layer.{b['type']}.{k}"] = s
    return shapes


_WHY = {"feature_mean": "feature_dim", "feature_std": "feature_dim", "z_mean": "concepts",
        "z_std": "concepts", "W": "classes × concepts", "b": "classes"}


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError, OverflowError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: not a readable safetensors file (truncated, empty, pickled or corrupt: "
                         f"{reason})") from None


def _check_tensors(tensors: dict[str, torch.Tensor], meta: dict, hidden: int | None, path: Path,
                   meta_path: Path) -> None:
    expected = _expected_shapes(meta, hidden)
    missing = [k for k in expected if k not in tensors]
    unexpected = sorted(k for k in tensors if k not in expected)
    if missing or unexpected:
        parts = ([f"missing tensors {', '.join(missing)}"] if missing else []) + (
            [f"unexpected tensors {', '.join(unexpected)}"] if unexpected else [])
        raise ModelError(f"{path}: does not match {meta_path.name}: {'; '.join(parts)}")
    problems: list[str] = []
    for name, want in expected.items():
        t = tensors[name]
        if t.dtype != DTYPE:
            problems.append(f"tensor '{name}' is {_dtype_name(t.dtype)}, expected {_dtype_name(DTYPE)}")
            continue
        if tuple(t.shape) != want:
            why = _WHY.get(name, "feature_dim × concepts of its type")
            problems.append(f"tensor '{name}' has shape {tuple(t.shape)}, expected {want} ({why} in "
                            f"{meta_path.name})")
            continue
        if not bool(torch.isfinite(t).all()):
            problems.append(f"tensor '{name}' contains NaN or infinite values")
        elif name in ("feature_std", "z_std") and not bool((t > 0).all()):
            problems.append(f"tensor '{name}' has zero or negative standard deviations")
    if problems:
        raise ModelError(f"{path}: invalid saved model: {'; '.join(problems)}")


def _check_hashes(tensors: dict[str, torch.Tensor], meta: dict, path: Path, meta_path: Path) -> None:
    rec = meta["integrity"]
    problems: list[str] = []
    recorded = rec["tensors"]
    if set(recorded) != set(tensors):
        diff = sorted(set(recorded) ^ set(tensors))
        problems.append(f"the integrity record lists other tensors than the file ({', '.join(diff[:5])})")
    for name, entry in recorded.items():
        t = tensors.get(name)
        if t is None:
            continue
        if entry["dtype"] != _dtype_name(t.dtype) or list(entry["shape"]) != list(t.shape):
            problems.append(f"tensor '{name}' is {_dtype_name(t.dtype)} {tuple(t.shape)}, the record says "
                            f"{entry['dtype']} {tuple(entry['shape'])}")
        elif tensor_digest(t) != entry["sha256"]:
            problems.append(f"tensor '{name}' does not match its sha256")
    if problems:
        raise ModelError(f"{path}: integrity check failed (it or the record in {meta_path.name} was modified or "
                         f"corrupted after saving): {'; '.join(problems)}")
    if meta_digest(meta["classes"], meta["feature_dim"], meta["blocks"]) != rec["meta_sha256"]:
        raise ModelError(f"{meta_path}: integrity check failed: the class names, concept names or concept blocks "
                         "differ from those the model was saved with (edited, renamed or reordered)")


def _warn_legacy(folder: Path) -> None:
    key = str(folder.resolve())
    if key not in _warned_legacy:
        _warned_legacy.add(key)
        log.warning("%s was saved without an integrity record (before dance added one): its structure, dtypes "
                    "and values are checked, its checksums cannot be; save it again to add them", folder)


# ---------------------------------------------------------------------------------------------- load


def _read_meta(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise ModelError(f"{path}: cannot read the saved model ({e})") from None


def load_model(folder: Path | str) -> DanceModel:
    """Load a model written by :func:`save_model`, checking it first (see the module docstring).

    Raises :class:`ModelError` naming the file and the problem for anything missing, malformed, inconsistent,
    not finite or not matching its integrity record.
    """
    folder = Path(folder)
    meta_path, st_path = folder / "model.json", folder / "model.safetensors"
    for p in (meta_path, st_path):
        if not p.is_file():
            raise ModelError(f"{folder} is not a saved model: {p.name} is missing")
    meta = _read_meta(meta_path)
    _check_meta(meta, meta_path)
    params = {"binary_activation": "logit"} | meta["params"]  # older files: logits
    hidden = params.get("concept_hidden")
    tensors = _read_tensors(st_path)
    _check_tensors(tensors, meta, hidden, st_path, meta_path)
    if "integrity" in meta:
        _check_hashes(tensors, meta, st_path, meta_path)
    else:
        _warn_legacy(folder)

    model = DanceModel(**params)
    model.classes_ = list(meta["classes"])
    model.feature_dim_ = int(meta["feature_dim"])
    for key in STATS:
        setattr(model, key + "_", tensors[key].numpy())
    model.W_, model.b_ = tensors["W"].numpy(), tensors["b"].numpy()
    model.blocks_ = []
    start = 0
    for spec in meta["blocks"]:
        state = {k: tensors[f"layer.{spec['type']}.{k}"]
                 for k in _layer_shapes(model.feature_dim_, len(spec["names"]), model.concept_hidden)}
        layer = make_layer(model.feature_dim_, len(spec["names"]), model.concept_hidden, 0)
        try:
            layer.load_state_dict(state)
        except RuntimeError as e:
            raise ModelError(f"{folder}: concept layer '{spec['type']}' does not match its names ({e})") from None
        layer.eval().requires_grad_(False)
        # files written before binary activations existed hold logits ("identity")
        model.blocks_.append(ConceptBlock(spec["type"], list(spec["names"]), spec["loss"], layer, start,
                                          start + len(spec["names"]), spec.get("activation", "identity")))
        start += len(spec["names"])
    model.dropped_ = [Dropped(d["type"], d["name"], d["reason"]) for d in meta.get("dropped", [])]
    model.concept_quality_ = meta.get("concept_quality", {})
    model.path_ = meta.get("path", [])
    return model
