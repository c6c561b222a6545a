"""Tests for the elastic-net final layer solver (dance.model.final_layer)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from dance.errors import ModelError
from dance.model.final_layer import (
    ElasticNetResult,
    PathPoint,
    elastic_net_objective,
    fit_elastic_net,
    fit_elastic_net_path,
    lambda_max,
)

ALPHA = 0.99


def make_data(n: int = 200, d: int = 10, k: int = 3, seed: int = 0, noise: float = 1.0):
    """Standardised features with a sparse class→feature structure."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centers = rng.normal(0.0, 1.0, (k, d)) * (rng.random((k, d)) < 0.4)
    X = centers[y] + rng.normal(0.0, noise, (n, d))
    X = (X - X.mean(0)) / X.std(0)
    return X, y


def numpy_objective(X, y, W, b, lam, alpha):
    """Direct float64 numpy transcription of F(W, b)."""
    X, W, b = (np.asarray(a, dtype=np.float64) for a in (X, W, b))
    Z = X @ W.T + b
    m = Z.max(1, keepdims=True)
    lse = (m + np.log(np.exp(Z - m).sum(1, keepdims=True)))[:, 0]
    ce = np.mean(lse - Z[np.arange(len(y)), y])
    return ce + lam * ((1 - alpha) / 2 * np.sum(W**2) + alpha * np.sum(np.abs(W)))


def numpy_gradients(X, y, W, b):
    """Gradient of the mean cross entropy w.r.t. W and b (float64)."""
    X, W, b = (np.asarray(a, dtype=np.float64) for a in (X, W, b))
    Z = X @ W.T + b
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    P[np.arange(len(y)), y] -= 1.0
    return P.T @ X / len(y), P.mean(0)


def sklearn_fit(X, y, lam, alpha=ALPHA):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0 / (len(y) * lam), l1_ratio=alpha, solver="saga", tol=1e-10, max_iter=20000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    return clf.coef_, clf.intercept_


# ------------------------------------------------------------------------------------------------------
# objective


def test_objective_matches_numpy_formula():
    rng = np.random.default_rng(1)
    X, y = make_data(50, 6, 4, seed=1)
    W = rng.normal(0, 1, (4, 6)) * (rng.random((4, 6)) < 0.5)
    b = rng.normal(0, 1, 4)
    for lam, alpha in [(0.0, 0.5), (7e-4, 0.99), (0.3, 0.2), (0.05, 1.0)]:
        expected = numpy_objective(X, y, W, b, lam, alpha)
        assert elastic_net_objective(X, y, W, b, lam, alpha) == pytest.approx(expected, rel=1e-12, abs=1e-12)
        got_torch = elastic_net_objective(
            torch.from_numpy(X).float(),
            torch.from_numpy(y),
            torch.from_numpy(W),
            torch.from_numpy(b),
            lam,
            alpha,
        )
        assert got_torch == pytest.approx(expected, rel=1e-6)


def test_result_objective_is_reported_consistently():
    X, y = make_data()
    res = fit_elastic_net(X, y, 3, lam=1e-2)
    assert isinstance(res, ElasticNetResult)
    assert res.W.shape == (3, 10) and res.b.shape == (3,)
    assert res.W.dtype == torch.float32 and res.b.dtype == torch.float32
    assert res.objective == pytest.approx(
        numpy_objective(X, y, res.W.numpy(), res.b.numpy(), 1e-2, ALPHA), abs=1e-6
    )
    assert len(res.path) == 1 and isinstance(res.path[0], PathPoint)
    acc = float(((X @ res.W.numpy().T.astype(np.float64) + res.b.numpy()).argmax(1) == y).mean())
    assert res.path[0].train_accuracy == pytest.approx(acc)
    assert res.path[0].nonzero == int((res.W != 0).sum())


# ------------------------------------------------------------------------------------------------------
# optimality


@pytest.mark.parametrize("lam", [7e-4, 1e-2, 5e-2])
def test_matches_sklearn_saga(lam):
    X, y = make_data()
    W_sk, b_sk = sklearn_fit(X, y, lam)
    f_sk = elastic_net_objective(X, y, W_sk, b_sk, lam, ALPHA)

    res = fit_elastic_net(X, y, 3, lam=lam, tol=1e-9, max_iter=20000)
    assert res.converged
    assert res.objective <= f_sk + 1e-4
    assert res.objective == pytest.approx(f_sk, abs=1e-6)
    np.testing.assert_allclose(res.W.numpy(), W_sk, atol=2e-3)
    # the softmax is shift invariant: compare centred biases
    np.testing.assert_allclose(res.b.numpy() - res.b.numpy().mean(), b_sk - b_sk.mean(), atol=2e-3)

    # the warm-started path with default tolerance reaches the same objective
    path = fit_elastic_net_path(X, y, 3, lam=lam, alpha=ALPHA, n_lambdas=10)
    assert path.lam == pytest.approx(lam)
    assert path.objective <= f_sk + 1e-4


@pytest.mark.parametrize("lam,alpha", [(1e-2, 0.99), (3e-2, 0.5), (2e-3, 1.0)])
def test_kkt_conditions(lam, alpha):
    X, y = make_data(300, 20, 4, seed=3)
    res = fit_elastic_net(X, y, 4, lam=lam, alpha=alpha, tol=1e-10, max_iter=20000)
    W = res.W.numpy().astype(np.float64)
    gW, gb = numpy_gradients(X, y, W, res.b.numpy())
    zero = W == 0
    assert zero.any() and (~zero).any(), "test needs both zero and non-zero weights"
    # zero weights: the gradient lies inside the L1 subdifferential
    assert np.all(np.abs(gW[zero]) <= lam * alpha + 1e-6)
    # non-zero weights: stationarity of the smooth part plus the penalty
    station = gW + lam * (1 - alpha) * W + lam * alpha * np.sign(W)
    assert np.max(np.abs(station[~zero])) <= 1e-5
    # unpenalised bias: zero gradient
    assert np.max(np.abs(gb)) <= 1e-6


def test_kkt_detects_wrong_solution():
    """The KKT check above is not vacuous: perturbing the solution violates it."""
    X, y = make_data(300, 20, 4, seed=3)
    res = fit_elastic_net(X, y, 4, lam=1e-2, tol=1e-10, max_iter=20000)
    W = res.W.numpy().astype(np.float64)
    W[W != 0] *= 1.05
    gW, _ = numpy_gradients(X, y, W, res.b.numpy())
    station = gW + 1e-2 * (1 - ALPHA) * W + 1e-2 * ALPHA * np.sign(W)
    assert np.max(np.abs(station[W != 0])) > 1e-4


# ------------------------------------------------------------------------------------------------------
# regularisation path


def test_lambda_max_gives_zero_weights():
    X, y = make_data()
    lmax = lambda_max(X, y, 3, ALPHA)
    above = fit_elastic_net(X, y, 3, lam=lmax * 1.001)
    assert int((above.W != 0).sum()) == 0
    # the bias is then the log class prior (up to a constant)
    prior = np.bincount(y, minlength=3) / len(y)
    b = above.b.numpy().astype(np.float64)
    np.testing.assert_allclose(b - b.mean(), np.log(prior) - np.log(prior).mean(), atol=1e-5)
    below = fit_elastic_net(X, y, 3, lam=lmax * 0.9)
    assert int((below.W != 0).sum()) > 0, "λ_max must be the smallest λ with W = 0"

    path = fit_elastic_net_path(X, y, 3, lam=lmax * 2)
    assert len(path.path) == 1 and path.path[0].nonzero == 0
    assert int((path.W != 0).sum()) == 0


def test_path_sparsity_decreases_with_lambda():
    X, y = make_data(300, 20, 4, seed=3)
    res = fit_elastic_net_path(X, y, 4, lam=1e-3, n_lambdas=15)
    lams = [p.lam for p in res.path]
    nnz = [p.nonzero for p in res.path]
    assert len(lams) == 15
    assert lams[0] == pytest.approx(lambda_max(X, y, 4, ALPHA))
    assert lams[-1] == pytest.approx(1e-3)
    assert all(a > b for a, b in zip(lams[:-1], lams[1:], strict=True))
    np.testing.assert_allclose(np.diff(np.log(lams)), np.log(lams[1] / lams[0]), rtol=1e-9)
    assert nnz[0] == 0
    assert nnz[-1] > nnz[len(nnz) // 2] > nnz[0]
    # elastic-net paths are monotone up to rare single-weight exits
    assert all(b >= a - 2 for a, b in zip(nnz[:-1], nnz[1:], strict=True))
    assert res.path[-1].objective == pytest.approx(res.objective)
    # independent fits: larger λ -> fewer non-zeros
    sparse = fit_elastic_net(X, y, 4, lam=3e-2)
    dense = fit_elastic_net(X, y, 4, lam=3e-3)
    assert int((sparse.W != 0).sum()) < int((dense.W != 0).sum())


def test_warm_start_converges_in_few_iterations():
    X, y = make_data(300, 20, 4, seed=3)
    cold = fit_elastic_net(X, y, 4, lam=2e-3, tol=1e-9, max_iter=20000)
    warm = fit_elastic_net(X, y, 4, lam=2e-3, W0=cold.W, b0=cold.b, tol=1e-6)
    assert warm.converged
    assert warm.path[0].iterations <= 5 < cold.path[0].iterations
    assert warm.objective == pytest.approx(cold.objective, abs=1e-7)


def test_select_val_picks_best_validation_point():
    X, y = make_data(300, 20, 4, seed=3, noise=2.0)
    Xv, yv = make_data(300, 20, 4, seed=4, noise=2.0)
    res = fit_elastic_net_path(X, y, 4, lam=1e-4, n_lambdas=12, X_val=Xv, y_val=yv, select="val")
    accs = [p.val_accuracy for p in res.path]
    assert all(a is not None for a in accs)
    best = max(accs)
    candidates = [p for p in res.path if p.val_accuracy == best]
    chosen = min(candidates, key=lambda p: p.nonzero)
    assert res.lam == pytest.approx(chosen.lam)
    assert int((res.W != 0).sum()) == chosen.nonzero
    vacc = float(((Xv @ res.W.numpy().T.astype(np.float64) + res.b.numpy()).argmax(1) == yv).mean())
    assert vacc == pytest.approx(best)
    last = fit_elastic_net_path(X, y, 4, lam=1e-4, n_lambdas=12, X_val=Xv, y_val=yv, select="last")
    assert last.lam == pytest.approx(1e-4)


def test_progress_deterministic_and_input_types():
    X, y = make_data()
    calls: list[tuple[int, int]] = []
    a = fit_elastic_net_path(X, y, 3, n_lambdas=5, progress=lambda i, n: calls.append((i, n)))
    assert calls == [(i, 5) for i in range(1, 6)]
    b = fit_elastic_net_path(torch.from_numpy(X), torch.from_numpy(y), 3, n_lambdas=5)
    assert torch.equal(a.W, b.W) and torch.equal(a.b, b.b)
    c = fit_elastic_net_path(X.tolist(), y.tolist(), 3, n_lambdas=5)
    assert torch.equal(a.W, c.W)


def test_absent_class_gets_zero_weights_and_low_bias():
    X, y = make_data(200, 10, 3)
    res = fit_elastic_net_path(X, y, 4, n_lambdas=5)  # class 3 never occurs
    assert res.converged
    assert int((res.W[3] != 0).sum()) == 0
    assert float(res.b[3]) < float(res.b[:3].min()) - 10
    assert np.isfinite(res.objective)
    ref = fit_elastic_net_path(X, y, 3, n_lambdas=5)
    np.testing.assert_allclose(res.W[:3].numpy(), ref.W.numpy(), atol=1e-6)


# ------------------------------------------------------------------------------------------------------
# input validation


def _bad_calls():
    X, y = make_data(30, 4, 3)
    Xnan = X.copy()
    Xnan[3, 2] = np.nan
    Xinf = X.copy()
    Xinf[0, 0] = np.inf
    return [
        ("nan", lambda: fit_elastic_net(Xnan, y, 3, 1e-2), "NaN"),
        ("inf", lambda: fit_elastic_net_path(Xinf, y, 3), "NaN/inf"),
        ("empty", lambda: fit_elastic_net(np.zeros((0, 4)), np.zeros(0, dtype=int), 3, 1e-2), "empty"),
        ("no features", lambda: fit_elastic_net(np.zeros((5, 0)), np.zeros(5, dtype=int), 3, 1e-2), "empty"),
        ("X 1-D", lambda: fit_elastic_net(X[:, 0], y, 3, 1e-2), "2-D"),
        ("X 3-D", lambda: fit_elastic_net(X[None], y, 3, 1e-2), "2-D"),
        ("y 2-D", lambda: fit_elastic_net(X, y[:, None], 3, 1e-2), "1-D"),
        ("y float", lambda: fit_elastic_net(X, y.astype(float), 3, 1e-2), "integer"),
        ("y negative", lambda: fit_elastic_net(X, y - 1, 3, 1e-2), r"\[0, 3\)"),
        ("y too large", lambda: fit_elastic_net(X, y, 2, 1e-2), r"\[0, 2\)"),
        ("length mismatch", lambda: fit_elastic_net(X, y[:-1], 3, 1e-2), "labels"),
        ("one class", lambda: fit_elastic_net(X, np.zeros(30, dtype=int), 1, 1e-2), "n_classes"),
        ("negative lam", lambda: fit_elastic_net(X, y, 3, -1.0), "lam"),
        ("zero lam path", lambda: fit_elastic_net_path(X, y, 3, lam=0.0), "lam"),
        ("alpha", lambda: fit_elastic_net(X, y, 3, 1e-2, alpha=1.5), "alpha"),
        ("W0 shape", lambda: fit_elastic_net(X, y, 3, 1e-2, W0=np.zeros((3, 5))), "shape"),
        ("b0 shape", lambda: fit_elastic_net(X, y, 3, 1e-2, b0=np.zeros(2)), "shape"),
        ("tol", lambda: fit_elastic_net(X, y, 3, 1e-2, tol=0.0), "tol"),
        ("max_iter", lambda: fit_elastic_net(X, y, 3, 1e-2, max_iter=0), "max_iter"),
        ("select", lambda: fit_elastic_net_path(X, y, 3, select="best"), "select"),
        ("select val", lambda: fit_elastic_net_path(X, y, 3, select="val"), "validation"),
        ("X_val dims", lambda: fit_elastic_net_path(X, y, 3, X_val=X[:, :3], y_val=y), "concepts"),
        ("y_val only", lambda: fit_elastic_net_path(X, y, 3, y_val=y), "together"),
        ("n_lambdas", lambda: fit_elastic_net_path(X, y, 3, n_lambdas=0), "n_lambdas"),
        ("strings", lambda: fit_elastic_net(np.array([["a", "b"]]), [0], 2, 1e-2), "numeric"),
        (
            "objective W",
            lambda: elastic_net_objective(X, y, np.zeros((3, 5)), np.zeros(3), 0.1, 0.5),
            "concepts",
        ),
    ]


@pytest.mark.parametrize("name,call,match", _bad_calls(), ids=[c[0] for c in _bad_calls()])
def test_bad_inputs_raise_model_error(name, call, match):
    with pytest.raises(ModelError, match=match):
        call()
