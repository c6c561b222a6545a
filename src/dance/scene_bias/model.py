"""DEVIAS (Bae et al., ECCV 2024) on a token backbone, with the paper's one-token and two-token baselines.

Everything shares one token backbone (:mod:`dance.scene_bias.tokens`: ``cnn``, a small video CNN for CPU work, the
default; ``videomae``, a fine-tuned VideoMAE for real use): a ``t × h × w`` grid of ``dim``-channel tokens.

- ``one_token``: mean of the tokens, an action head and a scene head (the paper's "One-Token").
- ``two_token``: two learned queries, each attending over the tokens (softmax over tokens), the first classified
  by the action head and the second by the scene head, in that fixed order ("Two-Token").
- ``devias``: the disentangling encoder: ``slots`` learned queries refined by slot attention (attention
  normalised over the slots, then over the tokens; ``iters`` iterations with shared weights; no GRU; a residual
  FFN; final LayerNorm; devias_spec.md §1.2); one shared head ``dim → A + S`` applied to every slot; the action
  mask decoder (an MLP from a slot to an ``h × w`` actor mask, as logits). Which slot is the action slot is
  decided by Hungarian matching in training (:mod:`dance.scene_bias.train`) and by the largest class
  probability at test (:meth:`SceneBiasModel.predict`).

Saved as ``model.safetensors`` (float32 tensors) + ``model.json`` (kind, settings, action and scene names, the
backbone's description when its settings do not say it all, and per tensor its shape and sha256); :func:`load_model`
refuses a file that does not match its JSON with a :class:`~dance.errors.ModelError` saying what differs.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from dance import __version__
from dance.errors import ModelError
from dance.model.io import tensor_digest
from dance.runs import atomic_write_json
from dance.scene_bias.tokens import TOKEN_BACKBONES, make_token_backbone

__all__ = ["KINDS", "ModelSettings", "SceneBiasModel", "SlotAttention", "load_model", "save_model"]

KINDS: tuple[str, ...] = ("one_token", "two_token", "devias")
FORMAT = 1


@dataclass(frozen=True)
class ModelSettings:
    """Architecture of a :class:`SceneBiasModel` (saved in ``model.json``)."""

    kind: str = "devias"
    n_actions: int = 6
    n_scenes: int = 6
    frames: int = 8
    size: int = 32
    dim: int = 48
    slots: int = 2
    iters: int = 3
    heads: int = 2
    dropout: float = 0.1
    backbone: str = "cnn"  # a token backbone of dance.scene_bias.tokens
    backbone_model: str = ""  # its weights (videomae: hub name or folder; '' for the default)

    def check(self) -> ModelSettings:
        if self.kind not in KINDS:
            raise ModelError(f"unknown scene-bias model kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.frames < 2 or self.frames % 2 or self.size < 8 or self.size % 4:
            raise ModelError(f"frames must be even and >= 2, size a multiple of 4 and >= 8 (got {self.frames}, "
                             f"{self.size})")
        if min(self.n_actions, self.n_scenes) < 1 or self.dim < 4 or self.heads < 1 or self.iters < 1:
            raise ModelError("n_actions, n_scenes, heads and iters must be >= 1 and dim >= 4")
        if self.kind == "devias" and self.slots < 2:
            raise ModelError(f"DEVIAS needs at least 2 slots, got {self.slots}")
        if self.backbone not in TOKEN_BACKBONES:
            raise ModelError(f"unknown token backbone {self.backbone!r}; known: {', '.join(TOKEN_BACKBONES)}")
        return self


class SlotAttention(nn.Module):
    """``slots`` learned queries refined over ``iters`` iterations with shared weights (devias_spec.md §1.2).

    ``normalise="slots"``: softmax over the slots, then each slot's weights renormalised over the tokens (slot
    competition, DEVIAS); ``"tokens"``: plain softmax over the tokens (cross-attention pooling, the two-token
    baseline). Returns the slots (B,K,D) and the last iteration's attention averaged over heads (B,K,N) (for
    ``"slots"`` the slot-softmax before the token renormalisation).
    """

    def __init__(self, dim: int, slots: int, iters: int, heads: int, normalise: str = "slots") -> None:
        super().__init__()
        if normalise not in ("slots", "tokens"):
            raise ValueError(f"normalise must be 'slots' or 'tokens', got {normalise!r}")
        self.iters, self.heads, self.normalise = iters, heads, normalise
        self.queries = nn.Parameter(torch.randn(1, slots, dim) * dim**-0.5)
        self.norm_tokens, self.norm_slots, self.norm_ff, self.norm_out = (nn.LayerNorm(dim) for _ in range(4))
        self.q = nn.Linear(dim, heads * dim, bias=False)
        self.k = nn.Linear(dim, heads * dim, bias=False)
        self.v = nn.Linear(dim, heads * dim, bias=False)
        self.o = nn.Linear(heads * dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, d = tokens.shape
        h = self.heads
        x = self.norm_tokens(tokens)
        k = self.k(x).view(b, n, h, d).transpose(1, 2)  # (B,H,N,D)
        v = self.v(x).view(b, n, h, d).transpose(1, 2)
        z = self.queries.expand(b, -1, -1)
        kk = z.shape[1]
        attn = tokens.new_zeros(b, h, kk, n)
        for _ in range(self.iters):
            q = self.q(self.norm_slots(z)).view(b, kk, h, d).transpose(1, 2)  # (B,H,K,D)
            logits = q @ k.transpose(-1, -2) / math.sqrt(d)  # (B,H,K,N)
            if self.normalise == "slots":
                attn = logits.softmax(dim=2)
                weights = attn / (attn.sum(dim=-1, keepdim=True) + 1e-7)
            else:
                attn = weights = logits.softmax(dim=-1)
            update = (weights @ v).transpose(1, 2).reshape(b, kk, h * d)
            z = z + self.o(update)
            z = z + self.ff(self.norm_ff(z))
        return self.norm_out(z), attn.mean(dim=1)


class SceneBiasModel(nn.Module):
    """One of :data:`KINDS` on a token backbone (see the module docstring). ``backbone_description``: the saved
    backbone's :meth:`description` when loading (its weights then come from the file), None to build it anew
    (pretrained weights, if it has any)."""

    def __init__(self, settings: ModelSettings, backbone_description: dict | None = None) -> None:
        super().__init__()
        s = self.settings = settings.check()
        self.backbone = make_token_backbone(s.backbone, s.frames, s.size, s.dim, s.backbone_model,
                                            backbone_description)
        self.grid: tuple[int, int, int] = tuple(self.backbone.grid)  # type: ignore[assignment]
        self.dropout = nn.Dropout(s.dropout)
        gh, gw = self.grid[1:]
        if s.kind == "one_token":
            self.action_head = nn.Linear(s.dim, s.n_actions)
            self.scene_head = nn.Linear(s.dim, s.n_scenes)
        elif s.kind == "two_token":
            self.pool = SlotAttention(s.dim, 2, 1, s.heads, normalise="tokens")
            self.action_head = nn.Linear(s.dim, s.n_actions)
            self.scene_head = nn.Linear(s.dim, s.n_scenes)
        else:
            self.slot_attention = SlotAttention(s.dim, s.slots, s.iters, s.heads, normalise="slots")
            self.head = nn.Linear(s.dim, s.n_actions + s.n_scenes)
            self.mask_decoder = nn.Sequential(nn.Linear(s.dim, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                              nn.Linear(64, gh * gw))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` (B,T,3,H,W) in [0, 1]. one_token / two_token: ``action``, ``scene`` logits; devias: ``logits``
        (B,K,A+S) of every slot, ``slots`` (B,K,D), ``attention`` (B,K,N) and ``mask`` logits (B,K,h·w)."""
        tokens = self.backbone(x)
        kind = self.settings.kind
        if kind == "one_token":
            pooled = self.dropout(tokens.mean(dim=1))
            return {"action": self.action_head(pooled), "scene": self.scene_head(pooled)}
        if kind == "two_token":
            z, attn = self.pool(tokens)
            z = self.dropout(z)
            return {"action": self.action_head(z[:, 0]), "scene": self.scene_head(z[:, 1]), "attention": attn}
        slots, attn = self.slot_attention(tokens)
        return {"logits": self.head(self.dropout(slots)), "slots": slots, "attention": attn,
                "mask": self.mask_decoder(slots)}

    def choose_slots(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Test-time slot choice (devias_spec.md §1.3): the action slot has the largest action-class probability,
        the scene slot the largest scene-class probability (they may coincide). Returns two (B,) indices."""
        a = self.settings.n_actions
        p = logits.softmax(dim=-1)
        return p[..., :a].amax(dim=-1).argmax(dim=1), p[..., a:].amax(dim=-1).argmax(dim=1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Action logits (B,A) and scene logits (B,S) of every kind (DEVIAS: from the chosen slots)."""
        out = self(x)
        if self.settings.kind != "devias":
            return out["action"], out["scene"]
        logits = out["logits"]
        act, scn = self.choose_slots(logits)
        rows = torch.arange(len(logits))
        a = self.settings.n_actions
        return logits[rows, act, :a], logits[rows, scn, a:]


# --------------------------------------------------------------------------------------------- save / load


def save_model(model: SceneBiasModel, folder: Path | str, actions: list[str], scenes: list[str],
               extra: dict | None = None) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/model.json``; returns the folder."""
    s = model.settings
    if len(actions) != s.n_actions or len(scenes) != s.n_scenes:
        raise ModelError(f"{len(actions)} action and {len(scenes)} scene names for a model with {s.n_actions} "
                         f"actions and {s.n_scenes} scenes")
    tensors = {k: v.detach().cpu().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "version": __version__, "settings": asdict(s), "actions": list(actions),
            "scenes": list(scenes), "extra": extra or {}, "backbone": model.backbone.description(),
            "tensors": {k: {"shape": list(t.shape), "sha256": tensor_digest(t)} for k, t in tensors.items()}}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".model.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(folder / "model.safetensors")
    atomic_write_json(folder / "model.json", meta)
    return folder


def load_model(folder: Path | str) -> tuple[SceneBiasModel, dict]:
    """The model saved in ``folder`` (in eval mode) and its ``model.json``.

    :class:`ModelError` naming the file and the problem when a file is missing or unreadable, the settings are
    unknown, or the tensors differ from what the JSON records (names, shapes or sha256: a tampered or mismatched
    file).
    """
    folder = Path(folder)
    meta_path, st_path = folder / "model.json", folder / "model.safetensors"
    for p in (meta_path, st_path):
        if not p.is_file():
            raise ModelError(f"{folder} is not a saved scene-bias model: {p.name} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{meta_path}: cannot read ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("settings"), dict) \
            or not isinstance(meta.get("tensors"), dict):
        raise ModelError(f"{meta_path}: not a scene-bias model description (format {FORMAT} with settings and "
                         "tensors)")
    known = {f.name for f in fields(ModelSettings)}
    unknown = sorted(set(meta["settings"]) - known)
    if unknown:
        raise ModelError(f"{meta_path}: unknown settings {', '.join(unknown)} (written by a newer dance?)")
    try:
        settings = ModelSettings(**meta["settings"]).check()
    except TypeError as e:
        raise ModelError(f"{meta_path}: bad settings ({e})") from None
    if len(meta.get("actions", [])) != settings.n_actions or len(meta.get("scenes", [])) != settings.n_scenes:
        raise ModelError(f"{meta_path}: the action / scene names do not match n_actions / n_scenes")
    try:
        tensors = load_file(str(st_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelError(f"{st_path}: not a readable safetensors file ({str(e).strip() or type(e).__name__})") \
            from None
    if settings.backbone != "cnn" and not isinstance(meta.get("backbone"), dict):
        raise ModelError(f"{meta_path}: no description of its '{settings.backbone}' backbone to rebuild it from")
    try:
        model = SceneBiasModel(settings, meta.get("backbone"))
    except (TypeError, ValueError, KeyError) as e:
        raise ModelError(f"{meta_path}: cannot rebuild the '{settings.backbone}' backbone ({e})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected or set(meta["tensors"]) != set(expected):
        raise ModelError(f"{st_path}: does not match a '{settings.kind}' model of {meta_path.name}"
                         + (f"; missing {', '.join(missing[:5])}" if missing else "")
                         + (f"; unexpected {', '.join(unexpected[:5])}" if unexpected else ""))
    bad = []
    for name, want in expected.items():
        got = tensors[name]
        rec = meta["tensors"][name]
        if tuple(got.shape) != tuple(want.shape) or list(got.shape) != rec.get("shape") or got.dtype != torch.float32:
            bad.append(f"{name} has shape {list(got.shape)} {got.dtype}, expected {list(want.shape)} float32")
        elif tensor_digest(got) != rec.get("sha256"):
            bad.append(f"{name} does not match its sha256 in {meta_path.name} (the file was changed)")
    if bad:
        raise ModelError(f"{st_path}: " + "; ".join(bad[:3]) + (f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""))
    model.load_state_dict(tensors)
    return model.eval(), meta
