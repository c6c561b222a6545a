"""``pose-encoder``: a skeleton-sequence encoder trained on the training split, then frozen.

No pretrained video backbone runs on a machine without hub access, so for pose datasets the backbone is a small
temporal convolutional network over joint coordinates, trained here with the action labels (the paper's protocol:
the baseline and DANCE share one frozen backbone; the encoder + its linear head *is* the baseline).

Why a temporal CNN: poses are few numbers per frame (J × 2), actions differ mostly in how joints move over time,
and a TCN with residual blocks trains in seconds on a CPU and is robust to missing joints (their score is an input
channel). Graph convolutions (ST-GCN) would need a fixed joint graph per layout; the TCN works with any layout.

Input per frame: coordinates centred on the visible joints' mean and scaled by the sequence's extent, their
velocities, and joint scores; and, when the layout has edges, the bone vectors (child minus parent joint, zero
when either end is missing) and their velocities — the "bone stream" of two-stream skeleton models (2s-AGCN, Shi et
al., CVPR 2019), which makes limb directions and lengths explicit (what they did on Penn Action: README). The
sequence is resampled to ``length`` frames. Augmentations while training:
horizontal flip with left/right joint swap, random scale, small shift, random temporal crop (60–100 %), and a
random camera turn: yaw (the x axis foreshortened by the cosine of an angle up to ``yaw`` degrees, a camera moved
around the person, to first order for a 2D projection) and roll (an in-plane rotation up to ``roll`` degrees),
standing in for the viewpoints the training videos lack (docs/pose_accuracy.md, "Across camera views").
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from dance.encoders.batches import in_fixed_batches
from dance.encoders.registry import register_backbone
from dance.errors import ModelError
from dance.motion.poses import PoseSequence, Skeleton
from dance.motion.skeletons import mirror_pairs, mirror_permutation


def resample(x: np.ndarray, length: int, start: float = 0.0, stop: float = 1.0) -> np.ndarray:
    """Linearly resample the first axis of x (T, ...) to ``length`` steps over the fraction [start, stop]."""
    t = len(x)
    if t == 1:
        return np.repeat(x, length, axis=0)
    pos = np.linspace(start * (t - 1), stop * (t - 1), length)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo).reshape(-1, *([1] * (x.ndim - 1)))
    return (x[lo] * (1 - w) + x[hi] * w).astype(np.float32)


def camera_turn(yaw: float, roll: float) -> np.ndarray:
    """The 2 × 2 map of a camera turned by ``yaw`` degrees around the person (x foreshortened by cos yaw: the
    first-order effect on a 2D projection, depth being unknown) and rolled by ``roll`` degrees (in-plane)."""
    a, r = np.deg2rad(yaw), np.deg2rad(roll)
    rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    return (rot @ np.diag([np.cos(a), 1.0])).astype(np.float32)


def pose_input(seq: PoseSequence, length: int, crop: tuple[float, float] = (0.0, 1.0), mirror: np.ndarray | None = None,
               scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0), edges: np.ndarray | None = None,
               turn: np.ndarray | None = None) -> np.ndarray:
    """Network input (channels = J·5 + E·4, length): normalised x, y, their velocities, scores, and for each of
    the E ``edges`` (pairs of joint indices) the bone vector and its velocity. ``turn``: a 2 × 2 matrix applied to
    the normalised coordinates before scale and shift (:func:`camera_turn`)."""
    kp = resample(seq.keypoints.astype(np.float32), length, *crop)
    sc = resample(seq.scores.astype(np.float32), length, *crop)
    w = (sc > 0).astype(np.float32)
    if w.sum() == 0:
        w = np.ones_like(w)
    centre = (kp * w[..., None]).sum(axis=(0, 1)) / w.sum()
    kp = kp - centre
    present = kp[w > 0]
    extent = float(np.abs(present).max()) if len(present) else 1.0
    kp = kp / max(extent, 1e-6)
    if mirror is not None:
        kp = kp[:, mirror] * np.array([-1.0, 1.0], np.float32)
        sc = sc[:, mirror]
    if turn is not None:
        kp = kp @ np.asarray(turn, np.float32).T
    kp = kp * scale + np.asarray(shift, np.float32)
    vel = np.diff(kp, axis=0, prepend=kp[:1])
    parts = [kp.reshape(length, -1), vel.reshape(length, -1) * 4.0, sc]
    if edges is not None and len(edges):
        both = (sc[:, edges[:, 0]] > 0) & (sc[:, edges[:, 1]] > 0)
        bone = (kp[:, edges[:, 1]] - kp[:, edges[:, 0]]) * both[..., None]
        parts += [bone.reshape(length, -1), np.diff(bone, axis=0, prepend=bone[:1]).reshape(length, -1) * 4.0]
    return np.concatenate(parts, axis=1).T.astype(np.float32)


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, 5, stride=stride, padding=2), nn.BatchNorm1d(c_out), nn.ReLU(),
            nn.Dropout(dropout), nn.Conv1d(c_out, c_out, 5, padding=2), nn.BatchNorm1d(c_out))
        self.skip = nn.Identity() if c_in == c_out and stride == 1 else nn.Sequential(
            nn.Conv1d(c_in, c_out, 1, stride=stride), nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class TCN(nn.Module):
    """Temporal CNN: stem → residual blocks (downsampling) → mean+max pooling → ``dim`` features → head."""

    def __init__(self, c_in: int, n_classes: int, width: int = 128, dim: int = 256, dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(c_in, width, 1), nn.BatchNorm1d(width), nn.ReLU())
        self.blocks = nn.Sequential(_Block(width, width, 1, dropout), _Block(width, width * 2, 2, dropout),
                                    _Block(width * 2, width * 2, 1, dropout), _Block(width * 2, dim, 2, dropout))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))
        return torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


#: which epoch's weights training keeps: the last (the one-cycle schedule has annealed the learning rate to ~0), or
#: the best validation accuracy's (a noisy choice on small validation splits: docs/pose_accuracy.md, "Settings chosen
#: inside the run")
KEEP = ("last", "best")


class PoseEncoder:
    """Train a TCN on pose sequences with action labels, then use it frozen as a feature extractor."""

    name = "pose-encoder"
    input = "poses"
    #: sequences per forward pass when encoding or predicting, whatever the caller's list: a sequence's features
    #: depend on it alone (:mod:`dance.encoders.batches`)
    forward_batch = 32

    def __init__(self, joints: tuple[str, ...] | list[str], n_classes: int, length: int = 64, width: int = 128,
                 dim: int = 256, epochs: int = 120, lr: float = 2e-3, weight_decay: float = 1e-3, batch_size: int = 64,
                 seed: int = 0, device: str = "cpu", flip_average: bool = True,
                 edges: tuple[tuple[int, int], ...] | list | None = None,
                 mirror: tuple[tuple[int, int], ...] | list | None = None, yaw: float = 0.0, roll: float = 0.0,
                 keep: str = "last"):
        if keep not in KEEP:
            raise ModelError(f"keep must be one of {', '.join(KEEP)}, got '{keep}'")
        self.keep = keep
        self.joints, self.n_classes, self.length = tuple(joints), n_classes, length
        self.yaw, self.roll = float(yaw), float(roll)
        self.edges = tuple((int(a), int(b)) for a, b in (edges or ()))
        bad = [e for e in self.edges if not (0 <= min(e) and max(e) < len(self.joints))]
        if bad:
            raise ModelError(f"skeleton edges {bad} refer to joints outside the {len(self.joints)} joints")
        self._edges = np.array(self.edges, dtype=np.int64).reshape(-1, 2)
        self.flip_average = flip_average
        self.width, self.feat_dim, self.epochs, self.lr = width, dim, epochs, lr
        self.weight_decay, self.batch_size, self.seed = weight_decay, batch_size, seed
        self.device = torch.device(device)
        pairs = mirror_pairs(Skeleton(self.joints, (), tuple((int(a), int(b)) for a, b in (mirror or ()))))
        self.mirror_pairs = tuple(pairs)
        # no left/right pair: a flipped pose cannot be made, so neither flip augmentation nor flip averaging
        self.mirror = mirror_permutation(Skeleton(self.joints, (), self.mirror_pairs)) if pairs else None
        torch.manual_seed(seed)
        self.net = TCN(len(self.joints) * 5 + len(self.edges) * 4, n_classes, width, dim).to(self.device)
        self.dim = 2 * dim
        self.history: list[dict[str, float]] = []

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "joints": list(self.joints), "length": self.length, "width": self.width,
                "dim": self.feat_dim, "epochs": self.epochs, "lr": self.lr, "weight_decay": self.weight_decay,
                "batch_size": self.batch_size, "seed": self.seed, "flip_average": self.flip_average,
                "edges": [list(e) for e in self.edges], "mirror": [list(p) for p in self.mirror_pairs],
                "yaw": self.yaw, "roll": self.roll, "keep": self.keep}

    def _augment(self, seq: PoseSequence, rng: np.random.Generator) -> np.ndarray:
        frac = rng.uniform(0.6, 1.0)
        start = rng.uniform(0.0, 1.0 - frac)
        flip = self.mirror is not None and rng.random() < 0.5
        scale, shift = float(rng.uniform(0.85, 1.15)), tuple(rng.normal(0, 0.05, 2))
        turn = None
        if self.yaw or self.roll:  # drawn after the others: without a turn, the draws of earlier versions
            turn = camera_turn(rng.uniform(-self.yaw, self.yaw), rng.uniform(-self.roll, self.roll))
        return pose_input(seq, self.length, (start, start + frac), self.mirror if flip else None,
                          scale=scale, shift=shift, edges=self._edges, turn=turn)

    def _batch_inputs(self, seqs: list[PoseSequence], mirrored: bool = False) -> torch.Tensor:
        m = self.mirror if mirrored else None
        return torch.from_numpy(np.stack([pose_input(s, self.length, mirror=m, edges=self._edges)
                                          for s in seqs])).to(self.device)

    def _views(self, seqs: list[PoseSequence]) -> list[torch.Tensor]:
        """The inputs seen at test time: the sequence, and its mirror image when ``flip_average`` is on."""
        flip = self.flip_average and self.mirror is not None
        return [self._batch_inputs(seqs)] + ([self._batch_inputs(seqs, mirrored=True)] if flip else [])

    @torch.no_grad()
    def _frozen(self, seqs: list[PoseSequence], forward: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``forward`` (the network's features or logits) of each sequence averaged over its views, in forward
        passes of :attr:`forward_batch` sequences (:mod:`dance.encoders.batches`)."""
        self.net.eval()
        return torch.stack([in_fixed_batches(forward, v, self.forward_batch) for v in self._views(seqs)]).mean(dim=0)

    def fit(self, seqs: list[PoseSequence], y: np.ndarray, val_seqs: list[PoseSequence], y_val: np.ndarray,
            progress: Callable[[int], None] | None = None) -> PoseEncoder:
        """Train with cross-entropy (label smoothing 0.1), AdamW and a one-cycle schedule; keeps the last epoch's
        weights (``keep="last"``) or those of the best validation accuracy (``"best"``). Validation accuracy is
        recorded every epoch in :attr:`history` either way."""
        if len(seqs) == 0:
            raise ModelError("the pose encoder needs training sequences")
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        y_t = torch.from_numpy(np.asarray(y, np.int64)).to(self.device)
        y_val = np.asarray(y_val)
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps = self.epochs * int(np.ceil(len(seqs) / self.batch_size))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=steps, pct_start=0.15)
        best, best_state = -1.0, None
        for epoch in range(self.epochs):
            self.net.train()
            order = rng.permutation(len(seqs))
            total = 0.0
            for i in range(0, len(order), self.batch_size):
                idx = order[i:i + self.batch_size]
                if len(idx) < 2:
                    continue
                xb = torch.from_numpy(np.stack([self._augment(seqs[j], rng) for j in idx])).to(self.device)
                loss = nn.functional.cross_entropy(self.net(xb), y_t[idx], label_smoothing=0.1)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            self.net.eval()
            val_acc = float((self.predict_poses(val_seqs) == y_val).mean()) if len(val_seqs) else 0.0
            self.history.append({"epoch": epoch + 1, "loss": total / len(seqs), "val_accuracy": val_acc})
            if self.keep == "best" and val_acc >= best:
                best, best_state = val_acc, copy.deepcopy(self.net.state_dict())
            if progress is not None:
                progress(1)
        if self.keep == "best":
            self.net.load_state_dict(best_state)
        self.net.eval()
        return self

    def encode_poses(self, seqs: list[PoseSequence]) -> np.ndarray:
        """(N, dim) frozen penultimate features (averaged over the sequence and its mirror image)."""
        if not seqs:
            return np.zeros((0, self.dim), np.float32)
        return self._frozen(seqs, self.net.features).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def encode_augmented(self, seqs: list[PoseSequence], views: int, seed: int = 0) -> np.ndarray:
        """(views, N, dim) frozen features of ``views`` random training augmentations of each sequence (crop,
        flip, scale, shift, drawn from ``seed``; one view each, no flip averaging): the train stage fits DANCE's
        layers on them beside the clean features, as the encoder's own head was trained (docs/pose_accuracy.md,
        "Across camera views")."""
        out = np.zeros((views, len(seqs), self.dim), np.float32)
        if not seqs or views == 0:
            return out
        rng = np.random.default_rng(seed)
        self.net.eval()
        chunk = 16 * self.forward_batch  # inputs built a chunk at a time: memory flat in the number of sequences
        for v in range(views):
            for start in range(0, len(seqs), chunk):
                part = seqs[start:start + chunk]
                xb = torch.from_numpy(np.stack([self._augment(s, rng) for s in part])).to(self.device)
                out[v, start:start + len(part)] = in_fixed_batches(self.net.features, xb,
                                                                   self.forward_batch).cpu().numpy()
        return out

    @torch.no_grad()
    def class_logits(self, features: np.ndarray) -> np.ndarray:
        """(..., classes) logits of the encoder's own head for frozen features (..., dim) from
        :meth:`encode_poses` or :meth:`encode_augmented`: the head is linear, so on flip-averaged features these are
        the flip-averaged logits the baseline predicts from."""
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(self.device)
        self.net.eval()
        return self.net.head(x).cpu().numpy().astype(np.float32)

    def predict_poses(self, seqs: list[PoseSequence]) -> np.ndarray:
        """Class indices from the encoder's own linear head (the baseline without interpretability)."""
        if not seqs:
            return np.zeros(0, np.int64)
        return self._frozen(seqs, self.net).argmax(1).cpu().numpy()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.net.load_state_dict(state)
        self.net.eval()


def load_pose_encoder(folder: Path, n_classes: int, device: str = "cpu") -> PoseEncoder:
    """The trained encoder a features stage saved in ``folder`` (``backbone.json`` + ``backbone.safetensors``),
    rebuilt with the settings it was trained with (runs from before bone inputs have no ``edges``: none)."""
    meta_path, weights = folder / "backbone.json", folder / "backbone.safetensors"
    for p in (meta_path, weights):
        if not p.is_file():
            raise ModelError(f"{p} is missing: the features stage did not save the pose backbone")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {meta_path}: {e}") from None
    if not isinstance(meta, dict) or meta.get("name") != PoseEncoder.name:
        name = meta.get("name") if isinstance(meta, dict) else None
        raise ModelError(f"{meta_path} describes backbone '{name}', not '{PoseEncoder.name}'")
    # backbone.json's "dim" is the feature size: mean and max pooling of the last block's channels
    encoder = PoseEncoder(meta["joints"], n_classes, length=meta["length"], width=meta["width"],
                          dim=meta["dim"] // 2, seed=meta["seed"], device=device,
                          flip_average=meta.get("flip_average", True), edges=meta.get("edges", ()),
                          mirror=meta.get("mirror"), yaw=meta.get("yaw", 0.0), roll=meta.get("roll", 0.0),
                          keep=meta.get("keep", "best"))  # runs from before the setting kept the best epoch
    try:
        encoder.load_state_dict(load_file(str(weights)))
    except (RuntimeError, OSError, ValueError) as e:
        raise ModelError(f"{weights} does not match {meta_path}: {e}") from None
    return encoder


@register_backbone("pose-encoder", "temporal CNN over 2D pose sequences, trained on the run's training split",
                   pretrained=False, input="poses", load=load_pose_encoder)
def _make(joints: tuple[str, ...], n_classes: int, length: int = 64, epochs: int = 60, seed: int = 0,
          device: str = "cpu", edges: tuple[tuple[int, int], ...] = (), bones: bool = True,
          mirror: tuple[tuple[int, int], ...] = (), yaw: float = 0.0, roll: float = 0.0,
          keep: str = "last") -> PoseEncoder:
    return PoseEncoder(joints, n_classes, length=length, epochs=epochs, seed=seed, device=device,
                       edges=edges if bones else (), mirror=mirror, yaw=yaw, roll=roll, keep=keep)
