"""Rebuild the shipped concept sets from the raw language-model answers kept beside them.

    python scripts/build_concept_sets.py            # every answers/<name>.json
    python scripts/build_concept_sets.py ucf101     # one

Reads ``src/dance/language/concept_sets/answers/<name>.json`` (``{"dataset", "answered_by", "date", "answers":
{class: {"objects": raw text, "scenes": raw text}}}``), parses each answer with :func:`dance.language.parse_list`,
runs the Label-free CBM filters with all-MiniLM-L6-v2 (needs ``pip install 'dance-xai[hf]'``) and writes
``concept_sets/<name>.json``. Deterministic: rebuilding unchanged answers gives the same file.
"""

from __future__ import annotations

import json
import sys

from dance.language.concept_set import SHIPPED_DIR, build_concept_set, parse_answers
from dance.language.text_encoder import load_text_encoder


def build(name: str, encoder) -> None:
    raw = json.loads((SHIPPED_DIR / "answers" / f"{name}.json").read_text(encoding="utf-8"))
    classes = list(raw["answers"])
    lists, problems = parse_answers(raw["answers"])
    if problems:
        raise SystemExit(f"{name}: " + "; ".join(problems))
    source = {"kind": "language model", "answered_by": raw["answered_by"], "date": raw["date"],
              "answers": f"concept_sets/answers/{name}.json"}
    cs = build_concept_set(raw["dataset"], classes, {c: v["objects"] for c, v in lists.items()},
                           {c: v["scenes"] for c, v in lists.items()}, encoder, source)
    cs.save(SHIPPED_DIR / f"{name}.json")
    n_in = {t: sum(len(v[k]) for v in lists.values()) for t, k in (("object", "objects"), ("scene", "scenes"))}
    print(f"{name}: {len(classes)} classes; objects {n_in['object']} -> {len(cs.object)}, "
          f"scenes {n_in['scene']} -> {len(cs.scene)}")


def main(names: list[str]) -> None:
    names = names or sorted(p.stem for p in (SHIPPED_DIR / "answers").glob("*.json"))
    encoder = load_text_encoder()
    for name in names:
        build(name, encoder)


if __name__ == "__main__":
    main(sys.argv[1:])
