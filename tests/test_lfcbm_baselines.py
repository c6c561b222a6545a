"""The language-concept baselines of the paper's Table 1 (LF-CBM with entangled / disentangled language concepts),
trained side by side with DANCE.

* the whole pipeline with tiny random VideoMAE and X-CLIP models (see ``tiny_models``), ``train.models`` = DANCE and
  both baselines, through ``dance run``: the table has all three and the baseline, the summary has both variants;
* the language client asks only the prompt kinds requested, and the language stage asks the baselines' kinds only
  when ``train.models`` needs them (a scripted local server, ``fake_llm``);
* concept sets with and without the optional ``temporal`` / ``entangled`` lists;
* a baseline whose concepts are missing stops the run with what to set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from word_encoder import WordEncoder

from dance.config import load_settings
from dance.data.synthetic import generate
from dance.errors import ConfigError, StageError
from dance.language.concept_set import SHIPPED_DIR, ConceptSet, build_concept_set, load_concept_set, parse_answers
from dance.language.prompts import (
    ENTANGLED_PROMPT_TEMPLATE,
    OBJECT_PROMPT_TEMPLATE,
    SCENE_PROMPT_TEMPLATE,
    TEMPORAL_PROMPT_TEMPLATE,
    render_prompt,
)
from dance.model.dance import ConceptTargets
from dance.paper import PAPER_TABLE1, paper_dataset
from dance.pipeline import run_pipeline
from dance.pipeline.runner import Context
from dance.pipeline.train import SplitData, variant_targets
from dance.pipeline.variants import comparison_rows, needed_kinds
from dance.runs import RunDir

# words of tiny_models.WORDS, so the tiny tokenizer gives every concept its own embedding
CONCEPTS = {
    "dataset": "synthetic", "source": {"kind": "test"},
    "object": ["ball", "bicycle", "rope", "stick", "dog"],
    "scene": ["field", "gym", "pool", "road", "grass"],
    "temporal": ["person", "the person", "a person", "person indoor", "person outdoor"],
    "entangled": ["ball field", "dog grass", "bicycle road", "rope gym", "water pool", "horse field"],
}
ALL = "train.models=[dance,lfcbm-entangled,lfcbm-disentangled]"


# ------------------------------------------------------------------ concept sets, prompts, variants (no models)


def test_prompts_for_the_baselines() -> None:
    assert render_prompt("temporal", "tennis_serve") == (
        "List the most important body movements and motion patterns of a person doing tennis serve. "
        "Describe movements only, not objects or places")
    assert render_prompt("entangled", "TennisServe") == ENTANGLED_PROMPT_TEMPLATE.format(action="tennis serve")
    assert "movements, objects and surroundings" in ENTANGLED_PROMPT_TEMPLATE


def test_concept_set_optional_lists(tmp_path: Path) -> None:
    plain = ConceptSet(dataset="x", object=["ball"], scene=["court"])
    assert "temporal" not in plain.to_json() and "entangled" not in plain.to_json()
    assert plain.types() == ["object", "scene"] and set(plain.prompts) == {"objects", "scenes"}
    full = ConceptSet.from_json(CONCEPTS)
    assert full.types() == ["object", "scene", "temporal", "entangled"]
    back = load_concept_set(full.save(tmp_path / "set.json"))
    assert back.to_json() == full.to_json() and back.entangled == CONCEPTS["entangled"]
    with pytest.raises(ConfigError, match="'temporal' must be a list"):
        ConceptSet.from_json(dict(CONCEPTS, temporal="walk"))


def test_build_from_answers_with_temporal_and_entangled() -> None:
    answers = {
        "golf_swing": {"objects": "golf club\ngolf ball", "scenes": "golf course", "temporal": "hip rotation\n"
                       "arm swing", "entangled": "club swinging on grass"},
        "bowl": {"objects": "bowling ball", "scenes": "bowling alley", "temporal": "arm swing\nforward lunge",
                 "entangled": "ball rolling down a lane"},
    }
    lists, problems = parse_answers(answers)
    assert not problems and lists["bowl"]["temporal"] == ["arm swing", "forward lunge"]
    cs = build_concept_set("toy", list(answers), {c: v["objects"] for c, v in lists.items()},
                           {c: v["scenes"] for c, v in lists.items()}, WordEncoder(), {"kind": "test"},
                           temporal={c: v["temporal"] for c, v in lists.items()},
                           entangled={c: v["entangled"] for c, v in lists.items()})
    assert cs.temporal == ["hip rotation", "arm swing", "forward lunge"]  # the duplicate is dropped
    assert cs.entangled == ["club swinging on grass", "ball rolling down a lane"]
    assert cs.prompts["temporal"] == TEMPORAL_PROMPT_TEMPLATE and "temporal" in cs.dropped
    # a kind that some classes answer and others do not is a problem; a kind nobody answered is simply absent
    _, problems = parse_answers({"a": {"objects": "x", "scenes": "y", "temporal": "z"},
                                 "b": {"objects": "x", "scenes": "y"}})
    assert problems == ["class 'b': no temporal list in the answer"]
    lists, problems = parse_answers({"a": {"objects": "x", "scenes": "y"}})
    assert not problems and set(lists["a"]) == {"objects", "scenes"}


@pytest.mark.parametrize("name", ["kth", "penn_action", "ucf101"])
def test_shipped_sets_have_the_baselines_concepts(name: str) -> None:
    cs = load_concept_set(name)
    assert len(cs.temporal) >= 50 and len(cs.entangled) >= 50
    assert cs.prompts["temporal"] == TEMPORAL_PROMPT_TEMPLATE and cs.prompts["entangled"] == ENTANGLED_PROMPT_TEMPLATE
    raw = json.loads((SHIPPED_DIR / "answers" / f"{name}.json").read_text())
    lists, problems = parse_answers(raw["answers"])
    assert not problems
    for t in ("temporal", "entangled"):
        answered = [v[t] for v in lists.values()]
        assert all(8 <= len(items) <= 12 for items in answered)  # every answer was read whole
        candidates = {c for items in answered for c in items}
        assert set(cs.names(t)) <= candidates  # nothing invented after the answers
        assert candidates - set(cs.names(t)) <= {d["concept"] for d in cs.dropped[t]}
        assert all(len(c) <= 30 for c in cs.names(t))


def test_needed_kinds_and_paper_dataset() -> None:
    assert needed_kinds(["dance"]) == ("objects", "scenes")
    assert needed_kinds(["dance", "lfcbm-disentangled"]) == ("objects", "scenes", "temporal")
    assert needed_kinds(["dance", "lfcbm-entangled", "lfcbm-disentangled"])[-2:] == ("entangled", "temporal")
    kth = ["boxing", "handclapping", "handwaving", "jogging", "running", "walking"]
    assert paper_dataset(kth) == "KTH" and paper_dataset(["a", "b"]) is None
    assert paper_dataset(["a"], setting="penn action") == "Penn Action" and paper_dataset(kth, setting="none") is None
    with pytest.raises(ConfigError, match="Table 1"):
        paper_dataset(kth, setting="kinetics")
    rows = comparison_rows({"test_accuracy": 0.9, "baseline_test_accuracy": 0.8, "paper_dataset": "UCF-101",
                            "variants": {"lfcbm-entangled": {"test_accuracy": 0.7}}})
    assert [r["paper"] for r in rows] == [88.4, 87.5, 85.5]
    with pytest.raises(ConfigError, match="must include 'dance'"):
        load_settings(None, ["train.models=lfcbm-entangled"])
    assert load_settings(None, ["train.models=dance,lfcbm-entangled"]).train.models == ["dance", "lfcbm-entangled"]


def test_variant_without_its_concepts_is_a_clear_error() -> None:
    n = 4
    obj = ConceptTargets(["ball"], np.ones((n, 1)), "cos3")
    split = SplitData(np.arange(n), np.zeros((n, 2)), np.zeros(n, int), {"object": obj}, {"object": obj})
    with pytest.raises(StageError, match="needs temporal concepts.*no 'temporal' list.*language.concepts=llm"):
        variant_targets("lfcbm-disentangled", split, "my_set.json")
    assert set(variant_targets("dance", split)) == {"object"}


# ------------------------------------------------------------------ the language client and stage (scripted LLM)


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    pytest.importorskip("openai")
    from fake_llm import FakeLLM, Reply, isolate_llm_env

    isolate_llm_env(monkeypatch)
    server = FakeLLM().start()

    def respond(body: dict) -> Reply:
        prompt = body["messages"][-1]["content"]
        for key, answer in (("physical objects", "ball\nnet"), ("places or background", "court\ngym"),
                            ("body movements", "arm swing\nknee bend"), ("visual features", "ball over a net")):
            if key in prompt:
                return Reply(answer)
        return Reply("?")

    server.responder = respond
    try:
        yield server
    finally:
        server.close()


def test_client_asks_only_the_requested_kinds(llm) -> None:
    from dance.errors import LanguageModelError
    from dance.language.client import ConceptDiscoveryClient, DiscoveryResult, LLMSettings

    client = ConceptDiscoveryClient(LLMSettings(base_url=llm.base_url, model="m", max_retries=0))
    default = client.discover(["tennis_serve"])
    assert llm.prompts() == [OBJECT_PROMPT_TEMPLATE.format(action="tennis serve"),
                             SCENE_PROMPT_TEMPLATE.format(action="tennis serve")]
    assert default.temporal == {} and default.entangled == {} and "temporal" not in default.to_json()
    n = len(llm.requests)
    res = client.discover(["tennis_serve", "golf"], kinds=("temporal", "entangled"))
    assert llm.prompts()[n:] == [render_prompt(k, c) for c in ("tennis_serve", "golf") for k in ("temporal",
                                                                                                  "entangled")]
    assert res.temporal == {"tennis_serve": ["arm swing", "knee bend"], "golf": ["arm swing", "knee bend"]}
    assert res.entangled["golf"] == ["ball over a net"] and res.objects == {} and res.ok
    assert DiscoveryResult.from_json(json.loads(json.dumps(res.to_json()))) == res
    with pytest.raises(LanguageModelError, match="unknown prompt kind"):
        client.discover(["golf"], kinds=("verbs",))
    client.close()


def test_language_stage_asks_the_temporal_prompt_only_for_the_disentangled_baseline(llm, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    data = tmp_path / "data"
    generate(data, n_videos=24, seed=1, size=32, n_frames=8)
    base = [f"data.path={data / 'annotations.csv'}", "language.concepts=llm", f"language.llm_base_url={llm.base_url}",
            "language.llm_model=test-model", "spatial.source=xclip"]
    run_pipeline(Context(load_settings(None, base), RunDir(tmp_path / "run")), only=["index", "language"])
    assert not any("body movements" in p or "visual features" in p for p in llm.prompts())
    n_plain = len(llm.requests)
    ctx = Context(load_settings(None, base + ["train.models=[dance,lfcbm-disentangled]"]), RunDir(tmp_path / "run"))
    results = run_pipeline(ctx, only=["index", "language"])
    assert {r.name: r.status for r in results}["language"] == "ran"  # the needed kinds are in its fingerprint
    new = llm.prompts()[n_plain:]
    assert new and all("body movements" in p for p in new)  # objects and scenes came from the cache
    cs = ConceptSet.from_json(json.loads((tmp_path / "run" / "language" / "concepts.json").read_text()))
    assert cs.temporal == ["arm swing", "knee bend"] and cs.entangled == [] and cs.source["kinds"][-1] == "temporal"


# ------------------------------------------------------------------ the whole pipeline with tiny models


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("transformers")
    from tiny_models import save_tiny_videomae, save_tiny_xclip

    root = tmp_path_factory.mktemp("lfcbm")
    generate(root / "data", n_videos=48, seed=5, size=64, n_frames=16)
    (root / "concepts.json").write_text(json.dumps(CONCEPTS))
    plain = {k: v for k, v in CONCEPTS.items() if k not in ("temporal", "entangled")}
    (root / "plain.json").write_text(json.dumps(plain))
    return {"root": root, "data": root / "data", "concepts": root / "concepts.json", "plain": root / "plain.json",
            "videomae": save_tiny_videomae(root / "vmae"), "xclip": save_tiny_xclip(root / "xclip")}


def _overrides(s: dict[str, Path], concepts: Path, *extra: str) -> list[str]:
    data = s["data"]
    return [f"data.path={data / 'annotations.csv'}", f"poses.path={data / 'poses_gt'}",
            "keyclips.n_clips=2", "keyclips.clip_len=8",
            "features.backbone=videomae", f"features.model={s['videomae']}",
            f"language.concepts={concepts}", "spatial.source=xclip", f"spatial.model={s['xclip']}",
            "train.clip_cutoff=0.0", "train.interpretability_cutoff=-1.0", "train.lam=1e-4",
            "train.concept_steps=60", "train.n_lambdas=5", *extra]


def test_dance_and_both_baselines_side_by_side(tiny: dict[str, Path], tmp_path: Path) -> None:
    from dance.cli import app
    from dance.model.io import load_model

    run = tmp_path / "run"
    args = ["run", "--run", str(run)]
    for o in _overrides(tiny, tiny["concepts"], ALL, "evaluate.paper_dataset=KTH"):
        args += ["--set", o]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    print(res.stdout)
    table = res.stdout[res.stdout.index("top-1 accuracy"):]
    for label in ("Baseline w/o interpretability", "DANCE", "LF-CBM w/ entangled language concepts",
                  "LF-CBM w/ disentangled language concepts", "paper (KTH)", "DANCE paper, Table 1"):
        assert label in table
    for value in PAPER_TABLE1["KTH"].values():
        assert f"{value:.1f}" in table

    spatial = np.load(run / "spatial" / "spatial.npz")
    names = json.loads((run / "spatial" / "concepts.json").read_text())
    assert list(names) == ["object", "scene", "temporal", "entangled"] and names["entangled"] == CONCEPTS["entangled"]
    assert spatial["temporal"].shape == (48, 5) and spatial["entangled"].shape == (48, 6)
    assert spatial["object"].shape == (48, 5) and spatial["has_label"].all()

    summary = json.loads((run / "summary.json").read_text())
    assert summary["paper_dataset"] == "KTH" and set(summary["variants"]) == {"lfcbm-entangled", "lfcbm-disentangled"}
    for v in summary["variants"].values():
        assert 0.0 <= v["test_accuracy"] <= 1.0 and v["nonzero_weights"] > 0
    counts = summary["variants"]["lfcbm-entangled"]["n_concepts"]
    assert {t: counts[t] for t in ("motion", "object", "scene")} == {"motion": 0, "object": 0, "scene": 0}
    assert 0 < counts["language"] <= 6  # a concept whose label is constant may be dropped
    assert 0 < summary["variants"]["lfcbm-disentangled"]["n_concepts"]["temporal"] <= 5
    assert summary["n_concepts"]["motion"] > 0 and "temporal" not in summary["n_concepts"]  # DANCE is unchanged

    dance = load_model(run / "train" / "model")
    assert set(dance.concept_types_) == {"motion", "object", "scene"}
    entangled = load_model(run / "train" / "variants" / "lfcbm-entangled")
    assert set(entangled.concept_types_) == {"language"}
    disentangled = load_model(run / "train" / "variants" / "lfcbm-disentangled")
    assert set(disentangled.concept_types_) == {"temporal", "object", "scene"}
    # DANCE's object / scene concepts are the ones the disentangled baseline uses
    assert [n for n in disentangled.concept_names_ if not n.startswith("temporal:")] == \
        [n for n in dance.concept_names_ if not n.startswith("motion:")]


def test_a_baseline_without_its_concepts_stops_the_run_with_what_to_set(tiny: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    settings = load_settings(None, _overrides(tiny, tiny["plain"], ALL))
    with pytest.raises(StageError, match="lfcbm-entangled', which needs entangled concepts.*no 'entangled' list"):
        run_pipeline(Context(settings, RunDir(tmp_path / "a")))
    assert not (tmp_path / "a" / "index").exists()  # checked before any stage ran
    settings = load_settings(None, _overrides(tiny, tiny["concepts"], ALL, "spatial.source=none"))
    with pytest.raises(StageError, match="dual encoder, but spatial.source=none: set spatial.source to xclip"):
        run_pipeline(Context(settings, RunDir(tmp_path / "b")))
    res = CliRunner().invoke(app_for_test(), ["run", "--run", str(tmp_path / "c"), "--set", ALL, "--set",
                                              f"data.path={tiny['data'] / 'annotations.csv'}"])
    assert res.exit_code == 2 and "spatial.source" in res.output


def app_for_test():
    from dance.cli import app

    return app
