"""Object and scene concept labels per video, behind a small protocol.

Label sources are registered by name in :data:`LABEL_SOURCES` (``spatial.source``). The spine ships the
*annotations* source: ground-truth object/scene tags of each video (the paper's "CBM with
attributes" path), read from ``context_labels.csv`` (header ``video_id,object,scene``; several names in a cell
are separated by ``;``). The concept vocabulary comes from ``concepts.json`` beside it when present, otherwise
from the names that occur. Labels are 0/1; the dual-encoder source (Eq. 3) gives soft labels with the same shape.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from dance.config import SpatialSettings
from dance.data.index import VideoRecord
from dance.errors import ConfigError, IndexFormatError
from dance.registry import Registry
from dance.runs import file_hash

TYPES = ("object", "scene")
"""The spatial concept types every label source gives (possibly with no concepts)."""
TEXT_TYPES = ("object", "scene", "temporal", "entangled")
"""Every text concept type a dual-encoder source can label: ``temporal`` and ``entangled`` serve the LF-CBM
baselines (:mod:`dance.pipeline.variants`) and are present only when the concept set has them."""


@dataclass
class ContextLabels:
    """Labels of the text concept types for a list of videos: names[type] and labels[type] (N, M).

    ``object`` and ``scene`` are always keys; ``temporal`` / ``entangled`` only when a dual-encoder source
    labelled such concepts."""

    names: dict[str, list[str]]
    labels: dict[str, np.ndarray]
    mask: np.ndarray  # (N,) bool: the video has labels


class LabelSource(Protocol):
    name: str

    def fingerprint(self) -> str: ...

    def labels(self, records: Sequence[VideoRecord]) -> ContextLabels: ...


#: ``spatial.source`` → ``build(spatial settings, data.path) -> LabelSource`` (the dual encoders, which label the
#: language stage's concepts, are built by the spatial stage: :mod:`dance.pipeline.spatial`)
LABEL_SOURCES: Registry[Callable[..., LabelSource]] = Registry("object/scene label source")


class AnnotationLabelSource:
    """Ground-truth object/scene tags from a csv (see the module docstring)."""

    name = "annotations"

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not self.path.is_file():
            raise IndexFormatError(f"object/scene label file not found: {self.path}")

    def fingerprint(self) -> str:
        vocab = self.path.parent / "concepts.json"
        return file_hash(self.path) + (file_hash(vocab) if vocab.is_file() else "")

    def _rows(self) -> dict[str, dict[str, list[str]]]:
        rows: dict[str, dict[str, list[str]]] = {}
        problems: list[str] = []
        with open(self.path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:3]] != ["video_id", "object", "scene"]:
                raise IndexFormatError(f"{self.path}:1: expected the header 'video_id,object,scene', got {header}")
            for line, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) < 3:
                    problems.append(f"{self.path}:{line}: expected 3 columns, got {len(row)}")
                    continue
                vid = row[0].strip()
                if not vid:
                    problems.append(f"{self.path}:{line}: empty video_id")
                elif vid in rows:
                    problems.append(f"{self.path}:{line}: duplicate video_id '{vid}'")
                else:
                    rows[vid] = {t: [n.strip() for n in row[i + 1].split(";") if n.strip()]
                                 for i, t in enumerate(TYPES)}
        if problems:
            raise IndexFormatError("bad object/scene label rows:\n" + "\n".join(problems[:20]))
        return rows

    def _vocab(self, rows: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
        vocab_file = self.path.parent / "concepts.json"
        if vocab_file.is_file():
            d = json.loads(vocab_file.read_text(encoding="utf-8"))
            if all(isinstance(d.get(t), list) for t in TYPES):
                return {t: [str(n) for n in d[t]] for t in TYPES}
        return {t: sorted({n for r in rows.values() for n in r[t]}) for t in TYPES}

    def labels(self, records: Sequence[VideoRecord]) -> ContextLabels:
        rows = self._rows()
        vocab = self._vocab(rows)
        labels = {t: np.zeros((len(records), len(vocab[t])), dtype=np.float32) for t in TYPES}
        mask = np.zeros(len(records), dtype=bool)
        col = {t: {n: j for j, n in enumerate(vocab[t])} for t in TYPES}
        for i, rec in enumerate(records):
            row = rows.get(rec.video_id) or rows.get(Path(rec.path).stem)
            if row is None:
                continue
            mask[i] = True
            for t in TYPES:
                for n in row[t]:
                    if n not in col[t]:
                        raise IndexFormatError(f"{self.path}: {t} '{n}' of video '{rec.video_id}' is not in the "
                                               f"vocabulary of concepts.json")
                    labels[t][i, col[t][n]] = 1.0
        return ContextLabels(vocab, labels, mask)


@LABEL_SOURCES.register("annotations", "ground-truth object/scene tags from context_labels.csv (spatial.path, "
                        "default: beside the dataset's index)")
def _annotations(s: SpatialSettings, data_path: Path | str) -> AnnotationLabelSource:
    path = Path(s.path) if s.path else Path(data_path).parent / "context_labels.csv"
    if not path.is_file():
        raise ConfigError(f"spatial.source=annotations needs a label csv; {path} does not exist (set spatial.path)")
    return AnnotationLabelSource(path)
