"""The pose-encoder baseline of finished runs against a plain temporal CNN trained on the same videos.

    python benchmarks/plain_tcn.py RUN [RUN ...] --seeds 0 1 2 [--threads 1] [--json OUT.json]

Issue 10 measured, outside this project, a plain temporal CNN on a cross-view skeleton dataset 1.5–6 points above
the pose encoder of that time. This trains our reading of that recipe (the issue gives its outline, not its code):
four blocks of Conv1d(128, kernel 5) + BatchNorm + ReLU over the normalised x, y coordinates of 64 resampled frames,
global average pooling, a linear head; flip (left / right swap), scale and temporal-crop augmentation; AdamW, cosine
schedule, 120 epochs; one forward pass at test time. It trains on each run's training videos (its ``train`` split:
the validation videos the run drew are left out, as the run's own encoder leaves them out of training) and is scored
on the run's test videos, beside the run's baseline (its pose encoder with its own head,
``features/head_predictions.npz``). Same poses, same normalisation, same split; only the network, its inputs
(coordinates only: no velocities, scores or bones), its augmentations (no camera turn) and its schedule differ.
Prints one row per run and seed and the mean difference, with wall and CPU minutes per training.

Run it on development splits (``benchmarks/pose_datasets.py --dev-views`` / ``--dev-folds``): it prints test
accuracy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dance.encoders.pose_encoder import pose_input
from dance.errors import DanceError
from dance.motion.poses import PoseSequence, Skeleton, pose_source_for
from dance.motion.skeletons import mirror_pairs, mirror_permutation
from dance.run_view import RunView
from dance.runs import load_arrays

LENGTH, WIDTH, EPOCHS, BATCH, LR = 64, 128, 120, 32, 1e-3


class PlainTCN(nn.Module):
    """Four Conv1d(WIDTH, 5) + BatchNorm + ReLU blocks, global average pooling, a linear head."""

    def __init__(self, c_in: int, n_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        for c in (c_in, WIDTH, WIDTH, WIDTH):
            layers += [nn.Conv1d(c, WIDTH, 5, padding=2), nn.BatchNorm1d(WIDTH), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(WIDTH, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=2))


def coordinates(seq: PoseSequence, crop: tuple[float, float] = (0.0, 1.0), mirror: np.ndarray | None = None,
                scale: float = 1.0) -> np.ndarray:
    """(J·2, LENGTH): the pose encoder's normalised x, y only (its first J·2 input channels)."""
    return pose_input(seq, LENGTH, crop, mirror, scale=scale)[: 2 * seq.keypoints.shape[1]]


def train_plain(seqs: list[PoseSequence], y: np.ndarray, n_classes: int, mirror: np.ndarray | None,
                seed: int) -> PlainTCN:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = PlainTCN(2 * seqs[0].keypoints.shape[1], n_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=1e-4)
    steps_per_epoch = int(np.ceil(len(seqs) / BATCH))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS * steps_per_epoch)
    y_t = torch.from_numpy(np.asarray(y, np.int64))

    def augmented(s: PoseSequence) -> np.ndarray:
        frac = rng.uniform(0.6, 1.0)
        start = rng.uniform(0.0, 1.0 - frac)
        flip = mirror is not None and rng.random() < 0.5
        return coordinates(s, (start, start + frac), mirror if flip else None, float(rng.uniform(0.8, 1.2)))

    for _ in range(EPOCHS):
        net.train()
        order = rng.permutation(len(seqs))
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            if len(idx) < 2:
                continue
            xb = torch.from_numpy(np.stack([augmented(seqs[j]) for j in idx]))
            loss = nn.functional.cross_entropy(net(xb), y_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return net


@torch.no_grad()
def predict(net: PlainTCN, seqs: list[PoseSequence]) -> np.ndarray:
    out = [net(torch.from_numpy(np.stack([coordinates(s) for s in seqs[i:i + 64]]))).argmax(1).numpy()
           for i in range(0, len(seqs), 64)]
    return np.concatenate(out)


def run_sequences(view: RunView) -> tuple[dict[str, list], np.ndarray | None, int]:
    """The run's train and test sequences with labels (videos whose poses its features stage skipped are left
    out, as there), the skeleton's mirror permutation, and the number of classes."""
    settings, index = view.settings, view.index
    source = pose_source_for(settings.poses, settings.data.path)
    ok = view.features["ok"]
    parts: dict[str, list] = {"train": [[], []], "test": [[], []]}
    for rec, usable in zip(index.records, ok):
        if usable and rec.split in parts:
            parts[rec.split][0].append(source.sequence(rec))
            parts[rec.split][1].append(index.class_index(rec.label))
    pairs = mirror_pairs(source.skeleton)
    mirror = mirror_permutation(Skeleton(source.skeleton.joints, (), tuple(pairs))) if pairs else None
    return parts, mirror, len(index.classes)


def baseline_accuracy(view: RunView) -> float:
    index = view.index
    test = view.split_rows("test")
    labels = np.array([index.class_index(r.label) for r in index.records])
    pred = load_arrays(view.artifact("features", "head_predictions.npz"))["pred"]
    keep = test & (pred >= 0)
    return float((pred[keep] == labels[keep]).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished runs with the pose-encoder backbone")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the plain TCN (default 1)")
    ap.add_argument("--json", type=Path, help="write every row here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    print("| run | seed | baseline (pose encoder) | plain TCN | plain − baseline | minutes (wall / CPU) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for run in args.runs:
        try:
            view = RunView(run).require("features", why="the plain TCN is compared with the run's baseline")
            parts, mirror, n_classes = run_sequences(view)
            base = baseline_accuracy(view)
        except (DanceError, OSError, KeyError) as e:
            print(f"{run}: skipped ({e})", file=sys.stderr)
            continue
        (x_tr, y_tr), (x_te, y_te) = parts["train"], parts["test"]
        if not x_tr or not x_te:
            print(f"{run}: skipped (no {'training' if not x_tr else 'test'} videos with poses)", file=sys.stderr)
            continue
        for seed in args.seeds:
            wall, cpu = time.perf_counter(), time.process_time()
            net = train_plain(x_tr, np.array(y_tr), n_classes, mirror, seed)
            acc = float((predict(net, x_te) == np.array(y_te)).mean())
            minutes = ((time.perf_counter() - wall) / 60, (time.process_time() - cpu) / 60)
            rows.append({"run": str(run), "seed": seed, "baseline": base, "plain_tcn": acc,
                         "n_train": len(x_tr), "n_test": len(x_te), "wall_min": minutes[0], "cpu_min": minutes[1]})
            print(f"| {run} | {seed} | {100 * base:.1f} | {100 * acc:.1f} | {100 * (acc - base):+.1f} | "
                  f"{minutes[0]:.1f} / {minutes[1]:.1f} |", flush=True)
    if rows:
        diffs = [100 * (r["plain_tcn"] - r["baseline"]) for r in rows]
        spread = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
        print(f"\nplain TCN − pose-encoder baseline over {len(rows)} trainings: {statistics.mean(diffs):+.1f} ± "
              f"{spread:.1f} points")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
