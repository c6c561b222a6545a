"""The baseline without interpretability: a linear probe on the same frozen features and split.

Multinomial logistic regression (scikit-learn, L2) on standardised features; the regularisation strength is
chosen on the validation split from a small grid (each candidate is fitted on the training split only). Each
fit can take a while on large features, so the grid shows a progress bar (the running stage's reporter).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dance.progress import Reporter, current_reporter

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


@dataclass
class LinearProbe:
    C: float
    val_accuracy: float
    pipeline: object

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline.predict(X)

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict(X) == y).mean())


def fit_linear_probe(X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
                     grid: tuple[float, ...] = C_GRID, seed: int = 0, reporter: Reporter | None = None) -> LinearProbe:
    """The probe whose C (of ``grid``) is best on the validation split; progress goes to ``reporter`` (default:
    the running stage's, see :func:`dance.progress.current_reporter`)."""
    best: LinearProbe | None = None
    reporter = reporter or current_reporter()
    task = reporter.task(f"linear probe: {len(grid)} values of C, {X.shape[1]} features", len(grid))
    with warnings.catch_warnings(), task as advance:
        warnings.simplefilter("ignore", ConvergenceWarning)
        for C in grid:
            pipe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
            pipe.fit(X, y)
            acc = float((pipe.predict(X_val) == y_val).mean()) if len(y_val) else 0.0
            if best is None or acc > best.val_accuracy:
                best = LinearProbe(C, acc, pipe)
            advance(1)
    assert best is not None
    return best
