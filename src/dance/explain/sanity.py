"""Sanity check (paper Fig. 7): play videos backwards and see whether the prediction and its motion concepts change.

A model that predicts through motion dynamics should notice that a video runs backwards: a squat played
backwards is still a squat, but "sitting down" becomes "standing up". For each video of a split, the input is
reversed in time and sent through the same path the pipeline used for the original:

* video backbones (RGB runs): the frames, decoded at the backbone's size as the ``features`` stage reads them,
  are reversed, then sampled exactly as that stage does, and encoded with the run's backbone (same name,
  settings and seed);
* pose backbones (``pose-encoder``): the whole pose sequence is reversed and encoded with the run's saved
  backbone weights (``features/backbone.safetensors``).

The original is re-encoded through the same code (not read from ``features.npz``) so both directions see the same
arithmetic; ``reencode_max_abs_diff`` says how far that is from the stored features. Besides the model's own
motion concepts (predicted from the features), the *pose-cluster labels* of the reversed video are recomputed as
the ``keyclips`` / ``poses`` / ``motion`` stages would, with the same functions (:mod:`dance.motion.clips`) on the
reversed input: keyframes of the reversed signal (``keyclips.signal``), key-clip windows, the poses of those frames
in reversed order, the clip filters, and the nearest motion-concept centroid. The run is read
through :class:`dance.run_view.RunView`: each step uses the settings its stage ran with, and the clip length the
keyclips stage cut (``keyclips.json``).

Everything lands in ``RUN/sanity/sanity.json``; its top-level numbers are listed in :data:`FIELDS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dance.config import Settings
from dance.data.index import VideoRecord
from dance.data.video import read_video, sample_frames
from dance.encoders.registry import backbone_entry, load_run_backbone
from dance.errors import DanceError, ModelError, PoseFormatError, StageError
from dance.explain.contributions import Explanation, explain_concepts
from dance.model.dance import DanceModel
from dance.motion.clips import (
    KeyframeInput,
    filter_settings,
    frames_of,
    keyframe_input,
    label_clips,
    reverse_sequence,
    video_concepts,
)
from dance.motion.poses import PoseSequence, Skeleton, pose_source_for
from dance.run_view import RunVideos, RunView
from dance.runs import atomic_write_json

#: Top-level numeric fields of sanity.json (``None`` when a quantity could not be computed, see ``skipped``).
FIELDS: dict[str, str] = {
    "n": "videos checked (original and reversed both encoded)",
    "prediction_changed_fraction": "fraction of videos whose predicted class changes when played backwards",
    "accuracy_original": "top-1 accuracy on the original videos",
    "accuracy_reversed": "top-1 accuracy on the reversed videos (the label is the original's)",
    "top_motion_overlap": "mean |top-k ∩ top-k'| / k of the k most activated motion concepts, original vs reversed",
    "top_motion_contribution_overlap": "the same for the top-k motion concepts by contribution to each input's own "
                                       "predicted class (the concepts an explanation shows, Fig. 7)",
    "motion_activation_correlation": "mean Pearson correlation of all motion activations, original vs reversed",
    "motion_share_original": "mean motion-type share of the predicted class's logit (original input)",
    "motion_share_reversed": "mean motion-type share of the same class's logit on the reversed input",
    "motion_share_change": "mean change (reversed - original) of that motion share",
    "other_share_change": "mean change of the object + scene shares of that logit (None without such concepts)",
    "original_class_probability_change": "mean change of the original predicted class's probability",
    "motion_label_jaccard": "mean Jaccard of the pose-cluster motion labels (Eq. 2) of original and reversed",
    "motion_label_changed_fraction": "fraction of videos whose pose-cluster motion labels change",
    "baseline_prediction_changed_fraction": "the same as prediction_changed_fraction for the backbone's own "
                                            "linear head (pose-encoder runs only)",
    "reencode_max_abs_diff": "largest |x - x_stored| of the re-encoded original features (0 = identical path)",
}


@dataclass
class Encoded:
    """Features of the original and reversed inputs, plus their pose-cluster motion labels (sets of indices)."""

    positions: list[int]  # into RunVideos
    x_orig: np.ndarray
    x_rev: np.ndarray
    labels_orig: list[set[int] | None]
    labels_rev: list[set[int] | None]
    head_orig: np.ndarray | None = None  # backbone head predictions (pose encoder)
    head_rev: np.ndarray | None = None
    label_names: list[str] = field(default_factory=list)  # motion concept names of the label indices


class MotionLabeller:
    """Pose-cluster motion labels of a video as the keyclips → poses → motion stages compute them
    (:mod:`dance.motion.clips`, with the settings those stages ran with)."""

    def __init__(self, view: RunView, settings: Settings):
        self.settings = settings
        self.centroids = view.motion["centroids"]
        self.names: list[str] = view.motion_names
        self.skeleton: Skeleton = view.skeleton
        self.clip_len = view.clip_len  # as the keyclips stage cut them (keyclips.json)
        self.filters = filter_settings(settings.motion)
        self.source = pose_source_for(settings.poses, settings.data.path)

    def labels(self, given: KeyframeInput, poses: Callable[[np.ndarray], PoseSequence]) -> set[int]:
        """Labels of a video from its keyframe input and the poses of any frames of it (``poses(frames)``)."""
        if given.n_frames == 0:
            return set()
        windows = given.key_clips(self.settings.keyclips).windows(self.clip_len)
        return video_concepts(label_clips([poses(w) for w in windows], self.filters, self.centroids))

    def from_sequence(self, seq: PoseSequence) -> set[int]:
        """Labels of a whole pose sequence (pose-only data: keyframes from pose motion)."""
        return self.labels(KeyframeInput(poses=seq), lambda w: frames_of(seq, w))

    def from_frames(self, rec: VideoRecord, frames: np.ndarray, reverse: bool) -> set[int]:
        """Labels of a decoded video (``frames`` at ``keyclips.size``; keyframes from pixel differences);
        ``reverse`` plays it backwards.

        The reversed video's frame t is original frame n-1-t, so its clips' poses are the pose source's poses of
        those original frames, in reversed order.
        """
        n = len(frames)
        given = KeyframeInput(frames=frames)
        if reverse:
            return self.labels(given.reversed(), lambda w: self.source.poses(rec, n - 1 - w))
        return self.labels(given, lambda w: self.source.poses(rec, w))


def _pick(positions: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` positions spread evenly over the split (so a limit still covers every class)."""
    if limit is None or limit >= len(positions):
        return positions
    if limit < 1:
        raise DanceError(f"--limit must be at least 1, got {limit}")
    return positions[np.unique(np.round(np.linspace(0, len(positions) - 1, limit)).astype(int))]


def encode_reversed(view: RunView, settings: Settings, data: RunVideos, positions: np.ndarray, n_classes: int,
                    pose_labels: bool = True, progress: Callable[[int], None] | None = None,
                    skipped: dict[str, str] | None = None) -> Encoded:
    """Encode the original and the time-reversed input of every video at ``positions`` with the run's backbone."""
    skipped = {} if skipped is None else skipped
    features = view.stage_dir("features")
    feat = settings.features
    entry = backbone_entry(feat.backbone)
    labeller = None
    if pose_labels:
        try:
            labeller = MotionLabeller(view, settings)
        except DanceError as e:
            skipped["motion_labels"] = f"pose-cluster labels not recomputed: {e}"
    label_names = labeller.names if labeller is not None else []
    advance = progress or (lambda n=1: None)
    recs = [data.index.records[int(data.rows[i])] for i in positions]
    done: list[int] = []
    lab_o: list[set[int] | None] = []
    lab_r: list[set[int] | None] = []

    def labels(fn: Callable[[], tuple[set[int], set[int]]], vid: str) -> None:
        if labeller is None:
            lab_o.append(None)
            lab_r.append(None)
            return
        try:
            a, b = fn()
        except DanceError as e:
            skipped.setdefault(f"motion_labels:{vid}", str(e))
            a, b = None, None
        lab_o.append(a)
        lab_r.append(b)

    if entry.input == "poses":
        source = pose_source_for(settings.poses, settings.data.path)
        try:
            encoder = load_run_backbone(feat, features, n_classes)  # its trained weights
        except ModelError as e:
            raise StageError(str(e)) from None
        seqs, revs = [], []
        for pos, rec in zip(positions, recs):
            try:
                seq = source.sequence(rec)
                if len(seq.keypoints) == 0 or not (seq.scores > 0).any():
                    raise PoseFormatError("no person in any frame")
            except PoseFormatError as e:
                skipped[rec.video_id] = str(e)
                advance(1)
                continue
            rev = reverse_sequence(seq)
            seqs.append(seq)
            revs.append(rev)
            done.append(int(pos))
            labels(lambda s=seq, r=rev: (labeller.from_sequence(s), labeller.from_sequence(r)), rec.video_id)
            advance(1)
        if not seqs:
            raise DanceError("no video of the split could be read: nothing to check")
        return Encoded(done, encoder.encode_poses(seqs), encoder.encode_poses(revs), lab_o, lab_r,
                       encoder.predict_poses(seqs), encoder.predict_poses(revs), label_names)

    if entry.input != "video":
        raise DanceError(f"backbone '{feat.backbone}' reads {entry.input} features, not frames: a reversed video "
                         "cannot be encoded with it, so the sanity check cannot run on this run")
    backbone = load_run_backbone(feat, features, n_classes)  # name, weights, frames, size, seed
    if hasattr(backbone, "load"):
        backbone.load()  # pretrained weights: fail before decoding anything when they cannot be loaded
    xo: list[np.ndarray] = []
    xr: list[np.ndarray] = []
    batch: list[tuple[np.ndarray, np.ndarray]] = []

    def flush() -> None:
        if batch:
            x = backbone.encode([b for pair in batch for b in pair])
            xo.extend(x[0::2])
            xr.extend(x[1::2])
            batch.clear()

    for pos, rec in zip(positions, recs):
        try:
            small = read_video(rec.path, size=backbone.size)  # as the features stage reads it (read_clip)
        except DanceError as e:
            skipped[rec.video_id] = str(e)
            advance(1)
            continue
        batch.append((sample_frames(small, backbone.n_frames), sample_frames(small[::-1], backbone.n_frames)))
        done.append(int(pos))

        def both(r: VideoRecord = rec) -> tuple[set[int], set[int]]:
            # the keyclips stage's input: frames decoded at keyclips.size, or the pose sequence (keyclips.signal)
            given = keyframe_input(r.path, settings.keyclips, lambda: labeller.source.sequence(r))
            if given.frames is not None:
                return labeller.from_frames(r, given.frames, False), labeller.from_frames(r, given.frames, True)
            return labeller.from_sequence(given.poses), labeller.from_sequence(reverse_sequence(given.poses))

        labels(both, rec.video_id)
        if len(batch) * 2 >= feat.batch_size:
            flush()
        advance(1)
    flush()
    if not done:
        raise DanceError("no video of the split could be decoded: nothing to check")
    return Encoded(done, np.stack(xo).astype(np.float32), np.stack(xr).astype(np.float32), lab_o, lab_r,
                   label_names=label_names)


def _diverse(idx: list[int], labels: list[str]) -> list[int]:
    """The same indices, the first of each class first (so examples cover many classes)."""
    seen: set[str] = set()
    first = [i for i in idx if not (labels[i] in seen or seen.add(labels[i]))]
    chosen = set(first)
    return first + [i for i in idx if i not in chosen]


def _top_active(z: np.ndarray, cols: np.ndarray, k: int) -> set[int]:
    return {int(c) for c in cols[np.argsort(-z[cols], kind="stable")[:k]]}


def _overlap(a: set, b: set) -> float | None:
    """|a ∩ b| / max(|a|, |b|): 1 for the same top-k set, 0 for disjoint ones; None when both are empty."""
    size = max(len(a), len(b))
    return len(a & b) / size if size else None


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def _concepts(e: Explanation, ctype: str, k: int) -> list[dict]:
    return [{"name": c.name, "activation": round(c.activation, 4), "weight": round(c.weight, 4),
             "contribution": round(c.contribution, 4)} for c in e.top.get(ctype, [])[:k]]


def sanity_check(run: Path | str, split: str = "test", limit: int | None = None, k: int = 3,
                 version: str | None = None, pose_labels: bool = True, n_examples: int = 6,
                 progress: Callable[[int], None] | None = None, on_total: Callable[[int], None] | None = None,
                 write: bool = True) -> dict[str, Any]:
    """Run the reversed-video sanity check on one split and write ``RUN/sanity/sanity.json``; returns its content.

    ``limit`` checks at most that many videos, spread evenly over the split; ``k`` is the size of the top-k
    motion concept sets compared; ``version`` picks a model version (default: the latest, see
    :mod:`dance.model.versions`); ``pose_labels`` also recomputes the pose-cluster motion labels.
    """
    start = time.time()
    view = RunView(run)
    settings = view.settings
    if k < 1:
        raise DanceError(f"k must be at least 1, got {k}")
    model, ver = view.load_version(version)
    data = view.videos
    positions = _pick(np.flatnonzero(data.split_mask(split)), limit)
    if on_total is not None:
        on_total(len(positions))
    skipped: dict[str, str] = {}
    enc = encode_reversed(view, settings, data, positions, len(model.classes_), pose_labels, progress, skipped)
    pos = np.asarray(enc.positions)
    y = data.targets(model)[pos]
    ids = [data.video_ids[i] for i in pos]
    stored = data.X[pos]
    result = compare(model, enc, y, k)
    result["reencode_max_abs_diff"] = float(np.abs(enc.x_orig - stored).max())
    stored_pred = model.predict_index(stored)
    p_o = np.array([model.class_index(r["original"]) for r in result["_rows"]])
    result["reencode_prediction_agreement"] = float((stored_pred == p_o).mean())
    rows = result.pop("_rows")
    labels = [data.labels[p] for p in pos]
    changed = _diverse([i for i, r in enumerate(rows) if r["changed"]], labels)
    same = _diverse([i for i, r in enumerate(rows) if not r["changed"]], labels)
    pick = changed[: max(n_examples - 2, n_examples - len(same))]  # mostly changed ones, and a couple that kept
    pick += same[: n_examples - len(pick)]
    examples = [{"video_id": ids[i], "label": data.labels[pos[i]], **rows[i]} for i in pick]
    per_class: dict[str, dict[str, int]] = {}
    for i, r in enumerate(rows):
        c = per_class.setdefault(data.labels[pos[i]], {"n": 0, "changed": 0})
        c["n"] += 1
        c["changed"] += int(r["changed"])
    entry = backbone_entry(settings.features.backbone)
    out: dict[str, Any] = {
        **{f: result.get(f) for f in FIELDS},
        "reencode_prediction_agreement": result["reencode_prediction_agreement"],
        "split": split, "k": k, "limit": limit, "version": ver.name, "backbone": settings.features.backbone,
        "reversal": ("pose sequences reversed in time, encoded with the saved pose backbone"
                     if entry.input == "poses" else
                     "decoded frames reversed in time, resized and sampled as the features stage does, encoded "
                     "with the run's backbone"),
        "note": ("Each video is also played backwards: "
                 + ("its pose sequence is reversed and encoded with the run's saved pose backbone"
                    if entry.input == "poses" else
                    "its decoded frames are reversed, then resized, sampled and encoded like the original")
                 + ". The model sees only the backbone features, so its motion concepts are what the concept layer "
                   "predicts from the reversed features; the pose-cluster labels are recomputed from the reversed "
                   "poses for comparison."),
        "type_share_change": result["type_share_change"],
        "per_class": per_class,
        "examples": examples,
        "skipped": skipped,
        "fields": FIELDS,
        "seconds": round(time.time() - start, 2),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if write:
        atomic_write_json(view.sanity_path, out)
    return out


def compare(model: DanceModel, enc: Encoded, y: np.ndarray, k: int = 3) -> dict[str, Any]:
    """The sanity numbers from the original and reversed features (see :data:`FIELDS`), plus per-video rows."""
    z_o, z_r = model.concept_activations(enc.x_orig), model.concept_activations(enc.x_rev)
    e_o, e_r = explain_concepts(model, z_o, k=k), explain_concepts(model, z_r, k=k)
    l_o, l_r = model.logits_from_concepts(z_o), model.logits_from_concepts(z_r)
    p_o, p_r = l_o.argmax(axis=1), l_r.argmax(axis=1)

    def softmax(lg: np.ndarray) -> np.ndarray:
        e = np.exp(lg - lg.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    prob_o, prob_r = softmax(l_o), softmax(l_r)
    blocks = {b.type: b for b in model.blocks_}
    motion = blocks.get("motion")
    mcols = np.arange(motion.start, motion.stop) if motion else np.zeros(0, int)
    n = len(y)
    rows: list[dict] = []
    overlap, c_overlap, corr, share_o, share_r, other, dprob = [], [], [], [], [], [], []
    type_change: dict[str, list[float]] = {b.type: [] for b in model.blocks_}
    for i in range(n):
        c = int(p_o[i])
        w = model.W_[c]
        contrib_o, contrib_r = z_o[i] * w, z_r[i] * w
        for b in model.blocks_:
            type_change[b.type].append(float(contrib_r[b.start:b.stop].sum() - contrib_o[b.start:b.stop].sum()))
        if len(mcols):
            overlap.append(_overlap(_top_active(z_o[i], mcols, k), _top_active(z_r[i], mcols, k)))
            a = {x.index for x in e_o[i].top.get("motion", [])}
            b = {x.index for x in e_r[i].top.get("motion", [])}
            c_overlap.append(_overlap(a, b))
            zo, zr = z_o[i, mcols], z_r[i, mcols]
            if zo.std() > 1e-8 and zr.std() > 1e-8:
                corr.append(float(np.corrcoef(zo, zr)[0, 1]))
            share_o.append(float(contrib_o[mcols].sum()))
            share_r.append(float(contrib_r[mcols].sum()))
        others = [bb for bb in model.blocks_ if bb.type != "motion"]
        if others:
            other.append(sum(float(contrib_r[bb.start:bb.stop].sum() - contrib_o[bb.start:bb.stop].sum())
                             for bb in others))
        dprob.append(float(prob_r[i, c] - prob_o[i, c]))
        rows.append({
            "original": model.classes_[c], "reversed": model.classes_[int(p_r[i])], "changed": bool(p_o[i] != p_r[i]),
            "original_probability": round(float(prob_o[i, c]), 4),
            "reversed_probability_of_original_class": round(float(prob_r[i, c]), 4),
            "original_top_motion": _concepts(e_o[i], "motion", 2),
            "reversed_top_motion": _concepts(e_r[i], "motion", 2),
            "original_type_shares": {t: round(v, 4) for t, v in e_o[i].type_shares.items()},
            "reversed_type_shares": {t: round(v, 4) for t, v in e_r[i].type_shares.items()},
            "original_motion_labels": _label_names(enc.labels_orig[i], enc.label_names),
            "reversed_motion_labels": _label_names(enc.labels_rev[i], enc.label_names),
        })
    jac, lab_changed = [], []
    for a, b in zip(enc.labels_orig, enc.labels_rev):
        if a is None or b is None or not (a or b):
            continue
        jac.append(len(a & b) / len(a | b))
        lab_changed.append(float(a != b))
    out: dict[str, Any] = {
        "n": n,
        "prediction_changed_fraction": float((p_o != p_r).mean()),
        "accuracy_original": float((p_o == y).mean()),
        "accuracy_reversed": float((p_r == y).mean()),
        "top_motion_overlap": _mean(overlap),
        "top_motion_contribution_overlap": _mean(c_overlap),
        "motion_activation_correlation": _mean(corr),
        "motion_share_original": _mean(share_o),
        "motion_share_reversed": _mean(share_r),
        "motion_share_change": _mean([b - a for a, b in zip(share_o, share_r)]),
        "other_share_change": _mean(other),
        "original_class_probability_change": _mean(dprob),
        "motion_label_jaccard": _mean(jac),
        "motion_label_changed_fraction": _mean(lab_changed),
        "baseline_prediction_changed_fraction": None if enc.head_orig is None else
        float((enc.head_orig != enc.head_rev).mean()),
        "type_share_change": {t: _mean(v) for t, v in type_change.items()},
        "_rows": rows,
    }
    return out


def _label_names(labels: set[int] | None, names: list[str]) -> list[str] | None:
    return None if labels is None else [names[j] if j < len(names) else str(j) for j in sorted(labels)]
