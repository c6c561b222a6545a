"""The DANCE pipeline as stages (see ``STAGES`` for the order and what each reads).

``STAGES``, ``STAGE_NAMES``, :func:`run_pipeline` and :func:`check_settings` live in
:mod:`dance.pipeline.stages` and are imported from there on first use: importing one stage's module (a worker
process unpickling the poses stage's worker factory, say) does not import every stage, and with them torch and
scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dance.pipeline.stages import STAGE_NAMES, STAGES, check_settings, run_pipeline

__all__ = ["STAGES", "STAGE_NAMES", "check_settings", "run_pipeline"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from dance.pipeline import stages

        return getattr(stages, name)
    raise AttributeError(f"module 'dance.pipeline' has no attribute {name!r}")
