"""Stages ``keyclips``, ``poses`` and ``motion``: from videos to motion dynamics concepts and labels.

``keyclips`` and ``poses`` keep a per-video cache under ``RUN/.cache/`` (:mod:`dance.pipeline.stage_cache`): an
interrupted stage run again redoes only the videos it had not finished, and a grown dataset only its new videos.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dance.config import KeyclipSettings, PoseSettings
from dance.data.index import VideoRecord
from dance.errors import PoseFormatError, StageError, VideoDecodeError
from dance.motion.clips import (
    KeyClips,
    clip_status,
    clip_vectors,
    filter_settings,
    key_clip_poses,
    keyframe_input,
)
from dance.motion.discovery import assignment_tensor, discover, nearest_centroid, video_labels
from dance.motion.keyframes import uses_pixels
from dance.motion.poses import PoseSequence, PoseSource, Skeleton, pose_source_for
from dance.motion.sequences import OK
from dance.pipeline.artifacts import load_arrays, run_index, save_arrays
from dance.pipeline.engine import file_size, run_uncached
from dance.pipeline.runner import Context
from dance.pipeline.skipped import reason_counts, skip_line
from dance.pipeline.stage_cache import VideoStageCache
from dance.runs import StageWriter, atomic_write_json, read_json, stable_hash

# ---------------------------------------------------------------------------------------------- keyclips


#: What the keyclips stage's per-video cache entries were computed with besides the settings: the frames
#: keyframes are found in (grey, scaled by the decoder: dance.data.video). Changing how they are decoded changes
#: this, so entries of the old reader are not reused.
KEYFRAME_READER = "swscale-bilinear-grey-1"


def keyclips_cache(ctx: Context) -> VideoStageCache:
    """The keyclips stage's per-video cache (:mod:`dance.pipeline.stage_cache`): ``RUN/.cache/keyclips/<hash of
    the keyclips settings and the frame reader>``; a video whose keyframes come from poses adds the pose source's
    fingerprint to its entry's key."""
    folder = ctx.run.root / ".cache" / "keyclips" / stable_hash(
        {"keyclips": ctx.settings.keyclips.model_dump(), "reader": KEYFRAME_READER})[:16]
    return VideoStageCache(folder, "keyclips")


@dataclass(frozen=True)
class KeyclipWork:
    """The keyclips stage's worker factory (:mod:`dance.pipeline.engine`): a video record → its key clips and the
    signal they were found in (``keyclips.signal``; pose motion reads the video's pose file)."""

    keyclips: KeyclipSettings
    poses: PoseSettings
    data_path: str

    def __call__(self) -> Callable[[VideoRecord], dict[str, np.ndarray]]:
        source: PoseSource | None = None

        def sequence(rec: VideoRecord) -> PoseSequence:
            nonlocal source
            source = source or pose_source_for(self.poses, self.data_path)
            if not hasattr(source, "sequence"):
                raise StageError(f"keyclips.signal=poses needs a pose source that reads files, not '{source.name}'")
            return source.sequence(rec)

        return lambda rec: video_key_clips(rec, self.keyclips, sequence)


def video_key_clips(rec: VideoRecord, s: KeyclipSettings, sequence: Callable[[VideoRecord], PoseSequence]
                    ) -> dict[str, np.ndarray]:
    """One video's key clips as its cache entry stores them; a video without frames is a skip
    (:class:`~dance.errors.VideoDecodeError`, as one that cannot be decoded)."""
    given = keyframe_input(rec.path, s, lambda: sequence(rec))
    if given.n_frames == 0:
        raise VideoDecodeError("no frames")
    clips = given.key_clips(s)
    return {"n_frames": np.int64(clips.n_frames), "keyframes": clips.keyframes.astype(np.int64),
            "centres": clips.centres.astype(np.int64), "signal": np.asarray(given.signal)}


def run_keyclips(ctx: Context, out: StageWriter) -> dict:
    """Key clips of every video (:func:`video_key_clips`), the videos not in the per-video cache spread over
    ``engine.workers`` processes; a video that cannot be decoded (or whose pose file cannot be read, for
    ``keyclips.signal=poses``) is skipped with the reason."""
    s = ctx.settings.keyclips
    index = run_index(ctx.stage_dir("index"))
    cache = keyclips_cache(ctx)
    work = KeyclipWork(s, ctx.settings.poses, ctx.settings.data.path)
    pose_detail = ""

    def detail(rec) -> str:  # noqa: ANN001 - what the video's entry depends on besides the settings
        nonlocal pose_detail
        if uses_pixels(s.signal, rec.path):
            return ""
        if not pose_detail:  # once: a file source's fingerprint stats every pose file
            pose_detail = "poses" + stable_hash(pose_source(ctx).fingerprint())[:8]
        return pose_detail

    keys = [cache.key(rec, detail(rec)) for rec in index.records]
    entries: dict[int, dict[str, np.ndarray]] = {}
    for i, key in enumerate(keys):
        hit = cache.load(key)
        if hit is not None:
            entries[i] = hit
    reused = len(entries)
    todo = [i for i in range(len(index.records)) if i not in entries]
    engine = ctx.settings.engine
    found, failed, n_workers = run_uncached(
        engine, ctx.reporter, "keyframes", todo, [index.records[i] for i in todo], work,
        lambda i, entry: cache.save(keys[i], entry), len(index.records), reused,
        skips=(VideoDecodeError, PoseFormatError), size=lambda rec: file_size(rec.path))
    entries |= found
    skipped = {index.records[i].video_id: failed[i] for i in sorted(failed)}  # index order
    cache.report()
    videos = {index.records[i].video_id: {"n_frames": int(e["n_frames"]), "keyframes": e["keyframes"].tolist(),
                                          "centres": e["centres"].tolist()} for i, e in sorted(entries.items())}
    signals = Counter(str(entries[i]["signal"]) for i in sorted(entries))
    atomic_write_json(out.path("keyclips.json"), {"n_clips": s.n_clips, "clip_len": s.clip_len,
                                                  "videos": videos, "skipped": skipped})
    line = skip_line(skipped, where="keyclips/keyclips.json")
    if line:
        ctx.reporter.info(line)
    if reused:
        ctx.reporter.info(f"  {reused} of {len(index.records)} videos' key clips reused from {cache.folder}")
    return {"videos": len(videos), "skipped": len(skipped), "skipped_by_reason": reason_counts(skipped),
            "signal": dict(signals), "clips": int(sum(len(v["centres"]) for v in videos.values())),
            "reused": reused, "workers": n_workers, "engine": engine.name}


# ---------------------------------------------------------------------------------------------- poses


def pose_source(ctx: Context) -> PoseSource:
    """The configured pose source (:func:`dance.motion.poses.pose_source_for`)."""
    return pose_source_for(ctx.settings.poses, ctx.settings.data.path)


def poses_external(ctx: Context) -> dict[str, str]:
    return {"pose_source": pose_source(ctx).fingerprint()}


def poses_cache(ctx: Context, source: PoseSource, clip_len: int) -> VideoStageCache:
    """The poses stage's per-video cache (:mod:`dance.pipeline.stage_cache`): ``RUN/.cache/poses/<hash of the pose
    source's fingerprint and the clip length>``; each entry's key adds a hash of the video's key-clip windows."""
    folder = ctx.run.root / ".cache" / "poses" / stable_hash({"source": source.fingerprint(),
                                                              "clip_len": clip_len})[:16]
    return VideoStageCache(folder, "poses")


def video_poses(source: PoseSource, rec: VideoRecord, windows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The poses of every key clip of one video (:func:`~dance.motion.clips.key_clip_poses`): keypoints
    (S, L, J, 2) and scores (S, L, J); a :class:`~dance.errors.DanceError` on any clip fails the whole video (no
    clip of it is kept)."""
    seqs = key_clip_poses(source, rec, windows)
    return np.stack([q.keypoints for q in seqs]), np.stack([q.scores for q in seqs])


@dataclass(frozen=True)
class PoseWork:
    """The poses stage's worker factory (:mod:`dance.pipeline.engine`): (video record, key-clip windows) → the
    video's poses (:func:`video_poses`), from a pose source built once per worker."""

    poses: PoseSettings
    data_path: str

    def __call__(self) -> Callable[[tuple[VideoRecord, list[np.ndarray]]], tuple[np.ndarray, np.ndarray]]:
        source = pose_source_for(self.poses, self.data_path)
        return lambda item: video_poses(source, *item)


def run_poses(ctx: Context, out: StageWriter) -> dict:
    """Poses of every key clip, the videos not in the per-video cache spread over ``engine.workers`` processes;
    each video's poses go to the cache as soon as they are estimated, so a stage interrupted half-way and run again
    estimates only the videos not yet cached. A video on which the pose source fails (any clip) is skipped whole,
    with the reason."""
    source = pose_source(ctx)
    index = run_index(ctx.stage_dir("index"))
    kc = read_json(ctx.stage_dir("keyclips") / "keyclips.json")
    clip_len = int(kc["clip_len"])
    cache = poses_cache(ctx, source, clip_len)
    skipped: dict[str, str] = dict(kc["skipped"])
    rows = [i for i, rec in enumerate(index.records) if rec.video_id in kc["videos"]]
    keys, windows, entries = {}, {}, {}
    for i in rows:
        info = kc["videos"][index.records[i].video_id]
        clips = KeyClips(info["n_frames"], np.asarray(info["keyframes"], np.int64),
                         np.asarray(info["centres"], np.int64))
        windows[i] = clips.windows(clip_len)
        keys[i] = cache.key(index.records[i], stable_hash({"n_frames": int(info["n_frames"]),
                                                           "centres": [int(c) for c in info["centres"]]})[:10])
        hit = cache.load(keys[i])
        if hit is not None:
            entries[i] = (hit["keypoints"], hit["scores"])
    reused = len(entries)
    todo = [i for i in rows if i not in entries]
    engine = ctx.settings.engine
    found, failed, n_workers = run_uncached(
        engine, ctx.reporter, f"poses ({source.name})", todo, [(index.records[i], windows[i]) for i in todo],
        PoseWork(ctx.settings.poses, ctx.settings.data.path),
        lambda i, kp_sc: cache.save(keys[i], {"keypoints": kp_sc[0], "scores": kp_sc[1]}), len(rows), reused,
        local=lambda item: video_poses(source, *item), size=lambda item: file_size(item[0].path))
    entries |= found
    skipped |= {index.records[i].video_id: why for i, why in failed.items()}
    cache.report()
    kps, scs, vids, slots, centres = [], [], [], [], []
    for i in sorted(entries):
        kp, sc = entries[i]
        for slot, c in enumerate(kc["videos"][index.records[i].video_id]["centres"]):
            kps.append(kp[slot])
            scs.append(sc[slot])
            vids.append(i)
            slots.append(slot)
            centres.append(c)
    skipped = {r.video_id: skipped[r.video_id] for r in index.records if r.video_id in skipped}  # index order
    j = source.skeleton.n_joints
    save_arrays(out.path("poses.npz"),
                keypoints=np.stack(kps) if kps else np.zeros((0, clip_len, j, 2), np.float32),
                scores=np.stack(scs) if scs else np.zeros((0, clip_len, j), np.float32),
                clip_video=np.asarray(vids, np.int64), clip_slot=np.asarray(slots, np.int64),
                clip_centre=np.asarray(centres, np.int64))
    atomic_write_json(out.path("skeleton.json"), source.skeleton.to_json())
    atomic_write_json(out.path("skipped.json"), skipped)
    own = {vid: why for vid, why in skipped.items() if vid not in kc["skipped"]}  # keyclips printed its own
    line = skip_line(own, what="no poses for", where="poses/skipped.json")
    if line:
        ctx.reporter.info(line + " — no motion label: left out of motion-concept training")
    if reused:
        ctx.reporter.info(f"  {reused} of {len(rows)} videos' poses reused from {cache.folder}")
    return {"clips": len(kps), "skipped_videos": len(skipped), "skipped_by_reason": reason_counts(skipped),
            "reused": reused, "workers": n_workers, "engine": engine.name}


# ---------------------------------------------------------------------------------------------- motion


def run_motion(ctx: Context, out: StageWriter) -> dict:
    s = ctx.settings.motion
    index = run_index(ctx.stage_dir("index"))
    pdir = ctx.stage_dir("poses")
    poses = load_arrays(pdir / "poses.npz")
    skeleton = Skeleton.from_json(pdir / "skeleton.json")
    kc = read_json(ctx.stage_dir("keyclips") / "keyclips.json")
    kp, sc, clip_video = poses["keypoints"], poses["scores"], poses["clip_video"]
    status = clip_status(kp, sc, filter_settings(s))
    valid = status == OK
    splits = np.array([index.records[v].split for v in clip_video], dtype=object)
    flat = clip_vectors(kp)  # the clips as the motion concepts see them (dance.motion.clips)
    train = np.flatnonzero(valid & (splits == "train"))
    classes = np.array([index.class_index(r.label) for r in index.records])
    concepts, train_assign = discover(flat[train], partition=s.partition, distance=s.distance, seed=s.seed,
                                      clip_video=clip_video[train], y=classes[clip_video[train]])
    clip_concept = np.full(len(kp), -1, dtype=np.int64)
    clip_concept[train] = train_assign
    others = np.flatnonzero(valid & (splits != "train"))
    clip_concept[others] = nearest_centroid(flat[others], concepts.centroids)
    ok = clip_concept >= 0
    n_videos, n_slots, m = len(index.records), int(kc["n_clips"]), concepts.n_concepts
    assign = assignment_tensor(clip_video[ok], poses["clip_slot"][ok], clip_concept[ok], n_videos, n_slots, m)
    labels = video_labels(assign)
    has_label = np.zeros(n_videos, dtype=bool)
    has_label[clip_video[ok]] = True
    medoid_clips = train[concepts.medoid_clip]
    names = [f"motion_{k:03d}" for k in range(m)]
    save_arrays(out.path("motion.npz"), labels=labels, has_label=has_label, clip_concept=clip_concept,
                clip_status=status.astype(str), centroids=concepts.centroids,
                medoids=flat[medoid_clips].reshape(-1, *kp.shape[1:]), medoid_keypoints=kp[medoid_clips],
                medoid_clip=medoid_clips)
    rejected = Counter(str(x) for x in status[~valid])
    video_ids = [r.video_id for r in index.records]
    train_rows = np.array([r.split == "train" for r in index.records])
    atomic_write_json(out.path("concepts.json"), {
        "names": names,
        "skeleton": skeleton.to_json(),
        "partition": concepts.partition,
        "n_partitions": concepts.n_partitions,
        "partition_choice": vars(concepts.choice) if concepts.choice else {"rule": "set by motion.partition"},
        "concepts": [{"name": names[k], "train_clips": int(concepts.sizes[k]),
                      "train_videos": int(labels[train_rows, k].sum()),
                      "medoid_video": video_ids[int(clip_video[medoid_clips[k]])],
                      "medoid_centre": int(poses["clip_centre"][medoid_clips[k]])} for k in range(m)],
        "clips": {"total": int(len(kp)), "kept": int(valid.sum()), "rejected": dict(rejected)},
        "videos_without_motion_label": [video_ids[i] for i in np.flatnonzero(~has_label)],
    })
    ctx.reporter.info(f"  {m} motion concepts (FINCH partition {concepts.partition} of {concepts.n_partitions}) "
                      f"from {len(train)} training clips; rejected clips: {dict(rejected) or 'none'}")
    result = {"concepts": m, "partition": concepts.partition, "train_clips": int(len(train)),
              "rejected": dict(rejected), "videos_without_label": int((~has_label).sum())}
    if concepts.choice is not None:
        ctx.reporter.info("  partition chosen on the training videos (cross-validated accuracy of concept labels "
                          "-> class): " + ", ".join(f"{c['partition']}: {c['concepts']} concepts "
                                                    + (f"{c['cv_accuracy']:.3f}" if c["cv_accuracy"] is not None
                                                       else "n/a") for c in concepts.choice.candidates))
        result["partition_choice"] = vars(concepts.choice)
    return result
