"""dance: explainable video action recognition with disentangled motion, object and scene concepts."""

from __future__ import annotations

__version__ = "0.1.0"
