"""The DANCE estimator (dance.model.dance), saving (dance.model.io), explanations, edits (dance.explain)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dance.errors import ModelError
from dance.explain.contributions import contributions, explain, explain_concepts, type_agreement, type_shares
from dance.explain.intervene import resolve_concept, switch_off, weight_edit, with_weight
from dance.model.contributions import explanation_size
from dance.model.dance import ConceptBlock, ConceptTargets, DanceModel, top5_mean
from dance.model.io import load_model, save_model


def predict_without(model: DanceModel, X: np.ndarray, concepts: list[str]) -> np.ndarray:
    """Predicted class indices with concepts switched off, through the kept functions (resolve_concept,
    switch_off): what the viewer and `dance intervene` compute."""
    z = switch_off(model.concept_activations(X), [resolve_concept(model, c) for c in concepts])
    return model.logits_from_concepts(z).argmax(axis=1)


D = 40
CLASSES = ["a", "b", "c", "d"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_problem(seed: int = 0):
    """Train/val/test splits (300/100/100) of a problem whose labels are determined by the concepts.

    motion: 4 binary concepts (random linear map + threshold) and one constant concept;
    object: 3 soft concepts in [0, 1], one faint concept (all labels <= 0.2: clip cutoff) and one pure-noise
    concept unrelated to the features (interpretability cutoff); scene: 2 soft concepts.
    """
    rng = np.random.default_rng(seed)
    wm, wo, ws = rng.normal(size=(D, 4)), rng.normal(size=(D, 3)), rng.normal(size=(D, 2))
    v = 2.0 * rng.normal(size=(9, len(CLASSES)))

    def split(n: int):
        x = rng.normal(size=(n, D)).astype(np.float32)
        m = (x @ wm > 0).astype(np.float32)
        o = _sigmoid(x @ wo / 3.0)
        s = _sigmoid(x @ ws / 3.0)
        y = (np.concatenate([m - 0.5, o - 0.5, s - 0.5], axis=1) @ v).argmax(axis=1)
        faint = 0.2 * _sigmoid(x @ wo[:, :1])
        noise = rng.uniform(0.3, 1.0, (n, 1))
        concepts = {
            "motion": ConceptTargets(["m0", "m1", "m2", "m3", "still"], np.c_[m, np.zeros(n)], "bce"),
            "object": ConceptTargets(["o0", "o1", "o2", "faint", "noise"], np.c_[o, faint, noise], "cos3"),
            "scene": ConceptTargets(["s0", "s1"], s, "cos3"),
        }
        return x, y, concepts

    return split(300), split(100), split(100)


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def problem():
    return make_problem()


@pytest.fixture(scope="module")
def fitted(problem) -> DanceModel:
    (x, y, c), (xv, yv, cv), _ = problem
    return DanceModel(concept_steps=200, concept_lr=1e-2).fit(x, y, c, xv, yv, cv, classes=CLASSES)


# ------------------------------------------------------------------ fitting


def test_fit_accuracy_and_structure(fitted: DanceModel, problem) -> None:
    (x, y, _), _, (xt, yt, _) = problem
    assert fitted.score(xt, yt) > 0.6  # chance is 0.25
    assert fitted.score(x, y) > 0.7
    assert fitted.classes_ == CLASSES
    assert fitted.feature_dim_ == D
    names = fitted.concept_names_
    assert names == [
        "motion:m0", "motion:m1", "motion:m2", "motion:m3", "object:o0", "object:o1", "object:o2", "scene:s0",
        "scene:s1",
    ]
    assert fitted.concept_types_ == ["motion"] * 4 + ["object"] * 3 + ["scene"] * 2
    assert fitted.n_concepts() == {"motion": 4, "object": 3, "scene": 2}
    assert [(b.type, b.start, b.stop) for b in fitted.blocks_] == [("motion", 0, 4), ("object", 4, 7),
                                                                    ("scene", 7, 9)]
    assert fitted.W_.shape == (4, 9) and fitted.b_.shape == (4,)
    assert 0 < fitted.nonzero_weights() <= 36
    for b in fitted.blocks_:
        assert isinstance(b.layer, torch.nn.Linear) and b.layer.bias is None
        assert b.layer.out_features == len(b.names)
    # soft concepts that were kept are interpretable
    for b in fitted.blocks_[1:]:
        assert min(fitted.concept_quality_[b.type][n] for n in b.names) >= fitted.interpretability_cutoff


def test_fit_drops_concepts_with_reasons(fitted: DanceModel) -> None:
    dropped = {(d.type, d.name): d.reason for d in fitted.dropped_}
    assert set(dropped) == {("motion", "still"), ("object", "faint"), ("object", "noise")}
    assert dropped[("object", "faint")].startswith("clip cutoff")
    assert "0.25" in dropped[("object", "faint")]
    assert dropped[("motion", "still")] == "constant label on the training videos"
    assert dropped[("object", "noise")].startswith("interpretability cutoff")
    assert fitted.concept_quality_["object"]["noise"] < fitted.interpretability_cutoff
    assert "faint" not in fitted.concept_quality_["object"]  # dropped before training


def test_top5_mean() -> None:
    labels = np.array([[0.1, 0.0], [0.9, 0.2], [0.5, 0.2], [0.3, 0.1], [0.7, 0.2], [0.2, 0.2], [0.8, 0.2]])
    np.testing.assert_allclose(top5_mean(labels), [(0.9 + 0.8 + 0.7 + 0.5 + 0.3) / 5, 0.2])
    np.testing.assert_allclose(top5_mean(labels[:2]), [0.5, 0.1])


def test_activations_are_standardised_on_train(fitted: DanceModel, problem) -> None:
    (x, _, _), _, _ = problem
    z = fitted.concept_activations(x)
    assert z.shape == (300, 9) and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-3)
    logits = fitted.decision_function(x)
    np.testing.assert_allclose(logits, z @ fitted.W_.T + fitted.b_, rtol=1e-5, atol=1e-5)
    p = fitted.predict_proba(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(p.argmax(axis=1), fitted.predict_index(x))


def test_fit_is_deterministic(problem) -> None:
    (x, y, c), (xv, yv, cv), (xt, _, _) = problem
    a = DanceModel(concept_steps=20, concept_lr=1e-2, n_lambdas=3).fit(x, y, c, xv, yv, cv, classes=CLASSES)
    b = DanceModel(concept_steps=20, concept_lr=1e-2, n_lambdas=3).fit(x, y, c, xv, yv, cv, classes=CLASSES)
    np.testing.assert_array_equal(a.W_, b.W_)
    np.testing.assert_array_equal(a.decision_function(xt), b.decision_function(xt))


# ------------------------------------------------------------------ input errors


def test_bad_features_raise_model_error(fitted: DanceModel, problem) -> None:
    _, _, (xt, _, _) = problem
    bad = xt.copy()
    bad[3, 5] = np.nan
    bad[7, 0] = np.inf
    with pytest.raises(ModelError, match="2 feature rows"):
        fitted.predict(bad)
    with pytest.raises(ModelError, match="39 dims"):
        fitted.predict(xt[:, :39])
    with pytest.raises(ModelError, match="2-D"):
        fitted.predict(xt[0])
    with pytest.raises(ModelError, match="not fitted"):
        DanceModel().predict(xt)


def test_fit_input_errors(problem) -> None:
    (x, y, c), (xv, yv, cv), _ = problem
    model = DanceModel(concept_steps=2, n_lambdas=1)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ModelError, match="NaN"):
        model.fit(bad, y, c, xv, yv, cv, classes=CLASSES)
    with pytest.raises(ModelError, match="dims"):
        model.fit(x, y, c, xv[:, :10], yv, cv, classes=CLASSES)
    with pytest.raises(ModelError, match="numbers of videos"):
        model.fit(x, y[:-1], c, xv, yv, cv, classes=CLASSES)
    with pytest.raises(ModelError, match="no concept types"):
        model.fit(x, y, {}, xv, yv, {}, classes=CLASSES)
    renamed = {"motion": ConceptTargets(["x0", "x1", "x2", "x3", "x4"], cv["motion"].labels, "bce")}
    with pytest.raises(ModelError, match="validation concepts differ"):
        model.fit(x, y, {"motion": c["motion"]}, xv, yv, renamed, classes=CLASSES)
    # every concept constant → nothing left for the final layer
    const = {"motion": ConceptTargets(["k"], np.ones((300, 1)), "bce")}
    const_v = {"motion": ConceptTargets(["k"], np.ones((100, 1)), "bce")}
    with pytest.raises(ModelError, match="every concept was dropped"):
        model.fit(x, y, const, xv, yv, const_v, classes=CLASSES)


def test_concept_targets_validation() -> None:
    with pytest.raises(ModelError, match="do not match"):
        ConceptTargets(["a", "b"], np.zeros((4, 3)), "bce")
    with pytest.raises(ModelError, match="NaN"):
        ConceptTargets(["a"], np.array([[0.0], [np.nan]]), "bce")
    t = ConceptTargets(["a"], [[1], [0]], "bce")
    assert t.labels.dtype == np.float32 and t.mask.tolist() == [True, True]


def test_fit_missing_validation_type_is_model_error(problem) -> None:
    (x, y, c), (xv, yv, cv), _ = problem
    with pytest.raises(ModelError, match="validation targets lack"):
        model = DanceModel(concept_steps=2, n_lambdas=1)
        model.fit(x, y, c, xv, yv, {"motion": cv["motion"]}, classes=CLASSES)


# ------------------------------------------------------------------ save / load


def test_save_load_round_trip(fitted: DanceModel, problem, tmp_path: Path) -> None:
    _, _, (xt, _, _) = problem
    folder = save_model(fitted, tmp_path / "model", extra={"note": "x"})
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.safetensors"]
    loaded = load_model(folder)
    np.testing.assert_array_equal(loaded.predict(xt), fitted.predict(xt))
    np.testing.assert_array_equal(loaded.decision_function(xt), fitted.decision_function(xt))
    assert loaded.concept_names_ == fitted.concept_names_
    assert loaded.classes_ == fitted.classes_
    assert loaded.get_params() == fitted.get_params()
    assert loaded.dropped_ == fitted.dropped_
    assert loaded.concept_quality_ == fitted.concept_quality_
    assert [(b.type, b.loss, b.start, b.stop, b.activation) for b in loaded.blocks_] == [
        (b.type, b.loss, b.start, b.stop, b.activation) for b in fitted.blocks_]
    assert json.loads((folder / "model.json").read_text())["extra"] == {"note": "x"}


def test_save_load_mlp_concept_layers(problem, tmp_path: Path) -> None:
    (x, y, c), (xv, yv, cv), (xt, _, _) = problem
    model = DanceModel(concept_steps=30, concept_lr=1e-2, concept_hidden=8, interpretability_cutoff=0.0,
                       n_lambdas=3).fit(x, y, c, xv, yv, cv, classes=CLASSES)
    assert all(isinstance(b.layer, torch.nn.Sequential) for b in model.blocks_)
    loaded = load_model(save_model(model, tmp_path))
    np.testing.assert_array_equal(loaded.decision_function(xt), model.decision_function(xt))


def test_binary_concepts_enter_the_final_layer_as_probabilities(problem) -> None:
    (x, y, c), (xv, yv, cv), _ = problem
    assert DanceModel().binary_activation == "logit"  # the default (docs/pose_accuracy.md, "A fixed concept layer")
    fitted = DanceModel(concept_steps=200, concept_lr=1e-2, binary_activation="probability").fit(
        x, y, c, xv, yv, cv, classes=CLASSES)
    assert [b.activation for b in fitted.blocks_] == ["sigmoid", "identity", "identity"]
    raw = fitted._raw_activations(fitted._scaled(x, torch.device("cpu")))
    motion = fitted.blocks_[0]
    with torch.no_grad():
        logits = motion.layer(fitted._scaled(x, torch.device("cpu"))).numpy()
    np.testing.assert_allclose(raw[:, motion.start:motion.stop], _sigmoid(logits), rtol=1e-5, atol=1e-6)
    assert raw[:, motion.start:motion.stop].min() >= 0.0 and raw[:, motion.start:motion.stop].max() <= 1.0


def test_explanations_report_the_probability_of_binary_concepts(fitted: DanceModel, problem) -> None:
    _, _, (xt, _, _) = problem
    e = explain(fitted, xt[:1], k=4)[0]
    motion = fitted.blocks_[0]
    with torch.no_grad():
        p = _sigmoid(motion.layer(fitted._scaled(xt[:1], torch.device("cpu"))).numpy()[0])
    assert e.top["motion"]
    for c in e.top["motion"]:
        assert c.probability == pytest.approx(float(p[c.index - motion.start]), abs=1e-4)
        assert c.present == f"{c.probability:.2f}"
    for c in e.top["object"] + e.top["scene"]:
        assert c.probability is None and c.present == "–"


def test_logit_activation_and_files_without_activation(problem, tmp_path: Path) -> None:
    (x, y, c), (xv, yv, cv), (xt, _, _) = problem
    model = DanceModel(concept_steps=30, concept_lr=1e-2, n_lambdas=3, binary_activation="logit").fit(
        x, y, c, xv, yv, cv, classes=CLASSES)
    assert all(b.activation == "identity" for b in model.blocks_)
    folder = save_model(model, tmp_path / "m")
    # a file written before binary activations existed: no "activation" per block, no parameter (and, older
    # still than the integrity record, no "integrity": editing the blocks of a file that has one is refused)
    meta = json.loads((folder / "model.json").read_text())
    del meta["integrity"]
    for block in meta["blocks"]:
        del block["activation"]
    del meta["params"]["binary_activation"]
    (folder / "model.json").write_text(json.dumps(meta))
    old = load_model(folder)
    assert old.binary_activation == "logit" and all(b.activation == "identity" for b in old.blocks_)
    np.testing.assert_array_equal(old.decision_function(xt), model.decision_function(xt))
    with pytest.raises(ModelError, match="binary_activation"):
        DanceModel(binary_activation="tanh").fit(x, y, c, xv, yv, cv, classes=CLASSES)


def test_load_errors(fitted: DanceModel, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model.json is missing"):
        load_model(tmp_path / "nothing")
    folder = save_model(fitted, tmp_path / "m")
    meta = json.loads((folder / "model.json").read_text())
    meta["format"] = 99
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="format 99"):
        load_model(folder)
    (folder / "model.json").write_text("{broken")
    with pytest.raises(ModelError, match="cannot read"):
        load_model(folder)
    with pytest.raises(ModelError, match="not fitted"):
        save_model(DanceModel(), tmp_path / "unfitted")


# ------------------------------------------------------------------ explanations


def test_explain_contributions_add_up_to_the_logit(fitted: DanceModel, problem) -> None:
    _, _, (xt, _, _) = problem
    x = xt[:12]
    z = fitted.concept_activations(x)
    logits = fitted.decision_function(x)
    exps = explain(fitted, x, k=2)
    assert len(exps) == 12
    for i, e in enumerate(exps):
        c = int(logits[i].argmax())
        assert e.predicted == e.target == CLASSES[c]
        assert sum(e.type_shares.values()) + fitted.b_[c] == pytest.approx(logits[i, c], abs=1e-4)
        assert e.top_type == max(e.type_shares, key=e.type_shares.get)
        assert list(e.probabilities)[0] == CLASSES[c] and len(e.probabilities) == 3
        probs = list(e.probabilities.values())
        assert probs == sorted(probs, reverse=True)
        for b in fitted.blocks_:
            share = float((z[i, b.start:b.stop] * fitted.W_[c, b.start:b.stop]).sum())
            assert e.type_shares[b.type] == pytest.approx(share, abs=1e-5)
            top = e.top[b.type]
            used = np.flatnonzero(fitted.W_[c, b.start:b.stop] != 0) + b.start
            assert len(top) == min(2, len(used))  # only concepts the class uses
            assert all(fitted.W_[c, t.index] != 0 for t in top)
            assert [t.contribution for t in top] == sorted([t.contribution for t in top], reverse=True)
            # the top one is the largest contribution among the concepts the class uses
            if len(used):
                best = used[int(np.argmax(z[i, used] * fitted.W_[c, used]))]
                assert top[0].index == best
            for t in top:
                assert t.type == b.type and b.start <= t.index < b.stop
                assert fitted.concept_names_[t.index] == f"{t.type}:{t.name}"
                assert t.activation == pytest.approx(z[i, t.index], abs=1e-6)
                assert t.weight == fitted.W_[c, t.index]
                assert t.contribution == pytest.approx(z[i, t.index] * fitted.W_[c, t.index], abs=1e-6)


def test_explain_given_target_and_contribution_matrix(fitted: DanceModel, problem) -> None:
    _, _, (xt, _, _) = problem
    z = fitted.concept_activations(xt[:5])
    logits = fitted.logits_from_concepts(z)
    for cls in range(4):
        contrib = contributions(fitted, z, cls)
        np.testing.assert_allclose(contrib, z * fitted.W_[cls], rtol=1e-6)
        shares = type_shares(fitted, contrib)
        total = sum(shares.values()) + fitted.b_[cls]
        np.testing.assert_allclose(total, logits[:, cls], atol=1e-4)
        for e, row in zip(explain_concepts(fitted, z, k=10, target=cls), range(5)):
            assert e.target == CLASSES[cls]
            assert e.predicted == CLASSES[int(logits[row].argmax())]
            for b in fitted.blocks_:  # k larger than a block: every concept the class uses
                assert len(e.top[b.type]) == int((fitted.W_[cls, b.start:b.stop] != 0).sum())


# ------------------------------------------------------------------ edits


def test_predict_without_equals_zeroed_column(fitted: DanceModel, problem) -> None:
    _, _, (xt, _, _) = problem
    z = fitted.concept_activations(xt)
    # switch off the concept with the largest absolute weight, so that some predictions change
    j = int(np.abs(fitted.W_).max(axis=0).argmax())
    name = fitted.concept_names_[j]
    manual = z.copy()
    manual[:, j] = 0.0
    expected = (manual @ fitted.W_.T + fitted.b_).argmax(axis=1)
    out = predict_without(fitted, xt, [name])
    np.testing.assert_array_equal(out, expected)
    assert (out != fitted.predict_index(xt)).any()
    bare = name.split(":", 1)[1]
    np.testing.assert_array_equal(predict_without(fitted, xt, [bare]), expected)
    np.testing.assert_array_equal(predict_without(fitted, xt, []), fitted.predict_index(xt))


def test_with_weight_returns_new_model(fitted: DanceModel, problem) -> None:
    _, _, (xt, _, _) = problem
    before_w = fitted.W_.copy()
    before_pred = fitted.predict(xt)
    edited = with_weight(fitted, "b", "object:o1", 5.0)
    assert edited is not fitted
    assert edited.W_[1, fitted.concept_index("object:o1")] == 5.0
    diff = np.argwhere(edited.W_ != fitted.W_)
    assert diff.tolist() in ([[1, 5]], [])  # only that entry can differ
    np.testing.assert_array_equal(fitted.W_, before_w)
    np.testing.assert_array_equal(fitted.predict(xt), before_pred)
    edited2 = with_weight(fitted, 2, "s0", -1.5)
    assert edited2.W_[2, 7] == -1.5 and fitted.W_[2, 7] == before_w[2, 7]


def test_unknown_names_raise_model_error(fitted: DanceModel, problem) -> None:
    _, _, (xt, _, _) = problem
    with pytest.raises(ModelError, match="unknown concept 'nope'"):
        fitted.concept_index("nope")
    with pytest.raises(ModelError, match="unknown concept"):
        predict_without(fitted, xt, ["object:nope"])
    with pytest.raises(ModelError, match="unknown concept"):
        with_weight(fitted, "a", "faint", 1.0)  # dropped concepts are not in the model
    with pytest.raises(ModelError, match="unknown class 'zzz'"):
        with_weight(fitted, "zzz", "m0", 1.0)
    with pytest.raises(ModelError, match="out of range"):
        fitted.class_index(4)
    with pytest.raises(ModelError, match="out of range"):
        fitted.class_index(-1)
    assert fitted.class_index("c") == 2 and fitted.class_index(np.int64(3)) == 3
    assert fitted.concept_index("motion:m2") == 2 and fitted.concept_index("s1") == 8


# ------------------------------------------------------------------ hand-made model


def hand_model() -> DanceModel:
    """z = X (3 features → one concept per type, no standardisation); classes a, b.

    logit_a = 2 m + s, logit_b = o + 0.1
    """
    model = DanceModel()
    model.classes_ = ["a", "b"]
    model.feature_dim_ = 3
    model.feature_mean_ = np.zeros(3, np.float32)
    model.feature_std_ = np.ones(3, np.float32)
    blocks = []
    for i, (ctype, name) in enumerate([("motion", "m"), ("object", "o"), ("scene", "s")]):
        layer = torch.nn.Linear(3, 1, bias=False)
        with torch.no_grad():
            layer.weight.zero_()
            layer.weight[0, i] = 1.0
        layer.requires_grad_(False)
        blocks.append(ConceptBlock(ctype, [name], "cos3", layer, i, i + 1))
    model.blocks_ = blocks
    model.z_mean_ = np.zeros(3, np.float32)
    model.z_std_ = np.ones(3, np.float32)
    model.W_ = np.array([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]], np.float32)
    model.b_ = np.array([0.0, 0.1], np.float32)
    return model


HAND_X = np.array([[1.0, 0.0, 0.5], [0.2, 0.0, 2.0], [0.0, 3.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
HAND_Y = np.array([0, 0, 1, 1])
# logits: r0 (2.5, 0.1) → a ✓; r1 (2.4, 0.1) → a ✓; r2 (0, 3.1) → b ✓; r3 (2, 0.1) → a ✗


def test_hand_model_predictions() -> None:
    model = hand_model()
    np.testing.assert_allclose(model.concept_activations(HAND_X), HAND_X)
    expected = [[2.5, 0.1], [2.4, 0.1], [0.0, 3.1], [2.0, 0.1]]
    np.testing.assert_allclose(model.decision_function(HAND_X), expected, atol=1e-6)
    np.testing.assert_array_equal(model.predict_index(HAND_X), [0, 0, 1, 0])
    assert model.score(HAND_X, HAND_Y) == 0.75


def test_type_agreement_hand_model() -> None:
    model = hand_model()
    # correct: r0 (top type for a: motion 2 > scene 0.5), r1 (scene 2 > motion 0.4), r2 (object 3);
    # r3 is wrong
    out = type_agreement(model, HAND_X, HAND_Y, {0: "motion", 1: "object"})
    assert out["n"] == 3
    assert out["type_agreement"] == pytest.approx(2 / 3)
    assert out["per_class"] == {"a": {"agree": 1, "n": 2}, "b": {"agree": 1, "n": 1}}
    out = type_agreement(model, HAND_X, HAND_Y, {0: "scene"})  # class b has no known decisive type
    assert out["n"] == 2 and out["type_agreement"] == pytest.approx(0.5)
    assert out["per_class"] == {"a": {"agree": 1, "n": 2}}
    out = type_agreement(model, HAND_X[3:], HAND_Y[3:], {0: "motion", 1: "object"})  # nothing correct
    assert out["n"] == 0 and np.isnan(out["type_agreement"])


def test_explanation_size_hand_model() -> None:
    model = hand_model()
    # positive contributions to the predicted class: r0 a (2, 0.5), r1 a (2, 0.4), r2 b (3), r3 a (2); class a has
    # two non-zero weights, b one. 80 %: the top concept alone everywhere (2 / 2.5 is exactly 0.8); 90 %: two
    # concepts for r0 and r1, one for r2 and r3
    size = explanation_size(model, model.concept_activations(HAND_X), (0.8, 0.9, 1.0))
    assert size == {"n": 4, "terms": 2.0, "concepts": {"0.8": 1.0, "0.9": 1.5, "1": 1.5}}
    # no positive evidence for the predicted class (b, all its contributions 0): no concept holds any of it
    none = explanation_size(model, np.array([[-1.0, 0.0, 0.0]], np.float32))
    assert none == {"n": 1, "terms": 1.0, "concepts": {"0.8": 0.0, "0.9": 0.0}}
    assert explanation_size(model, np.zeros((0, 3), np.float32))["terms"] is None


def test_explain_hand_model() -> None:
    model = hand_model()
    e0, e1 = explain(model, HAND_X[:2], k=1)
    assert e0.predicted == "a"
    assert e0.type_shares == pytest.approx({"motion": 2.0, "object": 0.0, "scene": 0.5})
    assert e0.top_type == "motion"
    assert e1.type_shares == pytest.approx({"motion": 0.4, "object": 0.0, "scene": 2.0})
    assert e1.top_type == "scene"
    assert e1.top["scene"][0].contribution == pytest.approx(2.0)
    (eb,) = explain(model, HAND_X[:1], target=1)
    assert eb.predicted == "a" and eb.target == "b"
    assert eb.type_shares == pytest.approx({"motion": 0.0, "object": 0.0, "scene": 0.0})


def test_predict_without_hand_model() -> None:
    model = hand_model()
    # without m: r0 (0.5, 0.1) → a; r3 (0, 0.1) → b
    np.testing.assert_array_equal(predict_without(model, HAND_X, ["m"]), [0, 0, 1, 1])
    # without o: r2 (0, 0.1) → b still
    np.testing.assert_array_equal(predict_without(model, HAND_X, ["object:o"]), [0, 0, 1, 0])
    # without m and s: logit_a = 0 everywhere
    np.testing.assert_array_equal(predict_without(model, HAND_X, ["m", "s"]), [1, 1, 1, 1])


def test_edit_effect_hand_model() -> None:
    before = hand_model()
    after = with_weight(before, "b", "m", 3.0)  # logit_b = 3 m + o + 0.1
    # r0 (2.5, 3.1) → b: broken; r1 (2.4, 0.7) → a; r2 (0, 3.1) → b; r3 (2, 3.1) → b: fixed
    np.testing.assert_array_equal(after.predict_index(HAND_X), [1, 0, 1, 1])
    effect = weight_edit(before, before.concept_activations(HAND_X), HAND_Y, "b", "m", 3.0)[1].effect
    assert (effect.fixed, effect.broken, effect.changed) == (1, 1, 2)
    assert effect.accuracy_before == 0.75 and effect.accuracy_after == 0.75
    assert before.W_[1, 0] == 0.0  # the original is unchanged
    # logit_a = s: r0 (0.5, 0.1) a, r1 (2, 0.1) a, r3 (0, 0.1) b
    after2, edit2 = weight_edit(before, before.concept_activations(HAND_X), HAND_Y, "a", "m", 0.0)
    effect2 = edit2.effect
    np.testing.assert_array_equal(after2.W_, with_weight(before, "a", "m", 0.0).W_)
    assert (effect2.fixed, effect2.broken, effect2.changed) == (1, 0, 1)
    assert effect2.accuracy_after == 1.0


def test_ambiguous_bare_concept_name() -> None:
    model = hand_model()
    model.blocks_[2].names = ["m"]  # scene concept with the same bare name as the motion one
    assert model.concept_names_ == ["motion:m", "object:o", "scene:m"]
    with pytest.raises(ModelError, match="ambiguous"):
        model.concept_index("m")
    assert model.concept_index("scene:m") == 2


def test_explain_takes_a_class_name_or_index() -> None:
    model = hand_model()
    (e,) = explain(model, HAND_X[2:3], k=1)
    assert e.predicted == "b" and e.target == "b" and e.top_type == "object"
    assert e.top["object"][0].name == "o" and e.top["object"][0].contribution == pytest.approx(3.0)
    (ea,) = explain(model, HAND_X[2:3], target="a")
    (ef,) = explain(model, HAND_X[2:3], target=0)
    assert ea.target == "a" and ea.type_shares == ef.type_shares
    assert ea.type_shares == pytest.approx({"motion": 0.0, "object": 0.0, "scene": 0.0})
    with pytest.raises(ModelError, match="unknown class"):
        explain(model, HAND_X, target="zzz")


def test_switching_the_binary_activation_keeps_the_concept_layers(problem) -> None:
    (x, y, c), (xv, yv, cv), (xt, _, _) = problem
    prob = DanceModel(concept_steps=30, concept_lr=1e-2, n_lambdas=3, binary_activation="probability").fit(
        x, y, c, xv, yv, cv, classes=CLASSES)
    logit = prob.with_binary_activation("logit", x, y, xv, yv)
    direct = DanceModel(concept_steps=30, concept_lr=1e-2, n_lambdas=3, binary_activation="logit").fit(
        x, y, c, xv, yv, cv, classes=CLASSES)
    assert prob.binary_activation == "probability" and logit.binary_activation == "logit"  # the original is kept
    assert [b.activation for b in logit.blocks_] == ["identity"] * len(logit.blocks_)
    # same concept layers as fitting with logits from the start, so the same model
    np.testing.assert_allclose(logit.decision_function(xt), direct.decision_function(xt), rtol=1e-4, atol=1e-4)
    with pytest.raises(ModelError, match="binary_activation"):
        prob.with_binary_activation("tanh", x, y, xv, yv)
    # a motion concept's presence probability is the same whichever activation feeds the final layer
    from dance.explain.contributions import explain as explain_fn

    for ep, el in zip(explain_fn(prob, xt[:3], k=5), explain_fn(logit, xt[:3], k=5)):
        p_prob = {c.name: c.probability for c in ep.top["motion"]}
        for c in el.top["motion"]:
            assert c.probability is not None and 0.0 <= c.probability <= 1.0
            if c.name in p_prob:
                assert c.probability == pytest.approx(p_prob[c.name], abs=1e-4)


def test_selection_on_validation_records_every_candidate(problem) -> None:
    from dance.model.selection import activation_options, fit_selected, hidden_options

    (x, y, c), (xv, yv, cv), _ = problem
    assert hidden_options("auto") == [None, 2048] and hidden_options(None) == [None] and hidden_options(8) == [8]
    assert hidden_options("auto", views=8) == [None] and hidden_options(8, views=8) == [8]
    # minibatches make the MLP affordable on the views' rows: auto tries it again
    assert hidden_options("auto", views=8, batch_size=512) == [None, 2048]
    assert activation_options("auto", True) == ["probability", "logit"]
    assert activation_options("auto", False) == ["probability"] and activation_options("logit", True) == ["logit"]
    base = DanceModel(concept_steps=30, concept_lr=1e-2, n_lambdas=3)
    sel = fit_selected(base, [None, 8], ["probability", "logit"], x, y, c, xv, yv, cv, CLASSES)
    cands = sel.candidates
    assert [(k["concept_hidden"], k["binary_activation"]) for k in cands] == [
        (None, "probability"), (None, "logit"), (8, "probability"), (8, "logit")]
    assert sum(k["chosen"] for k in cands) == 1
    chosen = next(k for k in cands if k["chosen"])
    best = max(k["val_accuracy"] for k in cands)
    assert chosen["val_accuracy"] == best
    assert chosen["val_log_loss"] == min(k["val_log_loss"] for k in cands if k["val_accuracy"] == best)
    assert (sel.model.concept_hidden, sel.model.binary_activation) == (chosen["concept_hidden"],
                                                                       chosen["binary_activation"])
    assert sel.model.score(xv, yv) == pytest.approx(best)
    # every fitted candidate is kept, in the order of the records (benchmarks/candidates.py scores them)
    assert [(m.concept_hidden, m.binary_activation) for m in sel.models] == [
        (k["concept_hidden"], k["binary_activation"]) for k in cands]
    assert [m.score(xv, yv) for m in sel.models] == pytest.approx([k["val_accuracy"] for k in cands])
    assert sel.models[[k["chosen"] for k in cands].index(True)] is sel.model
    assert base.W_ is None  # the template is not fitted


def test_fold_ids_are_stratified_seeded_and_cover_every_fold() -> None:
    from dance.model.selection import chooses, cross_fit_folds, fold_ids

    y = np.array([0] * 10 + [1] * 7 + [2] * 2)
    fold = fold_ids(y, 5, seed=3)
    assert fold.tolist() == fold_ids(y, 5, seed=3).tolist()
    assert set(fold.tolist()) == set(range(5))
    for c in (0, 1):  # every class spread evenly: fold sizes differ by at most one video
        sizes = np.bincount(fold[y == c], minlength=5)
        assert sizes.max() - sizes.min() <= 1
    assert len(set(fold[y == 2].tolist())) == 2  # a class smaller than the folds: one video per fold
    assert cross_fit_folds("auto", 499) == 5 and cross_fit_folds("auto", 500) == 0
    assert cross_fit_folds(0, 10) == 0 and cross_fit_folds(3, 10_000) == 3
    # auto cross-fits only where the train stage has a choice to make; a number is used as given
    assert cross_fit_folds("auto", 10, choosing=False) == 0 and cross_fit_folds(3, 10, choosing=False) == 3
    assert not chooses(None, "logit") and not chooses(2048, "probability")
    assert chooses("auto", "logit") and chooses(None, "auto")


def test_selection_by_cross_validation_uses_each_folds_held_out_features(problem) -> None:
    """With cross-fitted features the candidates are ranked by cross-validated accuracy on the training videos;
    each fold is scored on features of the backbone trained without it (here: fold k's features are the clean
    ones plus noise, so a fold model never sees the held-out videos' own features)."""
    from dance.model.selection import CrossFit, fit_selected, fold_ids

    (x, y, c), (xv, yv, cv), _ = problem
    rng = np.random.default_rng(0)
    k = 3
    cross = CrossFit(fold=fold_ids(y, k, 0), X=np.stack([x + rng.normal(0, 0.3, x.shape).astype(np.float32)
                                                        for _ in range(k)]),
                     X_val=np.stack([xv] * k))
    base = DanceModel(concept_steps=30, concept_lr=1e-2, n_lambdas=3)
    sel = fit_selected(base, [None, 8], ["probability", "logit"], x, y, c, xv, yv, cv, CLASSES, cross=cross)
    cands = sel.candidates
    assert all(0.0 <= k_["cv_accuracy"] <= 1.0 and k_["cv_log_loss"] > 0 for k_ in cands)
    chosen = next(k_ for k_ in cands if k_["chosen"])
    best = max(k_["cv_accuracy"] for k_ in cands)
    assert chosen["cv_accuracy"] == best
    assert chosen["cv_log_loss"] == min(k_["cv_log_loss"] for k_ in cands if k_["cv_accuracy"] == best)
    assert "cross-validated" in sel.rule and f"{len(y)} training videos" in sel.rule
    # the cross-validated score is that of fold models: refit one fold by hand and compare its held-out accuracy
    h, act = chosen["concept_hidden"], chosen["binary_activation"]
    correct = 0
    for f in range(k):
        fit_rows, held = np.flatnonzero(cross.fold != f), np.flatnonzero(cross.fold == f)
        m = DanceModel(concept_steps=30, concept_lr=1e-2, n_lambdas=3, concept_hidden=h, binary_activation=act)
        m.fit(cross.X[f][fit_rows], y[fit_rows], {t: v.subset(fit_rows) for t, v in c.items()}, xv, yv, cv, CLASSES)
        correct += int((m.predict_index(cross.X[f][held]) == np.asarray(y)[held]).sum())
    assert correct / len(y) == pytest.approx(best)
    # one candidate only: nothing to choose, no cross-validation spent
    one = fit_selected(base, [None], ["logit"], x, y, c, xv, yv, cv, CLASSES, cross=cross)
    assert "cv_accuracy" not in one.candidates[0] and one.rule == "a single candidate (settings fixed)"


def test_selection_falls_back_to_validation_when_a_fold_cannot_be_fit(problem, monkeypatch) -> None:
    import dance.model.selection as selection
    from dance.errors import ModelError

    (x, y, c), (xv, yv, cv), _ = problem

    def fail(*args, **kwargs):
        raise ModelError("every concept was dropped by the cutoffs: nothing left for the final layer")

    monkeypatch.setattr(selection, "_cross_validate", fail)
    cross = selection.CrossFit(fold=selection.fold_ids(y, 3, 0), X=np.stack([x] * 3), X_val=np.stack([xv] * 3))
    base = DanceModel(concept_steps=30, concept_lr=1e-2, n_lambdas=3)
    sel = selection.fit_selected(base, [None], ["probability", "logit"], x, y, c, xv, yv, cv, CLASSES, cross=cross)
    assert all("cv_accuracy" not in k for k in sel.candidates)
    assert sel.rule.startswith("best accuracy on the") and "could not fit a fold model (every concept" in sel.rule
    chosen = next(k for k in sel.candidates if k["chosen"])
    assert chosen["val_accuracy"] == max(k["val_accuracy"] for k in sel.candidates)


def test_stack_views_repeats_labels_and_concepts_per_view() -> None:
    from dance.model.selection import stack_views

    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    y = np.array([0, 1, 1])
    c = {"motion": ConceptTargets(["a", "b"], np.array([[1, 0], [0, 1], [1, 1]]), "bce", np.array([1, 0, 1], bool))}
    views = np.stack([x + 100, x + 200])
    X, Y, C = stack_views(x, y, c, views)
    assert X.shape == (9, 4) and np.array_equal(X[3:6], x + 100) and np.array_equal(X[6:], x + 200)
    assert Y.tolist() == [0, 1, 1] * 3
    assert C["motion"].labels.shape == (9, 2) and np.array_equal(C["motion"].labels[6:], c["motion"].labels)
    assert C["motion"].mask.tolist() == [True, False, True] * 3
    assert stack_views(x, y, c, None)[0] is x
    with pytest.raises(ModelError, match="augmented views"):
        stack_views(x, y, c, views[:, :2])


def test_selection_fits_on_the_training_videos_and_their_views(problem) -> None:
    from dance.model.selection import CrossFit, fit_selected, fold_ids, stack_views

    (x, y, c), (xv, yv, cv), _ = problem
    rng = np.random.default_rng(0)
    views = np.stack([x + rng.normal(0, 0.2, x.shape).astype(np.float32) for _ in range(2)])
    base = DanceModel(concept_steps=30, concept_lr=1e-2, n_lambdas=3)
    sel = fit_selected(base, [None], ["probability", "logit"], x, y, c, xv, yv, cv, CLASSES, views=views)
    by_hand = fit_selected(base, [None], ["probability", "logit"], *stack_views(x, y, c, views), xv, yv, cv, CLASSES)
    assert np.array_equal(sel.model.W_, by_hand.model.W_)
    assert sel.candidates == by_hand.candidates
    assert not np.array_equal(sel.model.W_, fit_selected(base, [None], ["probability", "logit"], x, y, c, xv, yv,
                                                         cv, CLASSES).model.W_)
    # cross-validation fits each fold's model on its views too, and says how many training videos it scored
    k = 3
    cross = CrossFit(fold=fold_ids(y, k, 0), X=np.stack([x] * k), X_val=np.stack([xv] * k),
                     views=np.stack([views] * k))
    cv_sel = fit_selected(base, [None], ["probability", "logit"], x, y, c, xv, yv, cv, CLASSES, cross=cross,
                          views=views)
    assert f"on the {len(y)} training videos" in cv_sel.rule
    assert all("cv_accuracy" in cand for cand in cv_sel.candidates)


def test_concept_auc_of_the_motion_concepts(fitted: DanceModel, problem) -> None:
    from sklearn.metrics import roc_auc_score

    from dance.model.selection import concept_auc

    (x, y, c), (xv, yv, cv), _ = problem
    auc = concept_auc(fitted, xv, cv)
    # by hand: the four motion concepts that vary ("still" is constant, and dropped), on their layer's outputs
    block = next(b for b in fitted.blocks_ if b.type == "motion")
    with torch.no_grad():
        raw = block.layer(torch.from_numpy((xv - fitted.feature_mean_) / fitted.feature_std_).float()).numpy()
    by_hand = [roc_auc_score(cv["motion"].labels[:, cv["motion"].names.index(n)], raw[:, j])
               for j, n in enumerate(block.names)]
    assert len(by_hand) == 4 and auc == pytest.approx(float(np.mean(by_hand)))
    # the concepts are linear in the features: a layer trained on them alone (the default) ranks them almost
    # perfectly; the joint class term (joint_weight) trades some of that for the class
    joint = DanceModel(concept_steps=200, concept_lr=1e-2, joint_weight=3.0).fit(x, y, c, xv, yv, cv, classes=CLASSES)
    assert auc > 0.95 and 0.75 < concept_auc(joint, xv, cv) < auc
    no_motion = {t: c for t, c in cv.items() if t != "motion"}
    assert concept_auc(fitted, xv, no_motion) is None


def test_auto_lam_is_smaller_where_the_final_layer_distils() -> None:
    """``train.lam=auto``: the paper's 7e-4 unless the final layer distils a teacher (docs/pose_accuracy.md, "Across
    camera views"); a number is kept as given."""
    from dance.config import DanceParams
    from dance.model.selection import DISTILL_LAM, lam_option

    assert lam_option("auto", distilling=True) == DISTILL_LAM == 1e-4 < DanceParams.lam
    assert lam_option("auto", distilling=False) == DanceParams.lam == 7e-4
    assert lam_option(0.01, distilling=True) == lam_option(0.01, distilling=False) == 0.01


def test_auto_leaves_the_mlp_probability_candidate_out_where_the_final_layer_distils(problem) -> None:
    """A run that distils does not fit the MLP concept layer with probabilities under ``auto`` (docs/pose_accuracy.md,
    "Across camera views"); runs without a teacher and explicit settings fit every candidate they name; the rule
    says what was left out."""
    from dance.model.selection import MLP_WIDTH, fit_selected, skipped_candidates

    assert skipped_candidates("auto", "auto", distilling=True) == {(MLP_WIDTH, "probability")}
    assert skipped_candidates("auto", "auto", distilling=False) == set()  # nothing to distil
    assert skipped_candidates(MLP_WIDTH, "auto", True) == skipped_candidates("auto", "probability", True) == set()
    (x, y, c), (xv, yv, cv), _ = problem
    base = DanceModel(concept_steps=30, concept_lr=1e-2, n_lambdas=3)
    sel = fit_selected(base, [None, 8], ["probability", "logit"], x, y, c, xv, yv, cv, CLASSES,
                       skip={(8, "probability")})
    assert [(k["concept_hidden"], k["binary_activation"]) for k in sel.candidates] == [
        (None, "probability"), (None, "logit"), (8, "logit")]
    assert len(sel.models) == 3 and sum(k["chosen"] for k in sel.candidates) == 1
    assert "not tried: MLP 8 + probability" in sel.rule
    # a layer whose every activation is skipped is not fit at all; skipping everything is an error
    only = fit_selected(base, [None, 8], ["probability"], x, y, c, xv, yv, cv, CLASSES, skip={(8, "probability")})
    assert [k["concept_hidden"] for k in only.candidates] == [None] and only.rule.startswith("a single candidate")
    with pytest.raises(ModelError, match="every concept-layer candidate is skipped"):
        fit_selected(base, [8], ["probability"], x, y, c, xv, yv, cv, CLASSES, skip={(8, "probability")})
