"""Concept sets: shipped files, building from raw answers, `dance concepts`, and the language stage with an LLM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner
from word_encoder import WordEncoder

from dance.cli import app
from dance.errors import ConfigError
from dance.language.concept_set import (
    SHIPPED_DIR,
    ConceptSet,
    build_concept_set,
    load_concept_set,
    parse_answers,
    shipped_names,
)


def test_parse_answers_reads_lists_and_reports_missing() -> None:
    lists, problems = parse_answers({
        "golf_swing": {"objects": "1. golf club\n2. golf ball\n3. tee", "scenes": "- golf course\n- driving range"},
        "situp": {"objects": "Sure! Here you go:\n* exercise mat", "scenes": "I cannot help with that."},
    })
    assert lists["golf_swing"]["objects"] == ["golf club", "golf ball", "tee"]
    assert lists["situp"]["objects"] == ["exercise mat"]
    assert problems == ["class 'situp': no scenes list in the answer"]


def test_build_pools_classes_filters_and_records_source() -> None:
    cs = build_concept_set(
        "toy", ["golf_swing", "bowl"],
        {"golf_swing": ["golf club", "golf ball", "a very long object name that goes on and on"],
         "bowl": ["bowling ball", "golf club"]},
        {"golf_swing": ["golf course"], "bowl": ["bowling alley"]},
        WordEncoder(), {"kind": "language model", "model": "m"})
    assert "golf club" in cs.object and cs.object.count("golf club") == 1
    rules = {d["concept"]: d["rule"] for d in cs.dropped["object"]}
    assert rules["a very long object name that goes on and on"] == "length"
    assert cs.source["kind"] == "language model" and cs.source["filters"]["max_length"] == 30
    assert cs.classes == ["golf_swing", "bowl"] and cs.scene


def test_concept_set_round_trip_and_bad_files(tmp_path: Path) -> None:
    cs = ConceptSet(dataset="x", object=["ball"], scene=["court"], classes=["a"], source={"kind": "file"})
    path = cs.save(tmp_path / "set.json")
    back = load_concept_set(path)
    assert back.to_json() == cs.to_json()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable concept-set"):
        load_concept_set(tmp_path / "bad.json")
    (tmp_path / "wrong.json").write_text(json.dumps({"object": "ball", "scene": []}))
    with pytest.raises(ConfigError, match="'object' must be a list"):
        load_concept_set(tmp_path / "wrong.json")
    with pytest.raises(ConfigError, match="shipped"):
        load_concept_set("no-such-dataset")


# ------------------------------------------------------------------ shipped sets

SHIPPED = {"kth": 6, "penn_action": 15, "ucf101": 101}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_set_is_consistent_with_its_answers(name: str) -> None:
    assert name in shipped_names()
    cs = load_concept_set(name)
    raw = json.loads((SHIPPED_DIR / "answers" / f"{name}.json").read_text())
    assert len(cs.classes) == SHIPPED[name] == len(raw["answers"])
    assert cs.source["answered_by"] == raw["answered_by"]
    lists, problems = parse_answers(raw["answers"])
    assert not problems
    for t, kind in (("object", "objects"), ("scene", "scenes")):
        candidates = {c for v in lists.values() for c in v[kind]}
        dropped = {d["concept"] for d in cs.dropped[t]}
        assert set(cs.names(t)) <= candidates  # nothing invented after the answers
        assert candidates - set(cs.names(t)) <= dropped  # every candidate not kept is listed as dropped
        assert all(len(c) <= 30 for c in cs.names(t))


def test_shipped_names_accept_spellings() -> None:
    assert load_concept_set("UCF-101").dataset == load_concept_set("ucf101").dataset
    assert load_concept_set("PennAction").classes == load_concept_set("penn_action").classes


def test_cli_concepts_ucf101_prints_hundreds_with_source() -> None:
    res = CliRunner().invoke(app, ["concepts", "ucf101"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    cs = load_concept_set("ucf101")
    assert len(cs.object) >= 200 and len(cs.scene) >= 100
    assert f"{len(cs.object)} object and {len(cs.scene)} scene concepts" in res.output
    assert "source: language model" in res.output and "answered_by" in res.output
    assert cs.object[0] in res.output and cs.scene[-1] in res.output


def test_cli_concepts_unknown_is_a_clear_error() -> None:
    res = CliRunner().invoke(app, ["concepts", "kinetics9000"])
    assert res.exit_code == 2 and "no concept set 'kinetics9000'" in res.output


# ------------------------------------------------------------------ the language stage with a language model

pytest.importorskip("openai")
from fake_llm import FakeLLM, Reply, isolate_llm_env  # noqa: E402

from dance.config import load_settings  # noqa: E402
from dance.data.synthetic import generate  # noqa: E402
from dance.pipeline import run_pipeline  # noqa: E402
from dance.pipeline.runner import Context  # noqa: E402
from dance.runs import RunDir  # noqa: E402


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    isolate_llm_env(monkeypatch)
    server = FakeLLM().start()
    try:
        yield server
    finally:
        server.close()


def test_language_stage_asks_filters_caches_and_skips_a_bad_class(llm: FakeLLM, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    data = tmp_path / "data"
    generate(data, n_videos=24, seed=1, size=32, n_frames=8)

    def respond(body: dict) -> Reply:
        prompt = body["messages"][-1]["content"]
        if "bowing" in prompt:  # one class never answers with a list
            return Reply("I am not able to answer that.")
        if "physical objects" in prompt:
            return Reply("1. Wooden table\n2. Red ball\n3. wooden table")
        return Reply("- indoor gym\n- city park")

    llm.responder = respond
    settings = load_settings(None, [f"data.path={data / 'annotations.csv'}", "language.concepts=llm",
                                    f"language.llm_base_url={llm.base_url}", "language.llm_model=test-model"])
    ctx = Context(settings, RunDir(tmp_path / "run"))
    run_pipeline(ctx, only=["index", "language"])
    cs = ConceptSet.from_json(json.loads((tmp_path / "run" / "language" / "concepts.json").read_text()))
    assert cs.object == ["wooden table", "red ball"] and cs.scene == ["indoor gym", "city park"]
    assert cs.source["model"] == "test-model" and cs.source["calls"] > 0
    assert any(f["reason"].startswith("no list") for f in cs.source["failures"])
    n_requests = len(llm.requests)
    # a forced rerun reads every answer from the run's cache: no new request
    run_pipeline(ctx, only=["index", "language"], force=("language",))
    assert len(llm.requests) == n_requests
