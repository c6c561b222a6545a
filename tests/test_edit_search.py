"""The weight-edit search of the paper's Fig. 10 (dance.explain.edit_search) and `dance intervene --search`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _inspect_runs import copy_run
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dance.cli import app
from dance.errors import ModelError
from dance.explain.edit_search import _gains, apply_edits, search_edits
from dance.model.versions import list_versions, load_version

runner = CliRunner()


def _brute_force(logits: np.ndarray, z: np.ndarray, y: np.ndarray, W: np.ndarray, weight: float) -> dict:
    """Gain of every zero-weight edit, recomputed with a full argmax per candidate."""
    base = logits.argmax(axis=1) == y
    out = {}
    for c in range(W.shape[0]):
        for k in np.flatnonzero(W[c] == 0):
            new = logits.copy()
            new[:, c] += weight * z[:, k]
            right = new.argmax(axis=1) == y
            out[(c, int(k))] = int((right & ~base).sum()) - int((~right & base).sum())
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.5, 1.0, 2.0]), st.booleans())
def test_vectorised_gains_equal_a_full_argmax(seed: int, weight: float, integer_logits: bool) -> None:
    rng = np.random.default_rng(seed)
    n, classes, concepts = 12, 4, 6
    W = rng.normal(size=(classes, concepts)) * (rng.random((classes, concepts)) < 0.4)
    # integer activations and logits make ties common: the vectorised argmax must break them like np.argmax
    z = rng.integers(-2, 3, size=(n, concepts)).astype(float) if integer_logits else rng.normal(size=(n, concepts))
    logits = rng.integers(-2, 3, size=(n, classes)).astype(float) if integer_logits else rng.normal(size=(n, classes))
    y = rng.integers(0, classes, size=n)
    brute = _brute_force(logits, z, y, W, weight)
    best = _gains(logits, z, y, W, weight, min_gain=1)
    top = max(brute.values(), default=0)
    if top < 1:
        assert best is None
    else:
        gain, c, k, fixed, broken = best
        assert gain == top == brute[(c, k)] and fixed - broken == gain
        assert (c, k) == min(key for key, v in brute.items() if v == top)  # ties: lowest class, then concept


def test_search_finds_a_planted_repair_and_checks_it_on_held_out_videos(rgb: Path) -> None:
    model, _ = load_version(rgb)
    model = model.copy()
    model.W_ = model.W_.copy()
    k = 0
    model.W_[:, k] = 0.0  # a concept no class uses, whatever the tiny run's sparsity
    c = int(np.argsort(model.b_)[0])  # a class the bias alone never predicts
    rng = np.random.default_rng(0)
    n = 80
    z = rng.normal(scale=0.1, size=(n, len(model.concept_names_))).astype(np.float32)
    y = model.logits_from_concepts(z).argmax(axis=1)  # every video right, except a group of class c that only
    group = np.arange(0, n, 2)
    y[group] = c
    z[group, k] = 1e3
    z[group] *= (np.arange(z.shape[1]) == k)  # concept k shows: predicted by the bias alone, wrongly
    wrong_before = int((model.logits_from_concepts(z).argmax(axis=1) != y).sum())
    assert wrong_before > 10
    edited, res = search_edits(model, z, y, weight=1.0, max_edits=3, seed=1)
    assert (res.edits[0].cls, res.edits[0].concept) == (model.classes_[c], model.concept_names_[k])
    assert res.check.accuracy_after > res.check.accuracy_before and res.check.broken == 0
    assert len(res.search_ids) + len(res.check_ids) == n and not set(res.search_ids) & set(res.check_ids)
    assert res.search.accuracy_after >= res.search.accuracy_before
    # only zero weights change, to the given weight; the original model is untouched
    changed = np.argwhere(edited.W_ != model.W_)
    assert len(changed) == len(res.edits) and all(model.W_[i, j] == 0 and edited.W_[i, j] == 1.0 for i, j in changed)
    assert np.array_equal(apply_edits(model, res.edits).W_, edited.W_)
    # the same seed, the same search
    _, again = search_edits(model, z, y, weight=1.0, max_edits=3, seed=1)
    assert again.edits == res.edits and again.check_ids == res.check_ids
    with pytest.raises(ModelError, match="activations"):
        search_edits(model, z[:, :-1], y)
    with pytest.raises(ModelError, match="at least 2 videos"):
        search_edits(model, z[:1], y[:1])
    with pytest.raises(ModelError, match="finite"):
        search_edits(model, z, y, weight=float("inf"))


def test_intervene_search_cli_saves_a_version(rgb: Path, tmp_path: Path) -> None:
    run = copy_run(rgb, tmp_path / "run")
    res = runner.invoke(app, ["intervene", str(run), "--search", "--split", "test", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "searched on" in res.output and "check (held" in res.output
    assert ("nothing to edit" in res.output) != ("not saved" in res.output)  # edits or none: a dry run saves nothing
    assert [v.name for v in list_versions(run)] == ["v000"]
    res = runner.invoke(app, ["intervene", str(run), "--search", "--split", "train", "--weight", "3"])
    assert res.exit_code == 0, res.output
    versions = list_versions(run)
    if "nothing to edit" in res.output:
        assert len(versions) == 1
    else:
        assert len(versions) == 2 and "searched edits" in versions[1].label and "+3" in versions[1].label
        model, _ = load_version(run, versions[1].name)
        assert (model.W_ == 3.0).sum() >= len(versions[1].edit["edits"])
    res = runner.invoke(app, ["intervene", str(run), "--search", "--videos", "no-such-*"])
    assert res.exit_code == 2 and "matches --videos" in res.output
