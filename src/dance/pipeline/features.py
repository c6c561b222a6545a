"""Stage ``features``: one feature vector per video from a frozen backbone, cached per video.

Per-video features are kept in ``RUN/.cache/features/<backbone fingerprint>/`` so an interrupted extraction
resumes where it stopped, and a dataset that grows only encodes its new videos. The videos not cached are encoded
in chunks of ``features.batch_size`` on the run's engine (:mod:`dance.pipeline.engine`): in this process, over
worker processes each holding the backbone once (``engine.workers``), or on Ray actors.

Three kinds of backbone (``BackboneEntry.input``, :mod:`dance.encoders.registry`): ``video`` backbones encode
decoded frames, read at the backbone's own ``n_frames`` / ``size`` (which a pretrained model such as VideoMAE
fixes, overriding the settings); ``poses`` backbones are trained on pose sequences; ``precomputed`` backbones read
features from a file by video id, with nothing decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from safetensors.torch import save_file

from dance.config import FeatureSettings
from dance.data.index import VideoRecord
from dance.data.video import read_clip
from dance.encoders.registry import backbone_entry, make_backbone, make_video_backbone
from dance.encoders.video_cache import ChunkResult, encode_chunk, encode_videos_cached
from dance.errors import PoseFormatError, StageError
from dance.model.selection import AUTO, chooses, cross_fit_folds, fold_ids
from dance.motion.poses import PoseSequence
from dance.pipeline.artifacts import run_index, save_arrays
from dance.pipeline.engine import ChunkMap
from dance.pipeline.motion import pose_source, poses_external
from dance.pipeline.runner import Context
from dance.pipeline.skipped import reason_counts, skip_line
from dance.runs import StageWriter, atomic_write_json, stable_hash
from dance.threads import Rebalance, torch_threads


def train_chooses(ctx: Context) -> bool:
    """Whether the run's train stage chooses among concept-layer candidates (:func:`~dance.model.selection.chooses`):
    under ``features.folds=auto`` the fold encoders are trained only then."""
    return chooses(ctx.settings.train.concept_hidden, ctx.settings.train.binary_activation)


def external(ctx: Context) -> dict[str, str]:
    """What the stage depends on beyond its settings sections: the pose source (as the poses stage), and, for a
    trained backbone under ``features.folds=auto`` where the train stage has nothing to choose, that fact — the stage
    then trains no fold encoders, so a run that starts choosing (``train.concept_hidden=auto``) runs this stage again
    to train them."""
    out = poses_external(ctx)
    s = ctx.settings.features
    if backbone_entry(s.backbone).input == "poses" and s.folds == AUTO and not train_chooses(ctx):
        out["cross_fit"] = "off: the train stage has nothing to choose"
    return out


def run(ctx: Context, out: StageWriter) -> dict:
    kind = backbone_entry(ctx.settings.features.backbone).input
    if kind == "poses":
        return run_pose_backbone(ctx, out)
    if kind == "precomputed":
        return run_precomputed_backbone(ctx, out)
    return run_video_backbone(ctx, out)


def run_precomputed_backbone(ctx: Context, out: StageWriter) -> dict:
    """Features read from a file keyed by video id; videos missing from it are skipped with the reason."""
    s = ctx.settings.features
    index = run_index(ctx.stage_dir("index"))
    backbone = make_video_backbone(s)
    with ctx.reporter.task(f"features ({s.backbone})", len(index.records)) as advance:
        feats, ok, skipped = backbone.lookup(index.records)
        advance(len(index.records))
    save_arrays(out.path("features.npz"), x=feats, ok=ok)
    atomic_write_json(out.path("backbone.json"), backbone.fingerprint() | {"dim": backbone.dim})
    atomic_write_json(out.path("skipped.json"), skipped)
    if skipped:
        first = next(iter(skipped.items()))
        ctx.reporter.info(f"  [yellow]{len(skipped)} videos have no usable precomputed features[/yellow] "
                          f"(e.g. {first[0]}: {first[1]})")
    return {"dim": backbone.dim, "encoded": int(ok.sum()), "reused": 0, "skipped": len(skipped)}


def run_pose_backbone(ctx: Context, out: StageWriter) -> dict:
    """Train a pose backbone on the training split (val for model selection), then encode every video.

    Cross-fitting (``features.folds``; by default 5 folds below
    :data:`~dance.model.selection.CROSS_FIT_MAX_TRAIN` training videos): one more backbone per fold of the
    training videos, each trained without its fold, encodes every video too; ``folds.npz`` holds those features
    (``x``: folds × videos × dim) and each training video's fold (``fold``; -1 for other videos), from which the
    train stage cross-validates its choices (:class:`~dance.model.selection.CrossFit`).

    Augmented views (``features.views``): ``views.npz`` holds each encoder's features of that many random training
    augmentations of every training video (``x``: views × training videos × dim, ``rows``: their index rows), and
    ``folds.npz`` the same from each fold's encoder (``views``, ``view_rows``); the train stage fits on them beside
    the clean features (:func:`~dance.model.selection.stack_views`).

    Class scores: ``head_predictions.npz`` holds the encoder's own predictions (``pred``, the baseline) and logits
    (``logits``: videos × classes), ``views.npz`` and ``folds.npz`` the logits of the views and of each fold's
    encoder (``logits``, ``view_logits``): the teacher of ``train.distill``."""
    s = ctx.settings.features
    index = run_index(ctx.stage_dir("index"))
    source = pose_source(ctx)
    if not hasattr(source, "sequence"):
        raise StageError(f"backbone '{s.backbone}' needs whole pose sequences from files; pose source "
                         f"'{source.name}' does not read files (use poses.source=annotations)")
    seqs: list[PoseSequence | None] = []
    skipped: dict[str, str] = {}
    with ctx.reporter.task("reading pose sequences", len(index.records)) as advance:
        for rec in index.records:
            try:
                seq = source.sequence(rec)
                if len(seq.keypoints) == 0 or not (seq.scores > 0).any():
                    raise PoseFormatError("no person in any frame")
                seqs.append(seq)
            except PoseFormatError as e:
                seqs.append(None)
                skipped[rec.video_id] = str(e)
            advance()
    ok = np.array([q is not None for q in seqs])
    labels = np.array([index.class_index(r.label) for r in index.records])
    split = np.array([r.split for r in index.records])
    tr, va = np.flatnonzero(ok & (split == "train")), np.flatnonzero(ok & (split == "val"))

    def new_encoder(seed: int):  # noqa: ANN202 - a pose backbone of the registry
        return make_backbone(s.backbone, joints=source.skeleton.joints, n_classes=len(index.classes),
                             length=s.length, epochs=s.epochs, seed=seed, device=s.device,
                             edges=source.skeleton.edges, bones=s.bones, mirror=source.skeleton.mirror,
                             yaw=s.yaw, roll=s.roll, keep=s.keep)

    encoder = new_encoder(s.seed)
    if encoder.mirror is None:
        ctx.reporter.info("  [yellow]warning:[/yellow] no left/right joint pairs in the skeleton's names "
                          f"({', '.join(source.skeleton.joints[:4])}, ...): no flip augmentation. Name the sides "
                          "(left_knee, knee_left, LKnee, knee.L, ...) or list the pairs in skeleton.json "
                          '("mirror": [[i, j], ...])')
    else:
        ctx.reporter.info(f"  mirror: {len(encoder.mirror_pairs)} left/right joint pairs")
    rows = np.flatnonzero(ok)
    feats = np.zeros((len(index.records), encoder.dim), dtype=np.float32)
    head = np.full(len(index.records), -1, dtype=np.int64)
    present = [seqs[i] for i in rows]
    with torch_threads(s.threads) as n_threads:
        rebalance = Rebalance(s.threads)  # threads=0: re-counted each epoch (dance.threads)
        with ctx.reporter.task(f"training {s.backbone} ({n_threads} thread{'s' * (n_threads > 1)})",
                               s.epochs) as advance:
            encoder.fit([seqs[i] for i in tr], labels[tr], [seqs[i] for i in va], labels[va],
                        progress=rebalance.wrap(advance))
        feats[rows] = encoder.encode_poses(present)
        head[rows] = encoder.predict_poses(present)
        train_seqs = [seqs[i] for i in tr]
        if s.views:
            view_x = encoder.encode_augmented(train_seqs, s.views, seed=s.seed)
            save_arrays(out.path("views.npz"), x=view_x, rows=tr, logits=encoder.class_logits(view_x))
        n_folds = cross_fit_folds(s.folds, len(tr), train_chooses(ctx))
        if n_folds:
            fold = fold_ids(labels[tr], n_folds, s.seed)
            fold_x = np.zeros((n_folds, len(index.records), encoder.dim), dtype=np.float32)
            fold_views = np.zeros((n_folds, s.views, len(tr), encoder.dim), dtype=np.float32)
            fold_logits = np.zeros((n_folds, len(index.records), len(index.classes)), dtype=np.float32)
            fold_view_logits = np.zeros((n_folds, s.views, len(tr), len(index.classes)), dtype=np.float32)
            with ctx.reporter.task(f"cross-fitting: {n_folds} encoders, each without one fold of the "
                                   f"{len(tr)} training videos", n_folds * s.epochs) as advance:
                for k in range(n_folds):
                    keep = tr[fold != k]
                    fold_encoder = new_encoder(s.seed + 1000 * (k + 1))
                    fold_encoder.fit([seqs[i] for i in keep], labels[keep], [seqs[i] for i in va], labels[va],
                                     progress=rebalance.wrap(advance))
                    fold_x[k][rows] = fold_encoder.encode_poses(present)
                    fold_views[k] = fold_encoder.encode_augmented(train_seqs, s.views, seed=s.seed)
                    fold_logits[k][rows] = fold_encoder.class_logits(fold_x[k][rows])
                    fold_view_logits[k] = fold_encoder.class_logits(fold_views[k])
            fold_of = np.full(len(index.records), -1, dtype=np.int64)
            fold_of[tr] = fold
            save_arrays(out.path("folds.npz"), x=fold_x, fold=fold_of, views=fold_views, view_rows=tr,
                        logits=fold_logits, view_logits=fold_view_logits)
    save_arrays(out.path("features.npz"), x=feats, ok=ok)
    logits = np.zeros((len(index.records), len(index.classes)), dtype=np.float32)
    logits[rows] = encoder.class_logits(feats[rows])
    save_arrays(out.path("head_predictions.npz"), pred=head, logits=logits)
    save_file(encoder.state_dict(), str(out.path("backbone.safetensors")))
    # the thread count is recorded: training is not bit-reproducible across counts (README, "Results with the
    # generic command"), so features.threads=<this> reproduces the encoder when threads_changed is empty (threads=0
    # re-counts the free cores each epoch: (epoch, threads) where that changed the count)
    atomic_write_json(out.path("backbone.json"), encoder.fingerprint() | {
        "dim": encoder.dim, "threads": n_threads, "threads_changed": rebalance.changes, "history": encoder.history})
    atomic_write_json(out.path("skipped.json"), skipped)
    best = max((h["val_accuracy"] for h in encoder.history), default=float("nan"))
    last = encoder.history[-1]["val_accuracy"] if encoder.history else float("nan")
    ctx.reporter.info(f"  {s.backbone}: validation accuracy {last:.3f} at the last epoch (best {best:.3f}; "
                      f"weights kept: {s.keep})")
    line = skip_line(skipped, what="no pose sequence for", where="features/skipped.json")
    if line:
        ctx.reporter.info(line + " — left out of training and evaluation")
    return {"dim": encoder.dim, "encoded": int(ok.sum()), "skipped": len(skipped), "best_val_accuracy": best,
            "last_val_accuracy": last, "weights_kept": s.keep, "cross_fit_folds": n_folds, "threads": n_threads,
            "augmented_views": s.views}


def _chunk_encoder(backbone, name: str) -> Callable[[list[VideoRecord]], ChunkResult]:  # noqa: ANN001
    def read(rec: VideoRecord) -> np.ndarray:
        return read_clip(rec.path, backbone.n_frames, backbone.size)

    return lambda chunk: encode_chunk(chunk, read, backbone.encode, f"features ({name})")


@dataclass(frozen=True)
class FeatureWork:
    """The features stage's worker factory (:mod:`dance.pipeline.engine`): a chunk of video records → their
    vectors (or skip reasons), from a backbone built and loaded once per worker."""

    features: FeatureSettings

    def __call__(self) -> Callable[[list[VideoRecord]], ChunkResult]:
        backbone = make_video_backbone(self.features)
        load = getattr(backbone, "load", None)
        if load is not None:
            load()
        return _chunk_encoder(backbone, self.features.backbone)


def run_video_backbone(ctx: Context, out: StageWriter) -> dict:
    s = ctx.settings.features
    engine = ctx.settings.engine
    index = run_index(ctx.stage_dir("index"))
    backbone = make_video_backbone(s)
    cache = ctx.run.root / ".cache" / "features" / stable_hash(backbone.fingerprint())[:16]

    def local() -> Callable[[list[VideoRecord]], ChunkResult]:
        load = getattr(backbone, "load", None)
        if load is not None:
            load()  # fail on missing weights before decoding anything
        return _chunk_encoder(backbone, s.backbone)

    map_chunks = ChunkMap(engine, FeatureWork(s), local=local)
    what = f"features ({s.backbone})"
    feats, ok, skipped, reused = encode_videos_cached(
        index.records, lambda rec: read_clip(rec.path, backbone.n_frames, backbone.size), backbone.encode,
        backbone.dim, cache, s.batch_size, ctx.reporter, what, map_chunks=map_chunks)  # map_chunks loads it
    save_arrays(out.path("features.npz"), x=feats, ok=ok)
    atomic_write_json(out.path("backbone.json"), backbone.fingerprint() | {"dim": backbone.dim})
    atomic_write_json(out.path("skipped.json"), skipped)
    line = skip_line(skipped, what="no features for", where="features/skipped.json")
    if line:
        ctx.reporter.info(line + " — left out of training and evaluation")
    return {"dim": backbone.dim, "encoded": int(ok.sum()) - reused, "reused": reused, "skipped": len(skipped),
            "skipped_by_reason": reason_counts(skipped), "workers": map_chunks.workers, "engine": engine.name}
