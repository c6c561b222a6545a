"""The "action vs scene" section: what ``dance scene-bias demo`` measured on the data set this run was trained on
(``scene_bias.json`` beside the run, :attr:`dance.run_view.RunView.scene_bias`): DEVIAS's metrics for the
one-token baseline, DEVIAS and DANCE, the explanations of seen clips and their swapped copies, and the weight
edits of the paper's Fig. 10."""

from __future__ import annotations

from dance.explain.report.data import RunData
from dance.explain.report.html import escape, pct, table

_METRICS = (("action_seen", "action, seen pairs"), ("action_unseen", "action, unseen pairs"),
            ("action_swapped", "action, stripes"), ("scene_seen", "scene, seen"), ("scene_unseen", "scene, unseen"),
            ("hm", "H.M."))


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def scene_bias_section(data: RunData) -> str | None:
    """The section's HTML, or None when the run is not a scene-bias demo's."""
    sb = data.scene_bias
    if sb is None:
        return None
    models = sb.get("models") if isinstance(sb.get("models"), dict) else {}
    rows = [[escape(str(name))] + [pct(_num(m.get(k))) if isinstance(m, dict) else "–" for k, _ in _METRICS]
            for name, m in models.items()]
    parts = ['<p class="note">Does the model recognise the action, or the place? The training clips show each '
             "action mostly in its own scene; unseen pairs put it in other scenes, stripes replace the background "
             "of the seen clips (SCUBA-style). DANCE's scene accuracy is read from its scene concepts (the most "
             "active one); H.M. is DEVIAS's harmonic mean of action and scene accuracy on seen and unseen pairs. "
             "Accuracies in %.</p>",
             table(["model", *(label for _, label in _METRICS)], rows, numeric=tuple(range(1, len(_METRICS) + 1)))]
    ex = (sb.get("explanations") or {}).get("contribution_to_true_class") or {}
    types = sorted({t for part in ex.values() if isinstance(part, dict) for t in part})
    if types:
        cell = lambda part, t: f"{v:+.2f}" if (v := _num((ex.get(part) or {}).get(t))) is not None else "–"  # noqa: E731
        parts.append("<h3>Explanations: seen clips and their swapped copies</h3>"
                     '<p class="note">Mean summed contribution (activation × weight) of each concept type to the '
                     f"true class's logit, over {escape(str((sb.get('explanations') or {}).get('pairs', '?')))} "
                     "pairs of a seen clip and the same clip on stripes.</p>"
                     + table(["concept type", "seen", "swapped"], [[escape(t), cell("seen", t), cell("swapped", t)]
                                                                    for t in types], numeric=(1, 2)))
    iv = sb.get("intervention")
    if isinstance(iv, dict):
        edits = [[escape(str(e.get("class"))), escape(str(e.get("concept"))), escape(str(e.get("fixed"))),
                  escape(str(e.get("broken")))] for e in iv.get("edits") or [] if isinstance(e, dict)]
        parts.append("<h3>Repairing the swapped clips by weight edits (paper Fig. 10)</h3>"
                     f'<p class="note">Zero weights set to {escape(str(iv.get("weight")))}, chosen greedily on '
                     f"{escape(str(iv.get('n_search')))} swapped clips; on the other {escape(str(iv.get('n_check')))} "
                     f"(never searched): {pct(_num(iv.get('before')))} → <b>{pct(_num(iv.get('after')))}</b> "
                     f"(fixed {escape(str(iv.get('fixed')))}, broken {escape(str(iv.get('broken')))}); on the seen "
                     f"clips {pct(_num(iv.get('seen_before')))} → {pct(_num(iv.get('seen_after')))}. No retraining."
                     "</p>" + (table(["class", "concept", "fixed (search)", "broken (search)"], edits, numeric=(2, 3))
                               if edits else "<p>No edit gained a clip on the search half.</p>"))
    return "".join(parts)
