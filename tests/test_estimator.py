"""DanceModel keeps the scikit-learn estimator contract (issue 12 item 5): plain ``__init__``, ``clone``,
``get_params``/``set_params``, fitted attributes ending in ``_``, labels from ``predict``; its hyperparameters are
declared once (``dance.config.DanceParams``) and the ``train.*`` settings derive from them."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from dance.config import DanceParams, Settings, TrainSettings, load_settings
from dance.errors import ModelError
from dance.explain.contributions import explain
from dance.model.dance import ConceptTargets, DanceModel
from dance.model.io import load_model, save_model

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py

LABELS = ["jump", "run", "wave"]
FAST = {"concept_steps": 20, "concept_lr": 1e-2, "n_lambdas": 2}


def make_data(n: int = 90, d: int = 8, seed: int = 0):
    """Features, string labels and concept targets (3 binary motion concepts, 2 soft object concepts)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    motion = (x[:, :3] > 0).astype(np.float32)
    objects = 1.0 / (1.0 + np.exp(-x[:, 3:5]))
    y = np.array(LABELS)[(motion @ np.array([1.0, 2.0, -1.0]) + objects[:, 0] > 1.0).astype(int)
                         + (motion[:, 2] > 0).astype(int)]
    concepts = {"motion": ConceptTargets(["m0", "m1", "m2"], motion, "bce"),
                "object": ConceptTargets(["o0", "o1"], objects, "cos3")}
    return x, y, concepts


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def fitted(data) -> DanceModel:
    x, y, c = data
    return DanceModel(**FAST).fit(x, y, c)


# ---------------------------------------------------------------------------------------------- parameters


def test_init_only_stores_hyperparameters() -> None:
    model = DanceModel(lam=0.01, concept_hidden=4)
    assert is_classifier(model)
    assert set(model.get_params()) == {f.name for f in dataclasses.fields(DanceParams)}
    assert model.get_params()["lam"] == 0.01 and model.get_params()["concept_hidden"] == 4
    assert not [k for k in vars(model) if k.endswith("_")]  # no fitted attribute before fit
    assert model.W_ is None
    assert "lam=0.01" in repr(model) and "concept_hidden=4" in repr(model)  # BaseEstimator's repr: changed ones


def test_get_params_set_params_round_trip() -> None:
    model = DanceModel(alpha=0.5, seed=3, binary_activation="logit")
    again = DanceModel(**model.get_params())
    assert again.get_params() == model.get_params()
    assert model.set_params(lam=0.02, concept_hidden=8) is model
    assert model.lam == 0.02 and model.concept_hidden == 8 and model.alpha == 0.5
    with pytest.raises(ValueError, match="nonsense"):
        model.set_params(nonsense=1)


def test_clone_of_a_fitted_model_is_unfitted_with_equal_params(fitted: DanceModel, data) -> None:
    x, _, _ = data
    copy = clone(fitted)
    assert copy is not fitted and copy.get_params() == fitted.get_params()
    assert copy.W_ is None and not [k for k in vars(copy) if k.endswith("_")]
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    with pytest.raises(ModelError, match="not fitted"):
        copy.predict(x)
    check_is_fitted(fitted)  # the original is still fitted
    # dataclasses.replace (dance.model.selection) also gives an unfitted copy
    other = dataclasses.replace(fitted, concept_hidden=16)
    assert other.concept_hidden == 16 and other.W_ is None and other.lam == fitted.lam


def test_unfitted_model_is_refused() -> None:
    model = DanceModel()
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    x = np.zeros((2, 8), np.float32)
    for call in (model.predict, model.predict_index, model.predict_proba, model.decision_function):
        with pytest.raises(ModelError, match="not fitted"):
            call(x)
    with pytest.raises(ModelError, match="not fitted"):
        model.score(x, ["jump", "run"])


# ---------------------------------------------------------------------------------------------- fit / predict


def test_fit_on_string_labels_predicts_labels(fitted: DanceModel, data) -> None:
    x, y, _ = data
    assert fitted.classes_ == LABELS  # sorted distinct labels of y
    assert fitted.n_features_in_ == fitted.feature_dim_ == x.shape[1]
    pred = fitted.predict(x)
    assert pred.shape == (len(x),) and set(pred.tolist()) <= set(LABELS)
    index = fitted.predict_index(x)
    np.testing.assert_array_equal(pred, np.asarray(LABELS)[index])
    np.testing.assert_array_equal(index, fitted.predict_proba(x).argmax(axis=1))
    assert fitted.score(x, y) == pytest.approx(float((pred == y).mean()))
    # labels given as positions in classes_ score the same; an unknown label counts as wrong
    positions = np.array([LABELS.index(v) for v in y])
    assert fitted.score(x, positions) == fitted.score(x, y)
    assert fitted.score(x[:1], ["swim"]) == 0.0
    assert fitted.score(x, y) > 1.0 / len(LABELS)
    # explain is a free function; the explained class is a label
    (e,) = explain(fitted, x[:1], k=1)
    assert e.predicted == pred[0]


def test_fit_without_validation_holds_out_a_stratified_share(data) -> None:
    x, y, c = data
    a = DanceModel(**FAST).fit(x, y, c)
    b = DanceModel(**FAST).fit(x, y, c)
    np.testing.assert_array_equal(a.W_, b.W_)  # the hold-out is seeded
    # the path's validation accuracy is measured on round(0.15 * n_class) videos of each class
    n_val = sum(max(1, round(0.15 * int((y == k).sum()))) for k in LABELS)
    val_acc = a.path_[-1]["val_accuracy"]
    assert val_acc is not None and abs(val_acc * n_val - round(val_acc * n_val)) < 1e-6
    c_seed = DanceModel(**FAST, seed=1).fit(x, y, c)
    assert not np.array_equal(c_seed.feature_mean_, a.feature_mean_)  # another hold-out: other training videos
    # a class with a single video stays in training; if every class has one, there is nothing to hold out
    with pytest.raises(ModelError, match="hold out"):
        DanceModel(**FAST).fit(x[:3], np.array(LABELS), {t: t_.subset(np.arange(3)) for t, t_ in c.items()})


def test_fit_with_validation_data_and_class_order(data) -> None:
    x, y, c = data
    tr, va = np.arange(60), np.arange(60, 90)
    classes = ["wave", "run", "jump", "swim"]  # a given order; a class without videos gets zero weights
    model = DanceModel(**FAST).fit(x[tr], y[tr], {t: v.subset(tr) for t, v in c.items()}, X_val=x[va],
                                   y_val=y[va], concepts_val={t: v.subset(va) for t, v in c.items()},
                                   classes=classes)
    assert model.classes_ == classes and model.W_.shape[0] == 4
    assert not model.W_[3].any()
    assert set(model.predict(x).tolist()) <= set(classes[:3])
    with pytest.raises(ModelError, match="together"):
        DanceModel(**FAST).fit(x[tr], y[tr], c, X_val=x[va])
    with pytest.raises(ModelError, match="unknown class label 'wave'"):
        DanceModel(**FAST).fit(x[tr], y[tr], {t: v.subset(tr) for t, v in c.items()}, classes=LABELS[:2])


def test_fit_checks_hyperparameters_against_their_bounds(data) -> None:
    x, y, c = data
    for bad, match in (({"concept_steps": 0}, "concept_steps must be >= 1"), ({"alpha": 1.5}, "alpha must be <="),
                       ({"lam": 0.0}, "lam must be > 0"), ({"concept_hidden": "auto"}, "concept_hidden"),
                       ({"binary_activation": "auto"}, "binary_activation"), ({"distill": "auto"}, "distill"),
                       ({"validation_fraction": 1.0}, "validation_fraction must be < 1")):
        with pytest.raises(ModelError, match=match):
            DanceModel(**bad).fit(x, y, c)


# ---------------------------------------------------------------------------------------------- one declaration


def test_train_settings_derive_from_the_estimator_parameters() -> None:
    estimator = {f.name: f for f in dataclasses.fields(DanceParams)}
    settings = TrainSettings.model_fields
    shared = [n for n in estimator if estimator[n].metadata["setting"]]
    assert list(settings)[:len(shared)] == shared  # same names, in declaration order, then the stage's own keys
    assert set(estimator) - set(shared) == {"standardize_features", "validation_fraction"}
    for name in shared:
        meta = estimator[name].metadata
        assert settings[name].default == ("auto" if meta["auto"] and meta["auto_default"] else
                                          estimator[name].default)
        assert settings[name].description.startswith(estimator[name].metadata["description"])
    s = load_settings(overrides=["train.lam=0.01", "train.concept_hidden=8"])
    assert s.train.estimator_params()["lam"] == 0.01
    with pytest.raises(Exception, match="alpha"):
        load_settings(overrides=["train.alpha=2"])  # bounds declared once, checked by both
    with pytest.raises(Exception, match="distill"):
        load_settings(overrides=["train.distill=1.5"])  # and on a key that also takes auto, on its values
    assert load_settings(overrides=["train.distill=0.5"]).train.distill == 0.5
    # a key whose auto is there on request only: its default is the estimator's, and it still takes auto
    assert settings["concept_hidden"].default is None and "auto (on request)" in settings["concept_hidden"].description
    assert load_settings(overrides=["train.concept_hidden=auto"]).train.concept_hidden == "auto"


def test_new_model_takes_every_shared_setting() -> None:
    from dance.pipeline.train import _new_model

    settings = load_settings(overrides=["train.alpha=0.5", "train.seed=5", "train.n_lambdas=3"])
    model = _new_model(SimpleNamespace(settings=settings), 16, "probability", 0.5, 0.01)
    params = model.get_params()
    assert params["alpha"] == 0.5 and params["seed"] == 5 and params["n_lambdas"] == 3
    # the four that may be auto are given concretely (train.lam through dance.model.selection.lam_option)
    assert params["concept_hidden"] == 16 and params["binary_activation"] == "probability"
    assert params["distill"] == 0.5 and params["lam"] == 0.01
    default = _new_model(SimpleNamespace(settings=Settings()))
    assert default.get_params() == DanceModel(binary_activation="logit").get_params()


def test_the_model_does_not_import_explain() -> None:
    code = ("import sys, dance.model.dance, dance.model.io; "
            "print(sorted(m for m in sys.modules if m.startswith('dance.explain')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------------- saved models


def test_models_saved_before_the_estimator_change_load(fitted: DanceModel, data, tmp_path: Path) -> None:
    x, _, _ = data
    folder = save_model(fitted, tmp_path / "m")
    meta = json.loads((folder / "model.json").read_text())
    assert meta["params"] == fitted.get_params()
    # an older file: params in the old declaration order, without validation_fraction
    old_order = ["concept_lr", "concept_steps", "concept_hidden", "binary_activation", "clip_cutoff",
                 "interpretability_cutoff", "lam", "alpha", "n_lambdas", "final_max_iter", "standardize_features",
                 "device", "seed"]
    meta["params"] = {k: meta["params"][k] for k in old_order}
    (folder / "model.json").write_text(json.dumps(meta))
    old = load_model(folder)
    assert old.validation_fraction == DanceModel().validation_fraction
    np.testing.assert_array_equal(old.predict(x), fitted.predict(x))
    check_is_fitted(old)
    assert clone(old).get_params() == old.get_params()
