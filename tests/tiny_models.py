"""Tiny, randomly initialised Hugging Face models saved to folders, standing in for real checkpoints in tests.

Each ``save_tiny_*`` function writes a folder laid out like a real hub checkpoint (``config.json``,
``model.safetensors``, and for dual encoders a tokenizer and a ``preprocessor_config.json``), so the code under
test loads it through exactly the path it uses for a downloaded model. Hidden size 32, one layer, 32×32 images:
building and loading one takes well under a second (after ``import transformers``).

The tokenizer is a word-level ``tokenizers`` model over :data:`WORDS` (other words map to ``<unk>``) that adds
``<bos>`` / ``<eos>`` around the text; ``<eos>`` has the largest id, as in CLIP's vocabulary, because CLIP and
X-CLIP pool the text at the position of the largest (X-CLIP) or first ``eos`` (CLIP) token id.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = ("a", "photo", "of", "the", "person", "ball", "dog", "field", "gym", "indoor", "outdoor", "water",
         "bicycle", "horse", "grass", "rope", "pool", "road", "bar", "stick")
SPECIAL = ("<pad>", "<unk>")
VOCAB = {t: i for i, t in enumerate(SPECIAL + WORDS + ("<bos>", "<eos>"))}
PAD, BOS, EOS = VOCAB["<pad>"], VOCAB["<bos>"], VOCAB["<eos>"]
MAX_TOKENS = 16
IMAGE_SIZE = 32
N_FRAMES = 4

_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
               image_size=IMAGE_SIZE, patch_size=16)
_TEXT = dict(vocab_size=len(VOCAB), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
             num_attention_heads=2, max_position_embeddings=MAX_TOKENS, pad_token_id=PAD, bos_token_id=BOS,
             eos_token_id=EOS)


def save_tiny_tokenizer(folder: Path) -> Path:
    """A word-level fast tokenizer over :data:`VOCAB`, saved so ``AutoTokenizer.from_pretrained`` reads it."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(dict(VOCAB), unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>",
                                                       special_tokens=[("<bos>", BOS), ("<eos>", EOS)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>",
                                   eos_token="<eos>", model_max_length=MAX_TOKENS)
    folder = Path(folder)
    fast.save_pretrained(str(folder))
    return folder


def _write_preprocessor(folder: Path, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    cfg = {"image_mean": list(mean), "image_std": list(std), "do_normalize": True, "do_rescale": True,
           "rescale_factor": 1 / 255, "size": {"shortest_edge": IMAGE_SIZE},
           "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE}}
    (folder / "preprocessor_config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")


def _save(model: torch.nn.Module, folder: Path) -> Path:
    from dance.encoders.hf import quiet_transformers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(str(folder))
    return folder


def save_tiny_videomae(folder: Path, classifier: bool = False, seed: int = 0, num_labels: int = 3) -> Path:
    """A tiny ``VideoMAEModel`` (or a ``VideoMAEForVideoClassification`` with ``classifier``) in ``folder``.

    4 frames of 32×32, tubelets 2×16×16 (8 tokens), hidden size 32; no preprocessor config (ImageNet stats).
    """
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEModel

    cfg = VideoMAEConfig(image_size=IMAGE_SIZE, patch_size=16, num_frames=N_FRAMES, tubelet_size=2, hidden_size=32,
                         num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, num_labels=num_labels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VideoMAEForVideoClassification(cfg) if classifier else VideoMAEModel(cfg)
        if classifier:  # a visibly non-trivial fc_norm, as after fine-tuning
            with torch.no_grad():
                model.fc_norm.weight.uniform_(0.5, 1.5)
                model.fc_norm.bias.normal_(0.0, 0.1)
    return _save(model, folder)


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A tiny ``CLIPModel`` (projection 16) with the tiny tokenizer; no preprocessor config (CLIP stats)."""
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(text_config=dict(_TEXT), vision_config=dict(_VISION, projection_dim=16), projection_dim=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(cfg)
    folder = _save(model, folder)
    save_tiny_tokenizer(folder)
    return folder


def save_tiny_xclip(folder: Path, seed: int = 0) -> Path:
    """A tiny ``XCLIPModel`` (4 frames, projection 16) with the tiny tokenizer and an ImageNet preprocessor config."""
    from transformers import XCLIPConfig, XCLIPModel

    vision = dict(_VISION, num_frames=N_FRAMES, mit_hidden_size=16, mit_intermediate_size=32,
                  mit_num_attention_heads=2)
    cfg = XCLIPConfig(text_config=dict(_TEXT), vision_config=vision, projection_dim=16, prompt_num_attention_heads=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = XCLIPModel(cfg)
    folder = _save(model, folder)
    save_tiny_tokenizer(folder)
    _write_preprocessor(folder, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    return folder


def save_tiny_models(root: Path) -> dict[str, Path]:
    """All tiny models under ``root``: keys ``videomae``, ``videomae-classifier``, ``clip``, ``xclip``."""
    root = Path(root)
    return {"videomae": save_tiny_videomae(root / "videomae"),
            "videomae-classifier": save_tiny_videomae(root / "videomae-classifier", classifier=True),
            "clip": save_tiny_clip(root / "clip"),
            "xclip": save_tiny_xclip(root / "xclip")}
