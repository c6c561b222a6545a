"""`dance intervene`: concepts switched off for one video, weight edits saved as versions, near-match errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _inspect_runs import copy_run
from typer.testing import CliRunner

from dance.cli import app
from dance.errors import DanceError, ModelError
from dance.explain.contributions import explain
from dance.explain.intervene import (
    intervene_sample,
    load_run_videos,
    near_matches,
    resolve_class,
    resolve_concept,
    weight_edit,
)
from dance.model.io import load_model
from dance.model.versions import list_versions, load_version, resolve_version, save_edit
from dance.runs import file_hash

runner = CliRunner()


@pytest.fixture()
def run(rgb: Path, tmp_path: Path) -> Path:
    return copy_run(rgb, tmp_path / "run")


def _strongest(model) -> tuple[str, str]:
    """The class and concept of the largest |weight| (an edit that certainly changes something)."""
    c, j = np.unravel_index(np.abs(model.W_).argmax(), model.W_.shape)
    return model.classes_[c], model.concept_names_[j]


def test_near_matches_and_errors(rgb: Path) -> None:
    model, _ = load_version(rgb)
    assert near_matches("bal", ["object:ball", "scene:pool", "object:bag"])[0] == "object:ball"
    cls = model.classes_[0]
    assert resolve_class(model, cls.upper()) == 0
    with pytest.raises(ModelError, match=f"did you mean: {cls}"):
        resolve_class(model, cls[:-1] + "x")
    name = model.concept_names_[-1]
    assert resolve_concept(model, name) == len(model.concept_names_) - 1
    with pytest.raises(ModelError, match="did you mean"):
        resolve_concept(model, name + "zz")
    data = load_run_videos(rgb)
    with pytest.raises(DanceError, match=f"did you mean: {data.video_ids[0]}"):
        data.sample(data.video_ids[0] + "x")


def test_sample_intervention_switches_the_top_concept_off(rgb: Path) -> None:
    model, _ = load_version(rgb)
    data = load_run_videos(rgb)
    z = model.concept_activations(data.X[:1])
    before = explain(model, data.X[:1], k=1)[0]
    top = max((c for cs in before.top.values() for c in cs), key=lambda c: c.contribution)
    res = intervene_sample(model, z, [f"{top.type}:{top.name}"], data.video_ids[0], data.labels[0], k=3)
    assert res.off == [f"{top.type}:{top.name}"]
    assert res.before.predicted == before.predicted
    # the concept's contribution is gone from the class's logit
    assert res.after.type_shares != res.before.type_shares or res.changed


def test_cli_sample_output_and_errors(run: Path) -> None:
    data = load_run_videos(run)
    model, _ = load_version(run)
    vid = data.video_ids[np.flatnonzero(data.splits == "test")[0]]
    concept = model.concept_names_[0]
    res = runner.invoke(app, ["intervene", str(run), "--sample", vid, "--off", concept], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert vid in res.output and "before" in res.output and "after" in res.output and "→" in res.output
    bad = runner.invoke(app, ["intervene", str(run), "--sample", vid, "--off", concept + "zz"])
    assert bad.exit_code == 2 and "did you mean" in bad.output
    bad = runner.invoke(app, ["intervene", str(run), "--sample", vid + "x", "--off", concept])
    assert bad.exit_code == 2 and "unknown sample" in bad.output and vid in bad.output
    bad = runner.invoke(app, ["intervene", str(run), "--sample", vid])
    assert bad.exit_code == 2 and "--off" in bad.output
    bad = runner.invoke(app, ["intervene", str(run), "--list", "--sample", vid])
    assert bad.exit_code == 2 and "choose one" in bad.output


def test_cli_weight_edits_are_new_versions(run: Path) -> None:
    trained = run / "train" / "model" / "model.safetensors"
    digest = file_hash(trained)
    model, _ = load_version(run)
    cls, concept = _strongest(model)
    res = runner.invoke(app, ["intervene", str(run), "--class", cls, "--concept", concept, "--weight", "0"],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "saved as v001" in res.output and "fixed" in res.output
    edit = json.loads((run / "edits" / "v001" / "edit.json").read_text())
    assert edit["class"] == cls and edit["concept"] == concept and edit["new_weight"] == 0.0
    assert edit["old_weight"] == pytest.approx(float(model.W_[model.class_index(cls),
                                                              model.concept_names_.index(concept)]))
    assert edit["parent"] == "v000" and edit["time"] and edit["effect"]["split"] == "test"
    for key in ("accuracy_before", "accuracy_after", "fixed", "broken"):
        assert key in edit["effect"]
    edited = load_model(run / "edits" / "v001" / "model")
    assert edited.W_[edited.class_index(cls), edited.concept_names_.index(concept)] == 0.0
    assert file_hash(trained) == digest  # the trained model is never overwritten

    # the next edit starts from the latest version; --dry-run saves nothing
    res = runner.invoke(app, ["intervene", str(run), "--class", cls, "--concept", concept, "--weight", "1.5"])
    assert res.exit_code == 0, res.output
    assert json.loads((run / "edits" / "v002" / "edit.json").read_text())["parent"] == "v001"
    res = runner.invoke(app, ["intervene", str(run), "--class", cls, "--concept", concept, "--weight", "2",
                              "--version", "v000", "--dry-run"])
    assert res.exit_code == 0 and "not saved" in res.output
    assert not (run / "edits" / "v003").exists()
    listing = runner.invoke(app, ["intervene", str(run), "--list"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0
    assert all(v in listing.output for v in ("v000", "v001", "v002")) and cls in listing.output

    bad = runner.invoke(app, ["intervene", str(run), "--class", cls + "zz", "--concept", concept, "--weight", "1"])
    assert bad.exit_code == 2 and "unknown class" in bad.output and cls in bad.output
    bad = runner.invoke(app, ["intervene", str(run), "--class", cls, "--concept", concept])
    assert bad.exit_code == 2 and "--weight" in bad.output
    bad = runner.invoke(app, ["intervene", str(run), "--list", "--version", "v009"])
    assert bad.exit_code == 0  # --list ignores --version
    bad = runner.invoke(app, ["intervene", str(run), "--class", cls, "--concept", concept, "--weight", "1",
                              "--version", "v009"])
    assert bad.exit_code == 2 and "no version" in bad.output


def test_versions_chain_number_and_stale(run: Path) -> None:
    model, base = load_version(run)
    data = load_run_videos(run)
    mask = data.split_mask("test")
    cls, concept = _strongest(model)
    edited, edit = weight_edit(model, model.concept_activations(data.X[mask]), data.targets(model)[mask], cls,
                               concept, 0.0, "test")
    assert edit.effect.accuracy_before == pytest.approx(model.score(data.X[mask], data.targets(model)[mask]))
    a = save_edit(run, base, edited, edit.record())
    b = save_edit(run, base, edited, edit.record())  # the same parent twice: two versions, never one overwritten
    assert (a.name, b.name) == ("v001", "v002")
    assert [v.name for v in list_versions(run)] == ["v000", "v001", "v002"]
    assert resolve_version(run).name == "v002" and resolve_version(run, "1").name == "v001"
    assert resolve_version(run, "base").name == "v000"
    assert not list((run / "edits").glob(".partial-*"))
    # retraining makes older edits stale: not the latest, refused by name
    manifest = run / "train" / "manifest.json"
    m = json.loads(manifest.read_text())
    m["fingerprint"] = "retrained"
    manifest.write_text(json.dumps(m))
    assert all(v.stale for v in list_versions(run)[1:])
    assert resolve_version(run).name == "v000"
    with pytest.raises(ModelError, match="earlier training"):
        resolve_version(run, "v001")
