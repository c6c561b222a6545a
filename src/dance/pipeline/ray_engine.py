"""The per-video stages on a Ray cluster (``engine.name=ray``; ``pip install 'dance-xai[ray]'``).

Ray Data maps the stage's items over a pool of actors, each of which calls the stage's worker factory once (so it
holds the model once) and then its worker on one video at a time; the driver — this process — reads the outcomes
as they come back and writes the stage's cache and artifact itself, exactly as with the local engine
(:mod:`dance.pipeline.engine`). What travels are the items (video records and key-clip windows: paths, never
decoded frames; the actor decodes) and the results (poses, key clips), each pickled into one binary column, so no
Python object has to become an Arrow type.

``engine.ray_address`` empty: a Ray instance is started on this machine (``num_cpus`` = the workers) at the first
stage that needs it and kept for the later ones (Ray shuts it down when the process exits); otherwise
``ray.init(address=...)`` joins that cluster ("auto", or "ray://host:10001"), whose nodes must have the same
``dance`` installed and see the same video paths. Starting Ray costs seconds, so it pays on large datasets only.
"""

from __future__ import annotations

import logging
import pickle
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from dance.errors import StageError

__all__ = ["ray_outcomes"]


class _Actor:
    """A Ray Data actor: the stage's worker, built once, applied to each row of a batch."""

    def __init__(self, factory: bytes, skips: bytes):
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(1)
        self.worker: Callable[[Any], Any] = pickle.loads(factory)()
        self.skips: tuple[type[Exception], ...] = pickle.loads(skips)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        out: dict[str, list] = {"position": [], "value": [], "skip": []}
        for position, item in zip(batch["position"], batch["item"]):
            try:
                value, skip = pickle.dumps(self.worker(pickle.loads(item))), ""
            except self.skips as e:
                value, skip = b"", str(e) or type(e).__name__
            out["position"].append(int(position))
            out["value"].append(value)
            out["skip"].append(skip)
        return out


def ray_outcomes(items: Sequence[Any], factory: Callable[[], Callable[[Any], Any]], workers: int,
                 skips: tuple[type[Exception], ...], address: str = "") -> Iterator[tuple[int, Any, str | None]]:
    """``(position, value, skip reason or None)`` of every item, as Ray returns them
    (:func:`dance.pipeline.engine.run_items` makes them :class:`~dance.pipeline.engine.Outcome`)."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise StageError("engine.name=ray needs Ray: pip install 'dance-xai[ray]'") from None
    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
        except Exception as e:  # noqa: BLE001 - Ray raises several kinds (connection, permission, timeouts)
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise StageError(f"cannot start {where}: {type(e).__name__}: {e}") from None
    finished = 0
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the stage's own bar counts the videos
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no execution-plan lines among the stage's
        rows = [{"position": i, "item": pickle.dumps(item)} for i, item in enumerate(items)]
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 4 * workers)))
        mapped = ds.map_batches(_Actor, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
                                fn_constructor_kwargs={"factory": pickle.dumps(factory),
                                                       "skips": pickle.dumps(skips)})
        for row in mapped.iter_rows():
            finished += 1
            skip = str(row["skip"])
            yield int(row["position"]), None if skip else pickle.loads(row["value"]), skip or None
    except Exception as e:  # noqa: BLE001 - a failed actor or task surfaces as one of Ray's exception types
        raise StageError(f"the Ray job stopped after {finished} of {len(items)} videos (finished ones are "
                         f"cached): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
