"""Toy datasets: shapes, dtypes, labels, determinism by seed; the split and batching."""

from __future__ import annotations

import numpy as np
import pytest

from minigrad import data

GENERATORS = [
    ("moons", lambda n, s: data.make_moons(n, seed=s), 2, 2),
    ("circles", lambda n, s: data.make_circles(n, seed=s), 2, 2),
    ("spirals3", lambda n, s: data.make_spirals(n, n_classes=3, seed=s), 2, 3),
    ("spirals5", lambda n, s: data.make_spirals(n, n_classes=5, seed=s), 2, 5),
    ("xor", lambda n, s: data.make_xor(n, seed=s), 2, 2),
    ("blobs", lambda n, s: data.make_blobs(n, n_classes=4, n_features=3, seed=s), 3, 4),
]
IDS = [g[0] for g in GENERATORS]


@pytest.mark.parametrize(("name", "make", "n_features", "n_classes"), GENERATORS, ids=IDS)
@pytest.mark.parametrize("n", [0, 1, 7, 101])
def test_generator_shapes_dtypes_and_labels(name, make, n_features, n_classes, n):
    X, y = make(n, 0)
    assert X.shape == (n, n_features) and X.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert set(np.unique(y).tolist()) <= set(range(n_classes))
    if n >= n_classes:
        counts = np.bincount(y, minlength=n_classes)
        assert counts.max() - counts.min() <= 1  # balanced classes


@pytest.mark.parametrize(("name", "make", "n_features", "n_classes"), GENERATORS, ids=IDS)
def test_generator_is_deterministic_by_seed(name, make, n_features, n_classes):
    X1, y1 = make(50, 3)
    X2, y2 = make(50, 3)
    X3, _ = make(50, 4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


def test_xor_labels_follow_the_quadrants():
    X, y = data.make_xor(400, noise=0.05, seed=1)
    np.testing.assert_array_equal(y, (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(np.int64))


def test_circles_inner_class_is_inside():
    X, y = data.make_circles(400, noise=0.0, factor=0.3, seed=0)
    radius = np.linalg.norm(X, axis=1)
    assert radius[y == 1].max() < radius[y == 0].min()


def test_train_test_split_partitions_the_rows():
    X = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = np.arange(20)
    X_tr, X_te, y_tr, y_te = data.train_test_split(X, y, test_size=0.25, seed=0)
    assert len(y_te) == 5 and len(y_tr) == 15
    assert sorted(np.concatenate([y_tr, y_te]).tolist()) == list(range(20))
    np.testing.assert_array_equal(X_tr[:, 0], 2 * y_tr)  # rows stay paired with labels
    np.testing.assert_array_equal(X_te[:, 1], 2 * y_te + 1)
    with pytest.raises(ValueError, match="rows"):
        data.train_test_split(X, y[:3])


def test_batches_cover_each_row_once_with_a_partial_last_batch():
    X = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10)
    got = list(data.batches(X, y, 4, seed=0))
    assert [len(b[1]) for b in got] == [4, 4, 2]
    assert sorted(np.concatenate([b[1] for b in got]).tolist()) == list(range(10))
    assert all(np.array_equal(bx[:, 0], by) for bx, by in got)
    assert [len(b[1]) for b in data.batches(X, y, 4, drop_last=True)] == [4, 4]
    in_order = list(data.batches(X, y, 3, shuffle=False))
    assert in_order[0][1].tolist() == [0, 1, 2]


def test_batches_shuffle_is_reproducible_and_changes_each_epoch_with_a_generator():
    X = np.zeros((8, 1), dtype=np.float32)
    y = np.arange(8)
    first = [b[1].tolist() for b in data.batches(X, y, 8, seed=5)]
    again = [b[1].tolist() for b in data.batches(X, y, 8, seed=5)]
    assert first == again
    rng = np.random.default_rng(0)
    epoch1 = next(data.batches(X, y, 8, seed=rng))[1].tolist()
    epoch2 = next(data.batches(X, y, 8, seed=rng))[1].tolist()
    assert epoch1 != epoch2
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches(X, y, 0))
