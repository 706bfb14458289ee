"""Toy datasets generated in the package (nothing is downloaded), a split, and batching.

Every generator takes ``n_samples`` and a ``seed`` and returns ``(X, y)``: ``X`` float32 of
shape (n_samples, n_features), ``y`` int64 class labels of shape (n_samples,). The same seed
always gives the same data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

Dataset = tuple[np.ndarray, np.ndarray]


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _counts(n_samples: int, n_classes: int) -> list[int]:
    """Split n_samples into n_classes nearly equal parts (the first ones get the remainder)."""
    if n_samples < 0 or n_classes < 1:
        raise ValueError(
            f"need n_samples >= 0 and n_classes >= 1, got n_samples={n_samples}, "
            f"n_classes={n_classes}"
        )
    base, extra = divmod(n_samples, n_classes)
    return [base + (1 if k < extra else 0) for k in range(n_classes)]


def _finish(
    parts_x: list[np.ndarray], parts_y: list[np.ndarray], rng: np.random.Generator
) -> Dataset:
    X = np.concatenate(parts_x).astype(np.float32)
    y = np.concatenate(parts_y).astype(np.int64)
    order = rng.permutation(len(y))  # classes interleaved, not in blocks
    return X[order], y[order]


def make_moons(n_samples: int = 200, *, noise: float = 0.1, seed: Any = 0) -> Dataset:
    """Two interleaving half circles (2 classes, 2 features)."""
    rng = _rng(seed)
    n_out, n_in = _counts(n_samples, 2)
    t_out = rng.uniform(0, np.pi, n_out)
    t_in = rng.uniform(0, np.pi, n_in)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], axis=1)
    X = [
        outer + noise * rng.standard_normal(outer.shape),
        inner + noise * rng.standard_normal(inner.shape),
    ]
    return _finish(X, [np.zeros(n_out), np.ones(n_in)], rng)


def make_circles(
    n_samples: int = 200, *, noise: float = 0.05, factor: float = 0.5, seed: Any = 0
) -> Dataset:
    """A small circle (class 1) inside a large one (class 0): 2 features."""
    if not 0 < factor < 1:
        raise ValueError(f"make_circles: factor must be in (0, 1), got {factor}")
    rng = _rng(seed)
    n_out, n_in = _counts(n_samples, 2)
    t_out = rng.uniform(0, 2 * np.pi, n_out)
    t_in = rng.uniform(0, 2 * np.pi, n_in)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = factor * np.stack([np.cos(t_in), np.sin(t_in)], axis=1)
    X = [
        outer + noise * rng.standard_normal(outer.shape),
        inner + noise * rng.standard_normal(inner.shape),
    ]
    return _finish(X, [np.zeros(n_out), np.ones(n_in)], rng)


def make_spirals(
    n_samples: int = 300,
    *,
    n_classes: int = 3,
    noise: float = 0.2,
    turns: float = 1.0,
    seed: Any = 0,
) -> Dataset:
    """``n_classes`` interleaved spiral arms (2 features): hard for a linear model.

    Arm k has points at radius r in [0, 1] and angle ``2 pi (turns r + k / n_classes)``, plus
    Gaussian noise on the angle.
    """
    rng = _rng(seed)
    parts_x, parts_y = [], []
    for k, count in enumerate(_counts(n_samples, n_classes)):
        r = np.linspace(0.05, 1.0, count)
        angle = 2 * np.pi * (turns * r + k / n_classes) + noise * rng.standard_normal(count)
        parts_x.append(np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1))
        parts_y.append(np.full(count, k))
    return _finish(parts_x, parts_y, rng)


def make_xor(n_samples: int = 200, *, noise: float = 0.1, seed: Any = 0) -> Dataset:
    """Points around the four corners (+-1, +-1); the label is 1 where the signs differ."""
    rng = _rng(seed)
    corners = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=np.float64)
    labels = np.array([0, 0, 1, 1])
    which = np.concatenate([np.full(c, i) for i, c in enumerate(_counts(n_samples, 4))])
    X = corners[which] + noise * rng.standard_normal((n_samples, 2))
    return _finish([X], [labels[which]], rng)


def make_blobs(
    n_samples: int = 200,
    *,
    n_classes: int = 3,
    n_features: int = 2,
    spread: float = 1.0,
    box: float = 10.0,
    seed: Any = 0,
) -> Dataset:
    """Gaussian blobs (std ``spread``) around ``n_classes`` centres drawn in [-box, box]."""
    rng = _rng(seed)
    centres = rng.uniform(-box, box, (n_classes, n_features))
    parts_x, parts_y = [], []
    for k, count in enumerate(_counts(n_samples, n_classes)):
        parts_x.append(centres[k] + spread * rng.standard_normal((count, n_features)))
        parts_y.append(np.full(count, k))
    return _finish(parts_x, parts_y, rng)


def train_test_split(
    X: np.ndarray, y: np.ndarray, *, test_size: float = 0.25, seed: Any = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split into ``X_train, X_test, y_train, y_test``."""
    if len(X) != len(y):
        raise ValueError(f"train_test_split: X has {len(X)} rows but y has {len(y)}")
    if not 0 < test_size < 1:
        raise ValueError(f"train_test_split: test_size must be in (0, 1), got {test_size}")
    order = _rng(seed).permutation(len(y))
    n_test = round(test_size * len(y))
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]


def batches(
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: Any = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(X_batch, y_batch)`` over one epoch; the last batch may be smaller.

    ``seed`` may be an int or a ``numpy.random.Generator`` (pass the same generator every
    epoch to get a new, reproducible order each time).
    """
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
    if len(X) != len(y):
        raise ValueError(f"batches: X has {len(X)} rows but y has {len(y)}")
    order = _rng(seed).permutation(len(y)) if shuffle else np.arange(len(y))
    for start in range(0, len(y), batch_size):
        index = order[start : start + batch_size]
        if drop_last and len(index) < batch_size:
            return
        yield X[index], y[index]
