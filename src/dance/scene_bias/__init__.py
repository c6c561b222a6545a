"""Action vs scene (issue 14): scene-biased synthetic videos, a small DEVIAS model and DEVIAS's evaluation.

- :mod:`dance.scene_bias.data`: actor × scene clips rendered with the synthetic figure of
  :mod:`dance.data.synthetic` (exact actor masks), a train split in which each action mostly appears in its own
  scene, and the test sets ``seen``, ``unseen`` (pairs never trained on), ``swapped`` (the seen clips on
  sinusoidal stripes, SCUBA's "Sin.") and ``scene_only`` (no actor); written as a normal video index.
- :mod:`dance.scene_bias.tokens`: the token backbones (a small video CNN for CPU work; VideoMAE, fine-tuned).
- :mod:`dance.scene_bias.model`: the DEVIAS slot model (Bae et al., ECCV 2024) and the one-token / two-token
  baselines on the same token backbone; saved as safetensors + JSON.
- :mod:`dance.scene_bias.train`: training (Hungarian slot matching, actor-mask scene mixing, action-mask decoder,
  attention guidance, slot-similarity loss) and evaluation (action / scene accuracy per set, harmonic mean).

Importing this package imports no heavy library (the CLI's help stays cheap); the modules import torch.
"""

from __future__ import annotations
