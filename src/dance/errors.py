"""Exceptions raised by dance. Every error a user can cause is a :class:`DanceError` with a readable message."""

from __future__ import annotations


class DanceError(Exception):
    """Base class: the CLI prints these as a one-line error, never as a traceback."""


class IndexFormatError(DanceError):
    """A dataset index (csv, class folders, mmaction2 list) is malformed; the message names file and line."""


class VideoDecodeError(DanceError):
    """A video file is missing, empty, corrupt or cannot be decoded."""


class PoseFormatError(DanceError):
    """A pose file or skeleton description is malformed."""


class ConfigError(DanceError):
    """A settings file or override is invalid."""


class StageError(DanceError):
    """A pipeline stage cannot run (missing upstream output, inconsistent inputs)."""


class ModelError(DanceError):
    """A model cannot be fitted, loaded or edited as asked (wrong dimensions, NaNs, unknown concept)."""


class LanguageModelError(DanceError):
    """The language model used for concept discovery is unavailable, misconfigured or keeps failing."""
