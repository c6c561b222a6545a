"""Dual encoders (xclip, clip, precomputed), Eq. 3 soft labels, and the dual-encoder label source.

Tiny random X-CLIP / CLIP models with a word-level tokenizer are saved to folders (tests/tiny_models.py) and
loaded by path through the same code as real checkpoints.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dance.data.index import VideoRecord
from dance.data.video import write_video
from dance.encoders import hf
from dance.encoders.dual_encoders import list_dual_encoders, make_dual_encoder, soft_labels
from dance.errors import ConfigError, ModelError
from dance.spatial.dual_labels import DualEncoderLabelSource, EmbedWork, make_dual_label_source
from dance.spatial.labels import TYPES

pytest.importorskip("transformers")

from tiny_models import IMAGE_SIZE, N_FRAMES, save_tiny_clip, save_tiny_xclip  # noqa: E402

CONCEPTS = {"object": ["ball", "dog", "bicycle", "zebra"], "scene": ["grass field", "indoor gym"]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, single_thread) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_dual")
    return {"xclip": save_tiny_xclip(root / "xclip"), "clip": save_tiny_clip(root / "clip")}


@pytest.fixture(scope="module")
def videos_dir(tmp_path_factory) -> Path:
    """Five short clean videos and one corrupt .mp4 (random bytes)."""
    out = tmp_path_factory.mktemp("dual_videos")
    rng = np.random.default_rng(0)
    for i in range(5):
        base = rng.integers(0, 256, (1, 40, 40, 3))
        frames = np.clip(base + rng.integers(-20, 20, (7, 40, 40, 3)), 0, 255).astype(np.uint8)
        write_video(out / f"v{i}.mp4", frames, fps=10)
    (out / "broken.mp4").write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    return out


def _records(folder: Path) -> list[VideoRecord]:
    names = ["v0", "v1", "broken", "v2", "v3", "v4"]
    return [VideoRecord(n, folder / f"{n}.mp4", "a", "train") for n in names]


def _videos(n: int, frames: int = N_FRAMES, size: int = IMAGE_SIZE, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8) for _ in range(n)]


def _pixels(videos, mean, std) -> torch.Tensor:
    x = torch.from_numpy(np.stack(videos)).permute(0, 1, 4, 2, 3).float() / 255.0
    return (x - torch.tensor(mean).view(1, 1, 3, 1, 1)) / torch.tensor(std).view(1, 1, 3, 1, 1)


def _unit(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x, dim=-1).numpy()


# --- Eq. 3


def test_soft_labels_are_clipped_cosines_of_normalised_embeddings() -> None:
    v = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    t = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.8, 0.6]], dtype=np.float32)
    want = np.array([[1.0, 0.0, 0.0, 0.8], [0.6, 0.8, 0.0, 0.96]], dtype=np.float32)
    np.testing.assert_allclose(soft_labels(v, t), want, atol=1e-6)
    np.testing.assert_allclose(soft_labels(3 * v, 0.5 * t), want, atol=1e-6)  # scale does not matter
    small = soft_labels(np.array([[1.0, 0.0, 0.0]]), np.array([[0.2, 0.98, 0.0]]))
    np.testing.assert_allclose(small, [[0.2 / np.hypot(0.2, 0.98)]], atol=1e-6)  # not rescaled: CLIP-scale kept
    with pytest.raises(ModelError, match="dimensions"):
        soft_labels(v, np.ones((2, 3)))
    with pytest.raises(ModelError, match="NaN"):
        soft_labels(np.array([[np.nan, 1.0]]), t)


def test_registry_lists_the_dual_encoders() -> None:
    assert {e.name for e in list_dual_encoders()} >= {"xclip", "clip", "precomputed"}
    with pytest.raises(ConfigError, match="unknown dual encoder"):
        make_dual_encoder("nope")


# --- xclip


def test_xclip_video_and_text_embeddings(tiny) -> None:
    from transformers import AutoTokenizer, XCLIPModel

    enc = make_dual_encoder("xclip", model=str(tiny["xclip"]))
    assert (enc.n_frames, enc.size, enc.dim, enc.input) == (N_FRAMES, IMAGE_SIZE, 16, "video")
    assert enc.mean == hf.IMAGENET_MEAN  # read from the folder's preprocessor_config.json
    videos = _videos(3)
    v = enc.encode_videos(videos)
    t = enc.encode_texts(["a ball", "grass field", "zebra"])
    assert v.shape == (3, 16) and t.shape == (3, 16) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    ref = XCLIPModel.from_pretrained(str(tiny["xclip"])).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny["xclip"]))
    with torch.no_grad():
        want_v = ref.get_video_features(pixel_values=_pixels(videos, hf.IMAGENET_MEAN, hf.IMAGENET_STD))
        ids = tok(["a ball", "grass field", "zebra"], padding=True, return_tensors="pt")
        want_t = ref.get_text_features(**ids)
    want_v = getattr(want_v, "pooler_output", want_v)
    want_t = getattr(want_t, "pooler_output", want_t)
    np.testing.assert_allclose(v, _unit(want_v), atol=1e-5)
    np.testing.assert_allclose(t, _unit(want_t), atol=1e-5)
    # deterministic, batch-independent
    np.testing.assert_allclose(enc.encode_videos(videos[2:]), v[2:], atol=1e-5)
    np.testing.assert_allclose(enc.encode_texts(["zebra"]), t[2:], atol=1e-5)
    assert enc.encode_texts([]).shape == (0, 16)


def test_xclip_long_texts_are_truncated_to_the_context(tiny) -> None:
    enc = make_dual_encoder("xclip", model=str(tiny["xclip"]))
    t = enc.encode_texts(["a " * 100 + "dog"])
    assert t.shape == (1, 16) and np.isfinite(t).all()


def test_preprocessor_statistics_change_the_fingerprint(tiny, tmp_path: Path) -> None:
    import json

    copy = tmp_path / "xclip"
    shutil.copytree(tiny["xclip"], copy)
    cfg = json.loads((copy / "preprocessor_config.json").read_text())
    cfg["image_mean"] = [0.5, 0.5, 0.5]
    (copy / "preprocessor_config.json").write_text(json.dumps(cfg))
    a, b = make_dual_encoder("xclip", model=str(tiny["xclip"])), make_dual_encoder("xclip", model=str(copy))
    assert b.mean == (0.5, 0.5, 0.5) and a.fingerprint() != b.fingerprint()


# --- clip


def test_clip_averages_unit_frame_embeddings_then_normalises(tiny) -> None:
    from transformers import AutoTokenizer, CLIPModel

    enc = make_dual_encoder("clip", model=str(tiny["clip"]), n_frames=3)
    assert (enc.n_frames, enc.size, enc.dim) == (3, IMAGE_SIZE, 16) and enc.mean == hf.CLIP_MEAN
    videos = _videos(2, frames=3)
    v = enc.encode_videos(videos)
    ref = CLIPModel.from_pretrained(str(tiny["clip"])).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny["clip"]))
    with torch.no_grad():
        px = _pixels(videos, hf.CLIP_MEAN, hf.CLIP_STD).reshape(6, 3, IMAGE_SIZE, IMAGE_SIZE)
        img = ref.get_image_features(pixel_values=px)
        img = getattr(img, "pooler_output", img)
        frames = torch.nn.functional.normalize(img, dim=-1).reshape(2, 3, 16)
        txt = ref.get_text_features(**tok(["dog", "indoor gym"], padding=True, return_tensors="pt"))
        txt = getattr(txt, "pooler_output", txt)
    np.testing.assert_allclose(v, _unit(frames.mean(1)), atol=1e-5)
    np.testing.assert_allclose(enc.encode_texts(["dog", "indoor gym"]), _unit(txt), atol=1e-5)


# --- errors


def test_missing_tokenizer_is_a_model_error(tiny, tmp_path: Path) -> None:
    copy = tmp_path / "no-tokenizer"
    copy.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny["xclip"] / name, copy / name)
    enc = make_dual_encoder("xclip", model=str(copy))
    with pytest.raises(ModelError, match="tokenizer"):
        enc.encode_texts(["dog"])


def test_dual_encoder_not_cached_offline_says_where_to_put_weights(monkeypatch) -> None:
    monkeypatch.setattr(hf, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelError, match="huggingface-cli download dance-tests/no-such-xclip"):
        make_dual_encoder("xclip", model="dance-tests/no-such-xclip")
    with pytest.raises(ModelError, match="no such folder"):
        make_dual_encoder("xclip", model=str(Path(__file__).parent / "__no_such_model__"))


def test_wrong_kind_of_folder_for_a_dual_encoder(tiny) -> None:
    with pytest.raises(ModelError, match="holds a 'clip' model"):
        make_dual_encoder("xclip", model=str(tiny["clip"]))


# --- precomputed


def _precomputed(tmp_path: Path, ids: list[str], texts: list[str], dim: int = 4, text_dim: int | None = None) -> Path:
    rng = np.random.default_rng(1)
    folder = tmp_path / "pre"
    folder.mkdir(exist_ok=True)
    np.savez(folder / "videos.npz", video_ids=np.array(ids), embeddings=rng.normal(size=(len(ids), dim)))
    np.savez(folder / "texts.npz", texts=np.array(texts), embeddings=rng.normal(size=(len(texts), text_dim or dim)))
    return folder


def test_precomputed_dual_encoder(tmp_path: Path, videos_dir: Path) -> None:
    folder = _precomputed(tmp_path, ["v0", "v1", "v2"], ["ball", "dog", "grass field"])
    enc = make_dual_encoder("precomputed", model=str(folder))
    assert enc.input == "precomputed" and enc.dim == 4
    emb, ok, skipped = enc.lookup(_records(videos_dir)[:4])
    assert ok.tolist() == [True, True, False, True] and set(skipped) == {"broken"}
    np.testing.assert_allclose(np.linalg.norm(emb[ok], axis=1), 1.0, atol=1e-6)
    t = enc.encode_texts(["dog", "ball"])
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-6)
    with pytest.raises(ModelError, match="'zebra'"):
        enc.encode_texts(["dog", "zebra"])
    with pytest.raises(ModelError, match="cannot encode frames"):
        enc.encode_videos(_videos(1))


def test_precomputed_dual_encoder_dimension_mismatch(tmp_path: Path) -> None:
    folder = _precomputed(tmp_path, ["v0"], ["dog"], dim=4, text_dim=5)
    with pytest.raises(ModelError, match="4 dimensions"):
        make_dual_encoder("precomputed", model=str(folder))
    with pytest.raises(ConfigError):
        make_dual_encoder("precomputed")


# --- the label source


class Counting:
    """Wraps a dual encoder, counting the videos it encodes; can fail after some calls or return NaN rows."""

    def __init__(self, inner, fail_after: int | None = None, nan_for: int | None = None):
        self.inner, self.videos, self.calls = inner, 0, 0
        self.fail_after, self.nan_for = fail_after, nan_for
        self.name, self.input, self.n_frames, self.size, self.dim = "counting", "video", inner.n_frames, \
            inner.size, inner.dim

    def fingerprint(self) -> dict:
        return self.inner.fingerprint()

    def encode_texts(self, texts):
        return self.inner.encode_texts(texts)

    def encode_videos(self, videos):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # an interrupted run
        self.calls += 1
        self.videos += len(videos)
        out = self.inner.encode_videos(videos)
        if self.nan_for is not None:
            out[self.nan_for % len(out)] = np.nan
        return out


def test_label_source_gives_eq3_labels_and_skips_a_corrupt_video(tiny, videos_dir: Path, tmp_path: Path) -> None:
    from dance.data.video import read_video, sample_frames

    enc = make_dual_encoder("xclip", model=str(tiny["xclip"]))
    source = DualEncoderLabelSource(enc, CONCEPTS, cache_dir=tmp_path / "cache", batch_size=2)
    records = _records(videos_dir)
    out = source.labels(records)
    assert out.mask.tolist() == [True, True, False, True, True, True]
    assert list(source.skipped) == ["broken"] and "broken.mp4" in source.skipped["broken"]
    assert out.names == CONCEPTS
    for t in TYPES:
        assert out.labels[t].shape == (6, len(CONCEPTS[t])) and out.labels[t].dtype == np.float32
        assert (out.labels[t] >= 0).all() and (out.labels[t] <= 1).all()
        assert (out.labels[t][2] == 0).all()
    # row of v1 = Eq. 3 on its 4 uniformly sampled 32 px frames
    frames = sample_frames(read_video(records[1].path, size=IMAGE_SIZE), N_FRAMES)
    want = soft_labels(enc.encode_videos([frames]), enc.encode_texts(CONCEPTS["object"]))
    np.testing.assert_allclose(out.labels["object"][1], want[0], atol=1e-5)
    # a cached run encodes nothing again and gives the same labels
    counting = Counting(enc)
    again = DualEncoderLabelSource(counting, CONCEPTS, cache_dir=tmp_path / "cache").labels(records)
    assert counting.videos == 0
    for t in TYPES:
        np.testing.assert_array_equal(again.labels[t], out.labels[t])


def test_label_source_resumes_an_interrupted_run(tiny, videos_dir: Path, tmp_path: Path) -> None:
    enc = make_dual_encoder("xclip", model=str(tiny["xclip"]))
    records = _records(videos_dir)
    first = Counting(enc, fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        DualEncoderLabelSource(first, CONCEPTS, cache_dir=tmp_path / "cache", batch_size=2).labels(records)
    assert first.videos == 2
    second = Counting(enc)
    out = DualEncoderLabelSource(second, CONCEPTS, cache_dir=tmp_path / "cache", batch_size=2).labels(records)
    assert second.videos == 3 and out.mask.sum() == 5  # only the 3 videos not cached before the interruption


@pytest.mark.slow
def test_label_source_on_worker_processes_equals_this_process(tiny, videos_dir: Path, tmp_path: Path) -> None:
    """The uncached batches on 2 spawned workers, each building the encoder from EmbedWork (issue 13 item 2): the
    same labels and skip reasons as this process on one torch thread (the workers' count), and their cache entries
    serve this process afterwards."""
    from dance.config import EngineSettings
    from dance.pipeline.engine import ChunkMap

    enc = make_dual_encoder("xclip", model=str(tiny["xclip"]))
    records = _records(videos_dir)
    here = DualEncoderLabelSource(enc, CONCEPTS, cache_dir=tmp_path / "here", batch_size=2)
    want = here.labels(records)
    chunk_map = ChunkMap(EngineSettings(workers=2), EmbedWork("xclip", model=str(tiny["xclip"])))
    pool = DualEncoderLabelSource(enc, CONCEPTS, cache_dir=tmp_path / "pool", batch_size=2, map_chunks=chunk_map)
    got = pool.labels(records)
    assert chunk_map.workers == 2
    assert pool.skipped == here.skipped and list(pool.skipped) == ["broken"]
    np.testing.assert_array_equal(got.mask, want.mask)
    for t in TYPES:
        np.testing.assert_array_equal(got.labels[t], want.labels[t])
    counting = Counting(enc)
    again = DualEncoderLabelSource(counting, CONCEPTS, cache_dir=tmp_path / "pool", batch_size=2).labels(records)
    assert counting.videos == 0 and again.mask.sum() == 5
    with pytest.raises(ConfigError, match="read_frames"):
        DualEncoderLabelSource(enc, CONCEPTS, read_frames=lambda rec: np.zeros((1, 8, 8, 3), np.uint8),
                               map_chunks=chunk_map)


def test_label_source_skips_nan_embeddings(tiny, videos_dir: Path) -> None:
    enc = Counting(make_dual_encoder("xclip", model=str(tiny["xclip"])), nan_for=0)
    source = DualEncoderLabelSource(enc, CONCEPTS, cache_dir=None, batch_size=8)
    out = source.labels(_records(videos_dir))
    assert out.mask.tolist() == [False, True, False, True, True, True]  # v0 is the first row of the one batch
    assert "NaN" in source.skipped["v0"] and "broken" in source.skipped


def test_label_source_with_precomputed_embeddings(tmp_path: Path, videos_dir: Path) -> None:
    texts = CONCEPTS["object"] + CONCEPTS["scene"]
    folder = _precomputed(tmp_path, ["v0", "v1", "v3"], texts)
    source = make_dual_label_source("precomputed", CONCEPTS, model=str(folder))
    out = source.labels(_records(videos_dir))
    assert out.mask.tolist() == [True, True, False, False, True, False]
    assert set(source.skipped) == {"broken", "v2", "v4"}
    enc = source.encoder
    want = soft_labels(enc.lookup(_records(videos_dir)[:1])[0], enc.encode_texts(CONCEPTS["scene"]))
    np.testing.assert_allclose(out.labels["scene"][0], want[0], atol=1e-6)


def test_label_source_fingerprint_and_checks(tiny) -> None:
    enc = make_dual_encoder("xclip", model=str(tiny["xclip"]))
    base = DualEncoderLabelSource(enc, CONCEPTS).fingerprint()
    assert DualEncoderLabelSource(enc, CONCEPTS).fingerprint() == base
    assert DualEncoderLabelSource(enc, {"object": ["dog"], "scene": []}).fingerprint() != base
    assert DualEncoderLabelSource(enc, CONCEPTS, prompt="a photo of {}").fingerprint() != base
    with pytest.raises(ConfigError, match="concept types"):
        DualEncoderLabelSource(enc, {"objects": ["dog"]})
    with pytest.raises(ConfigError, match="duplicate"):
        DualEncoderLabelSource(enc, {"object": ["dog", "dog"]})
    empty = DualEncoderLabelSource(enc, {"object": ["dog"]}).labels([])
    assert empty.labels["object"].shape == (0, 1) and empty.labels["scene"].shape == (0, 0)


def test_cli_backbones_lists_backbones_and_dual_encoders() -> None:
    from typer.testing import CliRunner

    from dance.cli import app

    res = CliRunner().invoke(app, ["backbones"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for name in ("videomae", "clip-frames", "pose-encoder", "xclip", "microsoft/xclip-base-patch32", "precomputed"):
        assert name in res.output
