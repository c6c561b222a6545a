"""Videos a stage skipped, grouped by reason: the stages' console lines and ``summary.json``'s ``skipped``.

The stages keep what they skipped as ``{video id: message}`` (``keyclips/keyclips.json`` → ``skipped``,
``poses/skipped.json``, ``features/skipped.json``, ``spatial/skipped.json``); the message names the file and what
is wrong with it. :func:`skip_reason` maps a message to a short reason (``truncated video``, ``no pose file``,
``undecodable video``, ...) so that :func:`group` can list ``{reason: [video ids]}`` and :func:`skip_line` can
print one line per stage, and :func:`gather` collects every stage's skips of a run for ``summary.json``.

What a skip means for the run (see the README, *Datasets*):

* ``keyclips`` / ``poses`` (truncated or undecodable video, no pose file, unreadable pose file): the video has
  no key clips or no poses, hence **no motion-concept label**: it is left out of the motion concept layer's
  training (its label mask is off) but still classified from its backbone features like any other video.
* ``features`` (truncated or undecodable video, non-finite features): the video has **no features** and is
  left out of training, validation and the test accuracy altogether.
* ``spatial`` (a dual encoder could not read the video): no object / scene labels; left out of those concept
  layers' training.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from rich.markup import escape

from dance.runs import read_json

__all__ = ["STAGE_FILES", "gather", "group", "read_stage_skips", "reason_counts", "skip_line", "skip_reason"]

#: Where each stage keeps its skipped videos (a ``{video id: message}`` dict; for keyclips under ``skipped``).
STAGE_FILES: dict[str, tuple[str, str | None]] = {
    "keyclips": ("keyclips.json", "skipped"),
    "poses": ("skipped.json", None),
    "spatial": ("skipped.json", None),
    "features": ("skipped.json", None),
}

_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reason)
    for pattern, reason in (
        (r"^truncated video", "truncated video"),
        (r"pose file not found|label file not found", "no pose file"),
        (r"video file not found|frame folder not found|video path is not a file|not a frame folder",
         "missing video file"),
        (r"video file is empty|frame folder has no image files", "empty video file"),
        (r"cannot open video|no decodable frames|cannot decode the first frame|cannot read video metadata|"
         r"cannot read the first frame|no video stream|video has no frames|but the first frame is",
         "undecodable video"),
        (r"no person in any frame|MediaPipe Pose failed", "no person detected"),
        (r"NaN/inf|NaN or inf", "non-finite features"),
        (r"not a pose file|keypoints must have shape|skeleton\.json names|scores shape|not a readable MATLAB|"
         r"missing field|empty sequence|'visibility'|is not numeric",
         "unreadable pose file"),
        (r"^no frames$", "no frames"),
    )
)
_PATHISH = re.compile(r"\S*[/\\]\S*")


def skip_reason(message: str) -> str:
    """The short reason of a stage's skip message (``"truncated video"``, ``"no pose file"``, ...); a message no
    rule knows gives ``"other: <the message without its paths>"`` (at most 80 characters)."""
    text = " ".join(str(message).split())
    for pattern, reason in _REASONS:
        if pattern.search(text):
            return reason
    short = _PATHISH.sub("…", text).strip() or "unknown"
    return "other: " + (short if len(short) <= 80 else short[:79] + "…")


def group(skipped: Mapping[str, str]) -> dict[str, list[str]]:
    """``{reason: [video ids]}`` of a ``{video id: message}`` dict (reasons and ids in first-seen order)."""
    out: dict[str, list[str]] = {}
    for vid, message in skipped.items():
        ids = out.setdefault(skip_reason(message), [])
        if vid not in ids:
            ids.append(vid)
    return out


def reason_counts(skipped: Mapping[str, str]) -> dict[str, int]:
    """``{reason: number of videos}`` of a ``{video id: message}`` dict (for a stage's manifest)."""
    return {reason: len(ids) for reason, ids in group(skipped).items()}


def skip_line(skipped: Mapping[str, str], what: str = "skipped", where: str = "", shown: int = 3) -> str | None:
    """One console line listing the skipped videos by reason (``None`` when nothing was skipped):
    ``skipped 3 videos: truncated video (2: a, b), no pose file (1: c) (details: keyclips/keyclips.json)``."""
    if not skipped:
        return None
    parts = []
    for reason, ids in group(skipped).items():
        listed = ", ".join(ids[:shown]) + (f", … {len(ids) - shown} more" if len(ids) > shown else "")
        parts.append(f"{reason} ({len(ids)}: {listed})")
    n = len(skipped)
    details = f" (details: {where})" if where else ""
    text = escape(", ".join(parts) + details)  # ids and messages are data, not rich markup
    return f"  [yellow]{escape(what)} {n} video{'s' if n != 1 else ''}[/yellow]: {text}"


def read_stage_skips(run_root: Path, stage: str) -> dict[str, str]:
    """The ``{video id: message}`` a finished stage of the run skipped (``{}`` when it skipped nothing, has not
    run, or its file is unreadable)."""
    name, key = STAGE_FILES[stage]
    path = Path(run_root) / stage / name
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}
    if key is not None:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items()}


def gather(run_root: Path) -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]]]:
    """Every video a stage of the run skipped: ``({reason: [ids]}, {stage: {reason: [ids]}})``, ids sorted.

    A video skipped by several stages for the same reason (a truncated video: keyclips, features, spatial) is
    listed once under that reason; one skipped for different reasons is listed under each.
    """
    merged: dict[str, set[str]] = {}
    by_stage: dict[str, dict[str, list[str]]] = {}
    for stage in STAGE_FILES:
        grouped = group(read_stage_skips(run_root, stage))
        if grouped:
            by_stage[stage] = {reason: sorted(ids) for reason, ids in grouped.items()}
        for reason, ids in grouped.items():
            merged.setdefault(reason, set()).update(ids)
    return {reason: sorted(ids) for reason, ids in merged.items()}, by_stage
