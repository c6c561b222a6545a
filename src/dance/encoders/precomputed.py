"""``precomputed``: features computed elsewhere, read from a file keyed by video id.

Two layouts are read (``features.model`` names the file or folder):

* an ``.npz`` file with a str array ``video_ids`` (N,) and a float array ``features`` (N, D) (``embeddings`` is
  accepted as the name of the second array too);
* a folder of ``<video_id>.npy`` files, each a (D,) (or (1, D)) float vector.

A video is looked up by its ``video_id``, then by its file name without extension. Videos that have no row,
a row with NaN / inf, or (folder layout) a vector of another length than the others are *skipped* with the
reason, never a crash. A malformed file (missing arrays, not 2-D, id / row counts that differ, duplicate ids)
is a :class:`~dance.errors.ModelError`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dance.data.index import VideoRecord
from dance.encoders.hf import file_identity
from dance.encoders.registry import register_backbone
from dance.errors import ConfigError, ModelError
from dance.runs import stable_hash

_VALUE_NAMES = ("features", "embeddings")


class KeyedVectors:
    """Vectors of one dimension keyed by strings, from an ``.npz`` (keys + matrix) or a folder of ``.npy``."""

    def __init__(self, path: str | Path, key_name: str = "video_ids", value_names: Sequence[str] = _VALUE_NAMES):
        self.path = Path(path).expanduser()
        self.key_name = key_name
        self._rows: dict[str, int] = {}
        self._matrix: np.ndarray | None = None
        self._files: dict[str, Path] = {}
        if self.path.is_file():
            self._read_npz(value_names)
        elif self.path.is_dir():
            self._read_folder()
        else:
            raise ModelError(f"precomputed vectors not found: {self.path} (an .npz file or a folder of .npy files)")

    def _read_npz(self, value_names: Sequence[str]) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except ValueError as e:
            if "pickle" in str(e).lower():
                raise ModelError(f"{self.path}: arrays must not hold Python objects; save the keys as a str "
                                 f"array, e.g. np.array(ids, dtype=str)") from None
            raise ModelError(f"{self.path}: not a readable .npz file: {e}") from None
        except (OSError, EOFError) as e:
            raise ModelError(f"{self.path}: not a readable .npz file: {e}") from None
        if self.key_name not in arrays:
            raise ModelError(f"{self.path}: no array '{self.key_name}' (it has: {', '.join(arrays) or 'none'})")
        value_name = next((v for v in value_names if v in arrays), None)
        if value_name is None:
            raise ModelError(f"{self.path}: no array named {' or '.join(repr(v) for v in value_names)} "
                             f"(it has: {', '.join(arrays)})")
        keys, values = arrays[self.key_name], arrays[value_name]
        if keys.dtype.kind not in "US" or keys.ndim != 1:
            raise ModelError(f"{self.path}: '{self.key_name}' must be a 1-D str array, got {keys.dtype} {keys.shape}")
        if values.ndim != 2 or values.dtype.kind not in "fiu":
            raise ModelError(f"{self.path}: '{value_name}' must be a 2-D numeric array (N, D), got "
                             f"{values.dtype} {values.shape}")
        if len(keys) != len(values):
            raise ModelError(f"{self.path}: {len(keys)} {self.key_name} but {len(values)} rows of '{value_name}'")
        names = [k.decode() if isinstance(k, bytes) else str(k) for k in keys.tolist()]
        dupes = sorted(k for k, n in Counter(names).items() if n > 1)
        if dupes:
            raise ModelError(f"{self.path}: duplicate {self.key_name}: {', '.join(dupes[:5])}")
        self._rows = {k: i for i, k in enumerate(names)}
        self._matrix = values.astype(np.float32)
        self.dim = int(values.shape[1])

    def _read_folder(self) -> None:
        self._files = {f.stem: f for f in sorted(self.path.glob("*.npy")) if not f.name.startswith(".")}
        if not self._files:
            raise ModelError(f"{self.path}: no .npy files in the folder")
        dims: Counter[int] = Counter()
        for f in self._files.values():
            try:
                shape = np.load(f, mmap_mode="r", allow_pickle=False).shape
            except (ValueError, OSError):
                continue
            if len(shape) == 1 or (len(shape) == 2 and shape[0] == 1):
                dims[int(shape[-1])] += 1
        if not dims:
            raise ModelError(f"{self.path}: no .npy file holds a readable (D,) vector")
        self.dim = dims.most_common(1)[0][0]

    def __len__(self) -> int:
        return len(self._rows) if self._matrix is not None else len(self._files)

    def keys(self) -> list[str]:
        return list(self._rows) if self._matrix is not None else list(self._files)

    def get(self, key: str) -> tuple[np.ndarray | None, str]:
        """``(vector, "")`` or ``(None, reason)`` for a key that is absent or whose vector is unusable."""
        if self._matrix is not None:
            if key not in self._rows:
                return None, f"no entry '{key}' in {self.path}"
            v = self._matrix[self._rows[key]]
        else:
            if key not in self._files:
                return None, f"no file {key}.npy in {self.path}"
            try:
                v = np.load(self._files[key], allow_pickle=False)
            except (ValueError, OSError) as e:
                return None, f"unreadable {self._files[key]}: {e}"
            if v.ndim == 2 and v.shape[0] == 1:
                v = v[0]
            if v.ndim != 1 or v.shape[0] != self.dim or v.dtype.kind not in "fiu":
                return None, f"{self._files[key]} has shape {v.shape} ({v.dtype}), expected ({self.dim},) numbers"
            v = v.astype(np.float32)
        if not np.isfinite(v).all():
            return None, f"NaN/inf in the vector of '{key}' in {self.path}"
        return v, ""

    def identity(self) -> str:
        """Content identity of the file (or of every file of the folder, with its name)."""
        if self._matrix is not None:
            return file_identity(self.path)
        return stable_hash({name: file_identity(f) for name, f in self._files.items()})[:20]


def record_keys(rec: VideoRecord) -> list[str]:
    """Keys a video is looked up by: its id, then its file name without extension."""
    keys = [rec.video_id]
    stem = Path(rec.path).stem
    if stem and stem != rec.video_id:
        keys.append(stem)
    return keys


def lookup_records(vectors: KeyedVectors, records: Sequence[VideoRecord]
                   ) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """``(x (N, D) float32, ok (N,) bool, skipped {video_id: reason})`` of ``records`` in ``vectors``."""
    x = np.zeros((len(records), vectors.dim), dtype=np.float32)
    ok = np.zeros(len(records), dtype=bool)
    skipped: dict[str, str] = {}
    for i, rec in enumerate(records):
        reason = ""
        for key in record_keys(rec):
            v, reason = vectors.get(key)
            if v is not None:
                x[i], ok[i] = v, True
                break
        if not ok[i]:
            skipped[rec.video_id] = reason
    return x, ok, skipped


class PrecomputedBackbone:
    """Features read from a file keyed by video id (see the module docstring); nothing is decoded."""

    name = "precomputed"
    n_frames = 0
    size = 0

    def __init__(self, model: str):
        if not str(model).strip():
            raise ConfigError("backbone 'precomputed' needs features.model=<an .npz file with video_ids and "
                              "features, or a folder of <video_id>.npy files>")
        self.vectors = KeyedVectors(model)
        self.dim = self.vectors.dim
        self._identity: str | None = None

    def fingerprint(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = self.vectors.identity()
        return {"name": self.name, "version": 1, "file": self._identity, "dim": self.dim}

    def lookup(self, records: Sequence[VideoRecord]) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
        """``(features (N, D), ok (N,), skipped {video_id: reason})`` for ``records``."""
        return lookup_records(self.vectors, records)

    def encode(self, videos: list[np.ndarray]) -> np.ndarray:
        raise ModelError("backbone 'precomputed' reads features from a file and cannot encode video frames; "
                         "add the video's features to the file, or use a video backbone")


@register_backbone("precomputed", "features read from a file keyed by video id (features.model: an .npz with "
                                  "video_ids + features, or a folder of <video_id>.npy)", pretrained=True,
                   input="precomputed")
def _make(n_frames: int = 0, size: int = 0, seed: int = 0, device: str = "cpu", model: str = ""
          ) -> PrecomputedBackbone:
    return PrecomputedBackbone(model)
