"""Per-video caches of the keyclips and poses stages (issue 13 item 2): an interrupted stage resumes, redoing only
the videos it had not finished, and ends with the same artifact as an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dance.config import load_settings
from dance.data.synthetic import generate
from dance.pipeline import motion, run_pipeline
from dance.pipeline.runner import Context
from dance.pipeline.stage_cache import VideoStageCache, arrays_checksum
from dance.runs import RunDir

# engine.workers=1: these tests watch the stages' calls in this process (monkeypatch); the pool has its own test
FAST = ["keyclips.n_clips=2", "keyclips.clip_len=6", "engine.workers=1"]
STAGES = ["index", "keyclips", "poses"]
N_VIDEOS = 24


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(out, n_videos=N_VIDEOS, seed=5, size=48, n_frames=16)
    return out


def _ctx(data: Path, run: Path, extra: tuple[str, ...] = ()) -> Context:
    settings = load_settings(None, [f"data.path={data / 'annotations.csv'}", f"poses.path={data / 'poses_gt'}",
                                    f"spatial.path={data / 'context_labels.csv'}", *FAST, *extra])
    # the last engine.workers given wins (a test's extra over FAST's 1)
    return Context(settings, RunDir(run))


def _artifacts(run: Path) -> dict:
    with np.load(run / "poses" / "poses.npz") as z:
        poses = {k: z[k] for k in z.files}
    return {"poses": poses, "keyclips": json.loads((run / "keyclips" / "keyclips.json").read_text()),
            "skipped": json.loads((run / "poses" / "skipped.json").read_text())}


def _same(a: dict, b: dict) -> None:
    assert a["keyclips"] == b["keyclips"] and a["skipped"] == b["skipped"]
    assert a["poses"].keys() == b["poses"].keys()
    for k in a["poses"]:
        assert a["poses"][k].dtype == b["poses"][k].dtype
        np.testing.assert_array_equal(a["poses"][k], b["poses"][k])


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory) -> dict:
    run = tmp_path_factory.mktemp("ref") / "run"
    run_pipeline(_ctx(data, run), only=STAGES)
    return _artifacts(run)


class Counting:
    """The stage's pose source, recording which videos it estimates; raises KeyboardInterrupt (a user's ^C) when
    asked for a video after ``stop_after`` videos."""

    def __init__(self, real, stop_after: int | None = None):  # noqa: ANN001
        self.real, self.stop_after, self.videos = real, stop_after, []
        self.name, self.skeleton = real.name, real.skeleton

    def fingerprint(self) -> str:
        return self.real.fingerprint()

    def sequence(self, rec):  # noqa: ANN001, ANN201
        return self.real.sequence(rec)

    def poses(self, rec, frames):  # noqa: ANN001, ANN201
        if not self.videos or self.videos[-1] != rec.video_id:
            if self.stop_after is not None and len(self.videos) >= self.stop_after:
                raise KeyboardInterrupt
            self.videos.append(rec.video_id)
        return self.real.poses(rec, frames)


def test_interrupted_poses_stage_resumes_with_only_the_uncached_videos(data: Path, reference: dict,
                                                                       tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    run = tmp_path / "run"
    run_pipeline(_ctx(data, run), only=["index", "keyclips"])
    real = motion.pose_source(_ctx(data, run))
    first = Counting(real, stop_after=5)
    monkeypatch.setattr(motion, "pose_source", lambda ctx: first)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(_ctx(data, run), only=["poses"])
    assert len(first.videos) == 5 and not (run / "poses" / "poses.npz").exists()

    second = Counting(real)
    monkeypatch.setattr(motion, "pose_source", lambda ctx: second)
    results = run_pipeline(_ctx(data, run), only=["poses"])
    done = json.loads((run / "keyclips" / "keyclips.json").read_text())["videos"]
    assert set(second.videos) == set(done) - set(first.videos)  # only the videos not cached before ^C
    assert len(second.videos) == len(done) - 5
    assert results[-1].info["reused"] == 5
    _same(_artifacts(run), reference)

    # every video cached now: a forced rerun estimates nothing and writes the same artifact
    third = Counting(real)
    monkeypatch.setattr(motion, "pose_source", lambda ctx: third)
    results = run_pipeline(_ctx(data, run), only=["poses"], force=("poses",))
    assert third.videos == [] and results[-1].info["reused"] == len(done)
    _same(_artifacts(run), reference)


def test_interrupted_keyclips_stage_resumes(data: Path, reference: dict, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    run = tmp_path / "run"
    real = motion.keyframe_input
    seen: list[str] = []
    stop = {"after": 4}

    def counting(path, settings, sequence):  # noqa: ANN001, ANN202
        if stop["after"] is not None and len(seen) >= stop["after"]:
            raise KeyboardInterrupt
        seen.append(Path(path).stem)
        return real(path, settings, sequence)

    monkeypatch.setattr(motion, "keyframe_input", counting)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(_ctx(data, run), only=["index", "keyclips"])
    assert len(seen) == 4
    before = list(seen)
    stop["after"] = None
    seen.clear()
    run_pipeline(_ctx(data, run), only=STAGES)
    assert len(seen) == N_VIDEOS - 4 and not set(seen) & set(before)
    _same(_artifacts(run), reference)


def test_a_tampered_entry_is_recomputed(data: Path, reference: dict, tmp_path: Path, monkeypatch,  # noqa: ANN001
                                        caplog) -> None:  # noqa: ANN001
    run = tmp_path / "run"
    run_pipeline(_ctx(data, run), only=STAGES)
    entries = sorted((run / ".cache" / "poses").glob("*/*.npz"))
    assert len(entries) == len(reference["keyclips"]["videos"])
    with np.load(entries[0]) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["keypoints"] = arrays["keypoints"] + 1.0  # edited values under the old name: checksum mismatch
    np.savez(entries[0], **arrays)
    counting = Counting(motion.pose_source(_ctx(data, run)))
    monkeypatch.setattr(motion, "pose_source", lambda ctx: counting)
    with caplog.at_level("WARNING"):
        run_pipeline(_ctx(data, run), only=["poses"], force=("poses",))
    assert len(counting.videos) == 1 and entries[0].name.startswith(counting.videos[0])
    assert "failed their check" in caplog.text
    _same(_artifacts(run), reference)


def test_cache_entries_round_trip(tmp_path: Path) -> None:
    cache = VideoStageCache(tmp_path / "c", "test")
    arrays = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "s": np.asarray("pixels")}
    cache.save("v1-abc", arrays)
    (name,) = [p.name for p in (tmp_path / "c").iterdir()]
    assert name == f"v1-abc.{arrays_checksum('v1-abc', arrays)}.npz"
    again = VideoStageCache(tmp_path / "c", "test").load("v1-abc")
    assert again is not None and str(again["s"]) == "pixels"
    np.testing.assert_array_equal(again["a"], arrays["a"])
    assert VideoStageCache(tmp_path / "c", "test").load("v2-abc") is None
    assert VideoStageCache(None, "test").load("v1-abc") is None


def test_keyclips_from_poses_are_cached_under_the_pose_source(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    ctx = _ctx(data, run, ("keyclips.signal=poses",))
    first = run_pipeline(ctx, only=["index", "keyclips"])
    assert first[-1].info["signal"] == {"poses": N_VIDEOS} and first[-1].info["reused"] == 0
    kc = json.loads((run / "keyclips" / "keyclips.json").read_text())
    names = [p.name for p in (run / ".cache" / "keyclips").glob("*/*.npz")]
    assert len(names) == N_VIDEOS and all("-poses" in n for n in names)
    again = run_pipeline(ctx, only=["keyclips"], force=("keyclips",))
    assert again[-1].info["reused"] == N_VIDEOS and again[-1].info["signal"] == {"poses": N_VIDEOS}
    assert json.loads((run / "keyclips" / "keyclips.json").read_text()) == kc


def _with_broken_video(data: Path, copy: Path) -> Path:
    """A copy of the data set with one more test video that is no video at all."""
    import shutil

    shutil.copytree(data, copy)
    (copy / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with open(copy / "annotations.csv", "a", encoding="utf-8") as f:
        f.write("videos/broken.mp4,bowing,test\n")
    return copy


def test_worker_processes_write_what_one_process_writes_and_fill_its_cache(data: Path, tmp_path: Path) -> None:
    """engine.workers=2 (two spawned processes): the same keyclips.json, poses.npz and skip reasons as one process,
    a corrupt video skipped with the same reason, and each engine resumes from the other's cache entries."""
    copy = _with_broken_video(data, tmp_path / "data")
    one, two = tmp_path / "one", tmp_path / "two"
    run_pipeline(_ctx(copy, one), only=STAGES)
    results = run_pipeline(_ctx(copy, two, ("engine.workers=2",)), only=STAGES)
    assert [r.info["workers"] for r in results[1:]] == [2, 2]
    ref = _artifacts(one)
    assert "videos__broken" in ref["keyclips"]["skipped"] and "videos__broken" in ref["skipped"]
    _same(_artifacts(two), ref)

    # the pool resumes from entries one process wrote: half the pose entries gone, only those are estimated
    entries = sorted((one / ".cache" / "poses").glob("*/*.npz"))
    for path in entries[::2]:
        path.unlink()
    again = run_pipeline(_ctx(copy, one, ("engine.workers=2",)), only=["poses"], force=("poses",))
    assert again[-1].info["reused"] == len(entries) - len(entries[::2])
    _same(_artifacts(one), ref)


FEATURES = ("features.backbone=random-3dconv", "features.n_frames=8", "features.size=32", "features.batch_size=3")


def _features(run: Path) -> tuple[np.ndarray, np.ndarray, str]:
    with np.load(run / "features" / "features.npz") as z:
        return z["x"], z["ok"], (run / "features" / "skipped.json").read_text()


def test_features_on_worker_processes_equal_one_process(data: Path, tmp_path: Path, single_thread) -> None:  # noqa: ANN001
    """The features stage's chunks (features.batch_size videos per encode call) on 2 spawned workers, each holding
    the backbone: the same vectors (torch on one thread in both) and the same skip of a corrupt video."""
    copy = _with_broken_video(data, tmp_path / "data")
    one, two = tmp_path / "one", tmp_path / "two"
    run_pipeline(_ctx(copy, one, FEATURES), only=["index", "features"])
    results = run_pipeline(_ctx(copy, two, (*FEATURES, "engine.workers=2")), only=["index", "features"])
    assert results[-1].info["workers"] == 2 and results[-1].info["encoded"] == N_VIDEOS
    x1, ok1, skip1 = _features(one)
    x2, ok2, skip2 = _features(two)
    np.testing.assert_array_equal(x1, x2)
    assert (ok1 == ok2).all() and skip1 == skip2 and "videos__broken" in json.loads(skip1)
    # one process reuses every vector the workers cached
    again = run_pipeline(_ctx(copy, two, FEATURES), only=["features"], force=("features",))
    assert again[-1].info["reused"] == N_VIDEOS and again[-1].info["encoded"] == 0
    np.testing.assert_array_equal(_features(two)[0], x1)


def test_worker_count() -> None:
    from dance.pipeline.engine import MIN_ITEMS_FOR_POOL, worker_count

    assert worker_count(1, 100) == 1 and worker_count(3, 100) == 3
    assert worker_count(4, 2) == 2  # never more workers than videos
    assert worker_count(0, MIN_ITEMS_FOR_POOL - 1) == 1  # auto: a few videos stay in this process
    assert 1 <= worker_count(0, 1000) <= 1000


@pytest.mark.parametrize("workers", [1, 3])
def test_videos_are_handed_out_largest_first_to_several_workers(workers: int, monkeypatch) -> None:  # noqa: ANN001
    from dance.config import EngineSettings
    from dance.pipeline import engine
    from dance.progress import Reporter

    handed: list = []
    run_items = engine.run_items

    def record(items, factory, n_workers, **kw):  # noqa: ANN001, ANN202 - run_items, in this process
        handed.extend(items)
        return run_items(items, factory, 1, **kw)

    monkeypatch.setattr(engine, "run_items", record)
    saved: dict = {}
    rows, items, sizes = [4, 7, 9, 12], ["a", "b", "c", "d"], {"a": 10, "b": 300, "c": 10, "d": 50}
    values, skipped, n = engine.run_uncached(EngineSettings(workers=workers), Reporter(), "x", rows, items,
                                             _upper, saved.__setitem__, total=4, done_before=0, size=sizes.get)
    assert handed == (["b", "d", "a", "c"] if workers > 1 else items)  # ties keep index order
    assert values == saved == {4: "A", 7: "B", 9: "C", 12: "D"} and not skipped and n == workers
    assert engine.largest_first([]) == [] and engine.file_size("/no/such/file") == 0


def _upper():  # noqa: ANN202 - a worker factory
    return str.upper


def test_a_dead_worker_process_is_a_stage_error() -> None:
    from dance.errors import StageError
    from dance.pipeline.engine import run_items

    with pytest.raises(StageError, match="a worker process died after 0 of 2 videos"):
        list(run_items([1, 2], _dies, workers=2))


def _dies():  # noqa: ANN202 - a worker factory whose worker kills its process (a crash in native code)
    import os

    return lambda item: os._exit(1)
