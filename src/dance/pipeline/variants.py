"""Model variants trained side by side with DANCE: the language-concept baselines of the paper's Table 1.

``train.models`` lists what the ``train`` stage fits (default ``["dance"]``). Every variant is the same
:class:`~dance.model.dance.DanceModel` (same concept-layer training, cutoffs and sparse elastic-net final layer),
fit on different :class:`~dance.model.dance.ConceptTargets`:

========================  ==========================================================================================
``dance``                 motion (pose-sequence clusters, BCE) + object + scene (text, dual-encoder soft labels, cos³)
``lfcbm-entangled``       Label-free CBM (Oikarinen et al., ICLR 2023) with one concept type, ``language``: the
                          concept set's ``entangled`` list (movements, objects and surroundings mixed), cos³
``lfcbm-disentangled``    DANCE's object and scene concepts, but LLM-written ``temporal`` text concepts (cos³) in
                          place of the pose-cluster motion concepts
========================  ==========================================================================================

The baselines need text concepts labelled by a dual encoder (``spatial.source`` = xclip, clip or precomputed) and
the concept set's ``entangled`` / ``temporal`` list (the shipped ``kth``, ``penn_action`` and ``ucf101`` have
them; with ``language.concepts=llm`` the language stage asks those prompts only when a configured baseline needs them).

DANCE's model stays in ``RUN/train/model/``; a variant's in ``RUN/train/variants/<name>/``.
:data:`dance.paper.PAPER_TABLE1` holds the paper's numbers that ``dance run`` prints beside this run's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dance.encoders.dual_encoders import DUAL_ENCODERS
from dance.errors import StageError
from dance.paper import CITATION, PAPER_TABLE1
from dance.registry import Registry

__all__ = [
    "VARIANTS",
    "Variant",
    "comparison_rows",
    "needed_kinds",
]

@dataclass(frozen=True)
class Variant:
    """One model fit by the ``train`` stage.

    ``types`` maps each concept type of the fitted model to the labelled concepts it is trained on: ``motion``
    (the motion stage's pose clusters) or a text type of the spatial stage (``object``, ``scene``, ``temporal``,
    ``entangled``). ``label`` is its row name in the comparison table.
    """

    name: str
    label: str
    types: tuple[tuple[str, str], ...]
    description: str

    @property
    def text_types(self) -> tuple[str, ...]:
        """The spatial stage's text types this variant is trained on."""
        return tuple(src for _, src in self.types if src != "motion")


#: ``train.models`` → :class:`Variant`
VARIANTS: Registry[Variant] = Registry("model")
for variant in (
    Variant("dance", "DANCE", (("motion", "motion"), ("object", "object"), ("scene", "scene")),
            "motion (pose clusters) + object + scene concepts"),
    Variant("lfcbm-entangled", "LF-CBM w/ entangled language concepts", (("language", "entangled"),),
            "one type of spatio-temporally entangled text concepts from a language model (Label-free CBM)"),
    Variant("lfcbm-disentangled", "LF-CBM w/ disentangled language concepts",
            (("temporal", "temporal"), ("object", "object"), ("scene", "scene")),
            "LLM-written temporal text concepts + DANCE's object and scene concepts"),
):
    VARIANTS.add(variant.name, variant, variant.description)
del variant

_KIND_OF_TEXT_TYPE = {"object": "objects", "scene": "scenes", "temporal": "temporal", "entangled": "entangled"}

def check_models(models: Sequence[str]) -> list[str]:
    """``train.models`` validated: known names, no duplicates, ``dance`` included (the other stages explain it)."""
    out = list(dict.fromkeys(str(m).strip() for m in models))
    unknown = [m for m in out if m not in VARIANTS]
    if unknown:
        raise StageError(f"unknown train.models entr{'ies' if len(unknown) > 1 else 'y'} "
                         f"{', '.join(map(repr, unknown))}: expected some of {', '.join(VARIANTS)}")
    if "dance" not in out:
        raise StageError("train.models must include 'dance' (evaluate, explain and the catalogue use DANCE's "
                         "model); e.g. train.models=[dance,lfcbm-entangled,lfcbm-disentangled]")
    return out


def baseline_names(models: Sequence[str]) -> list[str]:
    """The variants of ``train.models`` other than DANCE, in order."""
    return [m for m in check_models(models) if m != "dance"]


def needed_kinds(models: Sequence[str]) -> tuple[str, ...]:
    """Prompt kinds the language stage must ask for ``train.models``: the paper's two, plus the baselines' ones."""
    kinds = ["objects", "scenes"]
    for name in baseline_names(models):
        kinds += [_KIND_OF_TEXT_TYPE[t] for t in VARIANTS[name].text_types]
    return tuple(dict.fromkeys(kinds))


def _how_to_get(text_type: str) -> str:
    return (f"use a concept set with a '{text_type}' list (the shipped kth, penn_action or ucf101, or a "
            f"concept-set JSON file with one), or language.concepts=llm, which then asks the {text_type} prompt")


def missing_concepts_error(name: str, text_type: str, concepts_setting: str = "") -> StageError:
    """The error for baseline ``name`` whose ``text_type`` concepts the run's concept set lacks: what to set."""
    if concepts_setting == "llm":
        return StageError(f"train.models has '{name}', which needs {text_type} concepts, and the language model "
                          f"gave no usable {text_type} list (see the answers cached in RUN/.cache/llm): try another "
                          f"model, or use a concept set with a '{text_type}' list (the shipped kth, penn_action or "
                          f"ucf101, or a concept-set JSON file with one); or remove '{name}' from train.models")
    where = f"the concept set '{concepts_setting}'" if concepts_setting else "the run's concept set (language.concepts)"
    return StageError(f"train.models has '{name}', which needs {text_type} concepts, and {where} has no "
                      f"'{text_type}' list: {_how_to_get(text_type)}; or remove '{name}' from train.models")


def check_variant_settings(models: Sequence[str], spatial_source: str, concept_types: Sequence[str] | None,
                           concepts_setting: str = "") -> None:
    """Raise :class:`StageError` saying what to set when a baseline of ``models`` cannot get its concepts.

    ``concept_types``: the text types the run's concept set has (None when not known yet, e.g. before an LLM
    was asked); ``concepts_setting``: ``language.concepts``, for the message.
    """
    for name in baseline_names(models):
        if spatial_source not in DUAL_ENCODERS:
            raise StageError(f"train.models has '{name}', whose text concepts are labelled by a video-text dual "
                             f"encoder, but spatial.source={spatial_source or 'none'}: set spatial.source to "
                             f"{', '.join(DUAL_ENCODERS)} (and spatial.model), or remove '{name}' from "
                             "train.models")
        if concept_types is None:
            continue
        for t in VARIANTS[name].text_types:
            if t not in concept_types:
                raise missing_concepts_error(name, t, concepts_setting)


def comparison_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of the comparison table from an evaluate ``summary``: baseline, DANCE, then each variant.

    Each row: ``name`` (``baseline``, ``dance`` or a variant), ``label``, ``accuracy`` (this run, 0–1), ``paper``
    (top-1 % of the DANCE paper, Table 1, or None), ``concepts`` (kept concepts per type, non-zero only) and
    ``nonzero_weights`` (None for the baseline).
    """
    paper = PAPER_TABLE1.get(summary.get("paper_dataset") or "", {})
    rows = [{"name": "baseline", "label": "Baseline w/o interpretability",
             "accuracy": summary.get("baseline_test_accuracy"), "paper": paper.get("baseline"), "concepts": {},
             "nonzero_weights": None},
            {"name": "dance", "label": VARIANTS["dance"].label, "accuracy": summary.get("test_accuracy"),
             "paper": paper.get("dance"), "concepts": {k: v for k, v in summary.get("n_concepts", {}).items() if v},
             "nonzero_weights": summary.get("nonzero_weights")}]
    for name, v in (summary.get("variants") or {}).items():
        rows.append({"name": name, "label": VARIANTS[name].label if name in VARIANTS else name,
                     "accuracy": v.get("test_accuracy"), "paper": paper.get(name),
                     "concepts": {k: n for k, n in v.get("n_concepts", {}).items() if n},
                     "nonzero_weights": v.get("nonzero_weights")})
    return rows


def comparison_table(summary: Mapping[str, Any]) -> Any:
    """A rich ``Table`` of :func:`comparison_rows` (the paper's column only when the dataset is one of Table 1)."""
    from rich.table import Table

    dataset = summary.get("paper_dataset")
    split = summary.get("evaluated_split", "test")
    t = Table(title=f"top-1 accuracy (%, {split} split)")
    t.add_column("model")
    t.add_column("this run", justify="right")
    if dataset:
        t.add_column(f"paper ({dataset})", justify="right")
    t.add_column("concepts")
    t.add_column("non-zero weights", justify="right")
    for r in comparison_rows(summary):
        acc = "" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}"
        cells = [r["label"], acc]
        if dataset:
            cells.append("" if r["paper"] is None else f"{r['paper']:.1f}")
        cells += [", ".join(f"{k} {n}" for k, n in r["concepts"].items()),
                  "" if r["nonzero_weights"] is None else str(r["nonzero_weights"])]
        t.add_row(*cells)
    if dataset:
        t.caption = f"paper: {CITATION} ({dataset}, VideoMAE backbone)"
    return t
