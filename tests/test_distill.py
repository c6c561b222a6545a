"""Distilling the trained backbone's own head into DANCE's final layer (``train.distill``): soft targets in the
elastic-net solver, the estimator's ``teacher``, and where the train stage finds the teacher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dance.errors import ModelError
from dance.model.dance import DanceModel
from dance.model.final_layer import fit_elastic_net_path
from dance.model.selection import (
    AUTO_DISTILL,
    CrossFit,
    candidate_name,
    distill_options,
    fit_selected,
    fold_ids,
    stack_teacher,
)
from dance.pipeline.artifacts import save_arrays
from dance.pipeline.train import (
    AUTO_DISTILL_NOTE,
    NO_HEAD,
    OLD_FEATURES,
    SplitData,
    Teacher,
    distill_info,
    softmax,
    training_teacher,
)
from tests.test_model import CLASSES, make_problem

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


def _toy(n: int = 240, d: int = 12, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, :k] + 0.5 * rng.normal(size=(n, k))).argmax(1)
    return X, y


def test_one_hot_targets_give_the_label_solution_exactly() -> None:
    X, y = _toy()
    hard = fit_elastic_net_path(X, y, 3, lam=1e-3, n_lambdas=5)
    soft = fit_elastic_net_path(X, y, 3, lam=1e-3, n_lambdas=5, targets=np.eye(3)[y])
    assert torch.equal(hard.W, soft.W) and torch.equal(hard.b, soft.b)
    assert hard.objective == soft.objective


def test_soft_targets_minimise_the_cross_entropy_against_them() -> None:
    """The solver's solution for soft targets is the minimiser of the soft cross entropy + ridge (checked against
    L-BFGS on the same smooth objective, α = 0) and differs from the hard-label one."""
    X, y = _toy()
    rng = np.random.default_rng(1)
    Q = 0.5 * np.eye(3)[y] + 0.5 * rng.dirichlet(np.ones(3), len(y))
    lam = 1e-2
    res = fit_elastic_net_path(X, y, 3, lam=lam, alpha=0.0, n_lambdas=1, tol=1e-9, max_iter=20000)
    Xt, Qt = torch.from_numpy(X).double(), torch.from_numpy(Q)
    W = torch.zeros(3, X.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        opt.zero_grad()
        f = -(Qt * torch.log_softmax(Xt @ W.T + b, 1)).sum(1).mean() + 0.5 * lam * W.square().sum()
        f.backward()
        return f

    opt.step(objective)
    soft = fit_elastic_net_path(X, y, 3, lam=lam, alpha=0.0, n_lambdas=1, tol=1e-9, max_iter=20000, targets=Q)
    assert np.allclose(soft.W.numpy(), W.detach().numpy(), atol=2e-4)
    with torch.no_grad():
        reference = float(-(Qt * torch.log_softmax(Xt @ W.T + b, 1)).sum(1).mean() + 0.5 * lam * W.square().sum())
    assert abs(soft.objective - reference) < 1e-7
    assert not np.allclose(soft.W.numpy(), res.W.numpy(), atol=1e-2)


@pytest.mark.parametrize("targets, match", [
    (np.full((240, 2), 0.5), "shape"),
    (np.full((240, 3), 0.5), "sum to 1"),
    (np.c_[np.full((240, 2), 0.75), np.full(240, -0.5)], "non-negative"),
    (np.full((240, 3), np.nan), "finite"),
    (np.ones((240, 3), np.int64), "floats"),
])
def test_bad_targets_are_model_errors(targets: np.ndarray, match: str) -> None:
    X, y = _toy()
    with pytest.raises(ModelError, match=match):
        fit_elastic_net_path(X, y, 3, lam=1e-3, n_lambdas=2, targets=targets)


@pytest.fixture(scope="module")
def problem():
    return make_problem()


def _fit(problem, **params) -> DanceModel:
    (x, y, c), (xv, yv, cv), _ = problem
    teacher = params.pop("teacher", None)
    params.setdefault("binary_activation", "probability")  # the tests switch to the other activation, logit
    return DanceModel(concept_steps=150, concept_lr=1e-2, n_lambdas=5, **params).fit(
        x, y, c, xv, yv, cv, classes=CLASSES, teacher=teacher)


def test_distill_mixes_the_teacher_into_the_final_layer_only(problem) -> None:
    (x, y, _), (xv, yv, _), _ = problem
    plain = _fit(problem)
    # a teacher that repeats the labels changes nothing, whatever its share
    assert np.array_equal(_fit(problem, distill=1.0, teacher=np.eye(len(CLASSES))[y]).W_, plain.W_)
    # a teacher with other beliefs moves the final layer and leaves the concept layers as they were
    rng = np.random.default_rng(3)
    teacher = rng.dirichlet(np.ones(len(CLASSES)), len(y))
    mixed = _fit(problem, distill=0.5, teacher=teacher)
    assert not np.allclose(mixed.W_, plain.W_)
    assert np.allclose(mixed.concept_activations(xv), plain.concept_activations(xv))
    # the other activation is refit with the same teacher
    assert np.array_equal(
        mixed.with_binary_activation("logit", x, y, xv, yv, teacher=teacher).W_,
        _fit(problem, distill=0.5, teacher=teacher, binary_activation="logit").W_)
    # and another share is one final-layer fit on the same concept layers, either way round
    assert np.array_equal(plain.with_binary_activation("probability", x, y, xv, yv, teacher=teacher,
                                                       distill=0.5).W_, mixed.W_)
    back = mixed.with_binary_activation("probability", x, y, xv, yv, distill=0.0)
    assert back.distill == 0.0 and mixed.distill == 0.5 and np.array_equal(back.W_, plain.W_)
    with pytest.raises(ModelError, match="distill"):
        plain.with_binary_activation("probability", x, y, xv, yv, teacher=teacher, distill=2.0)


def test_distill_needs_a_valid_teacher(problem) -> None:
    (x, y, _), _, _ = problem
    with pytest.raises(ModelError, match="needs the teacher"):
        _fit(problem, distill=0.5)
    with pytest.raises(ModelError, match="do not match"):
        _fit(problem, distill=0.5, teacher=np.full((len(y), 2), 0.5))
    with pytest.raises(ModelError, match="sum to 1"):
        _fit(problem, distill=0.5, teacher=np.full((len(y), len(CLASSES)), 0.5))
    with pytest.raises(ModelError, match="distill"):
        DanceModel(distill=1.5).fit(x, y, {}, classes=CLASSES)


def test_teacher_rows_stack_like_the_views() -> None:
    t, v = softmax(np.zeros((4, 3))), softmax(np.ones((2, 4, 3)))
    assert stack_teacher(t, v).shape == (12, 3) and stack_teacher(t, None) is t and stack_teacher(None, v) is None
    with pytest.raises(ModelError, match="do not match"):
        stack_teacher(t, np.ones((2, 3, 3)))


def test_the_train_stage_finds_the_backbones_class_scores(tmp_path: Path) -> None:
    class Ctx:
        class settings:  # noqa: N801 - stands in for the run's settings
            class features:  # noqa: N801
                backbone = "pose-encoder"

        def stage_dir(self, name: str) -> Path:
            return tmp_path / name

    tr = SplitData(rows=np.array([0, 2, 3]), X=np.zeros((3, 4), np.float32), y=np.zeros(3, np.int64), concepts={})
    (tmp_path / "features").mkdir()
    assert training_teacher(Ctx(), tr) == (None, NO_HEAD)  # a frozen backbone: no head, no teacher
    save_arrays(tmp_path / "features" / "head_predictions.npz", pred=np.zeros(5, np.int64))
    assert training_teacher(Ctx(), tr) == (None, OLD_FEATURES)  # a features stage from before logits were saved
    logits = np.arange(10, dtype=np.float32).reshape(5, 2)
    save_arrays(tmp_path / "features" / "head_predictions.npz", pred=np.zeros(5, np.int64), logits=logits)
    teacher, why_not = training_teacher(Ctx(), tr)
    assert why_not == "" and teacher.views is None and teacher.source == "pose-encoder's own head"
    assert np.allclose(teacher.probs, softmax(logits[[0, 2, 3]])) and np.allclose(teacher.probs.sum(1), 1.0)
    save_arrays(tmp_path / "features" / "views.npz", x=np.ones((2, 3, 4), np.float32), rows=tr.rows)
    assert training_teacher(Ctx(), tr) == (None, OLD_FEATURES)  # views without their logits
    save_arrays(tmp_path / "features" / "views.npz", x=np.ones((2, 3, 4), np.float32), rows=tr.rows,
                logits=np.zeros((2, 3, 2), np.float32))
    assert np.allclose(training_teacher(Ctx(), tr)[0].views, 0.5)


def test_auto_distils_half_and_says_why() -> None:
    assert distill_options("auto") == [AUTO_DISTILL] == [0.5]
    assert distill_options(0.3) == [0.3] and distill_options(0) == [0.0]
    teacher = Teacher(np.full((2, 2), 0.5), None, "pose-encoder's own head")
    assert distill_info("auto", 0.5, [0.5], teacher, "") == {
        "share": 0.5, "setting": "auto", "candidates": [0.5], "teacher": "pose-encoder's own head",
        "note": AUTO_DISTILL_NOTE}
    assert distill_info("auto", 0.0, [0.0], teacher, OLD_FEATURES) == {
        "share": 0.0, "setting": "auto", "candidates": [0.0], "teacher": None, "why_not": OLD_FEATURES}
    assert distill_info("auto", 0.0, [0.0], None, NO_HEAD)["why_not"] == NO_HEAD
    assert distill_info(0.0, 0.0, [0.0], teacher, "") == {"share": 0.0, "teacher": None}
    assert distill_info(0.5, 0.0, [0.0], None, NO_HEAD) == {"share": 0.0, "setting": 0.5, "teacher": None,
                                                            "why_not": NO_HEAD}


def test_selection_cross_validates_each_share_with_each_folds_own_teacher(problem) -> None:
    """Shares are candidates like the activations: every (layer, activation, share) is scored by cross-validation,
    each fold's model distilling its own fold backbone's head; the chosen model keeps its share."""
    (x, y, c), (xv, yv, cv), _ = problem
    rng = np.random.default_rng(1)
    k = 3
    # a teacher that knows the labels well: distilling it cannot hurt much, and its fold copies differ per fold
    onehot = np.eye(len(CLASSES))[y]
    teacher = 0.8 * onehot + 0.2 * rng.dirichlet(np.ones(len(CLASSES)), len(y))
    cross = CrossFit(fold=fold_ids(y, k, 0), X=np.stack([x] * k), X_val=np.stack([xv] * k),
                     teacher=np.stack([0.7 * onehot + 0.3 * rng.dirichlet(np.ones(len(CLASSES)), len(y))
                                       for _ in range(k)]))
    base = DanceModel(concept_steps=30, concept_lr=1e-2, n_lambdas=3)
    tasks: set[str] = set()
    sel = fit_selected(base, [None], ["probability", "logit"], x, y, c, xv, yv, cv, CLASSES, cross=cross,
                       teacher=teacher, distills=[0.0, 0.5], progress=lambda what, n, total: tasks.add(what))
    assert [(k_["binary_activation"], k_["distill"]) for k_ in sel.candidates] == [
        ("probability", 0.0), ("logit", 0.0), ("probability", 0.5), ("logit", 0.5)]
    # each candidate's fits get progress bars under its own name, the cross-validation one of its own
    names = [candidate_name(None, a, d) for a, d in [("probability", 0), ("logit", 0), ("probability", 0.5),
                                                      ("logit", 0.5)]]
    assert names[3] == "linear + logit + distill 0.5" and names[0] == "linear + probability"
    assert {t.split(": ")[0] for t in tasks} == set(names) | {"linear"}
    assert all("cv_accuracy" in k_ for k_ in sel.candidates)
    chosen = next(i for i, k_ in enumerate(sel.candidates) if k_["chosen"])
    assert sel.model.distill == sel.candidates[chosen]["distill"]
    assert sel.model is sel.models[chosen]
    # each share's model is the one its own fit would give: same concept layers, its own final layer
    distilled = sel.models[2]
    assert np.allclose(distilled.concept_activations(xv), sel.models[0].concept_activations(xv))
    assert np.array_equal(distilled.W_, sel.models[0].with_binary_activation(
        "probability", x, y, xv, yv, teacher=teacher, distill=0.5).W_)
    # the cross-validated score of a distilled candidate is that of fold models distilling their fold's teacher
    correct = 0
    for f in range(k):
        fit_rows, held = np.flatnonzero(cross.fold != f), np.flatnonzero(cross.fold == f)
        m = DanceModel(concept_steps=30, concept_lr=1e-2, n_lambdas=3, distill=0.5, binary_activation="probability")
        m.fit(x[fit_rows], y[fit_rows], {t: v.subset(fit_rows) for t, v in c.items()}, xv, yv, cv, CLASSES,
              teacher=cross.teacher[f][fit_rows])
        correct += int((m.predict_index(x[held]) == np.asarray(y)[held]).sum())
    assert correct / len(y) == pytest.approx(sel.candidates[2]["cv_accuracy"])
