"""Accuracy sections: DANCE vs the baseline (and the paper's Table 1 when the dataset matches), per-class accuracy,
and the most confused class pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dance.explain.report.data import RunData
from dance.explain.report.html import escape, pct, table
from dance.paper import PAPER_TABLE1, paper_dataset


def accuracy_table(data: RunData, dataset: str | None = None) -> str:
    """DANCE and baseline top-1 on the evaluated split, with the paper's numbers when the dataset matches.

    ``dataset``: a Table 1 name to compare with ("auto"/None: detect from the classes and the dataset path;
    "none": no comparison)."""
    test = data.test
    s = data.summary
    ours_d = float((test.pred == test.y).mean())
    ours_b = float((test.base_pred == test.y).mean())
    backbone = (data.config.get("features") or {}).get("backbone", "?")
    # the same comparison on the validation videos (where the run chose its settings), beside a test split
    val = test.name == "test" and s.get("validation_accuracy") is not None
    blank = ["–"] if val else []  # the validation cell of rows that have no validation score
    rows = [[f"<b>DANCE</b> (this run, {escape(backbone)})", pct(ours_d)]
            + ([pct(s["validation_accuracy"])] if val else []),
            [f"Baseline w/o interpretability (this run, {escape(backbone)})", pct(ours_b)]
            + ([pct(s.get("baseline_validation_accuracy"))] if val else [])]
    variants = s.get("variants") or {}  # the language-concept baselines of train.models, when trained
    rows += [[f"{escape(str(v.get('label', name)))} (this run, {escape(backbone)})", pct(v.get("test_accuracy"))]
             + blank for name, v in variants.items()]
    cfg = data.config.get("data") or {}
    dataset = paper_dataset(data.model.classes_, str(cfg.get("format", "")), str(cfg.get("path", "")),
                            dataset or "auto")
    note = ""
    if dataset is not None:
        base, dance = PAPER_TABLE1[dataset]["baseline"], PAPER_TABLE1[dataset]["dance"]
        rows += [[f"Baseline w/o interpretability — DANCE paper, Table 1 ({dataset}, VideoMAE)", f"{base:.1f}"]
                 + blank, [f"DANCE — DANCE paper, Table 1 ({dataset}, VideoMAE)", f"{dance:.1f}"] + blank]
        paper = PAPER_TABLE1[dataset]
        rows += [[f"{escape(str(v.get('label', name)))} — DANCE paper, Table 1 ({dataset}, VideoMAE)",
                  f"{paper[name]:.1f}"] + blank for name, v in variants.items() if name in paper]
        note = (f'<p class="note">Paper numbers: DANCE paper, Table 1 (top-1 %, VideoMAE backbone for both). The '
                f"setting differs when this run uses another backbone ({escape(backbone)}), other concepts or "
                f"other splits.</p>")
    split = "test" if test.name == "test" else "validation (the run has no test videos)"
    counts = (f'<p class="note">Top-1 accuracy (%) on the {escape(split)} split: {len(test.y)} videos, '
              f"{len(data.model.classes_)} classes; the final layer has {data.model.nonzero_weights()} non-zero "
              f"weights of {data.model.W_.size}; concepts per type: "
              + ", ".join(f"{escape(t)} {n}" for t, n in data.model.n_concepts().items()) + ".</p>")
    size = s.get("explanation_size")
    if isinstance(size, dict) and size.get("n"):
        held = size.get("concepts") if isinstance(size.get("concepts"), dict) else {}
        counts += ('<p class="note">Explanation size (medians over these videos): '
                   + "; ".join(f"{escape(str(v))} concepts hold {_percent(k)}" for k, v in held.items())
                   + f" of a prediction's positive evidence, out of {escape(str(size.get('terms')))} non-zero terms "
                   "for the predicted class.</p>")
    if "type_agreement" in s:
        counts += (f'<p class="note">Type agreement (synthetic data with known causes): '
                   f"{100 * float(s['type_agreement']):.1f}% of correctly classified test videos have the decisive "
                   f"concept type as their largest type share.</p>")
    if val:
        counts += (f'<p class="note">Validation top-1: the {s.get("n_val", "?")} validation videos, on which the '
                   "run chose its settings (so DANCE's score there is optimistic); the test split was not used "
                   "to choose anything.</p>")
    header = ["model", "top-1 %"] + ([f"validation top-1 % ({s.get('n_val', '?')} videos)"] if val else [])
    return table(header, rows, numeric=(1, 2)) + note + counts


def _percent(share: object) -> str:
    """A share written in ``summary.json`` (``"0.8"``) as a percentage; anything else escaped as it is."""
    try:
        return f"{100 * float(share):g}%"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return escape(str(share))


def per_class_table(data: RunData) -> str:
    test, model = data.test, data.model
    rows = []
    for k, c in enumerate(model.classes_):
        m = test.y == k
        n = int(m.sum())
        d = float((test.pred[m] == k).mean()) if n else None
        b = float((test.base_pred[m] == k).mean()) if n else None
        rows.append([escape(c), str(n), pct(d), pct(b), str(int((model.W_[k] != 0).sum()))])
    return table(["class", "test videos", "DANCE %", "baseline %", "non-zero weights"], rows, numeric=(1, 2, 3, 4))


@dataclass
class ConfusedPair:
    a: int
    b: int
    a_as_b: int  # videos of a predicted as b
    b_as_a: int
    similarity: float  # cosine of the two classes' weight vectors

    @property
    def total(self) -> int:
        return self.a_as_b + self.b_as_a


def confused_pairs(data: RunData, n: int = 3) -> list[ConfusedPair]:
    """The ``n`` class pairs DANCE confuses most on the evaluated split (both directions counted). When there are
    fewer confused pairs, the rest are the pairs with the most similar final-layer weight vectors."""
    test, model = data.test, data.model
    k = len(model.classes_)
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (test.y, test.pred), 1)
    W = model.W_ / np.maximum(np.linalg.norm(model.W_, axis=1, keepdims=True), 1e-12)
    sim = W @ W.T
    pairs = [ConfusedPair(a, b, int(conf[a, b]), int(conf[b, a]), float(sim[a, b]))
             for a in range(k) for b in range(a + 1, k)]
    pairs.sort(key=lambda p: (-p.total, -p.similarity, p.a, p.b))
    confused = [p for p in pairs if p.total > 0][:n]
    rest = sorted((p for p in pairs if p.total == 0), key=lambda p: (-p.similarity, p.a, p.b))
    return confused + rest[: max(0, n - len(confused))]
