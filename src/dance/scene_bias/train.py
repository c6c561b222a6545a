"""Training and evaluation of the scene-bias models (devias_spec.md §1.3–1.7 and §2.2, scaled to CPU).

Training a ``devias`` model, per batch:

1. **Actor-mask scene mixing** (§1.6): with probability ``mix_prob`` a clip ``i`` becomes
   ``m_i ⊙ x_i + (1 − m_i) ⊙ x_π(i)`` (π a random permutation of the batch, ``m_i`` the actor mask of each frame):
   the action label of ``i`` is kept, the scene label becomes that of ``π(i)`` (whose own actor stays visible
   outside ``m_i``, as in DEVIAS).
2. **Hungarian matching** (§1.3): per clip, the cost of giving slot ``k`` the action target is ``−p_k[y_a]`` and
   the scene target ``−p_k[A + y_s]`` (``p_k`` = softmax of the shared head over all A + S classes);
   :func:`match_slots` solves it with ``scipy.optimize.linear_sum_assignment``.
3. Losses (§1.7): cross-entropy of the action slot against ``y_a`` and of the scene slot against ``A + y_s``
   (over all A + S logits; scene targets are the scene labels, or a scene teacher's probabilities when the
   training clips carry them, :mod:`dance.scene_bias.teacher`, matched by their most likely scene), ``w_cos`` ×
   the mean off-diagonal cosine similarity of the slots, ``w_amd`` × BCE of the action slot's decoded mask against
   the actor fraction of each token cell (clip level), ``w_ag`` × MSE of the action slot's attention against the
   actor fraction of each token (attention guidance).

The baselines are trained with cross-entropy on their action and scene heads (mixing too when asked, as the
spec's "baseline + mask mixing" ablation). AdamW with a one-cycle schedule; the torch thread count is
:func:`dance.threads.torch_threads` of ``threads`` (``threads=0``: re-counted after each epoch,
:class:`dance.threads.Rebalance`).

Evaluation (§2.2): action top-1 on ``seen``, ``unseen`` and ``swapped``; scene top-1 (top-5 when there are more
than 10 scenes) on ``seen``, ``unseen`` and ``scene_only``; ``hm`` = harmonic mean of action seen, action unseen,
scene seen and scene unseen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from dance.encoders.hf import torch_device
from dance.errors import ConfigError
from dance.scene_bias.data import ClipSet
from dance.scene_bias.model import ModelSettings, SceneBiasModel
from dance.threads import Rebalance, torch_threads

__all__ = ["TrainSettings", "evaluate", "harmonic_mean", "match_slots", "model_inputs", "train_model"]


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation and loss settings (defaults: the spec's pilot, §4c)."""

    epochs: int = 12
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    mix_prob: float | None = None  # None: 0.5 for devias, 0 for the baselines
    w_cos: float = 1.0
    w_amd: float = 1.0
    w_ag: float = 5.0
    seed: int = 0
    threads: int = 0  # 0: the cores not busy (dance.threads)
    device: str = "cpu"  # where the model trains (cpu, cuda, cuda:1, mps); the trained model comes back on the CPU

    def check(self) -> TrainSettings:
        if self.epochs < 1 or self.batch < 2 or self.lr <= 0:
            raise ConfigError("epochs must be >= 1, batch >= 2 and lr > 0")
        if self.mix_prob is not None and not 0 <= self.mix_prob <= 1:
            raise ConfigError(f"mix_prob must be in [0, 1], got {self.mix_prob}")
        return self

    def mixing(self, kind: str) -> float:
        return (0.5 if kind == "devias" else 0.0) if self.mix_prob is None else float(self.mix_prob)


def model_inputs(x: np.ndarray) -> torch.Tensor:
    """uint8 clips (B,T,H,W,3) → float (B,T,3,H,W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 1, 4, 2, 3).float().div_(255.0)


def match_slots(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Hungarian matching of slots to targets, per clip.

    ``probs`` (B,K,C): class probabilities of every slot; ``targets`` (B,M) with M <= K: the class index of each
    target (here: the action class and A + the scene class). Minimises ``−Σ p[slot, target]``; returns (B,M): the
    slot given to each target.
    """
    probs, targets = np.asarray(probs), np.asarray(targets)
    out = np.empty(targets.shape, np.int64)
    for b in range(len(probs)):
        cost = -probs[b][:, targets[b]]  # (K, M)
        rows, cols = linear_sum_assignment(cost)
        out[b, cols] = rows
    return out


def _token_targets(masks: torch.Tensor, grid: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Actor fraction per token (B, t·h·w) and per spatial cell of the whole clip (B, h·w) from (B,T,H,W)."""
    t, h, w = grid
    per_token = F.adaptive_avg_pool3d(masks.unsqueeze(1), (t, h, w)).flatten(1)
    per_cell = F.adaptive_avg_pool2d(masks.mean(dim=1, keepdim=True), (h, w)).flatten(1)
    return per_token, per_cell


def _mix(x: torch.Tensor, masks: torch.Tensor, scene: torch.Tensor, p: float,
         gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Actor-mask scene mixing (module docstring, step 1). ``scene``: labels (B,) or a teacher's probabilities
    (B, S); a mixed clip takes its background clip's."""
    b = len(x)
    chosen = torch.rand(b, generator=gen) < p
    if p <= 0 or not bool(chosen.any()):
        return x, scene
    perm = torch.randperm(b, generator=gen)
    m = masks.unsqueeze(2)  # (B,T,1,H,W)
    mixed = m * x + (1 - m) * x[perm]
    sel = chosen.view(b, 1, 1, 1, 1)
    which = chosen.view(b, *([1] * (scene.dim() - 1)))
    return torch.where(sel, mixed, x), torch.where(which, scene[perm], scene)


def _devias_loss(model: SceneBiasModel, out: dict[str, torch.Tensor], action: torch.Tensor, scene: torch.Tensor,
                 masks: torch.Tensor, ts: TrainSettings) -> dict[str, torch.Tensor]:
    s = model.settings
    logits = out["logits"]
    b = len(logits)
    soft = scene.dim() == 2  # a teacher's probabilities: matched by their most likely scene
    targets = torch.stack([action, (scene.argmax(dim=1) if soft else scene) + s.n_actions], dim=1)
    with torch.no_grad():
        slot = torch.from_numpy(match_slots(logits.softmax(-1).cpu().numpy(), targets.cpu().numpy())).to(logits.device)
    rows = torch.arange(b, device=logits.device)
    a_slot, s_slot = slot[:, 0], slot[:, 1]
    scene_target = torch.cat([scene.new_zeros(b, s.n_actions), scene], dim=1) if soft else targets[:, 1]
    losses = {"action": F.cross_entropy(logits[rows, a_slot], action),
              "scene": F.cross_entropy(logits[rows, s_slot], scene_target)}
    z = F.normalize(out["slots"], dim=-1)
    sim = z @ z.transpose(1, 2)
    k = sim.shape[1]
    off = ~torch.eye(k, dtype=torch.bool, device=sim.device)
    losses["cos"] = ts.w_cos * sim[:, off].mean()
    per_token, per_cell = _token_targets(masks, model.grid)
    if ts.w_amd > 0:
        losses["amd"] = ts.w_amd * F.binary_cross_entropy_with_logits(out["mask"][rows, a_slot], per_cell)
    if ts.w_ag > 0:
        losses["ag"] = ts.w_ag * F.mse_loss(out["attention"][rows, a_slot], per_token)
    return losses


def train_model(settings: ModelSettings, train: ClipSet, ts: TrainSettings | None = None,
                progress: Callable[[int, int, dict], None] | None = None) -> tuple[SceneBiasModel, dict]:
    """Train a model of ``settings.kind`` on ``train``; returns it (eval mode) and a log (losses per epoch,
    wall and CPU seconds, threads)."""
    ts = (ts or TrainSettings()).check()
    settings = settings.check()
    if (train.action < 0).any() or (train.scene_probs is None and (train.scene < 0).any()):
        raise ConfigError("every training clip needs an action and a scene label (or a scene teacher's "
                          "probabilities)")
    if train.scene_probs is not None and train.scene_probs.shape != (len(train), settings.n_scenes):
        raise ConfigError(f"the teacher's scene probabilities have shape {train.scene_probs.shape}, expected "
                          f"({len(train)}, {settings.n_scenes})")
    if train.x.shape[1] != settings.frames or train.x.shape[2] != settings.size:
        raise ConfigError(f"the clips have {train.x.shape[1]} frames of {train.x.shape[2]} px, the model expects "
                          f"{settings.frames} of {settings.size}")
    mix_p = ts.mixing(settings.kind)
    device = torch_device(ts.device)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with torch_threads(ts.threads) as n_threads:
        rebalance = Rebalance(ts.threads)  # threads=0: re-counted after each epoch
        torch.manual_seed(ts.seed)
        gen = torch.Generator().manual_seed(ts.seed)
        model = SceneBiasModel(settings).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=ts.lr, weight_decay=ts.weight_decay)
        n = len(train)
        steps_per_epoch = max(1, n // ts.batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=ts.lr, total_steps=ts.epochs * steps_per_epoch,
                                                    pct_start=0.15)
        masks_all = torch.from_numpy(train.masks)
        action_all = torch.from_numpy(train.action)
        scene_all = torch.from_numpy(train.scene if train.scene_probs is None else train.scene_probs)
        history = []
        model.train()
        for epoch in range(ts.epochs):
            order = torch.randperm(n, generator=gen)
            sums: dict[str, float] = {}
            for step in range(steps_per_epoch):
                idx = order[step * ts.batch:(step + 1) * ts.batch]
                x = model_inputs(train.x[idx.numpy()])
                masks, action, scene = masks_all[idx], action_all[idx], scene_all[idx]
                x, scene = _mix(x, masks, scene, mix_p, gen)  # on the CPU, from the seeded generator
                x, masks, action, scene = (t.to(device) for t in (x, masks, action, scene))
                out = model(x)
                if settings.kind == "devias":
                    losses = _devias_loss(model, out, action, scene, masks, ts)
                else:
                    losses = {"action": F.cross_entropy(out["action"], action),
                              "scene": F.cross_entropy(out["scene"], scene)}
                loss = sum(losses.values())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
            history.append({k: round(v / steps_per_epoch, 4) for k, v in sums.items()})
            rebalance.step()
            if progress is not None:
                progress(epoch + 1, ts.epochs, history[-1])
    log = {"kind": settings.kind, "epochs": ts.epochs, "mix_prob": mix_p, "threads": n_threads,
           "threads_changed": rebalance.changes, "device": str(device), "history": history,
           "wall_s": round(time.perf_counter() - wall0, 1), "cpu_s": round(time.process_time() - cpu0, 1)}
    return model.cpu().eval(), log


def _accuracy(logits: torch.Tensor, labels: np.ndarray, k: int = 1) -> float:
    keep = labels >= 0
    if not keep.any():
        return float("nan")
    top = logits[torch.from_numpy(keep)].topk(min(k, logits.shape[1]), dim=1).indices.numpy()
    return float((top == labels[keep][:, None]).any(axis=1).mean())


@torch.no_grad()
def predict(model: SceneBiasModel, clips: ClipSet, batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Action and scene logits of every clip."""
    model.eval()
    acts, scns = [], []
    for i in range(0, len(clips), batch):
        a, s = model.predict(model_inputs(clips.x[i:i + batch]))
        acts.append(a)
        scns.append(s)
    return torch.cat(acts), torch.cat(scns)


def harmonic_mean(values: list[float]) -> float:
    """Harmonic mean (0 when any value is 0)."""
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1.0 / v for v in values)


def evaluate(model: SceneBiasModel, sets: Mapping[str, ClipSet], threads: int = 0) -> dict[str, float]:
    """DEVIAS's metrics as fractions: ``action_<set>`` for seen / unseen / swapped, ``scene_<set>`` for seen /
    unseen (``scene_only`` for the scene-only set) (top-1, or top-5 with more than 10 scenes), and ``hm``."""
    k_scene = 5 if model.settings.n_scenes > 10 else 1
    out: dict[str, float] = {}
    with torch_threads(threads):
        for name, clips in sets.items():
            if name == "train":
                continue
            a, s = predict(model, clips)
            if name != "scene_only":
                out[f"action_{name}"] = _accuracy(a, clips.action)
            if name != "swapped":
                out["scene_only" if name == "scene_only" else f"scene_{name}"] = _accuracy(s, clips.scene, k_scene)
    parts = [out.get(k) for k in ("action_seen", "action_unseen", "scene_seen", "scene_unseen")]
    if all(p is not None for p in parts):
        out["hm"] = harmonic_mean([float(p) for p in parts])  # type: ignore[arg-type]
    out["scene_top_k"] = k_scene
    return out
