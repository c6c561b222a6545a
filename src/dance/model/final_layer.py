r"""The interpretable final layer of DANCE: a sparse multinomial logistic regression on concept activations.

Given standardised concept activations ``z`` (``n × d``) and class labels ``y`` in ``[0, K)``, the final
layer (paper Eq. 6) minimises the elastic-net regularised multinomial cross entropy

.. math::

    F(W, b) = \frac{1}{n} \sum_i \mathrm{CE}(\mathrm{softmax}(W z_i + b), y_i)
              + \lambda \Big[ \frac{1 - \alpha}{2} \lVert W \rVert_F^2 + \alpha \lVert W \rVert_1 \Big]

with ``W`` of shape ``K × d`` and an unpenalised bias ``b``.  This is the objective of glm-saga and of
scikit-learn's ``LogisticRegression(l1_ratio=alpha, C=1 / (n * lam), solver="saga")``.  With soft targets
``q_i`` (class probabilities, e.g. labels mixed with a teacher's predictions) the cross entropy is taken against
``q_i`` instead; everything below holds with the one-hot matrix ``Y`` replaced by ``Q``.

The solver is a *full-batch* accelerated proximal gradient method (FISTA):

* the smooth part is the mean cross entropy; the proximal operator of the penalty is the soft threshold
  ``sign(v) max(|v| - t λ α, 0)`` followed by the ridge shrink ``1 / (1 + t λ (1 - α))``;
* the step size comes from a backtracking line search on the usual sufficient-decrease condition, capped
  by a safe Lipschitz bound ``L ≤ ½ λ_max([X 1]ᵀ[X 1]) / n`` (Böhning's bound on the softmax Hessian), so
  the search always terminates; after every accepted step the trial step is enlarged again, so the method
  follows the (usually much smaller) local curvature;
* momentum is restarted adaptively (O'Donoghue & Candès gradient scheme), and a step that would increase
  the objective is rejected and replaced by a plain proximal gradient step, so the objective decreases
  monotonically;
* logits are kept for the iterates (class-major, ``K × n``), and those of the extrapolated point follow by
  the same linear combination; the label part of the cross entropy is linear in (W, b) and uses the
  precomputed class sums ``Yᵀ X``; so an iteration costs one forward and one backward matrix product.

Precision (mixed, float32 then float64): the matrix products dominate the cost and are ~3x faster in
float32, which resolves the objective to a few 1e-6: enough for all early iterations.  Near the optimum
an iteration changes the objective by 1e-7 or less, below float32 resolution, where the line search and the
relative-change test would act on rounding noise.  So each solve runs float32 FISTA down to a tolerance
of ``max(tol, 3e-5)`` (or until rounding stalls it) and then finishes in float64 down to ``tol``.  Reported
objectives are always evaluated in float64.  Returned weights are float32 CPU tensors, ready for
``torch.nn.Linear``.

Convergence: an accepted step whose relative objective decrease is ``≤ tol`` *and* whose gradient mapping
(proximal gradient, ``L (y - x⁺)``) has max-abs entry ``≤ tol``.

``fit_elastic_net_path`` computes a glm-saga style warm-started regularisation path: ``λ_max`` is the
smallest ``λ`` at which ``W = 0`` (with the optimal bias, the log class priors) is optimal, i.e.
``max |∇_W CE(0, b*)| / α``, followed by a geometric sequence down to the target ``λ``, each point
warm-started from the previous one.

Small problems (``n (d + 1) K < 1e6``) are solved with one torch thread (restored afterwards): their
matrix products are too small to gain from threads, and on a busy machine OpenMP synchronisation made them
orders of magnitude slower.  Classes without training samples get ``W = 0`` and a bias 50 below the
lowest other bias (their optimal bias is -inf).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dance.errors import ModelError

__all__ = [
    "ElasticNetResult",
    "PathPoint",
    "elastic_net_objective",
    "fit_elastic_net",
    "fit_elastic_net_path",
    "lambda_max",
]

_DTYPE = torch.float64
_MIN_ALPHA_FOR_LAMBDA_MAX = 1e-3  # like glm-saga: with alpha -> 0 no finite lambda gives W = 0
_ABSENT_CLASS_BIAS_GAP = 50.0  # bias margin (in logits) for classes without any training sample
_F32_TOL = 3e-5  # float32 iterations run down to this tolerance, float64 ones finish below it
_PATH_TOL = 1e-4  # tolerance for intermediate path points when they only serve as warm starts
_SINGLE_THREAD_WORK = 1_000_000  # below this n·(d+1)·K, thread start-up/contention costs more than it saves
_STEP_GROWTH = 0.9  # after an accepted step, the next trial uses L * _STEP_GROWTH (a larger step)


@dataclass
class PathPoint:
    """One solved point of the regularisation path."""

    lam: float
    objective: float
    train_accuracy: float
    val_accuracy: float | None
    nonzero: int
    iterations: int


@dataclass
class ElasticNetResult:
    """A fitted final layer: ``logits = z @ W.T + b``.

    ``W`` (``K × d``) and ``b`` (``K``) are float32 CPU tensors.  ``path`` lists every solved ``λ`` (one
    entry for :func:`fit_elastic_net`), ``lam``/``objective``/``converged`` describe the returned solution.
    """

    W: torch.Tensor
    b: torch.Tensor
    lam: float
    alpha: float
    path: list[PathPoint]
    objective: float
    converged: bool


# --------------------------------------------------------------------------------------------------------
# input validation


def _to_tensor(a: Any, name: str) -> torch.Tensor:
    """Convert numpy / torch / array-like input to a CPU tensor, raising :class:`ModelError` if impossible."""
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu")
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise ModelError(f"{name} cannot be converted to an array: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ModelError(f"{name} must be numeric; got dtype {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(arr))


def _check_features(X: Any, name: str = "X", n_features: int | None = None) -> torch.Tensor:
    """Validate a feature matrix and return it as a contiguous float64 tensor."""
    t = _to_tensor(X, name)
    if t.dtype == torch.bool or t.is_complex():
        raise ModelError(f"{name} must hold real numbers; got dtype {t.dtype}")
    if t.ndim != 2:
        raise ModelError(f"{name} must be a 2-D array (n_samples, n_concepts); got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ModelError(f"{name} is empty (shape {tuple(t.shape)}); need at least one sample and one concept")
    if n_features is not None and t.shape[1] != n_features:
        raise ModelError(f"{name} has {t.shape[1]} concepts but the model expects {n_features}")
    t = t.to(_DTYPE).contiguous()
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        bad = (~finite).nonzero()
        r, c = (int(v) for v in bad[0])
        raise ModelError(
            f"{name} contains {bad.shape[0]} NaN/inf value(s) (first at row {r}, column {c}); "
            "clean or impute the concept activations before fitting"
        )
    return t


def _check_labels(y: Any, n_samples: int, n_classes: int, name: str = "y") -> torch.Tensor:
    """Validate integer class labels in ``[0, n_classes)`` and return them as a long tensor."""
    t = _to_tensor(y, name)
    if t.ndim != 1:
        raise ModelError(f"{name} must be a 1-D array of class indices; got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ModelError(f"{name} is empty; need at least one labelled sample")
    if t.shape[0] != n_samples:
        raise ModelError(f"{name} has {t.shape[0]} labels but the features have {n_samples} samples")
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise ModelError(f"{name} must hold integer class indices; got dtype {t.dtype}")
    t = t.to(torch.long)
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= n_classes:
        raise ModelError(f"{name} must lie in [0, {n_classes}); got labels in [{lo}, {hi}]")
    return t.contiguous()


def _check_targets(q: Any, n_samples: int, n_classes: int) -> torch.Tensor:
    """Validate soft targets: an ``n_samples × n_classes`` array of class probabilities (rows summing to 1)."""
    t = _to_tensor(q, "targets")
    if tuple(t.shape) != (n_samples, n_classes):
        raise ModelError(f"targets must have shape ({n_samples}, {n_classes}) (samples × classes); got "
                         f"{tuple(t.shape)}")
    if not t.is_floating_point():
        raise ModelError(f"targets must hold class probabilities (floats); got dtype {t.dtype}")
    t = t.to(_DTYPE)
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ModelError("targets must be finite and non-negative")
    sums = t.sum(1)
    if bool(((sums - 1.0).abs() > 1e-4).any()):
        raise ModelError(f"each row of targets must sum to 1; got sums in [{float(sums.min()):.4g}, "
                         f"{float(sums.max()):.4g}]")
    return (t / sums[:, None]).contiguous()


def _check_n_classes(n_classes: Any) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ModelError(f"n_classes must be an integer; got {n_classes!r}")
    if int(n_classes) < 2:
        raise ModelError(f"n_classes must be at least 2; got {n_classes}")
    return int(n_classes)


def _check_reg(lam: Any, alpha: Any, *, positive_lam: bool) -> tuple[float, float]:
    try:
        lam_f, alpha_f = float(lam), float(alpha)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"lam and alpha must be numbers; got lam={lam!r}, alpha={alpha!r}") from exc
    if not math.isfinite(lam_f) or lam_f < 0 or (positive_lam and lam_f == 0):
        raise ModelError(f"lam must be a finite {'positive' if positive_lam else 'non-negative'} number; got {lam}")
    if not math.isfinite(alpha_f) or not 0.0 <= alpha_f <= 1.0:
        raise ModelError(f"alpha must lie in [0, 1]; got {alpha}")
    return lam_f, alpha_f


def _check_solver_args(max_iter: Any, tol: Any) -> tuple[int, float]:
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or int(max_iter) < 1:
        raise ModelError(f"max_iter must be a positive integer; got {max_iter!r}")
    try:
        tol_f = float(tol)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"tol must be a number; got {tol!r}") from exc
    if not math.isfinite(tol_f) or tol_f <= 0:
        raise ModelError(f"tol must be a finite positive number; got {tol}")
    return int(max_iter), tol_f


def _check_params(W: Any, b: Any, n_classes: int, n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate (W, b) of shapes (K, d) and (K,); either may be None (-> zeros / None)."""
    Wt = torch.zeros(n_classes, n_features, dtype=_DTYPE) if W is None else _to_tensor(W, "W").to(_DTYPE)
    if tuple(Wt.shape) != (n_classes, n_features):
        raise ModelError(f"W must have shape ({n_classes}, {n_features}); got {tuple(Wt.shape)}")
    bt = torch.zeros(n_classes, dtype=_DTYPE) if b is None else _to_tensor(b, "b").to(_DTYPE)
    if tuple(bt.shape) != (n_classes,):
        raise ModelError(f"b must have shape ({n_classes},); got {tuple(bt.shape)}")
    if not bool(torch.isfinite(Wt).all()) or not bool(torch.isfinite(bt).all()):
        raise ModelError("W and b must be finite (no NaN/inf)")
    return Wt.contiguous().clone(), bt.contiguous().clone()


# --------------------------------------------------------------------------------------------------------
# objective pieces


def _mean_ce(Z: torch.Tensor, y: torch.Tensor, Q: torch.Tensor | None = None) -> float:
    """Mean multinomial cross entropy of logits ``Z`` (n × K) for labels ``y``, or for soft targets ``Q``
    (n × K class probabilities) when given."""
    lse = torch.logsumexp(Z, dim=1)
    if Q is not None:
        return float((lse - (Q * Z).sum(1)).mean())
    return float((lse - Z.gather(1, y[:, None]).squeeze(1)).mean())


def _penalty(W: torch.Tensor, lam: float, alpha: float) -> float:
    if lam == 0.0:
        return 0.0
    return lam * (0.5 * (1.0 - alpha) * float(W.square().sum()) + alpha * float(W.abs().sum()))


def _prox(V: torch.Tensor, step: float, lam: float, alpha: float) -> torch.Tensor:
    """Proximal operator of ``step * λ [(1-α)/2 ‖·‖² + α ‖·‖₁]``: soft threshold, then ridge shrink."""
    thr = step * lam * alpha
    out = torch.sign(V) * torch.clamp(V.abs() - thr, min=0.0) if thr > 0 else V.clone()
    shrink = 1.0 + step * lam * (1.0 - alpha)
    if shrink != 1.0:
        out.div_(shrink)
    return out


def elastic_net_objective(X: Any, y: Any, W: Any, b: Any, lam: float, alpha: float) -> float:
    """Evaluate ``F(W, b)`` = mean cross entropy + ``λ [(1-α)/2 ‖W‖_F² + α ‖W‖₁]`` in float64.

    ``X`` is ``n × d``, ``y`` holds ``n`` class indices, ``W`` is ``K × d`` and ``b`` has ``K`` entries (the
    number of classes ``K`` is taken from ``W``).  Raises :class:`~dance.errors.ModelError` on bad inputs.
    """
    Wt = _to_tensor(W, "W")
    if Wt.ndim != 2:
        raise ModelError(f"W must be a 2-D array (n_classes, n_concepts); got shape {tuple(Wt.shape)}")
    n_classes, n_features = int(Wt.shape[0]), int(Wt.shape[1])
    if n_classes < 1:
        raise ModelError("W has no rows (zero classes)")
    Xt = _check_features(X, "X", n_features=n_features)
    yt = _check_labels(y, Xt.shape[0], n_classes)
    lam_f, alpha_f = _check_reg(lam, alpha, positive_lam=False)
    Wt, bt = _check_params(Wt, b, n_classes, n_features)
    Z = torch.addmm(bt, Xt, Wt.T)
    return _mean_ce(Z, yt) + _penalty(Wt, lam_f, alpha_f)


# --------------------------------------------------------------------------------------------------------
# solver


@dataclass
class _Solution:
    W: torch.Tensor  # float64 (K, d)
    b: torch.Tensor  # float64 (K,)
    objective: float
    iterations: int
    converged: bool
    L: float  # last accepted curvature estimate, to seed the next solve on a path


@dataclass
class _Phase:
    W: torch.Tensor
    b: torch.Tensor
    iterations: int
    converged: bool
    L: float


class _Data:
    """The training data in one floating point precision, laid out for the solver.

    Logits are kept class-major (``K × n``): ``W @ Xᵀ`` is about twice as fast as ``X @ Wᵀ`` with MKL.  The
    label part of the cross entropy is linear in (W, b): ``Σ_i z_{y_i,i} = <W, M> + <b, counts>`` with the
    class sums ``M = Yᵀ X``, so neither the objective nor the gradient needs the one-hot matrix.
    """

    def __init__(self, X64: torch.Tensor, M64: torch.Tensor, counts64: torch.Tensor, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.X = X64 if dtype == torch.float64 else X64.to(dtype)
        self.XT = self.X.T
        self.M = M64.to(dtype)
        self.counts = counts64.to(dtype)
        self.n = int(X64.shape[0])
        # slack for float rounding in the sufficient-decrease and monotonicity tests
        self.eps = 16 * torch.finfo(dtype).eps

    def logits(self, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.addmm(b[:, None], W, self.XT)

    def mean_ce(self, ZT: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> float:
        lse = torch.logsumexp(ZT, dim=0)
        label = float((W * self.M).sum() + (b * self.counts).sum())
        return float(lse.sum()) / self.n - label / self.n


class _Problem:
    """Validated training data plus quantities shared by every solve on a path."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, n_classes: int, Q: torch.Tensor | None = None) -> None:
        self.X = X
        self.y = y
        self.Q = Q  # soft targets (n × K), or None: the labels y
        self.n, self.d = int(X.shape[0]), int(X.shape[1])
        self.n_classes = n_classes
        counts = torch.bincount(y, minlength=n_classes).to(_DTYPE) if Q is None else Q.sum(0)
        present = counts > 0
        self.present = present
        self.all_present = bool(present.all())
        # optimisation runs over the classes that occur (or get target mass); absent classes get W = 0 and a very
        # low bias
        self.k_red = n_classes if self.all_present else int(present.sum())
        counts_red = counts[present].to(_DTYPE)
        if Q is not None:
            M = Q[:, present].T @ X  # soft class sums Qᵀ X
        else:
            y_red = y if self.all_present else (torch.cumsum(present.to(torch.long), 0) - 1)[y]
            M = torch.zeros(self.k_red, self.d, dtype=_DTYPE).index_add_(0, y_red, X)  # class sums Yᵀ X
        self.data64 = _Data(X, M, counts_red, torch.float64)
        self.data32 = _Data(X, M, counts_red, torch.float32)
        prior = counts_red / self.n
        self.b_null = torch.log(prior) - torch.log(prior).mean()
        # gradient of the mean cross entropy w.r.t. W at W = 0 with the optimal bias (softmax(b) = prior):
        # (1/n) Σ_i (prior - onehot(y_i)) x_iᵀ
        self.grad_null = (prior[:, None] * X.sum(0)[None, :] - M) / self.n
        # safe Lipschitz constant of the mean cross entropy in (W, b): ½ λ_max([X 1]ᵀ[X 1]) / n
        # (the Gram matrix of [X 1] is assembled from blocks, without copying X)
        if self.n >= self.d:
            col_sums = X.sum(0)
            gram = torch.empty(self.d + 1, self.d + 1, dtype=_DTYPE)
            gram[: self.d, : self.d] = X.T @ X
            gram[: self.d, self.d] = col_sums
            gram[self.d, : self.d] = col_sums
            gram[self.d, self.d] = float(self.n)
        else:
            gram = X @ X.T + 1.0
        self.L_max = 0.5 * float(torch.linalg.eigvalsh(gram)[-1]) / self.n * (1.0 + 1e-6) + 1e-12

    def lambda_max(self, alpha: float) -> float:
        return float(self.grad_null.abs().max()) / max(alpha, _MIN_ALPHA_FOR_LAMBDA_MAX)

    def reduce(self, W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.all_present:
            return W.clone(), b.clone()
        return W[self.present].clone(), b[self.present].clone()

    def expand(self, W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Re-insert absent classes: zero weights, bias far below every present class."""
        if self.all_present:
            return W, b
        W_full = torch.zeros(self.n_classes, self.d, dtype=W.dtype)
        b_full = torch.full((self.n_classes,), float(b.min()) - _ABSENT_CLASS_BIAS_GAP, dtype=b.dtype)
        W_full[self.present] = W
        b_full[self.present] = b
        return W_full, b_full

    def objective(self, W: torch.Tensor, b: torch.Tensor, lam: float, alpha: float) -> float:
        """Float64 objective of a full (all classes) solution."""
        Z = torch.addmm(b, self.X, W.T)
        return _mean_ce(Z, self.y, self.Q) + _penalty(W, lam, alpha)

    def solve(
        self,
        W0: torch.Tensor,
        b0: torch.Tensor,
        lam: float,
        alpha: float,
        max_iter: int,
        tol: float,
        L0: float | None = None,
    ) -> _Solution:
        """Mixed-precision FISTA: float32 iterations while they make progress, float64 to finish."""
        if lam * alpha >= float(self.grad_null.abs().max()):
            # λ ≥ λ_max: the solution is known exactly (W = 0, bias = log priors); solving it in float32
            # could leave rounding-size weights at λ = λ_max
            W_full, b_full = self.expand(torch.zeros(self.k_red, self.d, dtype=_DTYPE), self.b_null.clone())
            return _Solution(W_full, b_full, self.objective(W_full, b_full, lam, alpha), 0, True, L0 or self.L_max)
        W, b = self.reduce(W0.to(_DTYPE), b0.to(_DTYPE))
        L = min(self.L_max, L0) if L0 is not None and L0 > 0 else self.L_max
        # phase 1: float32 iterations are ~3x cheaper and resolve the objective to a few 1e-6; they get at
        # most half the budget so that rounding-limited progress cannot exhaust it
        tol32 = max(tol, _F32_TOL)
        budget32 = max(1, max_iter // 2)
        ph = _fista(self.data32, W.to(torch.float32), b.to(torch.float32), lam, alpha, budget32, tol32, L, self.L_max)
        iterations, converged, L = ph.iterations, ph.converged, ph.L
        W, b = ph.W.to(_DTYPE), ph.b.to(_DTYPE)
        if not converged or tol < tol32:
            if iterations < max_iter:
                # phase 2: float64, whose resolution the tolerance needs
                ph = _fista(self.data64, W, b, lam, alpha, max_iter - iterations, tol, L, self.L_max)
                iterations += ph.iterations
                converged, L, W, b = ph.converged, ph.L, ph.W, ph.b
            else:
                converged = False  # no iterations left to reach `tol`
        W_full, b_full = self.expand(W, b)
        return _Solution(W_full, b_full, self.objective(W_full, b_full, lam, alpha), iterations, converged, L)


def _fista(
    data: _Data,
    W: torch.Tensor,
    b: torch.Tensor,
    lam: float,
    alpha: float,
    max_iter: int,
    tol: float,
    L: float,
    L_max: float,
) -> _Phase:
    """FISTA with backtracking, adaptive (gradient) restart and a monotone safeguard, in ``data.dtype``.

    Stops when an accepted step decreases the objective by at most ``tol`` relative *and* the max-abs entry
    of the gradient mapping ``L (y - x⁺)`` is at most ``tol``; or when a plain proximal gradient step
    (no momentum) fails to decrease the objective, which only rounding can cause.
    """
    n, eps = data.n, data.eps
    L_min = L_max * 1e-6
    Wx, bx = W, b
    Zx = data.logits(Wx, bx)
    Fx = data.mean_ce(Zx, Wx, bx) + _penalty(Wx, lam, alpha)
    Wp, bp, Zp = Wx, bx, Zx  # previous iterate (momentum)
    theta, beta = 1.0, 0.0
    it = 0
    while it < max_iter:
        it += 1
        if beta > 0.0:  # extrapolate; logits follow linearly: y = x + β (x - x_prev)
            Wy = torch.lerp(Wp, Wx, 1.0 + beta)
            by = torch.lerp(bp, bx, 1.0 + beta)
            Zy = torch.lerp(Zp, Zx, 1.0 + beta)
        else:
            Wy, by, Zy = Wx, bx, Zx
        lse = torch.logsumexp(Zy, dim=0)
        label = float((Wy * data.M).sum() + (by * data.counts).sum())
        fy = (float(lse.sum()) - label) / n
        P = torch.exp(Zy - lse[None, :])  # softmax, K × n
        gW = torch.addmm(data.M, P, data.X, beta=-1.0).div_(n)  # (P X - M) / n
        gb = (P.sum(1) - data.counts).div_(n)
        while True:  # backtracking line search on the smooth part
            step = 1.0 / L
            Wn = _prox(Wy - step * gW, step, lam, alpha)
            bn = by - step * gb
            Zn = data.logits(Wn, bn)
            fn = data.mean_ce(Zn, Wn, bn)
            dW, db = Wn - Wy, bn - by
            sq = float(dW.square().sum() + db.square().sum())
            lin = float((gW * dW).sum() + (gb * db).sum())
            if fn <= fy + lin + 0.5 * L * sq + eps * abs(fy) or L >= L_max:
                break
            L = min(2.0 * L, L_max)
        Fn = fn + _penalty(Wn, lam, alpha)
        if Fn > Fx + eps * abs(Fx):
            if beta == 0.0:
                # a plain proximal gradient step with a valid step size cannot increase F: only rounding
                # can cause this, so we are at the resolution limit of this precision
                return _Phase(Wx, bx, it, True, L)
            theta, beta = 1.0, 0.0  # reject the accelerated step; restart momentum from x
            continue
        gmap = L * max(float(dW.abs().max()), float(db.abs().max()))  # prox-gradient (gradient mapping)
        rel = (Fx - Fn) / max(abs(Fn), 1e-12)
        restart = float((dW * (Wn - Wx)).sum() + (db * (bn - bx)).sum()) < 0.0  # <y - x⁺, x⁺ - x> > 0
        Wp, bp, Zp = Wx, bx, Zx
        Wx, bx, Zx, Fx = Wn, bn, Zn, Fn
        if rel <= tol and gmap <= tol:
            return _Phase(Wx, bx, it, True, L)
        if restart:
            theta, beta = 1.0, 0.0
        else:
            theta_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * theta * theta))
            beta = (theta - 1.0) / theta_next
            theta = theta_next
        L = max(L * _STEP_GROWTH, L_min)
    return _Phase(Wx, bx, it, False, L)


@contextmanager
def _torch_threads(work: int) -> Iterator[None]:
    """Run small problems single-threaded (restoring the previous setting afterwards)."""
    previous = torch.get_num_threads()
    if work >= _SINGLE_THREAD_WORK or previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _accuracy(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> float:
    return float((torch.addmm(b, X, W.T).argmax(1) == y).to(_DTYPE).mean())


def _result(sol: _Solution, lam: float, alpha: float, path: list[PathPoint]) -> ElasticNetResult:
    return ElasticNetResult(
        W=sol.W.to(torch.float32),
        b=sol.b.to(torch.float32),
        lam=lam,
        alpha=alpha,
        path=path,
        objective=sol.objective,
        converged=sol.converged,
    )


def _point(
    prob: _Problem,
    sol: _Solution,
    lam: float,
    X_val: torch.Tensor | None,
    y_val: torch.Tensor | None,
) -> PathPoint:
    val_acc = None if X_val is None or y_val is None else _accuracy(X_val, y_val, sol.W, sol.b)
    return PathPoint(
        lam=lam,
        objective=sol.objective,
        train_accuracy=_accuracy(prob.X, prob.y, sol.W, sol.b),
        val_accuracy=val_acc,
        nonzero=int((sol.W != 0).sum()),
        iterations=sol.iterations,
    )


def lambda_max(X: Any, y: Any, n_classes: int, alpha: float = 0.99) -> float:
    """Smallest ``λ`` for which ``W = 0`` (with bias = log class priors) minimises the objective.

    ``λ_max = max_{k,j} |(1/n) Σ_i (π_k - [y_i = k]) X_ij| / α`` with ``π`` the class priors (``α`` is
    floored at 1e-3, like glm-saga, since a pure ridge penalty never yields exactly zero weights).
    """
    K = _check_n_classes(n_classes)
    Xt = _check_features(X, "X")
    yt = _check_labels(y, Xt.shape[0], K)
    _, alpha_f = _check_reg(1.0, alpha, positive_lam=False)
    return _Problem(Xt, yt, K).lambda_max(alpha_f)


def fit_elastic_net(
    X: Any,
    y: Any,
    n_classes: int,
    lam: float,
    alpha: float = 0.99,
    W0: Any = None,
    b0: Any = None,
    max_iter: int = 2000,
    tol: float = 1e-6,
) -> ElasticNetResult:
    """Fit the elastic-net multinomial logistic regression for a single ``λ``.

    Args:
        X: ``n × d`` standardised concept activations (numpy or torch).
        y: ``n`` integer class indices in ``[0, n_classes)``.
        n_classes: number of classes ``K`` (classes without samples get zero weights and a very low bias).
        lam: regularisation strength ``λ ≥ 0``.
        alpha: L1 share ``α`` in ``[0, 1]``.
        W0, b0: optional warm start (``K × d`` and ``K``); default zeros / log class priors.
        max_iter: maximum number of FISTA iterations.
        tol: stop when the relative objective decrease of an iteration and the max-abs entry of the
            gradient mapping (proximal gradient) are both ``≤ tol``.

    Returns:
        An :class:`ElasticNetResult` with a one-entry ``path``.
    """
    K = _check_n_classes(n_classes)
    Xt = _check_features(X, "X")
    yt = _check_labels(y, Xt.shape[0], K)
    lam_f, alpha_f = _check_reg(lam, alpha, positive_lam=False)
    max_iter, tol = _check_solver_args(max_iter, tol)
    W_init, b_init = _check_params(W0, b0, K, int(Xt.shape[1]))
    with _torch_threads(Xt.shape[0] * (Xt.shape[1] + 1) * K):
        prob = _Problem(Xt, yt, K)
        if b0 is None:  # optimal bias for W = 0: centred log class priors
            b_init = prob.expand(torch.zeros(prob.k_red, prob.d, dtype=_DTYPE), prob.b_null)[1]
        sol = prob.solve(W_init, b_init, lam_f, alpha_f, max_iter, tol)
        point = _point(prob, sol, lam_f, None, None)
    return _result(sol, lam_f, alpha_f, [point])


def _solve_path(
    prob: _Problem,
    lams: list[float],
    alpha_f: float,
    max_iter: int,
    tol: float,
    Xv: torch.Tensor | None,
    yv: torch.Tensor | None,
    select: str,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[_Solution], list[PathPoint], int]:
    """Solve the warm-started path; return the solutions, path points and the selected index."""
    W, b = prob.expand(torch.zeros(prob.k_red, prob.d, dtype=_DTYPE), prob.b_null)
    L: float | None = None
    path: list[PathPoint] = []
    sols: list[_Solution] = []
    for i, lam_i in enumerate(lams):
        # intermediate points only warm-start the next one, unless they are selection candidates
        tol_i = tol if i == len(lams) - 1 or select == "val" else max(tol, _PATH_TOL)
        sol = prob.solve(W, b, lam_i, alpha_f, max_iter, tol_i, L0=L)
        W, b, L = sol.W, sol.b, sol.L
        sols.append(sol)
        path.append(_point(prob, sol, lam_i, Xv, yv))
        if progress is not None:
            progress(i + 1, len(lams))

    best = len(lams) - 1
    if select == "val":
        best = min(range(len(path)), key=lambda j: (-(path[j].val_accuracy or 0.0), path[j].nonzero, j))
    return sols, path, best


def fit_elastic_net_path(
    X: Any,
    y: Any,
    n_classes: int,
    lam: float = 7e-4,
    alpha: float = 0.99,
    n_lambdas: int = 20,
    X_val: Any = None,
    y_val: Any = None,
    select: str = "last",
    max_iter: int = 2000,
    tol: float = 1e-6,
    progress: Callable[[int, int], None] | None = None,
    targets: Any = None,
) -> ElasticNetResult:
    """Fit a warm-started regularisation path from ``λ_max`` down to ``lam`` (glm-saga style).

    The path is ``n_lambdas`` geometrically spaced values from :func:`lambda_max` to ``lam`` (a single
    value if ``lam ≥ λ_max`` or ``n_lambdas == 1``); each point is solved by FISTA warm-started from the
    previous solution (and its step size).  With ``select="last"`` intermediate points only serve as warm
    starts and are solved to ``max(tol, 1e-4)``; the target point, and with ``select="val"`` every point
    (all are candidates, so their validation accuracies must be those of converged models), to ``tol``.

    Args:
        X, y, n_classes, alpha, max_iter, tol: as in :func:`fit_elastic_net`.
        lam: target (smallest) ``λ > 0``.
        n_lambdas: number of path points (``≥ 1``).
        X_val, y_val: optional validation data; adds ``val_accuracy`` to every :class:`PathPoint`.
        select: ``"last"`` returns the solution at ``lam``; ``"val"`` the path point with the best
            validation accuracy (ties go to the sparser model, then to the larger ``λ``).
        progress: called as ``progress(done, total)`` after each solved path point.
        targets: optional soft targets (``n × K`` class probabilities, rows summing to 1): the cross entropy is
            taken against them instead of the one-hot labels ``y`` (which still give the training accuracy), e.g.
            labels mixed with a teacher's probabilities (distillation). ``λ_max`` follows from them.

    Returns:
        An :class:`ElasticNetResult` for the selected point; ``path`` holds all points, largest ``λ`` first.
    """
    K = _check_n_classes(n_classes)
    Xt = _check_features(X, "X")
    yt = _check_labels(y, Xt.shape[0], K)
    lam_f, alpha_f = _check_reg(lam, alpha, positive_lam=True)
    max_iter, tol = _check_solver_args(max_iter, tol)
    if isinstance(n_lambdas, bool) or not isinstance(n_lambdas, (int, np.integer)) or int(n_lambdas) < 1:
        raise ModelError(f"n_lambdas must be a positive integer; got {n_lambdas!r}")
    if select not in ("last", "val"):
        raise ModelError(f"select must be 'last' or 'val'; got {select!r}")
    Xv: torch.Tensor | None = None
    yv: torch.Tensor | None = None
    if (X_val is None) != (y_val is None):
        raise ModelError("X_val and y_val must be given together")
    if X_val is not None:
        Xv = _check_features(X_val, "X_val", n_features=int(Xt.shape[1]))
        yv = _check_labels(y_val, Xv.shape[0], K, name="y_val")
    if select == "val" and Xv is None:
        raise ModelError("select='val' needs validation data (X_val, y_val)")

    Qt = None if targets is None else _check_targets(targets, int(Xt.shape[0]), K)
    with _torch_threads(Xt.shape[0] * (Xt.shape[1] + 1) * K):
        prob = _Problem(Xt, yt, K, Qt)
        lam_hi = prob.lambda_max(alpha_f)
        if lam_f >= lam_hi or int(n_lambdas) == 1:
            lams = [lam_f]
        else:
            lams = np.geomspace(lam_hi, lam_f, int(n_lambdas)).tolist()
            lams[-1] = lam_f  # exact target despite rounding
        sols, path, best = _solve_path(prob, lams, alpha_f, max_iter, tol, Xv, yv, select, progress)
    return _result(sols[best], lams[best], alpha_f, path)
