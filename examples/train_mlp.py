"""Train a small MLP with minigrad and watch it learn.

    python examples/train_mlp.py                    # 3-class spirals, a few seconds
    python examples/train_mlp.py --dataset digits   # scikit-learn's bundled 8x8 digits
    python examples/train_mlp.py --compare-torch    # a PyTorch twin: same weights, same batches
    python examples/train_mlp.py --smoke            # a shorter run (seconds), for the tests

Every dense layer in the model is an ``nn.Linear``, whose backward computes the weight
gradient as ``delta^T X``: the sum over the batch of one outer product ``delta_b x_b^T`` per
sample. Nothing else is needed to train a classifier.

Prints ``train_accuracy=...`` and ``test_accuracy=...`` (the test split is never trained on);
on digits also ``sklearn_test_accuracy=...``, scikit-learn's ``MLPClassifier`` on the same
split for reference; with ``--compare-torch`` (float64 on both sides) ``max_loss_diff=...``,
the largest difference between the two libraries' losses over the run. Writes
``train_mlp_<dataset>.png`` under ``--out`` (default ``runs/``): the decision boundary (2-D
datasets) or the confusion matrix (digits) beside the loss curve.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import data, nn, optim

# Defaults per dataset, tuned so that each run takes seconds on a laptop. ``lr`` is for Adam.
DEFAULTS = {
    "spirals": dict(n_samples=1500, hidden="64,64", epochs=50, lr=1e-2, batch_size=32),
    "moons": dict(n_samples=500, hidden="32,32", epochs=60, lr=1e-2, batch_size=32),
    "circles": dict(n_samples=500, hidden="32,32", epochs=60, lr=1e-2, batch_size=32),
    "xor": dict(n_samples=500, hidden="16,16", epochs=60, lr=1e-2, batch_size=32),
    "blobs": dict(n_samples=500, hidden="16", epochs=30, lr=1e-2, batch_size=32),
    "digits": dict(n_samples=None, hidden="128", epochs=30, lr=1e-2, batch_size=32),
}
SMOKE = dict(epochs=15, n_samples=600)  # --smoke: a quick run that still learns something
LR_SCALE = {"adam": 1.0, "adamw": 1.0, "rmsprop": 0.3, "sgd": 10.0}  # SGD wants a larger step


def load_dataset(name: str, n_samples: int | None, seed: int):
    """(X, y) as float32 features and int64 labels; nothing is downloaded."""
    if name == "digits":
        from sklearn.datasets import load_digits  # ships inside scikit-learn

        digits = load_digits()
        # Pixels are ink levels 0..16: dividing by 16 puts them all on one [0, 1] scale.
        return (digits.data / 16).astype(np.float32), digits.target.astype(np.int64)
    make = {
        "spirals": data.make_spirals,
        "moons": data.make_moons,
        "circles": data.make_circles,
        "xor": data.make_xor,
        "blobs": data.make_blobs,
    }[name]
    return make(n_samples, seed=seed)


def make_mlp(sizes: list[int], dtype) -> nn.Sequential:
    """Linear -> ReLU -> ... -> Linear: sizes [in, h1, ..., out]."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def make_optimizer(name: str, params, lr: float, lib=optim, **extra):
    """The same optimizer from minigrad's ``optim`` or from ``torch.optim`` (``lib``)."""
    if name == "sgd":
        return lib.SGD(params, lr=lr, momentum=0.9, **extra)
    return {"adam": lib.Adam, "adamw": lib.AdamW, "rmsprop": lib.RMSprop}[name](
        params, lr=lr, **extra
    )


def predict(model: nn.Module, X: np.ndarray) -> np.ndarray:
    with mg.no_grad():
        return model(mg.tensor(X)).argmax(dim=1).numpy()


def torch_twin(model: nn.Sequential):
    """A torch.nn.Sequential of the same shape, starting from the same weights (float64)."""
    import torch

    layers = []
    for layer in model:
        if isinstance(layer, nn.Linear):
            layers.append(torch.nn.Linear(layer.in_features, layer.out_features))
        else:
            layers.append(torch.nn.ReLU())
    twin = torch.nn.Sequential(*layers).double()
    # The state-dict keys are the same in both libraries ("0.weight", "0.bias", "2.weight"...).
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return twin


def plot(path, model, X, y, X_test, y_test, mean, std, losses, steps_per_epoch, title):
    """Left: the decision boundary (2-D) or the confusion matrix; right: the loss curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_classes = int(y.max()) + 1
    fig, (ax_left, ax_loss) = plt.subplots(1, 2, figsize=(10, 4.2))
    if X.shape[1] == 2:
        # Classify every point of a grid; the colours are the regions the network learned.
        lo, hi = X.min(0) - 0.3 * X.std(0), X.max(0) + 0.3 * X.std(0)
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 250), np.linspace(lo[1], hi[1], 250))
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
        regions = predict(model, (grid - mean) / std).reshape(gx.shape)
        ax_left.contourf(
            gx,
            gy,
            regions,
            levels=np.arange(n_classes + 1) - 0.5,
            cmap="tab10",
            vmin=0,
            vmax=9,
            alpha=0.3,
        )
        ax_left.scatter(X[:, 0], X[:, 1], c=y, cmap="tab10", vmin=0, vmax=9, s=6, alpha=0.5)
        ax_left.scatter(
            X_test[:, 0],
            X_test[:, 1],
            c=y_test,
            cmap="tab10",
            vmin=0,
            vmax=9,
            s=14,
            edgecolors="k",
            linewidths=0.5,
            label="test points",
        )
        ax_left.legend(loc="upper right", fontsize=8)
        ax_left.set_title("decision regions (test points outlined)")
        ax_left.set_aspect("equal", adjustable="box")
    else:
        # Rows: the true digit; columns: the predicted one. The diagonal is what it got right.
        pred = predict(model, (X_test - mean) / std)
        matrix = np.zeros((n_classes, n_classes), dtype=int)
        np.add.at(matrix, (y_test, pred), 1)
        ax_left.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                color = "white" if count > matrix.max() / 2 else "black"
                ax_left.text(j, i, count, ha="center", va="center", fontsize=8, color=color)
        ax_left.set_xticks(range(n_classes))
        ax_left.set_yticks(range(n_classes))
        ax_left.set_xlabel("predicted")
        ax_left.set_ylabel("true")
        ax_left.set_title("confusion matrix on the test split")
    steps = np.arange(1, len(losses) + 1) / steps_per_epoch
    ax_loss.plot(steps, losses, lw=0.5, alpha=0.4, label="each batch")
    per_epoch = np.reshape(losses, (-1, steps_per_epoch)).mean(axis=1)
    ax_loss.plot(np.arange(1, len(per_epoch) + 1), per_epoch, lw=2, label="epoch mean")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss (train)")
    ax_loss.set_title("loss")
    ax_loss.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="spirals", choices=sorted(DEFAULTS))
    parser.add_argument("--hidden", help='hidden layer sizes, e.g. "64,64" ("" for a linear model)')
    parser.add_argument("--epochs", type=positive_int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--optimizer", default="adam", choices=["sgd", "adam", "adamw", "rmsprop"])
    parser.add_argument("--batch-size", type=positive_int)
    parser.add_argument("--n-samples", type=positive_int, help="size of a generated 2-D dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--compare-torch",
        action="store_true",
        help="train a PyTorch twin alongside (float64) and compare the losses",
    )
    parser.add_argument("--smoke", action="store_true", help="a run of a few seconds")
    parser.add_argument("--out", default="runs", help="directory for the figure")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Train, evaluate and plot; returns the accuracies (and the torch comparison)."""
    # Fill in what was not given: the dataset's defaults, cut down in --smoke mode.
    settings = dict(DEFAULTS[args.dataset])
    if args.smoke:
        settings["epochs"] = SMOKE["epochs"]
        if settings["n_samples"] is not None:
            settings["n_samples"] = SMOKE["n_samples"]
    settings["lr"] *= LR_SCALE[args.optimizer]
    for key in settings:
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    hidden = [int(h) for h in str(settings["hidden"]).split(",") if h]

    # Data: a held-out test split, and 2-D inputs standardised with the training split's
    # statistics. Digit pixels already share one scale; standardising each pixel on its own
    # would blow up the rarely inked ones at the border (it tested worse across seeds).
    X, y = load_dataset(args.dataset, settings["n_samples"], args.seed)
    X_train, X_test, y_train, y_test = data.train_test_split(X, y, test_size=0.25, seed=args.seed)
    if args.dataset == "digits":
        mean, std = np.zeros(X.shape[1], np.float32), np.ones(X.shape[1], np.float32)
    else:
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    Xs_train, Xs_test = (X_train - mean) / std, (X_test - mean) / std
    n_classes = int(y.max()) + 1

    # The comparison with torch runs in float64, where both libraries should agree to round-off.
    dtype = mg.float64 if args.compare_torch else mg.float32
    if args.compare_torch:
        Xs_train, Xs_test = Xs_train.astype(np.float64), Xs_test.astype(np.float64)
    mg.manual_seed(args.seed)
    model = make_mlp([X.shape[1], *hidden, n_classes], dtype)
    optimizer = make_optimizer(args.optimizer, model.parameters(), settings["lr"])
    # The step size follows a cosine from lr down to 0 over the run: a calm end to training.
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings["epochs"])
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"dataset={args.dataset} train={len(y_train)} test={len(y_test)} "
        f"features={X.shape[1]} classes={n_classes}"
    )
    print(
        f"model={[X.shape[1], *hidden, n_classes]} parameters={n_params} "
        f"optimizer={args.optimizer} lr={settings['lr']:g} epochs={settings['epochs']} "
        f"batch_size={settings['batch_size']}"
    )

    if args.compare_torch:
        import torch  # checked in main()

        # One thread: these matrices are tiny, and torch's worker threads spinning beside
        # numpy's can make each step a hundred times slower on a busy machine.
        torch.set_num_threads(1)
        twin = torch_twin(model)
        twin_optimizer = make_optimizer(
            args.optimizer, twin.parameters(), settings["lr"], lib=torch.optim, foreach=False
        )
        twin_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            twin_optimizer, T_max=settings["epochs"]
        )
        loss_diffs = []

    from tqdm import tqdm

    losses = []
    batch_order = np.random.default_rng(args.seed)  # a new, reproducible order every epoch
    start = time.perf_counter()
    steps_per_epoch = -(-len(y_train) // settings["batch_size"])  # the last batch may be short
    bar = tqdm(range(settings["epochs"]), desc="training", unit="epoch")
    for _ in bar:
        for xb, yb in data.batches(Xs_train, y_train, settings["batch_size"], seed=batch_order):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb))
            loss.backward()  # every Linear's dW = delta^T X happens in here
            optimizer.step()
            losses.append(loss.item())

            if args.compare_torch:  # the same batch through the twin
                twin_optimizer.zero_grad()
                twin_loss = torch.nn.functional.cross_entropy(
                    twin(torch.from_numpy(xb)), torch.from_numpy(yb)
                )
                twin_loss.backward()
                twin_optimizer.step()
                loss_diffs.append(abs(loss.item() - twin_loss.item()))
        scheduler.step()
        if args.compare_torch:
            twin_scheduler.step()
        bar.set_postfix(loss=f"{np.mean(losses[-steps_per_epoch:]):.4f}")
    bar.close()
    seconds = time.perf_counter() - start

    results = {
        "train_accuracy": float(np.mean(predict(model, Xs_train) == y_train)),
        "test_accuracy": float(np.mean(predict(model, Xs_test) == y_test)),
    }
    last_loss = np.mean(losses[-steps_per_epoch:])
    print(f"training took {seconds:.1f} s; the last epoch's mean loss was {last_loss:.4g}")
    print(f"train_accuracy={results['train_accuracy']:.4f}")
    print(f"test_accuracy={results['test_accuracy']:.4f}")

    if args.compare_torch:
        results["max_loss_diff"] = max(loss_diffs)
        print(f"torch twin: {len(loss_diffs)} steps from the same weights on the same batches")
        print(f"max_loss_diff={results['max_loss_diff']:.3e}")

    if args.dataset == "digits":
        # For reference: scikit-learn's own MLP (Adam, with L2 decay alpha=1e-4) on the same split.
        # It gets float64 inputs and one BLAS thread: on matrices this small, float32 inputs or
        # BLAS threads competing for a busy CPU each made it several times slower when measured.
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
        from threadpoolctl import threadpool_limits  # installed with scikit-learn

        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            reference = MLPClassifier(
                hidden_layer_sizes=tuple(hidden),
                max_iter=20 if args.smoke else 200,
                random_state=args.seed,
            ).fit(Xs_train.astype(np.float64), y_train)
        sklearn_accuracy = reference.score(Xs_test.astype(np.float64), y_test)
        results["sklearn_test_accuracy"] = float(sklearn_accuracy)
        print(f"sklearn_test_accuracy={results['sklearn_test_accuracy']:.4f}")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"train_mlp_{args.dataset}.png")
    title = (
        f"minigrad MLP {[X.shape[1], *hidden, n_classes]} on {args.dataset}: "
        f"test accuracy {results['test_accuracy']:.1%}"
    )
    plot(path, model, X_train, y_train, X_test, y_test, mean, std, losses, steps_per_epoch, title)
    print(f"wrote={path}")
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.compare_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("--compare-torch needs PyTorch: pip install torch", file=sys.stderr)
            return 2
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
