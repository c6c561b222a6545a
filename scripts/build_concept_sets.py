"""Rebuild the shipped concept sets from the raw language-model answers kept beside them.

    python scripts/build_concept_sets.py            # every answers/<name>.json
    python scripts/build_concept_sets.py ucf101     # one

Reads ``src/dance/language/concept_sets/answers/<name>.json`` (``{"dataset", "answered_by", "date", "answers":
{class: {"objects": raw text, "scenes": raw text}}}``), parses each answer with :func:`dance.language.parse_list`,
runs the Label-free CBM filters with all-MiniLM-L6-v2 (needs ``pip install 'dance-xai[hf]'``) and writes
``concept_sets/<name>.json``. Deterministic: rebuilding unchanged answers gives the same file.

A class may also hold ``"temporal"`` and ``"entangled"`` answers (the prompts of the LF-CBM baselines, see
:mod:`dance.language.prompts`); when any class has one, every class needs it, and the set gets that list. An
optional top-level ``"note"`` is copied into the set's ``source``. Answers files without them still build.
"""

from __future__ import annotations

import json
import sys

from dance.language.concept_set import KIND_OF_TYPE, SHIPPED_DIR, build_concept_set, parse_answers
from dance.language.text_encoder import load_text_encoder


def build(name: str, encoder) -> None:
    raw = json.loads((SHIPPED_DIR / "answers" / f"{name}.json").read_text(encoding="utf-8"))
    classes = list(raw["answers"])
    lists, problems = parse_answers(raw["answers"])
    if problems:
        raise SystemExit(f"{name}: " + "; ".join(problems))
    source = {"kind": "language model", "answered_by": raw["answered_by"], "date": raw["date"],
              "answers": f"concept_sets/answers/{name}.json"} | ({"note": raw["note"]} if raw.get("note") else {})
    optional = {k: {c: v[k] for c, v in lists.items()} for k in ("temporal", "entangled")
                if all(k in v for v in lists.values())}
    cs = build_concept_set(raw["dataset"], classes, {c: v["objects"] for c, v in lists.items()},
                           {c: v["scenes"] for c, v in lists.items()}, encoder, source, **optional)
    cs.save(SHIPPED_DIR / f"{name}.json")
    counts = []
    for t in cs.types():
        kind = KIND_OF_TYPE[t]
        n_in = sum(len(v[kind]) for v in lists.values())
        counts.append(f"{kind} {n_in} -> {len(cs.names(t))}")
    print(f"{name}: {len(classes)} classes; " + ", ".join(counts))


def main(names: list[str]) -> None:
    names = names or sorted(p.stem for p in (SHIPPED_DIR / "answers").glob("*.json"))
    encoder = load_text_encoder()
    for name in names:
        build(name, encoder)


if __name__ == "__main__":
    main(sys.argv[1:])
