"""The "settings chosen inside the run" section: the candidates a run tried and the scores that chose among them
(``summary.json`` ``selection``: the FINCH partition by cross-validation on the training videos, the concept
layer and motion activation on the validation split, or by cross-validation on the training videos when the
backbone was cross-fitted: ``features.folds``)."""

from __future__ import annotations

from dance.explain.report.data import RunData
from dance.explain.report.html import escape, table


def _score(v: object) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "–"


def selection_section(data: RunData) -> str:
    sel = data.summary.get("selection")
    if not isinstance(sel, dict):
        return ('<p class="note">This run records no automatic choices (it was made before they existed, or its '
                "settings were all fixed).</p>")
    parts = []
    part = sel.get("motion_partition") or {}
    cands = part.get("candidates") or []
    if cands:
        rows = []
        for c in cands:
            cells = [escape(str(c.get("partition"))), escape(str(c.get("concepts"))), _score(c.get("cv_accuracy"))]
            rows.append([f"<b>{v}</b>" for v in cells] if c.get("partition") == part.get("partition") else cells)
        parts.append("<h3>Motion concepts: FINCH partition</h3>"
                     f'<p class="note">{escape(str(part.get("rule", "")))}; the chosen one in bold.</p>'
                     + table(["partition", "concepts", "cross-validated accuracy"], rows, numeric=(1, 2)))
    elif "partition" in part:
        parts.append(f'<p class="note">FINCH partition {escape(str(part.get("partition")))}, set by '
                     "<code>motion.partition</code>.</p>")
    layer = sel.get("concept_layer") or {}
    cands = layer.get("candidates") or []
    if cands:
        cv = any("cv_accuracy" in c for c in cands)  # cross-fitted backbone: cross-validated scores chose
        shares = len({c.get("distill", 0.0) for c in cands}) > 1  # train.distill=auto tried several
        rows = []
        for c in cands:
            name = "linear" if c.get("concept_hidden") is None else f"MLP, {c.get('concept_hidden')} hidden units"
            cells = [escape(name), escape(str(c.get("binary_activation")))]
            if shares:
                cells.append(_score(c.get("distill")))
            if cv:
                cells += [_score(c.get("cv_accuracy")), _score(c.get("cv_log_loss"))]
            cells += [_score(c.get("val_accuracy")), _score(c.get("val_log_loss")),
                      _score(c.get("val_concept_auc")), escape(str(c.get("nonzero_weights", "–")))]
            rows.append([f"<b>{v}</b>" for v in cells] if c.get("chosen") else cells)
        head = ["concept layer", "motion concepts enter as"] + (["distilled share"] if shares else [])
        head += ["cross-validated accuracy (training videos)", "cross-validated log-loss"] if cv else []
        head += ["validation accuracy", "validation log-loss", "motion concept AUC (validation)", "non-zero weights"]
        parts.append("<h3>Concept layer and motion activation</h3>"
                     f'<p class="note">{escape(str(layer.get("rule", "")))}; the chosen one in bold.</p>'
                     + table(head, rows, numeric=tuple(range(2 + shares, len(head)))))
    parts.append(_distill_note(layer.get("distill")))
    parts.append(_lam_note(layer.get("lam")))
    return "".join(parts) or '<p class="note">No automatic choices recorded.</p>'


def _distill_note(distill: object) -> str:
    """What ``train.distill`` did: the teacher the final layers distilled, or why a run that asked for it had none."""
    if not isinstance(distill, dict):
        return ""
    if distill.get("setting") == "auto":
        tried = ", ".join(_score(v) for v in distill.get("candidates") or [])
        if distill.get("why_not"):
            return (f'<p class="note"><code>train.distill=auto</code>: the final layers fit on the labels alone '
                    f"({escape(str(distill['why_not']))}).</p>")
        share = distill.get("share")
        kept = (f"the chosen model distils {_score(share)}" if isinstance(share, float) and share > 0
                else "the chosen model fits on the labels alone")
        why = f" ({escape(str(distill['note']))})" if distill.get("note") else ""
        return (f'<p class="note"><code>train.distill=auto</code> tried the shares {tried} of the class '
                f"probabilities of {escape(str(distill.get('teacher')))} in the final layer's targets (the column "
                f"above){why}; {kept}. Every prediction still goes through the concepts.</p>")
    if distill.get("teacher"):
        share = distill.get("share")
        return (f'<p class="note">Final layers fit on {_score(1 - share) if isinstance(share, float) else "–"} × '
                f"label + {_score(share)} × the class probabilities of {escape(str(distill['teacher']))} "
                "(<code>train.distill</code>): every prediction still goes through the concepts.</p>")
    if distill.get("setting"):
        return (f'<p class="note"><code>train.distill={escape(str(distill["setting"]))}</code> had no teacher: '
                f"{escape(str(distill.get('why_not', '')))}; the final layers fit on the labels alone.</p>")
    return ""


def _lam_note(lam: object) -> str:
    """The final layer's elastic-net strength, and under ``train.lam=auto`` why that one."""
    if not isinstance(lam, dict) or not isinstance(lam.get("value"), (int, float)):
        return ""
    why = (f" (<code>train.lam=auto</code>: {escape(str(lam['note']))})" if lam.get("setting") == "auto"
           and lam.get("note") else "")
    return f'<p class="note">Final layer: elastic net with λ = {lam["value"]:g}{why}.</p>'
