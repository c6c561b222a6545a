"""Benchmark the DANCE final layer solver against glm-saga 0.1.2 and scikit-learn's saga.

All three solve the same problem (paper Eq. 6) on the same data:

    F(W, b) = mean_i CE(softmax(W z_i + b), y_i) + λ [ (1 - α)/2 ‖W‖_F² + α ‖W‖_1 ]

* ours:    ``dance.model.final_layer.fit_elastic_net_path`` — full-batch FISTA, warm-started λ path from
           λ_max down to λ (``--n-lambdas`` points), float64.
* glm-saga: ``glm_saga.elasticnet.glm_saga`` — mini-batch proximal SAGA over the same λ path, float32.
           λ mapping: glm-saga starts its path at ``max_lam = max_reg / max(α, 1e-3)`` where ``max_reg`` is
           computed from the data or read from ``metadata["max_reg"]["nongrouped"]``, and ends at
           ``epsilon * max_lam`` (``k`` points).  The λ that enters its loss is therefore the value you pass
           *divided by α* (LF-CBM / DANCE call it with ``max_reg = lam, epsilon = 1, k = 1`` and so train at
           ``lam / α``).  We pass ``max_reg = α · λ_max``, ``epsilon = λ / λ_max`` and ``k = n_lambdas``, so
           its path is exactly ours and ends at the target λ.
* sklearn: ``LogisticRegression(solver="saga", l1_ratio=α, C=1/(n λ))`` — its objective
           ``C Σ_i CE_i + (1-α)/2 ‖W‖² + α ‖W‖₁`` is ``n C`` times ours; one λ, cold start.

Every final objective is evaluated by OUR ``elastic_net_objective`` on the returned (W, b), so the numbers are
comparable.  The data mimic standardised concept activations: a sparse ground-truth class→concept matrix,
correlated (low-rank) nuisance variation and noise, z-scored with training statistics.

Usage::

    python benchmarks/final_layer.py            # n=4000/2000, d=400, K=30 (a few minutes on 2 cores)
    python benchmarks/final_layer.py --quick    # small problem, seconds
    python benchmarks/final_layer.py --json results.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dance.model.final_layer import elastic_net_objective, fit_elastic_net_path, lambda_max


@dataclass
class SolverResult:
    """One solver's outcome on the benchmark problem."""

    solver: str
    seconds: float
    objective: float
    test_accuracy: float
    train_accuracy: float
    nonzero: int
    budget: str
    note: str = ""


def make_problem(
    n_train: int, n_test: int, d: int, n_classes: int, seed: int, concepts_per_class: int = 12, rank: int = 16
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic standardised concept activations with a sparse class→concept ground truth.

    Each class switches on ``concepts_per_class`` concepts with random strengths; every sample adds a
    low-rank correlated nuisance term (concepts co-activate, as CLIP-style similarities do) and isotropic
    noise.  Features are z-scored with training statistics.  Returns float32 features and int64 labels.
    """
    rng = np.random.default_rng(seed)
    M = np.zeros((n_classes, d))
    for k in range(n_classes):
        idx = rng.choice(d, size=min(concepts_per_class, d), replace=False)
        M[k, idx] = rng.uniform(0.5, 1.5, size=idx.size)
    loadings = rng.normal(0.0, 0.5, (rank, d))

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, n_classes, n)
        z = M[y] + rng.normal(0.0, 1.0, (n, rank)) @ loadings + rng.normal(0.0, 1.0, (n, d))
        return z, y

    X_tr, y_tr = sample(n_train)
    X_te, y_te = sample(n_test)
    mu, sd = X_tr.mean(0), X_tr.std(0)
    sd[sd == 0] = 1.0
    return (
        ((X_tr - mu) / sd).astype(np.float32),
        y_tr.astype(np.int64),
        ((X_te - mu) / sd).astype(np.float32),
        y_te.astype(np.int64),
    )


def _accuracy(X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray) -> float:
    return float(((X.astype(np.float64) @ W.T + b).argmax(1) == y).mean())


def _summarise(
    name: str,
    seconds: float,
    W: Any,
    b: Any,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    lam: float,
    alpha: float,
    budget: str,
    note: str = "",
) -> SolverResult:
    X_tr, y_tr, X_te, y_te = data
    W_np = np.asarray(W, dtype=np.float64)
    b_np = np.asarray(b, dtype=np.float64)
    return SolverResult(
        solver=name,
        seconds=seconds,
        objective=elastic_net_objective(X_tr, y_tr, W_np, b_np, lam, alpha),
        test_accuracy=_accuracy(X_te, y_te, W_np, b_np),
        train_accuracy=_accuracy(X_tr, y_tr, W_np, b_np),
        nonzero=int(np.count_nonzero(W_np)),
        budget=budget,
        note=note,
    )


def run_ours(
    data: tuple, n_classes: int, lam: float, alpha: float, n_lambdas: int, tol: float
) -> SolverResult:
    """Our full-batch FISTA path."""
    X_tr, y_tr, _, _ = data
    t0 = time.perf_counter()
    res = fit_elastic_net_path(X_tr, y_tr, n_classes, lam=lam, alpha=alpha, n_lambdas=n_lambdas, tol=tol)
    seconds = time.perf_counter() - t0
    iters = sum(p.iterations for p in res.path)
    return _summarise(
        "ours (FISTA path)",
        seconds,
        res.W.numpy(),
        res.b.numpy(),
        data,
        lam,
        alpha,
        budget=f"tol={tol:g}, max_iter=2000/λ",
        note=f"{iters} iterations over {len(res.path)} λ, converged={res.converged}",
    )


def run_glm_saga(
    data: tuple,
    n_classes: int,
    lam: float,
    alpha: float,
    n_lambdas: int,
    epochs: int,
    lr: float,
    batch_size: int,
    tol: float,
    seed: int,
    verbose: bool,
) -> SolverResult:
    """glm-saga over the same λ path (see the module docstring for the λ mapping)."""
    from glm_saga.elasticnet import IndexedTensorDataset, glm_saga

    X_tr, y_tr, _, _ = data
    n, d = X_tr.shape
    lam_hi = lambda_max(X_tr, y_tr, n_classes, alpha)
    k = n_lambdas if lam < lam_hi and n_lambdas > 1 else 1
    epsilon = lam / lam_hi if k > 1 else 1.0
    max_reg = alpha * (lam_hi if k > 1 else lam)  # glm-saga divides this by alpha
    metadata = {
        "max_reg": {"nongrouped": max_reg, "group": max_reg},
        "X": {"num_examples": n},
        "y": {"num_classes": n_classes},
    }
    torch.manual_seed(seed)
    ds = IndexedTensorDataset(torch.from_numpy(X_tr), torch.from_numpy(y_tr))
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, generator=gen)
    linear = torch.nn.Linear(d, n_classes)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
    sink = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = glm_saga(
            linear,
            loader,
            lr,
            epochs,
            alpha,
            epsilon=epsilon,
            k=k,
            do_zero=False,
            metadata=metadata,
            n_ex=n,
            n_classes=n_classes,
            tol=tol,
        )
    seconds = time.perf_counter() - t0
    last = out["path"][-1]
    lam_end = float(last["lam"])
    log = sink.getvalue()
    if verbose:
        print(log, end="")
    unconverged = log.count("did not converge")
    return _summarise(
        f"glm-saga lr={lr:g}",
        seconds,
        last["weight"].numpy(),
        last["bias"].numpy(),
        data,
        lam,
        alpha,
        budget=f"{epochs} epochs/λ, lr={lr:g}, batch={batch_size}, tol={tol:g}",
        note=f"path end λ={lam_end:.3g}; {unconverged}/{k} λ hit the epoch budget",
    )


def run_sklearn(data: tuple, lam: float, alpha: float, max_iter: int, tol: float, seed: int) -> SolverResult:
    """scikit-learn saga at the target λ (C = 1 / (n λ), l1_ratio = α), cold start."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    X_tr, y_tr, _, _ = data
    n = X_tr.shape[0]
    clf = LogisticRegression(
        C=1.0 / (n * lam), l1_ratio=alpha, solver="saga", max_iter=max_iter, tol=tol, random_state=seed
    )
    X64 = X_tr.astype(np.float64)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X64, y_tr)
    seconds = time.perf_counter() - t0
    n_iter = int(np.max(clf.n_iter_))
    return _summarise(
        "sklearn saga",
        seconds,
        clf.coef_,
        clf.intercept_,
        data,
        lam,
        alpha,
        budget=f"max_iter={max_iter} epochs, tol={tol:g}",
        note=f"{n_iter} epochs{' (budget hit)' if n_iter >= max_iter else ''}",
    )


def _table(results: list[SolverResult]) -> str:
    ours = results[0]
    best = min(r.objective for r in results)
    head = (
        f"{'solver':<20} {'time [s]':>9} {'x ours':>7} {'objective':>12} {'- best':>9} "
        f"{'test acc':>9} {'nnz W':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.solver:<20} {r.seconds:>9.2f} {r.seconds / ours.seconds:>7.1f} {r.objective:>12.6f} "
            f"{r.objective - best:>9.2e} {r.test_accuracy:>9.4f} {r.nonzero:>7d}"
        )
    lines.append("")
    for r in results:
        lines.append(f"{r.solver:<20} budget: {r.budget}; {r.note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small problem and budgets (seconds)")
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--concepts", type=int, default=400, help="d, number of concepts")
    p.add_argument("--classes", type=int, default=30, help="K, number of classes")
    p.add_argument("--lam", type=float, default=7e-4)
    p.add_argument("--alpha", type=float, default=0.99)
    p.add_argument("--n-lambdas", type=int, default=20)
    p.add_argument("--tol", type=float, default=1e-6, help="our solver's tolerance")
    p.add_argument(
        "--glm-epochs", type=int, default=None, help="glm-saga epochs per λ (default 40; quick 20)"
    )
    p.add_argument(
        "--glm-lr",
        type=float,
        nargs="+",
        default=[0.1, 4.0],
        help="glm-saga step size(s), one run each: 0.1 as in LF-CBM/DANCE, 4.0 best of {1, 2, 4, 8} here",
    )
    p.add_argument("--glm-batch-size", type=int, default=256)
    p.add_argument("--glm-tol", type=float, default=1e-4, help="glm-saga tol (its default)")
    p.add_argument(
        "--sk-max-iter", type=int, default=None, help="sklearn saga epochs (default 500; quick 200)"
    )
    p.add_argument("--sk-tol", type=float, default=1e-6)
    p.add_argument("--skip-glm", action="store_true")
    p.add_argument("--skip-sklearn", action="store_true")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads for all solvers (default 1: sklearn saga is single-threaded, and "
        "OpenMP threads on a busy machine can be slower than one)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="show glm-saga's own log")
    p.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    args = p.parse_args(argv)

    if args.quick:
        args.n_train, args.n_test, args.concepts, args.classes = 1000, 500, 100, 10
    glm_epochs = args.glm_epochs if args.glm_epochs is not None else (20 if args.quick else 40)
    sk_max_iter = args.sk_max_iter if args.sk_max_iter is not None else (200 if args.quick else 500)
    torch.set_num_threads(args.threads)

    data = make_problem(args.n_train, args.n_test, args.concepts, args.classes, args.seed)
    lam_hi = lambda_max(data[0], data[1], args.classes, args.alpha)
    print(
        f"problem: n_train={args.n_train} n_test={args.n_test} d={args.concepts} K={args.classes} "
        f"λ={args.lam:g} α={args.alpha:g} λ_max={lam_hi:.4g} path={args.n_lambdas} λ; "
        f"torch threads={torch.get_num_threads()}",
        flush=True,
    )

    results = [run_ours(data, args.classes, args.lam, args.alpha, args.n_lambdas, args.tol)]
    print(f"  ours done in {results[-1].seconds:.2f}s", flush=True)
    for lr in [] if args.skip_glm else args.glm_lr:
        results.append(
            run_glm_saga(
                data,
                args.classes,
                args.lam,
                args.alpha,
                args.n_lambdas,
                glm_epochs,
                lr,
                args.glm_batch_size,
                args.glm_tol,
                args.seed,
                args.verbose,
            )
        )
        print(f"  glm-saga (lr={lr:g}) done in {results[-1].seconds:.2f}s", flush=True)
    if not args.skip_sklearn:
        results.append(run_sklearn(data, args.lam, args.alpha, sk_max_iter, args.sk_tol, args.seed))
        print(f"  sklearn done in {results[-1].seconds:.2f}s", flush=True)

    print()
    print(_table(results))

    if args.json is not None:
        payload = {
            "problem": {
                "n_train": args.n_train,
                "n_test": args.n_test,
                "d": args.concepts,
                "K": args.classes,
                "lam": args.lam,
                "alpha": args.alpha,
                "lambda_max": lam_hi,
                "n_lambdas": args.n_lambdas,
                "seed": args.seed,
            },
            "environment": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "torch_threads": torch.get_num_threads(),
                "machine": platform.machine(),
            },
            "results": [asdict(r) | {"time_ratio_vs_ours": r.seconds / results[0].seconds} for r in results],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
