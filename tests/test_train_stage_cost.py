"""``benchmarks/train_stage_cost.py``: the train stage's selection timed per ``train.distill`` setting on a finished
run, without scoring its test split. Checks what it prints, not how fast anything is."""

from __future__ import annotations

from pathlib import Path

from _benchmarks import load_benchmark


def test_times_each_setting_and_counts_its_candidates(pose: Path, tmp_path: Path, capsys) -> None:
    import shutil

    cost = load_benchmark("train_stage_cost")
    run = tmp_path / "run"
    shutil.copytree(pose, run)
    config = run / "config.yaml"  # the concept layer and activation chosen (train.*=auto, on request)
    config.write_text(config.read_text(encoding="utf-8").replace("concept_hidden: null", "concept_hidden: auto")
                      .replace("binary_activation: logit", "binary_activation: auto"), encoding="utf-8")
    assert cost.main([str(run), "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[-2:]}
    n = {d: int(rows[d][1]) for d in ("0", "auto")}
    # chosen on the fixture's validation videos (its defaults choose nothing, so it trained no fold encoders): 0 fits
    # every candidate, auto distils 0.5 without the MLP concept layer with probabilities
    assert n["0"] == 4 and n["auto"] == 3, out
    assert float(rows["0"][3]) == 1.0 and float(rows["0"][5]) == 1.0  # the reference's ratios to itself
    assert "repeat 1, train.distill=auto" in out and "picked " in out


def test_a_run_without_stages_is_one_error_line(tmp_path: Path, capsys) -> None:
    cost = load_benchmark("train_stage_cost")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"data:\n  path: {tmp_path / 'none.csv'}\n", encoding="utf-8")
    assert cost.main([str(run), "--repeats", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
