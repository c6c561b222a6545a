"""Loading Hugging Face models (VideoMAE, CLIP, X-CLIP) from a local folder or a hub name, offline first.

Every Hugging Face backbone and dual encoder goes through :func:`load_hf` (weights) and :func:`load_hf_config`
(configuration only), so a folder the user names and a hub name follow the same code path:

* ``name_or_path`` is an existing folder → it is read with ``local_files_only=True``; it must hold
  ``config.json`` and the weights (``model.safetensors`` or ``pytorch_model.bin``, possibly sharded).
* otherwise it is a hub name (``MCG-NJU/videomae-base``) → the local hub cache (``~/.cache/huggingface/hub`` or
  ``HF_HOME``) is tried first with ``local_files_only=True``; only when that fails, and the hub answers, is it
  downloaded (skipped when ``HF_HUB_OFFLINE=1``).
* anything else → :class:`~dance.errors.ModelError` saying where to put the weights, never a raw traceback.

Weights are loaded strictly: a checkpoint that leaves some of the model's weights missing (the wrong kind of
model, a truncated file) is an error rather than a silently half-random network. Transformers' load reports,
progress bars and warnings are silenced while loading.

``transformers`` is an optional dependency (``pip install 'dance-xai[hf]'``); it is imported only when a model
is actually loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch

from dance.errors import ConfigError, ModelError

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "frames_to_pixels",
    "is_local",
    "load_hf",
    "load_hf_config",
    "load_hf_tokenizer",
    "normalisation",
    "quiet_transformers",
    "square_size",
    "torch_device",
    "weights_identity",
]

#: ImageNet mean / std (VideoMAE's and X-CLIP's processors on the hub use these).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: OpenAI CLIP's mean / std.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_CONFIG = "config.json"
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_PROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json", "processor_config.json")
_SAMPLE = 1 << 20  # bytes read from each end of a large file for its identity


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelError("Hugging Face models need the 'transformers' package: pip install 'dance-xai[hf]'") from None
    return transformers


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' / huggingface_hub's load reports, progress bars and warnings inside the block."""
    tf = _transformers()
    tf_logging = tf.utils.logging
    verbosity = tf_logging.get_verbosity()
    bars = tf_logging.is_progress_bar_enabled()
    hub_logger = logging.getLogger("huggingface_hub")
    hub_level = hub_logger.level
    tf_logging.set_verbosity_error()
    tf_logging.disable_progress_bar()
    hub_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tf_logging.set_verbosity(verbosity)
        if bars:
            tf_logging.enable_progress_bar()
        hub_logger.setLevel(hub_level)


def is_local(name_or_path: str | os.PathLike[str]) -> bool:
    """True when ``name_or_path`` is an existing folder (read as a local model folder)."""
    return Path(os.path.expanduser(str(name_or_path))).is_dir()


def _looks_like_path(name: str) -> bool:
    """A name that cannot be a hub id (``org/name``): absolute, relative with dots, home, or deeper than 2."""
    if name.startswith(("/", "./", "../", "~")) or "\\" in name or name.count("/") > 1:
        return True
    return "/" not in name and os.path.splitext(name)[1] != ""  # "weights.bin", "model.npz"


def _hub_offline() -> bool:
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub endpoint accepts a TCP connection (so an online attempt will not spend ~25 s retrying)."""
    if _hub_offline():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _where_hint(name_or_path: str) -> str:
    name = str(name_or_path)
    hub = "" if _looks_like_path(name) else (
        f" Or, on a machine with network access, run `huggingface-cli download {name}` (or `hf download {name}`) "
        "and copy its hub cache (~/.cache/huggingface/hub, or $HF_HOME/hub) to this machine.")
    return ("Put the weights in a local folder holding config.json and model.safetensors (or pytorch_model.bin), "
            "plus the tokenizer / preprocessor files for dual encoders, and pass that folder instead of the hub "
            "name." + hub)


def _check_folder(folder: Path, need_weights: bool) -> None:
    if not (folder / _CONFIG).is_file():
        raise ModelError(f"model folder {folder} has no {_CONFIG}. {_where_hint(str(folder))}")
    if need_weights and not any((folder / w).is_file() for w in _WEIGHTS):
        raise ModelError(f"model folder {folder} has no weights ({' / '.join(_WEIGHTS[::2])}). "
                         f"{_where_hint(str(folder))}")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:300] + "…") if len(text) > 300 else text


def _from_pretrained(cls: Any, name_or_path: str | os.PathLike[str], need_weights: bool, what: str,
                     **kwargs: Any) -> Any:
    """``cls.from_pretrained`` for a local folder or a hub name (cache first, then online); errors → ModelError."""
    _transformers()
    name = str(name_or_path)
    if not name.strip():
        raise ConfigError(f"no model given for {what}")
    label = f"{what} from '{name}'"
    if is_local(name):
        folder = Path(os.path.expanduser(name))
        _check_folder(folder, need_weights)
        try:
            with quiet_transformers():
                return cls.from_pretrained(str(folder), local_files_only=True, **kwargs)
        except ModelError:
            raise
        except Exception as e:  # noqa: BLE001 - transformers raises OSError, ValueError, RuntimeError, KeyError...
            raise ModelError(f"cannot load {label}: {_one_line(e)}") from None
    if _looks_like_path(name):
        raise ModelError(f"cannot load {label}: no such folder. {_where_hint(name)}")
    try:
        with quiet_transformers():
            return cls.from_pretrained(name, local_files_only=True, **kwargs)
    except OSError:
        pass  # not in the hub cache: try the hub itself below
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"cannot load {label} from the hub cache: {_one_line(e)}") from None
    if not _hub_reachable():
        why = "offline mode is set (HF_HUB_OFFLINE)" if _hub_offline() else "the hub cannot be reached"
        raise ModelError(f"cannot load {label}: it is not in the local hub cache and {why}. {_where_hint(name)}")
    try:
        with quiet_transformers():
            return cls.from_pretrained(name, **kwargs)
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"cannot load {label}: {_one_line(e)}. {_where_hint(name)}") from None


def load_hf_config(name_or_path: str | os.PathLike[str], model_types: Sequence[str] = (), what: str = "model") -> Any:
    """The model's configuration (``AutoConfig``), without its weights; checks ``model_type`` when given."""
    tf = _transformers()
    config = _from_pretrained(tf.AutoConfig, name_or_path, need_weights=False, what=f"{what} config")
    if model_types and getattr(config, "model_type", None) not in model_types:
        raise ModelError(f"'{name_or_path}' holds a '{getattr(config, 'model_type', '?')}' model; {what} needs "
                         f"one of: {', '.join(model_types)}")
    return config


_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "tokenizer.model", "spiece.model",
                    "sentencepiece.bpe.model")


def load_hf_tokenizer(name_or_path: str | os.PathLike[str], what: str = "tokenizer") -> Any:
    """``AutoTokenizer`` from the same folder / hub name as the model.

    A folder without tokenizer files is an error (transformers would silently build an empty tokenizer).
    """
    tf = _transformers()
    name = str(name_or_path)
    if is_local(name):
        folder = Path(os.path.expanduser(name))
        if not any((folder / f).is_file() for f in _TOKENIZER_FILES):
            raise ModelError(f"model folder {folder} has no tokenizer files ({', '.join(_TOKENIZER_FILES[:3])}, "
                             f"...); save the tokenizer beside the weights (tokenizer.save_pretrained(folder))")
    tokenizer = _from_pretrained(tf.AutoTokenizer, name, need_weights=False, what=what)
    if len(tokenizer) <= len(set(tokenizer.all_special_tokens)):
        raise ModelError(f"the {what} of '{name}' has an empty vocabulary; its tokenizer files are missing")
    return tokenizer


def torch_device(device: str | torch.device) -> torch.device:
    """A validated torch device; an unavailable accelerator is a :class:`ModelError`, a bad name a ConfigError."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"invalid device '{device}': {_one_line(e)}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device '{device}' was asked for but CUDA is not available here (use device=cpu)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ModelError(f"device '{device}' was asked for but MPS is not available here (use device=cpu)")
    return dev


def load_hf(cls: Any, name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu",
            what: str = "model", **kwargs: Any) -> Any:
    """Load a transformers model class from a local folder or hub name, frozen in eval mode on ``device``.

    ``cls`` is a transformers model class (``VideoMAEModel``, ``CLIPModel``...). A checkpoint of a bigger model
    (e.g. a classifier, or a CLIPModel for ``CLIPVisionModelWithProjection``) is fine: unused weights are
    ignored. Weights of ``cls`` that the checkpoint lacks raise a :class:`ModelError` naming a few of them.
    """
    dev = torch_device(device)
    model, info = _from_pretrained(cls, name_or_path, need_weights=True, what=what, output_loading_info=True,
                                   **kwargs)
    missing = sorted((info or {}).get("missing_keys") or [])
    if missing:
        raise ModelError(f"'{name_or_path}' is not a checkpoint of {cls.__name__} ({what}): {len(missing)} weights "
                         f"are missing, e.g. {', '.join(missing[:3])}")
    model = model.to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _local_file(name_or_path: str, filename: str) -> Path | None:
    """A file of the model folder, or of the model's snapshot in the hub cache (never downloads)."""
    if is_local(name_or_path):
        f = Path(os.path.expanduser(name_or_path)) / filename
        return f if f.is_file() else None
    if _looks_like_path(name_or_path):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        hit = try_to_load_from_cache(name_or_path, filename)
    except Exception:  # noqa: BLE001 - an invalid repo id
        return None
    return Path(hit) if isinstance(hit, str) else None


def normalisation(name_or_path: str, default_mean: Sequence[float], default_std: Sequence[float]
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` from the folder's preprocessor config when it has one, else the given defaults."""
    for fname in _PROCESSOR_FILES:
        f = _local_file(str(name_or_path), fname)
        if f is None:
            continue
        try:
            d = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for sub in (d, d.get("image_processor") or {}, d.get("video_processor") or {}):
            mean, std = sub.get("image_mean"), sub.get("image_std")
            if isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == 3:
                return tuple(float(v) for v in mean), tuple(float(v) for v in std)
    return tuple(default_mean), tuple(default_std)


def square_size(value: Any, what: str) -> int:
    """A config's ``image_size`` (int, or a square pair) as one int."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ModelError(f"{what}: only square inputs are supported, config image_size is {value}")
        value = value[0]
    return int(value)


def frames_to_pixels(videos: Sequence[np.ndarray], n_frames: int, size: int, mean: Sequence[float],
                     std: Sequence[float], device: torch.device) -> torch.Tensor:
    """(B, T, 3, size, size) float pixel values from B uint8 RGB videos (T', H, W, 3).

    Each video is resampled to ``n_frames`` frames spread uniformly (when it has another count), resized to
    ``size`` × ``size`` (bilinear with antialiasing, when it has another size; no crop: callers read frames
    already resized to a square), scaled to [0, 1] and normalised with ``mean`` / ``std`` per channel.
    """
    out = []
    for v in videos:
        arr = np.asarray(v)
        if arr.ndim != 4 or arr.shape[-1] != 3 or len(arr) == 0:
            raise ModelError(f"expected a video of shape (T, H, W, 3), got {arr.shape}")
        if len(arr) != n_frames:
            arr = arr[np.round(np.linspace(0, len(arr) - 1, n_frames)).astype(np.int64)]
        x = torch.from_numpy(np.ascontiguousarray(arr)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (size, size):
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                                antialias=True)
        out.append(x)
    x = torch.stack(out)
    m = torch.tensor(mean, dtype=x.dtype, device=device).view(1, 1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=device).view(1, 1, 3, 1, 1)
    return (x - m) / s


def file_identity(path: Path) -> str:
    """sha256 of a file's size and bytes; for files over 4 MiB only the first and last MiB are read."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        if size <= 4 * _SAMPLE:
            h.update(f.read())
        else:
            h.update(f.read(_SAMPLE))
            f.seek(size - _SAMPLE)
            h.update(f.read(_SAMPLE))
    return h.hexdigest()[:20]


def weights_identity(name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """What identifies a model's files, for cache keys: content of a local folder, or the hub snapshot revision.

    A local folder is identified by its top-level files (config, weights, tokenizer, preprocessor) through
    :func:`file_identity`, not by its path, so a copied folder keeps its caches. A hub model is identified by
    its name and the commit of the cached snapshot.
    """
    name = str(name_or_path)
    if is_local(name):
        folder = Path(os.path.expanduser(name))
        files = {f.name: file_identity(f) for f in sorted(folder.iterdir())
                 if f.is_file() and not f.name.startswith(".") and f.suffix in (".json", ".safetensors", ".bin",
                                                                                  ".txt", ".model")}
        return {"source": "folder", "files": files}
    cfg = _local_file(name, _CONFIG)
    revision = cfg.parent.name if cfg is not None else "unknown"
    return {"source": "hub", "name": name, "revision": revision}
