"""Concept layer losses (cos³ of Label-free CBM, BCE of Eq. 4) and training (dance.model.concept_layers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dance.model.concept_layers import (
    LOSSES,
    bce_loss,
    cos_cubed_loss,
    cos_cubed_similarity,
    make_layer,
    train_concept_layer,
)

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


def np_cos_cubed(z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Label-free CBM similarity, one concept (column) at a time."""
    out = []
    for j in range(z.shape[1]):
        a = z[:, j] - z[:, j].mean()
        b = c[:, j] - c[:, j].mean()
        a3, b3 = a**3, b**3
        out.append(float(a3 @ b3 / (np.linalg.norm(a3) * np.linalg.norm(b3))))
    return np.array(out)


def np_bce(z: np.ndarray, c: np.ndarray) -> float:
    p = 1.0 / (1.0 + np.exp(-z))
    return float(np.mean(-(c * np.log(p) + (1.0 - c) * np.log(1.0 - p))))


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


# ------------------------------------------------------------------ losses


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cos_cubed_similarity_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(50, 6))
    c = 0.5 * z + rng.normal(size=(50, 6))  # correlated but not equal
    c[:, 3] = rng.uniform(0.0, 1.0, 50)  # an unrelated soft-label column
    sim = cos_cubed_similarity(t(z), t(c))
    assert sim.shape == (6,)
    np.testing.assert_allclose(sim.numpy(), np_cos_cubed(z, c), rtol=1e-10, atol=1e-12)
    assert np.all(np.abs(sim.numpy()) <= 1.0 + 1e-12)
    assert cos_cubed_loss(t(z), t(c)).item() == pytest.approx(-np_cos_cubed(z, c).mean(), abs=1e-12)


def test_cos_cubed_similarity_identity_scale_and_shift_invariance() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(40, 5))
    np.testing.assert_allclose(cos_cubed_similarity(t(z), t(z)).numpy(), 1.0, atol=1e-12)
    scales = np.array([0.01, 0.5, 1.0, 3.0, 100.0])
    np.testing.assert_allclose(cos_cubed_similarity(t(z), t(z * scales)).numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(cos_cubed_similarity(t(z), t(z * scales + 7.0)).numpy(), 1.0, atol=1e-10)
    np.testing.assert_allclose(cos_cubed_similarity(t(z), t(-z)).numpy(), -1.0, atol=1e-12)
    assert cos_cubed_loss(t(z), t(2.0 * z)).item() == pytest.approx(-1.0, abs=1e-12)
    # not invariant to non-linear changes of the targets
    assert cos_cubed_similarity(t(z), t(np.exp(z))).numpy().max() < 0.999


def test_cos_cubed_similarity_constant_column_is_finite() -> None:
    z = torch.randn(10, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    c = torch.ones(10, 2, dtype=torch.float64)
    sim = cos_cubed_similarity(z, c)
    assert torch.isfinite(sim).all()
    np.testing.assert_allclose(sim.numpy(), 0.0)


def test_bce_loss_matches_eq4() -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(0.0, 2.0, size=(30, 4))
    c = (rng.random((30, 4)) > 0.5).astype(np.float64)
    assert bce_loss(t(z), t(c)).item() == pytest.approx(np_bce(z, c), rel=1e-10)
    soft = rng.random((30, 4))
    assert bce_loss(t(z), t(soft)).item() == pytest.approx(np_bce(z, soft), rel=1e-10)
    assert bce_loss(t(np.zeros((3, 2))), t(np.ones((3, 2)))).item() == pytest.approx(np.log(2.0))
    assert set(LOSSES) == {"bce", "cos3"}
    assert LOSSES["bce"] is bce_loss and LOSSES["cos3"] is cos_cubed_loss


# ------------------------------------------------------------------ layers and training


def test_make_layer_has_no_bias() -> None:
    lin = make_layer(7, 3, None, seed=0)
    assert isinstance(lin, torch.nn.Linear) and lin.bias is None
    assert tuple(lin.weight.shape) == (3, 7)
    mlp = make_layer(7, 3, 8, seed=0)
    linears = [m for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2 and all(m.bias is None for m in linears)
    assert tuple(linears[0].weight.shape) == (8, 7) and tuple(linears[1].weight.shape) == (3, 8)
    # the seed fixes the initial weights
    assert torch.equal(make_layer(7, 3, None, seed=1).weight, make_layer(7, 3, None, seed=1).weight)
    assert not torch.equal(make_layer(7, 3, None, seed=1).weight, make_layer(7, 3, None, seed=2).weight)


def linear_problem(seed: int = 0, n: int = 200, n_val: int = 60, d: int = 10, m: int = 4):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, m, generator=g)
    x, xv = torch.randn(n, d, generator=g), torch.randn(n_val, d, generator=g)
    return x, x @ w, xv, xv @ w


def test_train_cos3_on_a_linear_problem() -> None:
    x, c, xv, cv = linear_problem()
    fit = train_concept_layer(x, c, xv, cv, "cos3", lr=1e-2, steps=150, eval_every=10)
    assert isinstance(fit.layer, torch.nn.Linear) and fit.layer.bias is None
    assert fit.best_val_loss < -0.98
    with torch.no_grad():
        sim = cos_cubed_similarity(fit.layer(xv), cv)
    assert sim.min().item() > 0.97
    assert [h[0] for h in fit.history] == list(range(10, 151, 10))
    assert not fit.layer.training
    assert all(not p.requires_grad for p in fit.layer.parameters())


def test_train_bce_restores_best_validation_weights() -> None:
    # few noisy training samples and many features: the validation loss goes down, then up (over-fitting)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(40, 3, generator=g)
    x = torch.randn(15, 40, generator=g)
    c = ((x @ w + 3.0 * torch.randn(15, 3, generator=g)) > 0).float()
    xv = torch.randn(50, 40, generator=g)
    cv = ((xv @ w) > 0).float()
    ticks: list[int] = []
    fit = train_concept_layer(x, c, xv, cv, "bce", lr=5e-2, steps=200, eval_every=10, progress=ticks.append)
    assert sum(ticks) == 200
    steps, train_losses, val_losses = zip(*fit.history)
    best = int(np.argmin(val_losses))
    assert fit.best_step == steps[best]
    assert fit.best_val_loss == pytest.approx(val_losses[best])
    assert fit.best_step < 200  # the last weights are not the best ones here
    assert val_losses[-1] > fit.best_val_loss + 0.1
    assert train_losses[-1] < train_losses[0]
    with torch.no_grad():
        restored = bce_loss(fit.layer(xv), cv).item()
        train_now = bce_loss(fit.layer(x), c).item()
    assert restored == pytest.approx(fit.best_val_loss, abs=1e-6)
    assert train_now > train_losses[-1]  # not the final (over-fitted) weights
    assert fit.layer.bias is None


def test_train_bce_learnable_problem_reaches_low_loss() -> None:
    x, c, xv, cv = linear_problem(seed=1)
    cb, cbv = (c > 0).float(), (cv > 0).float()
    fit = train_concept_layer(x, cb, xv, cbv, "bce", lr=5e-2, steps=200)
    assert fit.best_val_loss < 0.2
    with torch.no_grad():
        acc = ((fit.layer(xv) > 0).float() == cbv).float().mean().item()
    assert acc > 0.9


def test_train_mlp_option() -> None:
    x, c, xv, cv = linear_problem(seed=2)
    cb, cbv = (c > 0).float(), (cv > 0).float()
    fit = train_concept_layer(x, cb, xv, cbv, "bce", hidden=8, lr=5e-2, steps=150)
    assert isinstance(fit.layer, torch.nn.Sequential)
    linears = [m for m in fit.layer.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [8, 4]
    assert all(m.bias is None for m in linears)
    assert fit.best_val_loss < 0.35
    with torch.no_grad():
        assert bce_loss(fit.layer(xv), cbv).item() == pytest.approx(fit.best_val_loss, abs=1e-6)


def test_train_is_deterministic_and_empty_validation_uses_train_loss() -> None:
    x, c, xv, cv = linear_problem(seed=3, n=50)
    a = train_concept_layer(x, c, xv, cv, "cos3", lr=1e-2, steps=30, seed=5)
    b = train_concept_layer(x, c, xv, cv, "cos3", lr=1e-2, steps=30, seed=5)
    assert torch.equal(a.layer.weight, b.layer.weight)
    assert a.history == b.history
    empty = train_concept_layer(x, c, xv[:0], cv[:0], "cos3", lr=1e-2, steps=30, eval_every=10)
    for _, train_loss, val_loss in empty.history:
        assert val_loss == train_loss
    assert empty.history[-1][0] == 30


def test_unknown_loss_name() -> None:
    x, c, xv, cv = linear_problem(n=10, n_val=5)
    with pytest.raises(KeyError):
        train_concept_layer(x, c, xv, cv, "mse", steps=1)


def class_vs_concept_problem(seed: int = 0, n: int = 300, d: int = 12):
    """The class is decided by feature 0; eight concepts by features 1 … 8 (nothing to do with the class)."""
    g = torch.Generator().manual_seed(seed)
    x, xv = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    concepts = lambda a: (a[:, 1:9] > 0).float()  # noqa: E731
    classes = lambda a: (a[:, 0] > 0).long()  # noqa: E731
    return x, concepts(x), classes(x), xv, concepts(xv), classes(xv)


def head_accuracy(z: torch.Tensor, y: torch.Tensor, zv: torch.Tensor, yv: torch.Tensor) -> float:
    """Validation accuracy of a logistic regression on activations (the final layer's view of them)."""
    from sklearn.linear_model import LogisticRegression

    return float(LogisticRegression(max_iter=2000).fit(z.numpy(), y.numpy()).score(zv.numpy(), yv.numpy()))


def test_joint_training_keeps_the_class_in_the_activations() -> None:
    from dance.model.concept_layers import ClassTerm

    x, c, y, xv, cv, yv = class_vs_concept_problem()
    seq = train_concept_layer(x, c, xv, cv, "bce", lr=5e-2, steps=200)
    joint = train_concept_layer(x, c, xv, cv, "bce", lr=5e-2, steps=200, joint=ClassTerm(y, yv, 2, 1.0, sigmoid=True))
    with torch.no_grad():
        acc_seq = head_accuracy(torch.sigmoid(seq.layer(x)), y, torch.sigmoid(seq.layer(xv)), yv)
        acc_joint = head_accuracy(torch.sigmoid(joint.layer(x)), y, torch.sigmoid(joint.layer(xv)), yv)
        concept_acc = ((joint.layer(xv) > 0).float() == cv).float().mean().item()
        concept_acc_seq = ((seq.layer(xv) > 0).float() == cv).float().mean().item()
    assert acc_seq < 0.7  # concepts alone carry (almost) nothing of the class
    assert acc_joint > 0.85 and acc_joint > acc_seq + 0.2
    # the price where the class is orthogonal to every concept (the worst case): some concept accuracy
    assert concept_acc_seq > 0.9 and concept_acc > 0.8
    # the validation loss it keeps the best weights by includes the class term
    assert joint.best_val_loss > bce_loss(joint.layer(xv), cv).item()


def test_joint_weight_zero_is_the_concepts_only_training() -> None:
    from dance.model.concept_layers import ClassTerm

    x, c, y, xv, cv, yv = class_vs_concept_problem(seed=1)
    plain = train_concept_layer(x, c, xv, cv, "bce", lr=5e-2, steps=50)
    zero = train_concept_layer(x, c, xv, cv, "bce", lr=5e-2, steps=50, joint=ClassTerm(y, yv, 2, 0.0))
    assert torch.equal(plain.layer.weight, zero.layer.weight)
    assert plain.history == zero.history


def test_minibatches_cover_every_row_once_per_pass_and_are_seeded() -> None:
    from dance.model.concept_layers import _minibatches

    gen = _minibatches(10, 5, seed=3, device=torch.device("cpu"))
    first_pass = torch.cat([next(gen), next(gen)])
    assert sorted(first_pass.tolist()) == list(range(10))  # one pass: each row once
    again = _minibatches(10, 5, seed=3, device=torch.device("cpu"))
    assert torch.equal(next(again), first_pass[:5])
    # a batch size that does not divide the rows: batches stay full, every row comes round
    gen = _minibatches(7, 3, seed=0, device=torch.device("cpu"))
    seen = torch.cat([next(gen) for _ in range(7)])
    assert all(len(b) == 3 for b in seen.split(3)) and torch.bincount(seen, minlength=7).tolist() == [3] * 7
    # 0, or a batch of at least every row: the full batch
    assert next(_minibatches(10, 0, 0, torch.device("cpu"))) is None
    assert next(_minibatches(10, 10, 0, torch.device("cpu"))) is None


@pytest.mark.parametrize("loss", ["bce", "cos3"])
def test_minibatch_training_learns_like_full_batch(loss: str) -> None:
    x, c, xv, cv = linear_problem(seed=4, n=400)
    if loss == "bce":
        c, cv = (c > 0).float(), (cv > 0).float()
    full = train_concept_layer(x, c, xv, cv, loss, lr=5e-2, steps=150)
    mini = train_concept_layer(x, c, xv, cv, loss, lr=5e-2, steps=150, batch_size=64)
    same = train_concept_layer(x, c, xv, cv, loss, lr=5e-2, steps=150, batch_size=64)
    assert torch.equal(mini.layer.weight, same.layer.weight)  # seeded
    assert not torch.equal(mini.layer.weight, full.layer.weight)  # it did take other steps
    # as good on validation as the full batch (within a few per cent of its loss scale)
    assert mini.best_val_loss <= full.best_val_loss + 0.05 * abs(full.best_val_loss)
    with torch.no_grad():  # the loss it reports is the loss of the weights it kept, on all validation rows
        assert LOSSES[loss](mini.layer(xv), cv).item() == pytest.approx(mini.best_val_loss, abs=1e-5)
