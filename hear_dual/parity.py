"""The parity gate, in numpy: the one definition every test, report and CLI command uses.

    passes  <=>  max|a - b| <= tol * max(1, max|ref|)  and  min cosine(a_i, b_i) >= min_cosine
             and timestamps identical
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Agreement:
    max_abs_diff: float
    max_rel_diff: float        # max_abs_diff / max(1, max|ref|)
    min_cosine: float          # over embedding vectors, computed in float64
    passed: bool

    def as_dict(self) -> dict:
        return asdict(self)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(-1, a.shape[-1]).astype(np.float64)
    b = b.reshape(-1, b.shape[-1]).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = (a * b).sum(axis=1)
    both_zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where(both_zero, 1.0, cos)


def agreement(ref, other, tol: float, min_cosine: float) -> Agreement:
    ref, other = np.asarray(ref), np.asarray(other)
    if ref.shape != other.shape:
        raise ValueError(f"cannot compare outputs of shapes {ref.shape} and {other.shape}")
    if ref.size == 0:
        return Agreement(0.0, 0.0, 1.0, True)
    if not (np.isfinite(ref).all() and np.isfinite(other).all()):
        return Agreement(float("inf"), float("inf"), float("nan"), False)
    max_abs = float(np.abs(ref.astype(np.float64) - other.astype(np.float64)).max())
    max_rel = max_abs / max(1.0, float(np.abs(ref).max()))
    min_cos = float(cosine_rows(ref, other).min())
    return Agreement(max_abs, max_rel, min_cos, max_rel <= tol and min_cos >= min_cosine)
