"""A tiny deterministic text encoder for tests: phrases that share a word are similar, others orthogonal."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


class WordEncoder:
    """Bag-of-words embeddings hashed into 256 dims (crc32, so stable across processes), L2-normalised."""

    name = "word-encoder"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for t in texts:
            v = np.zeros(256)
            for w in t.split():
                v[zlib.crc32(w.encode()) % 256] += 1.0
            rows.append(v / max(np.linalg.norm(v), 1e-9))
        return np.array(rows, dtype=np.float32)
