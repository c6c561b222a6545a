"""Stages ``keyclips``, ``poses`` and ``motion``: from videos to motion dynamics concepts and labels."""

from __future__ import annotations

from collections import Counter

import numpy as np

from dance.errors import DanceError, PoseFormatError, StageError, VideoDecodeError
from dance.motion.clips import KeyClips, clip_status, clip_vectors, filter_settings, keyframe_input
from dance.motion.discovery import assignment_tensor, discover, nearest_centroid, video_labels
from dance.motion.poses import PoseSource, Skeleton, pose_source_for
from dance.motion.sequences import OK
from dance.pipeline.artifacts import load_arrays, run_index, save_arrays
from dance.pipeline.runner import Context
from dance.pipeline.skipped import reason_counts, skip_line
from dance.runs import StageWriter, atomic_write_json, read_json

# ---------------------------------------------------------------------------------------------- keyclips


def run_keyclips(ctx: Context, out: StageWriter) -> dict:
    s = ctx.settings.keyclips
    index = run_index(ctx.stage_dir("index"))
    videos: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    source = None
    signals = Counter()

    def sequence(rec):  # noqa: ANN001, ANN202 - the video's pose sequence, for keyclips.signal=poses
        nonlocal source
        source = source or pose_source(ctx)
        if not hasattr(source, "sequence"):
            raise StageError(f"keyclips.signal=poses needs a pose source that reads files, not '{source.name}'")
        return source.sequence(rec)

    with ctx.reporter.task("keyframes", len(index.records)) as advance:
        for rec in index.records:
            try:
                given = keyframe_input(rec.path, s, lambda r=rec: sequence(r))
            except (VideoDecodeError, PoseFormatError) as e:
                skipped[rec.video_id] = str(e)
                advance()
                continue
            signals[given.signal] += 1
            if given.n_frames == 0:
                skipped[rec.video_id] = "no frames"
                advance()
                continue
            clips = given.key_clips(s)
            videos[rec.video_id] = {"n_frames": clips.n_frames, "keyframes": clips.keyframes.tolist(),
                                    "centres": clips.centres.tolist()}
            advance()
    atomic_write_json(out.path("keyclips.json"), {"n_clips": s.n_clips, "clip_len": s.clip_len,
                                                  "videos": videos, "skipped": skipped})
    line = skip_line(skipped, where="keyclips/keyclips.json")
    if line:
        ctx.reporter.info(line)
    return {"videos": len(videos), "skipped": len(skipped), "skipped_by_reason": reason_counts(skipped),
            "signal": dict(signals), "clips": int(sum(len(v["centres"]) for v in videos.values()))}


# ---------------------------------------------------------------------------------------------- poses


def pose_source(ctx: Context) -> PoseSource:
    """The configured pose source (:func:`dance.motion.poses.pose_source_for`)."""
    return pose_source_for(ctx.settings.poses, ctx.settings.data.path)


def poses_external(ctx: Context) -> dict[str, str]:
    return {"pose_source": pose_source(ctx).fingerprint()}


def run_poses(ctx: Context, out: StageWriter) -> dict:
    source = pose_source(ctx)
    index = run_index(ctx.stage_dir("index"))
    kc = read_json(ctx.stage_dir("keyclips") / "keyclips.json")
    clip_len = int(kc["clip_len"])
    kps, scs, vids, slots, centres = [], [], [], [], []
    skipped: dict[str, str] = dict(kc["skipped"])
    with ctx.reporter.task(f"poses ({source.name})", len(kc["videos"])) as advance:
        for i, rec in enumerate(index.records):
            info = kc["videos"].get(rec.video_id)
            if info is None:
                continue
            clips = KeyClips(info["n_frames"], np.asarray(info["keyframes"], np.int64),
                             np.asarray(info["centres"], np.int64))
            try:
                for slot, (c, window) in enumerate(zip(info["centres"], clips.windows(clip_len))):
                    seq = source.poses(rec, window)
                    kps.append(seq.keypoints)
                    scs.append(seq.scores)
                    vids.append(i)
                    slots.append(slot)
                    centres.append(c)
            except DanceError as e:
                skipped[rec.video_id] = str(e)
            advance()
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
    return {"clips": len(kps), "skipped_videos": len(skipped), "skipped_by_reason": reason_counts(skipped)}


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
