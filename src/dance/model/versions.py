"""Model versions of a run: the trained model and every saved weight edit, never overwriting an older one.

Layout::

    RUN/train/model/            v000: the model the ``train`` stage wrote (never touched by edits)
    RUN/edits/v001/model/       a complete saved model (loadable with :func:`dance.model.io.load_model`)
    RUN/edits/v001/edit.json    class, concept, old and new weight, time, parent version, effect on a split

Each edit is made on a *parent* version (by default the latest), so edits chain: v002 may be v001 plus one more
weight. A version is written into a temporary folder and renamed into place, so a half-written version never
appears, and two processes saving at once get different numbers.

An edit records the fingerprint of the ``train`` stage it descends from. When the run is retrained, older edits
no longer describe the current model: they are listed as *stale*, are not chosen as the latest version, and are
refused as a parent or for predictions.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dance import __version__
from dance.errors import ModelError
from dance.model.dance import DanceModel
from dance.model.io import load_model, model_tensors, save_model
from dance.runs import atomic_write_json, read_json

BASE = "v000"
EDITS = "edits"
_NAME = re.compile(r"^v(\d{3,})$")


@dataclass
class Version:
    """One model version of a run."""

    name: str  # "v000" for the trained model, "v001", ... for edits
    path: Path  # the folder holding model.json + model.safetensors
    parent: str | None  # None for v000
    edit: dict[str, Any] = field(default_factory=dict)  # edit.json (empty for v000)
    stale: bool = False  # made from an older training of this run

    @property
    def number(self) -> int:
        return int(self.name[1:])

    @property
    def label(self) -> str:
        """A one-line description: what changed, or "trained model"."""
        if not self.edit:
            return "trained model (train stage)"
        e = self.edit
        if isinstance(e.get("edits"), list):  # a searched set of edits (dance.explain.edit_search)
            try:
                return f"{len(e['edits'])} searched edits: " + "; ".join(
                    f"W[{x['class']}, {x['concept']}] → {float(x['new_weight']):+.4g}" for x in e["edits"])
            except (KeyError, TypeError, ValueError):
                return "searched edits (edit.json lacks class, concept or weights)"
        try:
            return f"W[{e['class']}, {e['concept']}]: {float(e['old_weight']):+.4g} → {float(e['new_weight']):+.4g}"
        except (KeyError, TypeError, ValueError):
            return "edit (edit.json lacks class, concept or weights)"


def _train_fingerprint(run: Path) -> str:
    manifest = run / "train" / "manifest.json"
    try:
        return str(read_json(manifest).get("fingerprint", ""))
    except (OSError, ValueError):
        return ""


def base_version(run: Path | str) -> Version:
    run = Path(run)
    path = run / "train" / "model"
    if not (path / "model.json").is_file():
        raise ModelError(f"{run} has no trained model ({path}/model.json is missing): run `dance run --run {run}` "
                         "first")
    return Version(BASE, path, None)


def list_versions(run: Path | str) -> list[Version]:
    """Every version of a run, oldest first: v000 (the trained model), then the saved edits."""
    run = Path(run)
    out = [base_version(run)]
    folder = run / EDITS
    if not folder.is_dir():
        return out
    current = _train_fingerprint(run)
    for d in sorted(folder.iterdir(), key=lambda p: (len(p.name), p.name)):
        if not (_NAME.match(d.name) and d.is_dir() and (d / "edit.json").is_file()):
            continue
        try:
            edit = read_json(d / "edit.json")
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(edit, dict):  # a damaged edit.json: not a version (its model is never used)
            continue
        parent = edit.get("parent", BASE)
        stale = bool(current) and edit.get("train_fingerprint") not in (None, current)
        out.append(Version(d.name, d / "model", parent if isinstance(parent, str) else BASE, edit, stale))
    return out


def _normalise_name(name: str) -> str:
    s = name.strip().lower()
    if s in ("base", "train", "trained", "original"):
        return BASE
    if s.startswith("v"):
        s = s[1:]
    if not s.isdigit():
        raise ModelError(f"'{name}' is not a version name: use v000 (the trained model), v001, ... or 'latest'")
    return f"v{int(s):03d}"


def resolve_version(run: Path | str, name: str | None = None) -> Version:
    """A version by name (``v001``, ``1``, ``base``), or the latest non-stale one when ``name`` is None/'latest'."""
    versions = list_versions(run)
    if name is None or name.strip().lower() == "latest":
        fresh = [v for v in versions if not v.stale]
        return fresh[-1]
    wanted = _normalise_name(name)
    for v in versions:
        if v.name == wanted:
            if v.stale:
                raise ModelError(f"version {v.name} was made from an earlier training of this run (the train stage "
                                 "has been rerun since); its weights no longer match the run's features")
            return v
    raise ModelError(f"no version '{name}' in {run}; versions: {', '.join(v.name for v in versions)}")


def load_version(run: Path | str, name: str | None = None) -> tuple[DanceModel, Version]:
    """The model of a version (see :func:`resolve_version`) and its description."""
    v = resolve_version(run, name)
    return load_model(v.path), v


def save_edit(run: Path | str, parent: Version, model: DanceModel, edit: dict[str, Any]) -> Version:
    """Save ``model`` (``parent`` with weights changed) as the next version; ``edit`` describes the change.

    ``edit`` should hold ``class``, ``concept``, ``old_weight``, ``new_weight`` (or ``edits``, a list of such
    records, for a searched set: :mod:`dance.explain.edit_search`) and optionally ``effect``; the
    version name, parent, time, package version and training fingerprint are added here.
    """
    run = Path(run)
    if parent.stale:
        raise ModelError(f"version {parent.name} is stale (the run was retrained): edit a current version instead")
    model_tensors(model)  # a weight that is not finite as float32 (1e300): ModelError before anything is written
    folder = run / EDITS
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".partial-"))
    try:
        save_model(model, tmp / "model")
        number = max((v.number for v in list_versions(run)), default=0) + 1
        while True:
            name = f"v{number:03d}"
            record = {"version": name, "parent": parent.name, **edit,
                      "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "created_unix": time.time(),
                      "package_version": __version__, "train_fingerprint": _train_fingerprint(run)}
            atomic_write_json(tmp / "edit.json", record)
            target = folder / name
            if not target.exists():
                try:
                    os.rename(tmp, target)  # fails when another process took this number first
                    return Version(name, target / "model", parent.name, record)
                except OSError as e:
                    if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            number += 1
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
