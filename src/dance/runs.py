"""Run directory: one folder per stage, a manifest per stage, atomic writes, and cache decisions.

Layout::

    RUN/
      config.yaml              the settings the last full run used (informational)
      <stage>/manifest.json    written last: stage, fingerprint, settings hash, the settings sections the stage
                               ran with, input fingerprints, version, time
      <stage>/...              the stage's artifacts (arrays as .npz: :func:`save_arrays` / :func:`load_arrays`)

A stage is *done* when ``RUN/<stage>/manifest.json`` exists and its fingerprint equals the fingerprint the
current settings and upstream outputs give. A stage writes into a temporary sibling folder and renames it into
place only after every artifact and the manifest are written, so a stage killed half way leaves nothing that a
later run would trust (stale temporary folders are removed on the next run).

This module is the bottom of the run's layers: it knows files, not datasets or models. Reading a finished run
(its index, features, concepts, skeleton, model versions, each stage's settings) is :mod:`dance.run_view`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dance import __version__
from dance.errors import StageError

if TYPE_CHECKING:
    import numpy as np

MANIFEST = "manifest.json"


def stable_hash(obj: Any) -> str:
    """sha256 of a JSON-serialisable object with sorted keys (settings, fingerprints)."""
    data = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()


def file_hash(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class WriteError(StageError, OSError):
    """A file cannot be written (read-only folder, no permission, disk full).

    Both a :class:`~dance.errors.DanceError` (the CLI prints it as one line) and an ``OSError`` (code that
    catches write failures keeps working); ``errno`` is the underlying error's.
    """

    def __str__(self) -> str:
        return str(self.strerror) if self.strerror else super().__str__()


def _write_error(path: Path, exc: OSError) -> WriteError:
    why = exc.strerror or str(exc)
    hint = ""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = f" (is {path.parent} read-only? make it writable, or copy the run folder and use the copy)"
    err = WriteError(exc.errno or errno.EIO, f"cannot write {path}: {why}{hint}")
    err.filename = str(path)
    return err


def _same_content(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a file holding exactly ``data`` (compared only when the sizes match)."""
    try:
        if path.stat().st_size != len(data):
            return False
        with open(path, "rb") as f:
            return f.read(len(data) + 1) == data
    except (OSError, ValueError):
        return False


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A file that already holds exactly ``data`` is left alone (not even its time stamps change), so writing
    unchanged files into a read-only folder succeeds. A write that fails with an ``OSError`` (permission denied,
    read-only file system, disk full) raises :class:`WriteError` naming the file.
    """
    path = Path(path)
    if _same_content(path, data):
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise _write_error(path, exc) from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Named arrays as one compressed .npz, written atomically (a stage's array artifact)."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz artifact (no pickles), or a StageError saying to rerun the stage that writes it."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise StageError(f"missing artifact {path}: rerun the stage that writes it (or use --force)")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@dataclass(frozen=True)
class Manifest:
    stage: str
    fingerprint: str
    settings_hash: str
    inputs: dict[str, str]
    version: str
    created: float
    seconds: float
    extra: dict[str, Any]
    #: the settings sections the stage ran with ({section: values}); None in manifests written before they were
    #: stored (readers then fall back to RUN/config.yaml, see :class:`dance.run_view.RunView`)
    settings: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "stage": self.stage,
            "fingerprint": self.fingerprint,
            "settings_hash": self.settings_hash,
            "inputs": self.inputs,
            "version": self.version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.created)),
            "created_unix": self.created,
            "seconds": self.seconds,
            "extra": self.extra,
        }
        if self.settings is not None:
            out["settings"] = self.settings
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Manifest:
        return cls(
            stage=d["stage"],
            fingerprint=d["fingerprint"],
            settings_hash=d["settings_hash"],
            inputs=dict(d.get("inputs", {})),
            version=d.get("version", "?"),
            created=float(d.get("created_unix", 0.0)),
            seconds=float(d.get("seconds", 0.0)),
            extra=dict(d.get("extra", {})),
            settings=dict(d["settings"]) if isinstance(d.get("settings"), dict) else None,
        )


def fingerprint(stage: str, settings: Any, inputs: Mapping[str, str]) -> tuple[str, str]:
    """(fingerprint, settings_hash) of a stage from its settings and its inputs' fingerprints."""
    settings_hash = stable_hash(settings)
    fp = stable_hash({"stage": stage, "settings": settings_hash, "inputs": dict(inputs), "version": __version__})
    return fp, settings_hash


class RunDir:
    """A run directory holding one folder per stage."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_error(self.root / "config.yaml", exc) from None
        if not self.root.is_dir():
            raise StageError(f"run folder {self.root} is not a directory")
        self._clean_stale()

    def _clean_stale(self) -> None:
        for p in self.root.glob(".*.partial-*"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def manifest(self, stage: str) -> Manifest | None:
        path = self.stage_dir(stage) / MANIFEST
        if not path.is_file():
            return None
        try:
            return Manifest.from_json(read_json(path))
        except (OSError, ValueError, KeyError):
            return None

    def is_current(self, stage: str, fp: str) -> bool:
        m = self.manifest(stage)
        return m is not None and m.fingerprint == fp

    def require(self, stage: str) -> Path:
        """The folder of a finished stage, or a StageError saying which stage to run first."""
        if self.manifest(stage) is None:
            raise StageError(f"stage '{stage}' has not been run in {self.root}: run `dance {stage}` first")
        return self.stage_dir(stage)

    @contextmanager
    def writing(
        self, stage: str, fp: str, settings_hash: str, inputs: Mapping[str, str],
        settings: Mapping[str, Any] | None = None,
    ) -> Iterator[StageWriter]:
        """Context in which a stage writes its artifacts; committed atomically on success.

        ``settings``: the settings sections the stage runs with (``{section: values}``, the data ``settings_hash``
        is the hash of), stored in the manifest so that a finished run says what each stage ran with.
        """
        try:
            tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{stage}.partial-"))
        except OSError as exc:
            err = _write_error(self.stage_dir(stage), exc)
            raise WriteError(err.errno, f"cannot run stage '{stage}': {err.strerror}") from None
        writer = StageWriter(tmp)
        start = time.time()
        try:
            yield writer
            manifest = Manifest(
                stage=stage,
                fingerprint=fp,
                settings_hash=settings_hash,
                inputs=dict(inputs),
                version=__version__,
                created=time.time(),
                seconds=round(time.time() - start, 3),
                extra=writer.extra,
                settings=None if settings is None else dict(settings),
            )
            atomic_write_json(tmp / MANIFEST, manifest.to_json())
            final = self.stage_dir(stage)
            old = None
            if final.exists():
                old = self.root / f".{stage}.partial-old-{os.getpid()}"
                os.replace(final, old)
            os.replace(tmp, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


class StageWriter:
    """Where a running stage puts its files (a temporary folder until the stage succeeds)."""

    def __init__(self, folder: Path):
        self.dir = folder
        self.extra: dict[str, Any] = {}

    def path(self, name: str) -> Path:
        p = self.dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p
