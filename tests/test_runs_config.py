"""Run directory and atomic writes (dance.runs), stage caching (pipeline.runner), settings (dance.config)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dance.config import Settings, apply_overrides, load_settings
from dance.errors import ConfigError, StageError
from dance.pipeline.runner import Context, Stage, run_stages
from dance.runs import (
    MANIFEST,
    RunDir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    fingerprint,
    read_json,
    stable_hash,
)

# ------------------------------------------------------------------ atomic writes


def test_atomic_writes_leave_no_temp_files(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "sub" / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "sub" / "b.txt", "héllo")
    atomic_write_json(tmp_path / "sub" / "c.json", {"x": [1, 2], "y": None})
    atomic_write_text(tmp_path / "sub" / "b.txt", "again")  # overwrite
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.bin", "b.txt", "c.json"]
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "sub" / "b.txt").read_text(encoding="utf-8") == "again"
    assert read_json(tmp_path / "sub" / "c.json") == {"x": [1, 2], "y": None}


def test_failed_atomic_write_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_stable_hash_and_fingerprint() -> None:
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
    fp1, sh1 = fingerprint("s", {"x": 1}, {"up": "abc"})
    fp2, sh2 = fingerprint("s", {"x": 1}, {"up": "abd"})
    fp3, _ = fingerprint("t", {"x": 1}, {"up": "abc"})
    assert sh1 == sh2 == stable_hash({"x": 1})
    assert len({fp1, fp2, fp3}) == 3


# ------------------------------------------------------------------ RunDir


def hidden_entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_writing_commits_folder_and_manifest_on_success(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    assert run.manifest("stage") is None
    with pytest.raises(StageError, match="stage"):
        run.require("stage")
    with run.writing("stage", "fp1", "sh1", {"up": "x"}) as w:
        w.path("nested/out.txt").write_text("v1")
        w.extra["n"] = 3
        assert not run.stage_dir("stage").exists()  # nothing visible before the commit
        assert w.dir.parent == run.root and w.dir.name.startswith(".stage.partial-")
    folder = run.require("stage")
    assert (folder / "nested" / "out.txt").read_text() == "v1"
    m = run.manifest("stage")
    assert m is not None
    assert (m.stage, m.fingerprint, m.settings_hash) == ("stage", "fp1", "sh1")
    assert m.inputs == {"up": "x"} and m.extra == {"n": 3}
    assert read_json(folder / MANIFEST)["fingerprint"] == "fp1"
    assert run.is_current("stage", "fp1") and not run.is_current("stage", "fp2")
    assert hidden_entries(run.root) == []
    # a second successful write replaces the whole folder
    with run.writing("stage", "fp2", "sh2", {}) as w:
        w.path("other.txt").write_text("v2")
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "other.txt"]
    assert run.is_current("stage", "fp2")
    assert hidden_entries(run.root) == []


def test_writing_failure_leaves_nothing(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with run.writing("stage", "fp", "sh", {}) as w:
            w.path("out.txt").write_text("half")
            raise RuntimeError("boom")
    assert not run.stage_dir("stage").exists()
    assert run.manifest("stage") is None
    assert list(tmp_path.iterdir()) == []


def test_writing_failure_keeps_previous_version(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    with run.writing("stage", "fp-old", "sh", {}) as w:
        w.path("out.txt").write_text("good")
    with pytest.raises(KeyboardInterrupt):
        with run.writing("stage", "fp-new", "sh", {}) as w:
            w.path("out.txt").write_text("partial")
            w.path("extra.txt").write_text("partial")
            raise KeyboardInterrupt
    folder = run.stage_dir("stage")
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "out.txt"]
    assert (folder / "out.txt").read_text() == "good"
    assert run.is_current("stage", "fp-old")
    assert hidden_entries(tmp_path) == []


def test_corrupt_manifest_counts_as_not_run(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / MANIFEST).write_text("{not json")
    assert run.manifest("stage") is None
    assert not run.is_current("stage", "anything")


def test_stale_partial_folders_removed_on_open(tmp_path: Path) -> None:
    stale = tmp_path / ".train.partial-abc123"
    stale.mkdir(parents=True)
    (stale / "junk.bin").write_bytes(b"x" * 10)
    old = tmp_path / ".motion.partial-old-999"
    old.mkdir()
    keep_file = tmp_path / ".notes"
    keep_file.write_text("user file")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "model.json").write_text("{}")
    RunDir(tmp_path)
    assert not stale.exists() and not old.exists()
    assert keep_file.read_text() == "user file"
    assert (tmp_path / "train" / "model.json").is_file()


# ------------------------------------------------------------------ run_stages


class FakeStages:
    """Two stages: 'first' (settings: motion) and 'second' (reads first; settings: train)."""

    def __init__(self) -> None:
        self.calls = {"first": 0, "second": 0}

    def _first(self, ctx: Context, w) -> dict:
        self.calls["first"] += 1
        w.path("value.txt").write_text(str(ctx.settings.motion.partition))
        return {"n": self.calls["first"]}

    def _second(self, ctx: Context, w) -> dict:
        self.calls["second"] += 1
        upstream = (ctx.stage_dir("first") / "value.txt").read_text()
        w.path("value.txt").write_text(f"{upstream}+{ctx.settings.train.lam}")
        return {}

    def stages(self) -> list[Stage]:
        return [
            Stage("first", "first stage", (), ("motion",), self._first),
            Stage("second", "second stage", ("first",), ("train",), self._second),
        ]


def statuses(results) -> dict[str, str]:
    return {r.name: r.status for r in results}


def test_run_stages_runs_then_caches(tmp_path: Path) -> None:
    fake = FakeStages()
    ctx = Context(Settings(), RunDir(tmp_path))
    res = run_stages(fake.stages(), ctx)
    assert statuses(res) == {"first": "ran", "second": "ran"}
    assert res[0].info == {"n": 1}
    assert fake.calls == {"first": 1, "second": 1}
    assert (tmp_path / "second" / "value.txt").read_text() == "auto+auto"
    res = run_stages(fake.stages(), Context(Settings(), RunDir(tmp_path)))
    assert statuses(res) == {"first": "cached", "second": "cached"}
    assert res[0].info == {"n": 1}  # from the manifest
    assert fake.calls == {"first": 1, "second": 1}
    assert hidden_entries(tmp_path) == []


def test_run_stages_force(tmp_path: Path) -> None:
    fake = FakeStages()
    ctx = Context(Settings(), RunDir(tmp_path))
    run_stages(fake.stages(), ctx)
    res = run_stages(fake.stages(), ctx, force=["second"])
    assert statuses(res) == {"first": "cached", "second": "ran"}
    assert fake.calls == {"first": 1, "second": 2}
    # forcing the first stage reruns it; its outputs' fingerprint is unchanged, so the second stays cached
    res = run_stages(fake.stages(), ctx, force=["first"])
    assert statuses(res) == {"first": "ran", "second": "cached"}
    assert fake.calls == {"first": 2, "second": 2}


def test_run_stages_settings_change_reruns_stage_and_dependents(tmp_path: Path) -> None:
    fake = FakeStages()
    run = RunDir(tmp_path)
    run_stages(fake.stages(), Context(Settings(), run))
    changed = load_settings(overrides=["motion.partition=3"])
    res = run_stages(fake.stages(), Context(changed, run))
    assert statuses(res) == {"first": "ran", "second": "ran"}
    assert fake.calls == {"first": 2, "second": 2}
    assert (tmp_path / "second" / "value.txt").read_text() == "3+auto"
    # a change in the second stage's own section reruns only that stage
    changed2 = load_settings(overrides=["motion.partition=3", "train.lam=0.01"])
    res = run_stages(fake.stages(), Context(changed2, run))
    assert statuses(res) == {"first": "cached", "second": "ran"}
    assert fake.calls == {"first": 2, "second": 3}
    # a section neither stage reads changes nothing
    changed3 = load_settings(overrides=["motion.partition=3", "train.lam=0.01", "features.seed=9"])
    res = run_stages(fake.stages(), Context(changed3, run))
    assert statuses(res) == {"first": "cached", "second": "cached"}
    # back to the original settings: both rerun (the cache holds only the latest version)
    res = run_stages(fake.stages(), Context(Settings(), run))
    assert statuses(res) == {"first": "ran", "second": "ran"}


def test_run_stages_only(tmp_path: Path) -> None:
    fake = FakeStages()
    run = RunDir(tmp_path)
    with pytest.raises(StageError, match="first"):  # upstream missing
        run_stages(fake.stages(), Context(Settings(), run), only=["second"])
    assert fake.calls == {"first": 0, "second": 0}
    res = run_stages(fake.stages(), Context(Settings(), run), only=["first"])
    assert statuses(res) == {"first": "ran"}
    res = run_stages(fake.stages(), Context(Settings(), run), only=["second"])
    assert statuses(res) == {"second": "ran"}
    assert fake.calls == {"first": 1, "second": 1}


def test_run_stages_failure_keeps_nothing_and_reraises(tmp_path: Path) -> None:
    def broken(ctx: Context, w) -> None:
        w.path("half.txt").write_text("x")
        raise ValueError("stage failed")

    fake = FakeStages()
    stages = [fake.stages()[0], Stage("second", "broken", ("first",), ("train",), broken)]
    with pytest.raises(ValueError, match="stage failed"):
        run_stages(stages, Context(Settings(), RunDir(tmp_path)))
    assert (tmp_path / "first" / MANIFEST).is_file()
    assert not (tmp_path / "second").exists()
    assert hidden_entries(tmp_path) == []


@pytest.mark.parametrize("kwargs", [{"force": ["nope"]}, {"only": ["nope"]}])
def test_run_stages_unknown_stage(tmp_path: Path, kwargs: dict) -> None:
    fake = FakeStages()
    with pytest.raises(StageError, match="unknown stage 'nope'"):
        run_stages(fake.stages(), Context(Settings(), RunDir(tmp_path)), **kwargs)
    assert fake.calls == {"first": 0, "second": 0}


def test_run_stages_wrong_order(tmp_path: Path) -> None:
    fake = FakeStages()
    with pytest.raises(StageError, match="order"):
        run_stages(list(reversed(fake.stages())), Context(Settings(), RunDir(tmp_path)))


# ------------------------------------------------------------------ settings


def test_load_settings_defaults() -> None:
    s = load_settings()
    assert s == Settings()
    assert s.motion.partition == "auto" and s.train.lam == "auto"
    # a fixed concept layer, linear with logits; auto (linear or an MLP, probabilities or logits, chosen) on request
    assert s.train.concept_hidden is None and s.train.binary_activation == "logit"
    chosen = load_settings(overrides=["train.concept_hidden=auto", "train.binary_activation=auto"]).train
    assert chosen.concept_hidden == "auto" and chosen.binary_activation == "auto"
    with pytest.raises(ConfigError, match="partition"):
        load_settings(overrides=["motion.partition=-1"])
    with pytest.raises(ConfigError, match="concept_hidden"):
        load_settings(overrides=["train.concept_hidden=wide"])


def test_load_settings_yaml_and_typed_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "motion:\n  partition: 2\n  distance: euclidean\ntrain:\n  lam: 0.001\n  concept_hidden: 16\n"
    )
    s = load_settings(cfg, ["train.concept_steps=50", "train.alpha=0.5", "train.concept_hidden=null",
                            "features.device=cuda:1", "keyclips.threshold=0.25", "motion.partition=4"])
    assert s.motion.partition == 4  # the override wins over the file
    assert s.motion.distance == "euclidean"
    assert s.train.lam == pytest.approx(0.001)
    assert s.train.concept_steps == 50 and isinstance(s.train.concept_steps, int)
    assert s.train.alpha == pytest.approx(0.5) and isinstance(s.train.alpha, float)
    assert s.train.concept_hidden is None
    assert s.features.device == "cuda:1"
    assert s.keyclips.threshold == pytest.approx(0.25)
    assert s.data == Settings().data  # untouched sections keep their defaults


def test_apply_overrides_parses_yaml_scalars() -> None:
    raw = {"a": {"keep": 1}}
    out = apply_overrides(raw, ["a.i=3", "a.f=2.5", "a.t=true", "a.n=null", "a.s=hello", "b.x=False",
                                "a.eq=x=y", " a.sp = 7 "])
    assert out == {
        "a": {"keep": 1, "i": 3, "f": 2.5, "t": True, "n": None, "s": "hello", "eq": "x=y", "sp": 7},
        "b": {"x": False},
    }
    assert type(out["a"]["i"]) is int and type(out["a"]["t"]) is bool
    assert raw == {"a": {"keep": 1}}  # the input is not changed


def test_load_settings_bad_key_names_it() -> None:
    with pytest.raises(ConfigError, match=r"train\.nonsense"):
        load_settings(overrides=["train.nonsense=1"])


def test_load_settings_bad_value_names_key() -> None:
    with pytest.raises(ConfigError, match=r"motion\.partition"):
        load_settings(overrides=["motion.partition=-1"])  # ge=0
    with pytest.raises(ConfigError, match=r"motion\.distance"):
        load_settings(overrides=["motion.distance=manhattan"])


def test_load_settings_unknown_section() -> None:
    with pytest.raises(ConfigError, match="nosuchsection"):
        load_settings(overrides=["nosuchsection.x=1"])


def test_load_settings_bad_key_in_yaml_file(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("motion:\n  partitoin: 2\n")
    with pytest.raises(ConfigError, match=r"motion\.partitoin") as info:
        load_settings(cfg)
    assert str(cfg) in str(info.value)


@pytest.mark.parametrize(
    "text", ["motion: [1, 2\n", "a: b: c\n", "motion:\n  partition: 1\n bad-indent: 2\n"]
)
def test_load_settings_bad_yaml(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(cfg)


def test_load_settings_other_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.yaml")
    top_list = tmp_path / "list.yaml"
    top_list.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(top_list)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_settings(empty) == Settings()
    scalar_section = tmp_path / "scalar.yaml"
    scalar_section.write_text("motion: 3\n")
    with pytest.raises(ConfigError, match="not a section"):
        load_settings(scalar_section, ["motion.partition=2"])


@pytest.mark.parametrize("override", ["motion.partition", "partition=2", "a.b.c=1"])
def test_malformed_overrides(override: str) -> None:
    with pytest.raises(ConfigError, match="override"):
        load_settings(overrides=[override])


def test_settings_round_trip_through_json() -> None:
    s = load_settings(overrides=["motion.partition=2", "train.concept_hidden=8"])
    again = Settings.model_validate(json.loads(s.model_dump_json()))
    assert again == s
