"""The keyclips, poses and features stages on Ray (``engine.name=ray``, issue 13 item 3): a local Ray instance with
two CPUs writes exactly what the local engine writes, a corrupt video's skip included. Skips when Ray is not installed
(``pip install 'dance-xai[ray]'``; CI installs it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dance.config import load_settings
from dance.data.synthetic import generate
from dance.pipeline import run_pipeline
from dance.pipeline.runner import Context
from dance.runs import RunDir

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'dance-xai[ray]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'dance-xai[ray]')")

STAGES = ["index", "keyclips", "poses"]


@pytest.fixture(scope="module")
def local_ray():  # noqa: ANN201 - one Ray instance for the module (starting one costs seconds)
    import logging

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield
    ray.shutdown()


def _ctx(data: Path, run: Path, *extra: str) -> Context:
    return Context(load_settings(None, [
        f"data.path={data / 'annotations.csv'}", f"poses.path={data / 'poses_gt'}", "spatial.source=none",
        "keyclips.n_clips=2", "keyclips.clip_len=6", *extra]), RunDir(run))


def _artifacts(run: Path) -> tuple[str, str, dict[str, np.ndarray]]:
    with np.load(run / "poses" / "poses.npz") as z:
        poses = {k: z[k] for k in z.files}
    return (run / "keyclips" / "keyclips.json").read_text(), (run / "poses" / "skipped.json").read_text(), poses


@pytest.mark.slow
def test_ray_writes_what_the_local_engine_writes(local_ray, tmp_path: Path) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    generate(data, n_videos=12, seed=5, size=48, n_frames=16)
    (data / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with open(data / "annotations.csv", "a", encoding="utf-8") as f:
        f.write("videos/broken.mp4,bowing,test\n")
    (data / "poses_gt" / "poses" / "v00002.npz").unlink(missing_ok=True)  # a video without poses: a skip

    run_pipeline(_ctx(data, tmp_path / "local", "engine.workers=1"), only=STAGES)
    results = run_pipeline(_ctx(data, tmp_path / "ray", "engine.name=ray", "engine.workers=2"), only=STAGES)
    assert [(r.info["engine"], r.info["workers"]) for r in results[1:]] == [("ray", 2), ("ray", 2)]
    kc_local, skip_local, poses_local = _artifacts(tmp_path / "local")
    kc_ray, skip_ray, poses_ray = _artifacts(tmp_path / "ray")
    assert kc_ray == kc_local and skip_ray == skip_local
    skipped = json.loads(skip_local)
    assert "videos__broken" in skipped and "videos__v00002" in skipped
    assert poses_ray.keys() == poses_local.keys()
    for k in poses_local:
        np.testing.assert_array_equal(poses_ray[k], poses_local[k])
    # the local engine resumes from the entries Ray's driver wrote: nothing left to estimate
    again = run_pipeline(_ctx(data, tmp_path / "ray", "engine.workers=1"), only=["poses"], force=("poses",))
    assert again[-1].info["reused"] == len(json.loads(kc_local)["videos"]) - 1  # all but the pose-less video

    # the features stage: chunks of 3 videos on 2 actors holding the backbone, the same vectors as this process
    # on one torch thread (the actors' count), the corrupt video skipped alike
    feats = ("features.backbone=random-3dconv", "features.n_frames=8", "features.size=32", "features.batch_size=3")
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_pipeline(_ctx(data, tmp_path / "local", "engine.workers=1", *feats), only=["features"])
    finally:
        torch.set_num_threads(previous)
    res = run_pipeline(_ctx(data, tmp_path / "ray", "engine.name=ray", "engine.workers=2", *feats), only=["features"])
    assert (res[-1].info["engine"], res[-1].info["workers"]) == ("ray", 2)
    with np.load(tmp_path / "local" / "features" / "features.npz") as a, \
            np.load(tmp_path / "ray" / "features" / "features.npz") as b:
        np.testing.assert_array_equal(a["x"], b["x"])
        np.testing.assert_array_equal(a["ok"], b["ok"])
    assert (tmp_path / "local" / "features" / "skipped.json").read_text() == \
        (tmp_path / "ray" / "features" / "skipped.json").read_text()


@pytest.mark.slow
def test_ray_video_embeddings_equal_this_process(local_ray, tmp_path: Path) -> None:  # noqa: ANN001
    """The dual encoder's video embeddings (spatial stage) on 2 Ray actors, each building a tiny X-CLIP from
    EmbedWork: the same labels and skips as this process on one torch thread."""
    pytest.importorskip("transformers")
    import torch
    from tiny_models import save_tiny_xclip

    from dance.config import EngineSettings
    from dance.data.index import VideoRecord
    from dance.encoders.dual_encoders import make_dual_encoder
    from dance.pipeline.engine import ChunkMap
    from dance.spatial.dual_labels import DualEncoderLabelSource, EmbedWork

    data = tmp_path / "data"
    generate(data, n_videos=6, seed=2, size=40, n_frames=8)
    (data / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    records = [VideoRecord(p.stem, p, "a", "train") for p in sorted((data / "videos").glob("*.mp4"))]
    model = str(save_tiny_xclip(tmp_path / "xclip"))
    concepts = {"object": ["ball", "dog"], "scene": ["grass field"]}
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the actors' count, for the videos and the concept texts (embedded here) alike
    try:
        enc = make_dual_encoder("xclip", model=model)
        here = DualEncoderLabelSource(enc, concepts, cache_dir=tmp_path / "here", batch_size=2)
        want = here.labels(records)
        chunk_map = ChunkMap(EngineSettings(name="ray", workers=2), EmbedWork("xclip", model=model))
        ray_source = DualEncoderLabelSource(enc, concepts, cache_dir=tmp_path / "ray", batch_size=2,
                                            map_chunks=chunk_map)
        got = ray_source.labels(records)
    finally:
        torch.set_num_threads(previous)
    assert chunk_map.workers == 2 and ray_source.skipped == here.skipped and "broken" in here.skipped
    np.testing.assert_array_equal(got.mask, want.mask)
    for t in ("object", "scene"):
        np.testing.assert_array_equal(got.labels[t], want.labels[t])
