"""Hugging Face backbones (videomae, clip-frames) and precomputed features, with tiny random models saved to folders.

The tiny models are loaded by path through the same code as a real checkpoint folder (see tests/tiny_models.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dance.config import load_settings
from dance.data.index import VideoRecord
from dance.encoders import hf
from dance.encoders.registry import backbone_entry, make_backbone
from dance.errors import ConfigError, ModelError

pytest.importorskip("transformers")

from tiny_models import IMAGE_SIZE, N_FRAMES, save_tiny_models  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, single_thread) -> dict[str, Path]:
    return save_tiny_models(tmp_path_factory.mktemp("tiny_models"))


def _videos(n: int, frames: int = N_FRAMES, size: int = IMAGE_SIZE, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8) for _ in range(n)]


def _backbone(name: str, model: Path | str, **kw):
    args = dict(n_frames=7, size=99, seed=0, device="cpu", model=str(model)) | kw
    return make_backbone(name, **args)


def _pixels(videos, mean, std) -> torch.Tensor:
    x = torch.from_numpy(np.stack(videos)).permute(0, 1, 4, 2, 3).float() / 255.0
    return (x - torch.tensor(mean).view(1, 1, 3, 1, 1)) / torch.tensor(std).view(1, 1, 3, 1, 1)


# --- videomae


def test_videomae_takes_input_shape_from_the_model(tiny) -> None:
    b = _backbone("videomae", tiny["videomae"])
    assert (b.n_frames, b.size, b.dim) == (N_FRAMES, IMAGE_SIZE, 32)  # the settings' 7 frames / 99 px are ignored
    assert backbone_entry("videomae").input == "video" and backbone_entry("videomae").pretrained


def test_videomae_features_are_mean_pooled_tokens_layer_normalised(tiny) -> None:
    from transformers import VideoMAEModel

    videos = _videos(3)
    b = _backbone("videomae", tiny["videomae"])
    x = b.encode(videos)
    assert x.shape == (3, 32) and x.dtype == np.float32 and np.isfinite(x).all()
    np.testing.assert_allclose(x.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=1), 1.0, atol=1e-3)
    # the same numbers computed by hand from the saved model, with ImageNet statistics
    ref = VideoMAEModel.from_pretrained(str(tiny["videomae"])).eval()
    with torch.no_grad():
        tokens = ref(pixel_values=_pixels(videos, hf.IMAGENET_MEAN, hf.IMAGENET_STD)).last_hidden_state
        want = torch.nn.functional.layer_norm(tokens.mean(1), (32,), eps=1e-6).numpy()
    np.testing.assert_allclose(x, want, rtol=1e-4, atol=1e-4)
    # deterministic, batch-independent, and the same from a fresh instance
    np.testing.assert_array_equal(b.encode(videos), x)
    np.testing.assert_allclose(_backbone("videomae", tiny["videomae"]).encode(videos[1:2])[0], x[1], atol=1e-5)


def test_videomae_fine_tuned_checkpoint_uses_its_fc_norm(tiny) -> None:
    from transformers import VideoMAEForVideoClassification

    videos = _videos(2, seed=1)
    b = _backbone("videomae", tiny["videomae-classifier"])
    assert b.fingerprint()["pooling"].endswith("fc_norm")
    x = b.encode(videos)
    ref = VideoMAEForVideoClassification.from_pretrained(str(tiny["videomae-classifier"])).eval()
    with torch.no_grad():
        tokens = ref.videomae(pixel_values=_pixels(videos, hf.IMAGENET_MEAN, hf.IMAGENET_STD)).last_hidden_state
        want = ref.fc_norm(tokens.mean(1)).numpy()
    np.testing.assert_allclose(x, want, rtol=1e-4, atol=1e-4)


def test_videomae_resamples_frames_and_resizes(tiny) -> None:
    b = _backbone("videomae", tiny["videomae"])
    x = b.encode(_videos(2, frames=9, size=48))
    assert x.shape == (2, 32) and np.isfinite(x).all()


def test_fingerprint_follows_the_weights_not_the_folder_path(tiny, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny["videomae"], copy)
    a, b = _backbone("videomae", tiny["videomae"]), _backbone("videomae", copy)
    assert a.fingerprint() == b.fingerprint()
    other = _backbone("videomae", tiny["videomae-classifier"])
    assert other.fingerprint() != a.fingerprint()


# --- clip-frames


def test_clip_frames_average_unit_frame_embeddings(tiny) -> None:
    from transformers import CLIPVisionModelWithProjection

    b = _backbone("clip-frames", tiny["clip"], n_frames=3)
    assert (b.n_frames, b.size, b.dim) == (3, IMAGE_SIZE, 16)
    videos = _videos(2, frames=3)
    x = b.encode(videos)
    assert x.shape == (2, 16) and np.all(np.linalg.norm(x, axis=1) <= 1 + 1e-5)
    ref = CLIPVisionModelWithProjection.from_pretrained(str(tiny["clip"])).eval()
    with torch.no_grad():
        px = _pixels(videos, hf.CLIP_MEAN, hf.CLIP_STD).reshape(6, 3, IMAGE_SIZE, IMAGE_SIZE)
        emb = torch.nn.functional.normalize(ref(pixel_values=px).image_embeds, dim=-1).reshape(2, 3, 16)
    np.testing.assert_allclose(x, emb.mean(1).numpy(), rtol=1e-4, atol=1e-5)
    still = [np.repeat(v[:1], 3, axis=0) for v in videos]  # one frame repeated: the mean has unit length
    np.testing.assert_allclose(np.linalg.norm(b.encode(still), axis=1), 1.0, atol=1e-5)


# --- errors: where to put the weights


def test_missing_folder_says_where_to_put_the_weights(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such folder") as e:
        _backbone("videomae", tmp_path / "no" / "such" / "model")
    assert "config.json" in str(e.value) and "model.safetensors" in str(e.value)


def test_folder_without_weights_is_a_model_error(tiny, tmp_path: Path) -> None:
    only_config = tmp_path / "only-config"
    only_config.mkdir()
    shutil.copy(tiny["videomae"] / "config.json", only_config / "config.json")
    b = _backbone("videomae", only_config)  # the config is enough to build it; weights load on first use
    with pytest.raises(ModelError, match="has no weights"):
        b.load()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="has no config.json"):
        _backbone("videomae", empty)


def test_hub_name_not_cached_and_offline_is_a_model_error(monkeypatch) -> None:
    monkeypatch.setattr(hf, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelError) as e:
        _backbone("videomae", "dance-tests/no-such-videomae")
    msg = str(e.value)
    assert "huggingface-cli download dance-tests/no-such-videomae" in msg and "local folder" in msg
    assert "Traceback" not in msg


def test_wrong_kind_of_model_is_a_model_error(tiny) -> None:
    with pytest.raises(ModelError, match="holds a 'clip' model"):
        _backbone("videomae", tiny["clip"])


def test_weights_of_another_architecture_are_refused(tiny, tmp_path: Path) -> None:
    """A folder whose config says videomae but whose weights are not VideoMAE's must not load half-random."""
    from safetensors.torch import save_file

    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(tiny["videomae"] / "config.json", bad / "config.json")
    save_file({"something.else": torch.zeros(3)}, str(bad / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelError, match="missing"):
        _backbone("videomae", bad).load()


def test_unavailable_device_is_a_clear_error(tiny) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ModelError, match="CUDA is not available"):
        _backbone("videomae", tiny["videomae"], device="cuda")


# --- precomputed


def _records(*ids: str) -> list[VideoRecord]:
    return [VideoRecord(i, Path(f"/data/{i}.mp4"), "a", "train") for i in ids]


def test_precomputed_npz_skips_missing_and_nan_videos(tmp_path: Path) -> None:
    f = tmp_path / "feats.npz"
    feats = np.arange(15, dtype=np.float32).reshape(3, 5)
    feats[2, 1] = np.nan
    np.savez(f, video_ids=np.array(["v1", "v2", "v3"]), features=feats)
    b = _backbone("precomputed", f)
    assert backbone_entry("precomputed").input == "precomputed" and b.dim == 5
    x, ok, skipped = b.lookup(_records("v2", "v1", "gone", "v3"))
    assert ok.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(x[:2], feats[[1, 0]])
    assert set(skipped) == {"gone", "v3"}
    assert "no entry 'gone'" in skipped["gone"] and "NaN" in skipped["v3"]
    with pytest.raises(ModelError, match="cannot encode"):
        b.encode(_videos(1))


def test_precomputed_bad_files_are_clear_errors(tmp_path: Path) -> None:
    cases = {
        "flat.npz": dict(video_ids=np.array(["a", "b"]), features=np.zeros(4, np.float32)),
        "counts.npz": dict(video_ids=np.array(["a", "b"]), features=np.zeros((3, 4), np.float32)),
        "dupes.npz": dict(video_ids=np.array(["a", "a"]), features=np.zeros((2, 4), np.float32)),
        "nokeys.npz": dict(features=np.zeros((2, 4), np.float32)),
        "objects.npz": dict(video_ids=np.array(["a", None], dtype=object), features=np.zeros((2, 4), np.float32)),
    }
    messages = {"flat.npz": "2-D", "counts.npz": "2 video_ids but 3 rows", "dupes.npz": "duplicate",
                "nokeys.npz": "no array 'video_ids'", "objects.npz": "str array"}
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(ModelError, match=messages[name]):
            _backbone("precomputed", tmp_path / name)
    with pytest.raises(ModelError, match="not found"):
        _backbone("precomputed", tmp_path / "missing.npz")
    with pytest.raises(ConfigError, match="features.model"):
        _backbone("precomputed", "")


def test_precomputed_folder_of_npy_skips_wrong_dimensions(tmp_path: Path) -> None:
    folder = tmp_path / "feats"
    folder.mkdir()
    for i in range(3):
        np.save(folder / f"v{i}.npy", np.full(6, i, dtype=np.float32))
    np.save(folder / "odd.npy", np.zeros(4, dtype=np.float32))
    np.save(folder / "row.npy", np.ones((1, 6), dtype=np.float32))
    b = _backbone("precomputed", folder)
    assert b.dim == 6
    x, ok, skipped = b.lookup(_records("v2", "odd", "row", "v9"))
    assert ok.tolist() == [True, False, True, False]
    np.testing.assert_array_equal(x[0], 2.0)
    assert "shape (4,)" in skipped["odd"] and "v9.npy" in skipped["v9"]


def test_precomputed_fingerprint_follows_the_file(tmp_path: Path) -> None:
    f = tmp_path / "f.npz"
    np.savez(f, video_ids=np.array(["a"]), features=np.zeros((1, 3), np.float32))
    before = _backbone("precomputed", f).fingerprint()
    np.savez(f, video_ids=np.array(["a"]), features=np.ones((1, 3), np.float32))
    assert _backbone("precomputed", f).fingerprint() != before


# --- the features stage


def _features_stage(settings, run_root: Path) -> tuple[dict, dict]:
    import json

    from dance.pipeline import features, index
    from dance.pipeline.runner import Context
    from dance.runs import RunDir

    ctx = Context(settings, RunDir(run_root))
    with ctx.run.writing("index", "i", "i", {}) as w:
        index.run(ctx, w)
    with ctx.run.writing("features", "f", "f", {}) as w:
        info = features.run(ctx, w)
    out = run_root / "features"
    arrays = dict(np.load(out / "features.npz"))
    return info, arrays | {"skipped": json.loads((out / "skipped.json").read_text())}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    from dance.data.synthetic import generate

    out = tmp_path_factory.mktemp("small_synth")
    generate(out, n_videos=16, seed=1, size=48, n_frames=10)
    return out


def test_features_stage_reads_frames_at_the_backbone_shape(tiny, small_data: Path, tmp_path: Path) -> None:
    from dance.data.video import read_video, sample_frames
    from dance.pipeline.artifacts import run_index

    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    settings = load_settings(None, [f"data.path={data / 'annotations.csv'}", "features.backbone=videomae",
                                    f"features.model={tiny['videomae']}", "features.n_frames=3",
                                    "features.size=16", "features.batch_size=5"])
    info, arrays = _features_stage(settings, tmp_path / "run")
    records = run_index(tmp_path / "run" / "index").records
    assert arrays["x"].shape == (16, 32) and arrays["ok"].all() and info["skipped"] == 0
    # the features equal a direct encode of 4 frames at 32 px (the model's input), not the settings' 3 at 16 px
    b = _backbone("videomae", tiny["videomae"])
    direct = b.encode([sample_frames(read_video(records[1].path, size=IMAGE_SIZE), N_FRAMES)])[0]
    np.testing.assert_allclose(arrays["x"][1], direct, atol=1e-4)
    # a corrupt video is skipped with its reason; the others come from the per-video cache
    records[0].path.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    info2, arrays2 = _features_stage(settings, tmp_path / "run")
    assert info2["reused"] == 15 and info2["skipped"] == 1
    assert records[0].video_id in arrays2["skipped"] and not arrays2["ok"][0] and arrays2["ok"][1:].all()
    np.testing.assert_array_equal(arrays2["x"][1:], arrays["x"][1:])


def test_features_stage_with_precomputed_features(small_data: Path, tmp_path: Path) -> None:
    from dance.data.formats import load_index
    from dance.pipeline.artifacts import run_index

    ids = [r.video_id for r in load_index(small_data / "annotations.csv").records]
    f = tmp_path / "pre.npz"
    feats = np.random.default_rng(0).normal(size=(len(ids) - 2, 7)).astype(np.float32)
    np.savez(f, video_ids=np.array(ids[2:]), features=feats)
    settings = load_settings(None, [f"data.path={small_data / 'annotations.csv'}", "features.backbone=precomputed",
                                    f"features.model={f}"])
    info, arrays = _features_stage(settings, tmp_path / "run")
    assert info["skipped"] == 2 and set(arrays["skipped"]) == set(ids[:2])
    order = [r.video_id for r in run_index(tmp_path / "run" / "index").records]
    for row, vid in enumerate(order):
        assert arrays["ok"][row] == (vid in ids[2:])
        if vid in ids[2:]:
            np.testing.assert_array_equal(arrays["x"][row], feats[ids.index(vid) - 2])


def test_random3d_accepts_and_ignores_model() -> None:
    a = make_backbone("random-3dconv", n_frames=4, size=32, seed=0, device="cpu", model="anything")
    b = make_backbone("random-3dconv", n_frames=4, size=32, seed=0, device="cpu")
    assert a.fingerprint() == b.fingerprint()
