"""The report's "Settings chosen inside the run" section shows the evidence that chose each setting."""

from __future__ import annotations

from types import SimpleNamespace

from dance.explain.report.selection import selection_section


def _candidate(hidden, act, chosen=False, **scores):
    return {"concept_hidden": hidden, "binary_activation": act, "val_accuracy": 0.9, "val_log_loss": 0.4,
            "nonzero_weights": 12, "chosen": chosen} | scores


def test_validation_scores_only_when_the_choice_was_made_on_validation() -> None:
    sel = {"concept_layer": {"rule": "best accuracy on the 20 validation videos",
                             "candidates": [_candidate(None, "logit", True), _candidate(2048, "probability")]}}
    html = selection_section(SimpleNamespace(summary={"selection": sel}))
    assert "validation accuracy" in html and "cross-validated" not in html
    assert "best accuracy on the 20 validation videos" in html
    assert "MLP, 2048 hidden units" in html


def test_cross_validated_scores_are_shown_when_they_chose() -> None:
    sel = {"concept_layer": {
        "rule": "best 5-fold cross-validated accuracy on the 241 training videos",
        "candidates": [_candidate(None, "logit", cv_accuracy=0.9471, cv_log_loss=0.31),
                       _candidate(2048, "probability", True, cv_accuracy=0.9512, cv_log_loss=0.29)]}}
    html = selection_section(SimpleNamespace(summary={"selection": sel}))
    assert "cross-validated accuracy (training videos)" in html and "cross-validated log-loss" in html
    assert "0.947" in html and "<b>0.951</b>" in html  # the chosen candidate's row is bold
    assert "241 training videos" in html


def test_the_distilled_teacher_or_why_there_was_none_is_shown() -> None:
    layer = {"rule": "fixed", "candidates": [_candidate(None, "logit", True)]}
    shown = selection_section(SimpleNamespace(summary={"selection": {"concept_layer": layer | {
        "distill": {"share": 0.5, "teacher": "pose-encoder's own head"}}}}))
    assert "0.500 × label + 0.500 × the class probabilities of pose-encoder&#x27;s own head" in shown
    missing = selection_section(SimpleNamespace(summary={"selection": {"concept_layer": layer | {
        "distill": {"share": 0.0, "setting": 0.5, "teacher": None, "why_not": "no head <here>"}}}}))
    assert "had no teacher: no head &lt;here&gt;" in missing
    plain = selection_section(SimpleNamespace(summary={"selection": {"concept_layer": layer | {
        "distill": {"share": 0.0, "teacher": None}}}}))
    assert "distill" not in plain


def test_auto_distillation_shows_the_shares_it_tried_and_which_was_kept() -> None:
    cands = [_candidate(None, "logit", distill=0.0, cv_accuracy=0.90, cv_log_loss=0.3),
             _candidate(None, "logit", True, distill=0.5, cv_accuracy=0.93, cv_log_loss=0.3)]
    tried = selection_section(SimpleNamespace(summary={"selection": {"concept_layer": {
        "rule": "cross-validated", "candidates": cands, "distill": {
            "share": 0.5, "setting": "auto", "candidates": [0.0, 0.5], "teacher": "pose-encoder's own head"}}}}))
    assert "distilled share" in tried and "<b>0.500</b>" in tried  # a column, the chosen row's share in bold
    assert "tried the shares 0.000, 0.500" in tried and "the chosen model distils 0.500" in tried
    # one share (chosen on validation): no column, and the reason
    one = selection_section(SimpleNamespace(summary={"selection": {"concept_layer": {
        "rule": "validation", "candidates": [_candidate(None, "logit", True, distill=0.0)], "distill": {
            "share": 0.0, "setting": "auto", "candidates": [0.0], "teacher": None, "why_not": "validation <split>"}}}}))
    assert "distilled share" not in one and "labels alone (validation &lt;split&gt;)" in one


def test_the_final_layers_lam_and_why_auto_took_it_are_shown() -> None:
    layer = {"rule": "r", "candidates": [_candidate(None, "logit", True)]}
    auto = selection_section(SimpleNamespace(summary={"selection": {"concept_layer": layer | {
        "lam": {"value": 1e-4, "setting": "auto", "note": "distils <on> validation"}}}}))
    assert "λ = 0.0001" in auto and "train.lam=auto" in auto and "distils &lt;on&gt; validation" in auto
    fixed = selection_section(SimpleNamespace(summary={"selection": {"concept_layer": layer | {
        "lam": {"value": 0.01}}}}))
    assert "λ = 0.01" in fixed and "auto" not in fixed
    assert "λ" not in selection_section(SimpleNamespace(summary={"selection": {"concept_layer": layer}}))

