"""Save and load a fitted :class:`DanceModel`: ``model.safetensors`` (tensors) + ``model.json`` (everything else).

Never pickle: the JSON holds class and concept names, settings, dropped concepts and the package version; the
safetensors file holds the standardisation statistics, the concept layers and the final layer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from dance import __version__
from dance.errors import ModelError
from dance.model.concept_layers import make_layer
from dance.model.dance import ConceptBlock, DanceModel, Dropped
from dance.runs import atomic_write_json

FORMAT = 1


def save_model(model: DanceModel, folder: Path | str, extra: dict | None = None) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/model.json``; returns the folder."""
    model._check_fitted()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
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
            tensors[f"layer.{block.type}.{name}"] = value.detach().cpu().contiguous()
    tmp = folder / ".model.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(folder / "model.safetensors")
    meta = {
        "format": FORMAT,
        "version": __version__,
        "params": model.get_params(),
        "classes": model.classes_,
        "feature_dim": model.feature_dim_,
        "blocks": [{"type": b.type, "names": b.names, "loss": b.loss, "activation": b.activation}
                   for b in model.blocks_],
        "dropped": [vars(d) for d in model.dropped_],
        "concept_quality": model.concept_quality_,
        "path": model.path_,
        "extra": extra or {},
    }
    atomic_write_json(folder / "model.json", meta)
    return folder


def load_model(folder: Path | str) -> DanceModel:
    """Load a model written by :func:`save_model`; errors name what is missing or inconsistent."""
    folder = Path(folder)
    meta_path, st_path = folder / "model.json", folder / "model.safetensors"
    for p in (meta_path, st_path):
        if not p.is_file():
            raise ModelError(f"{folder} is not a saved model: {p.name} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        tensors = load_file(str(st_path))
    except (OSError, ValueError, RuntimeError) as e:
        raise ModelError(f"{folder}: cannot read the saved model ({e})") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{folder}: model format {meta.get('format')} is not supported (expected {FORMAT})")
    params = {"binary_activation": "logit"} | meta["params"]  # older files: logits
    model = DanceModel(**params)
    model.classes_ = list(meta["classes"])
    model.feature_dim_ = int(meta["feature_dim"])
    for key in ("feature_mean", "feature_std", "z_mean", "z_std"):
        setattr(model, key + "_", tensors[key].numpy())
    model.W_, model.b_ = tensors["W"].numpy(), tensors["b"].numpy()
    start = 0
    for spec in meta["blocks"]:
        prefix = f"layer.{spec['type']}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
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
    if model.W_.shape != (len(model.classes_), start):
        raise ModelError(f"{folder}: final layer shape {model.W_.shape} does not match "
                         f"{len(model.classes_)} classes × {start} concepts")
    model.dropped_ = [Dropped(**d) for d in meta.get("dropped", [])]
    model.concept_quality_ = meta.get("concept_quality", {})
    model.path_ = meta.get("path", [])
    return model
