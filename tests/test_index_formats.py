"""The format registry: a new dataset format is one decorated definition, used through ``data.format=<name>``."""

from __future__ import annotations

from pathlib import Path

import pytest

from dance.data.datasets import DATASETS
from dance.data.formats import FORMATS, IndexRequest, load_index
from dance.data.formats.annotations import read_index_csv
from dance.data.formats.common import open_source, text_lines
from dance.data.index import VideoIndex
from dance.data.validation import Row, read_text
from dance.errors import ConfigError, IndexFormatError
from dance.pipeline import run_pipeline
from dance.pipeline.runner import Context
from dance.pipeline.validate import check_override, load_checked_settings
from dance.runs import RunDir


def _tiny_dataset(root: Path) -> Path:
    lines = []
    for label in ("jump", "run"):
        for split, n in (("train", 3), ("test", 1)):
            for i in range(n):
                name = f"clips/{label}_{split}_{i}.mp4"
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(b"")
                lines.append(f"{name} {label} {split}")
    (root / "videos.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_a_format_registered_in_the_test_is_read_through_data_format(tmp_path: Path) -> None:
    root = _tiny_dataset(tmp_path / "data")
    with FORMATS.temporary():

        @FORMATS.register("lines", "videos.txt: one 'path label split' line per video")
        def read_lines(source: Path, request: IndexRequest) -> VideoIndex:
            src = open_source(source, request)
            file = src.path / "videos.txt"
            rows = [Row(file, n, *line.split()) for n, line in text_lines(read_text(file))]
            return src.build(rows, root=src.path, split_where={}, default_where=str(file), source=f"lines:{file}")

        assert "lines" in FORMATS.names()
        settings = load_checked_settings(None, [f"data.path={root}", "data.format=lines", "data.val_fraction=0"])
        run_pipeline(Context(settings, RunDir(tmp_path / "run")), only=["index"])
        index = read_index_csv(tmp_path / "run" / "index" / "index.csv")
        assert index.classes == ["jump", "run"] and len(index) == 8
        assert {s: len(index.split(s)) for s in index.split_names} == {"train": 6, "test": 2}
        assert index.records[0].video_id == "clips__jump_train_0" and index.source == f"lines:{root / 'videos.txt'}"
        # the shared checks come with it: a missing video is reported with its file and line
        (root / "clips" / "run_test_0.mp4").unlink()
        with pytest.raises(IndexFormatError, match=r"videos\.txt:8: missing video file"):
            load_index(root, fmt="lines")

    assert "lines" not in FORMATS
    with pytest.raises(ConfigError, match="unknown dataset format 'lines'"):
        check_override("data.format=lines")
    with pytest.raises(IndexFormatError, match="unknown index format 'lines'"):
        load_index(root, fmt="lines")


def test_every_dataset_is_a_format() -> None:
    assert set(DATASETS) <= set(FORMATS)
    assert {"auto", "csv", "pose", "folders", "split_csv", "mmaction2"} <= set(FORMATS)
    assert all(FORMATS.description(name) for name in FORMATS)
