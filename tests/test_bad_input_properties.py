"""Property-based tests (hypothesis) for the readers of untrusted input: a language model's answer
(:func:`parse_list`), video index files (:mod:`dance.data.index`) and pose files (:func:`load_pose_file`).

Whatever the input, they return a well-formed result or raise one of the project's own errors
(:class:`~dance.errors.DanceError`), never anything else. Each test is bounded (``max_examples`` 50, no deadline)
so that the suite stays fast on a busy 2-core machine.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from dance.data.formats import load_index  # noqa: E402
from dance.data.formats.annotations import read_index_csv  # noqa: E402
from dance.data.index import VideoIndex  # noqa: E402
from dance.errors import DanceError, IndexFormatError, PoseFormatError  # noqa: E402
from dance.language.parse import parse_list  # noqa: E402
from dance.motion.poses import load_pose_file  # noqa: E402

# FUZZ_N=2000 pytest tests/test_bad_input_properties.py searches longer (by hand; CI keeps 50)
BOUNDED = settings(max_examples=int(os.environ.get("FUZZ_N", "50")), deadline=None,
                   suppress_health_check=[HealthCheck.too_slow], print_blob=True)

# text without lone surrogates (they cannot be written to a UTF-8 file)
TEXT = st.characters(blacklist_categories=("Cs",))


# ------------------------------------------------------------------ parse_list

_PIECES = st.sampled_from([
    "[", "]", "{", "}", "(", ")", '"', "'", ",", ";", ":", "\n", "\r\n", "\t", " ", "  ", "\x00", "\x07", "\x1b",
    "1. ", "2) ", "- ", "* ", "• ", "a) ", "**", "__", "`", "```", "```json\n", "|", "|---|", "#", "## ",
    "ball", "tennis racket", "e.g. ", "such as ", "etc.", "and ", "the ", "Here are the objects:", "Sure!",
    '{"objects": [', '"net"', "]}", "null", "1e999", "NaN", "\\u0000", "—", " - ",
])
ANSWERS = st.one_of(
    st.text(TEXT, max_size=300),
    st.lists(st.one_of(_PIECES, st.text(TEXT, max_size=5)), max_size=60).map("".join),
)


@BOUNDED
@given(ANSWERS)
def test_parse_list_any_text(answer: str) -> None:
    items = parse_list(answer)
    assert isinstance(items, list) and all(isinstance(i, str) and i for i in items)
    assert len(items) == len(set(items))  # de-duplicated
    for item in items:
        assert item == item.strip() and "  " not in item
        assert not any(unicodedata.category(c) == "Cc" for c in item), repr(item)  # no NUL, no controls


@BOUNDED
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                              st.text(TEXT, max_size=20)),
                    lambda children: st.one_of(st.lists(children, max_size=4),
                                               st.dictionaries(st.text(TEXT, max_size=8), children, max_size=4)),
                    max_leaves=30))
def test_parse_list_any_json(value: object) -> None:
    import json

    for answer in (json.dumps(value), f"Sure! Here it is:\n```json\n{json.dumps(value, indent=1)}\n```"):
        assert all(isinstance(i, str) and i for i in parse_list(answer))


def test_parse_list_rejects_nothing_but_non_strings() -> None:
    assert parse_list(None) == [] and parse_list(b"ball") == [] and parse_list(123) == []  # type: ignore[arg-type]


# ------------------------------------------------------------------ index readers


@pytest.fixture(scope="module")
def dataset() -> Iterator[Path]:
    """A dataset root with a few real files the fuzzed rows may name (reused by every example)."""
    with tempfile.TemporaryDirectory(prefix="dance-index-fuzz-") as tmp:
        root = Path(tmp)
        for rel in ("a.mp4", "b.avi", "jump/c.mp4", "run/d.mp4", "poses/e.npz", "poses/f.npz"):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(b"x")
        yield root


_CELLS = st.one_of(
    st.sampled_from(["a.mp4", "b.avi", "jump/c.mp4", "run/d.mp4", "missing.mp4", "../a.mp4", "/etc/passwd",
                     "a\x00.mp4", "jump", "train", "val", "test", "TEST", "other", "e", "f", "x", "y", "0", "7",
                     "-1", "", " ", '"', '"a,b"', "a\nb", "\x00", "\x01", "~", ".", "poses/../a"]),
    st.text(TEXT, max_size=12),
)
_HEADERS = st.sampled_from(["path,label,split", "video_id,label,split", "path,label", "video_id,path,label,split",
                            "label,split", "PATH , Label,SPLIT,extra", ""])
CSV_TEXT = st.one_of(
    st.text(TEXT, max_size=300),
    st.builds(
        lambda header, rows, sep: "\n".join([header] + [sep.join(r) for r in rows]),
        _HEADERS,
        st.lists(st.lists(_CELLS, min_size=0, max_size=5), max_size=12),
        st.sampled_from([",", " ", ";", "\t"]),
    ),
)


def _index_ok(index: VideoIndex) -> None:
    assert isinstance(index, VideoIndex)
    for r in index.records:
        assert "\x00" not in r.video_id and "\x00" not in str(r.path) and r.label in index.classes


def _reads(call) -> None:  # noqa: ANN001
    try:
        _index_ok(call())
    except DanceError as e:
        assert isinstance(e, IndexFormatError), type(e)


@BOUNDED
@given(CSV_TEXT)
@example(text="path,label,split\na.mp4,x,train\nb\x00.avi,x,test\n")  # the tester's NUL byte
@example(text="path,label,split\n~nobody-such-user/a.mp4,x,train\n")  # a home folder that cannot be found
@example(text="path,label,split\n" + "x" * 300 + ".mp4,x,train\n")  # a file name too long for the system
@example(text="video_id,label,split\ne\x00,x,train\n")
def test_annotations_csv_any_text(dataset: Path, text: str) -> None:
    csv = dataset / "annotations.csv"
    csv.write_text(text, encoding="utf-8")
    _reads(lambda: load_index(csv))
    _reads(lambda: load_index(csv, fmt="pose", check_files=False))
    _reads(lambda: read_index_csv(csv, root=dataset))


@BOUNDED
@given(CSV_TEXT, CSV_TEXT, st.sampled_from(["auto", "split_csv", "mmaction2", "folders"]))
@example(train="a.mp4,jump\nb\x00.avi,run\n", test="jump/c.mp4,jump\n", fmt="split_csv")
@example(train="a.mp4 0\n\x00 1\n", test="b.avi 1\n", fmt="mmaction2")
@example(train="jump/c.mp4\njump/\x00.mp4\n", test="run/d.mp4\n", fmt="folders")
def test_split_lists_any_text(dataset: Path, train: str, test: str, fmt: str) -> None:
    (dataset / "train.txt").write_text(train, encoding="utf-8")
    (dataset / "test.txt").write_text(test, encoding="utf-8")
    (dataset / "classes.txt").write_text("jump\nrun\n", encoding="utf-8")
    classes = "classes.txt" if fmt == "mmaction2" else None
    _reads(lambda: load_index(dataset, fmt=fmt, splits={"train": "train.txt", "test": "test.txt"}, classes=classes))


@BOUNDED
@given(st.binary(max_size=200))
def test_index_files_any_bytes(dataset: Path, data: bytes) -> None:
    csv = dataset / "annotations.csv"
    csv.write_bytes(data)
    _reads(lambda: load_index(csv))
    _reads(lambda: read_index_csv(csv))


# ------------------------------------------------------------------ pose files

_DTYPES = st.one_of(
    hnp.scalar_dtypes(),  # bool, ints, floats, complex, datetime64, timedelta64
    hnp.byte_string_dtypes(max_len=4),
    hnp.unicode_string_dtypes(max_len=4),
    hnp.array_dtypes(max_size=2),  # structured records
)
ARRAYS = _DTYPES.flatmap(lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=4, max_side=4)))
POSE_LIKE = st.tuples(st.integers(0, 4), st.integers(1, 3)).flatmap(  # (T, J, 2) / (T, J), NaN and inf included
    lambda tj: st.fixed_dictionaries(
        {"keypoints": hnp.arrays(st.sampled_from([np.float64, np.float32, np.int64, np.uint8]), (*tj, 2))},
        optional={"scores": hnp.arrays(st.sampled_from([np.float64, np.float32]), tj),
                  "size": hnp.arrays(np.int64, (2,))},
    )
)


@pytest.fixture(scope="module")
def pose_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dance-pose-fuzz-") as tmp:
        yield Path(tmp)


def _loads_or_pose_error(path: Path, n_joints: int | None) -> None:
    try:
        seq = load_pose_file(path, n_joints)
    except DanceError as e:
        assert isinstance(e, PoseFormatError), type(e)
        return
    kp, sc = seq.keypoints, seq.scores
    assert kp.dtype == np.float32 and sc.dtype == np.float32
    assert kp.ndim == 3 and kp.shape[2] == 2 and sc.shape == kp.shape[:2]
    assert n_joints is None or kp.shape[1] == n_joints
    assert np.isfinite(kp).all() and np.isfinite(sc).all() and ((sc >= 0) & (sc <= 1)).all()


@BOUNDED
@given(st.dictionaries(st.sampled_from(["keypoints", "scores", "size", "other"]), ARRAYS, max_size=3),
       st.one_of(st.none(), st.integers(1, 4)))
def test_pose_file_any_arrays(pose_dir: Path, arrays: dict, n_joints: int | None) -> None:
    path = pose_dir / "p.npz"
    np.savez(path, **arrays)  # object arrays would be pickled: the reader refuses them (allow_pickle=False)
    _loads_or_pose_error(path, n_joints)


@BOUNDED
@given(POSE_LIKE, st.one_of(st.none(), st.integers(1, 3)))
def test_pose_file_pose_shaped_arrays(pose_dir: Path, arrays: dict, n_joints: int | None) -> None:
    path = pose_dir / "q.npz"
    np.savez(path, **arrays)
    _loads_or_pose_error(path, n_joints)


@BOUNDED
@given(st.binary(max_size=300))
def test_pose_file_any_bytes(pose_dir: Path, data: bytes) -> None:
    path = pose_dir / "r.npz"
    path.write_bytes(data)
    _loads_or_pose_error(path, None)


def test_pose_file_special_cases(pose_dir: Path) -> None:
    cases = {
        "object": {"keypoints": np.array([1, "a"], dtype=object)},
        "single-array": None,
        "huge": {"keypoints": np.full((2, 3, 2), 1e300)},
        "complex": {"keypoints": np.ones((2, 3, 2), complex)},
        "records": {"keypoints": np.zeros((2, 3), dtype=[("x", "f4"), ("y", "f4")])},
        "dates": {"keypoints": np.zeros((2, 3, 2), "datetime64[s]")},
    }
    for name, arrays in cases.items():
        path = pose_dir / f"{name}.npz"
        if arrays is None:
            with open(path, "wb") as f:
                np.save(f, np.zeros((2, 3, 2)))  # an .npy under an .npz name
        else:
            np.savez(path, **arrays)
        _loads_or_pose_error(path, 3)
    with pytest.raises(PoseFormatError, match="must be a numeric array"):
        load_pose_file(pose_dir / "dates.npz")
    seq = load_pose_file(pose_dir / "huge.npz")  # too large for float32: "no detection", like NaN
    assert (seq.scores == 0).all() and (seq.keypoints == 0).all()
