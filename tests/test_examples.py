"""examples/train_mlp.py and examples/backprop_by_hand.py run and keep their promises.

Each script runs in a subprocess (``sys.executable``, ``MPLBACKEND=Agg``) in its fast mode,
from an empty working directory with ``--out`` pointing elsewhere; all runs start together
once per module. The tests read the ``key=value`` lines a script prints and the PNGs it writes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from example_runs import EXAMPLES, PNG_MAGIC, Run, finish, start_script

# name -> (script, arguments after --smoke, the PNGs it writes under --out, needs torch)
RUNS = {
    "spirals": ("train_mlp", [], ["train_mlp_spirals.png"], False),
    "digits": ("train_mlp", ["--dataset", "digits"], ["train_mlp_digits.png"], False),
    "compare-torch": ("train_mlp", ["--compare-torch"], ["train_mlp_spirals.png"], True),
    "by-hand": (
        "backprop_by_hand",
        [],
        ["backprop_by_hand_fc1.png", "backprop_by_hand_fc2.png"],
        False,
    ),
}
# Thresholds for --smoke mode (the full runs reach >= 97% on spirals and >= 96% on digits).
SMOKE_ACCURACY = {"spirals": 0.9, "digits": 0.9, "compare-torch": 0.9}


def _torch_importable() -> bool:
    return importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every run above, plus the two scripts in an interpreter without torch."""
    base = tmp_path_factory.mktemp("examples")
    started = {}
    for name, (script, args, _, needs_torch) in RUNS.items():
        if needs_torch and not _torch_importable():
            continue  # its test fails (CI) or skips through the torch_module fixture
        started[name] = start_script(base / name, script, args)
    started["by-hand-no-torch"] = start_script(
        base / "by-hand-no-torch", "backprop_by_hand", [], hide_torch=True
    )
    started["compare-torch-no-torch"] = start_script(
        base / "compare-torch-no-torch", "train_mlp", ["--compare-torch"], hide_torch=True
    )
    return {name: finish(s) for name, s in started.items()}


def _ok(runs, name: str) -> Run:
    run = runs[name]
    assert run.returncode == 0, f"{name} failed:\n{run.stdout}\n{run.stderr}"
    return run


@pytest.mark.parametrize("name", list(RUNS))
def test_example_exits_0_and_writes_its_pngs_under_out_only(runs, name, request):
    if RUNS[name][3]:
        request.getfixturevalue("torch_module")
    run = _ok(runs, name)
    pngs = RUNS[name][2]
    for png in pngs:
        path = run.out / png
        assert path.is_file(), f"{name} did not write {png}:\n{run.stdout}"
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert f"wrote={path}" in run.stdout
    assert sorted(p.name for p in run.out.iterdir()) == sorted(pngs)
    assert list(run.cwd.iterdir()) == [], f"{name} wrote into its working directory"


@pytest.mark.parametrize("name", ["spirals", "digits"])
def test_train_mlp_smoke_run_learns(runs, name):
    run = _ok(runs, name)
    assert run.number("train_accuracy") >= SMOKE_ACCURACY[name], run.stdout
    assert run.number("test_accuracy") >= SMOKE_ACCURACY[name], run.stdout
    assert f"dataset={name}" in run.stdout
    assert "loss=" in run.stderr  # the tqdm bar shows the running loss


def test_train_mlp_digits_reports_sklearn_on_the_same_split(runs):
    run = _ok(runs, "digits")
    assert 0.8 <= run.number("sklearn_test_accuracy") <= 1.0, run.stdout
    assert "train=1348 test=449 features=64 classes=10" in run.stdout


def test_train_mlp_torch_twin_has_the_same_losses(runs, torch_module):
    run = _ok(runs, "compare-torch")
    assert run.number("max_loss_diff") < 1e-6, run.stdout
    assert run.number("test_accuracy") >= SMOKE_ACCURACY["compare-torch"]
    assert "steps from the same weights on the same batches" in run.stdout


def test_train_mlp_compare_torch_without_torch_says_so(runs):
    run = runs["compare-torch-no-torch"]
    assert run.returncode == 2
    assert "--compare-torch needs PyTorch" in run.stderr
    assert not run.out.exists()


def test_backprop_by_hand_agrees_with_minigrad_and_torch(runs, torch_module):
    run = _ok(runs, "by-hand")
    assert run.value("minigrad_check") == "agree"
    assert run.value("torch_check") == "agree"
    assert run.number("max_abs_diff_minigrad") < 1e-12
    assert run.number("max_abs_diff_torch") < 1e-12
    assert "AGREEMENT:" in run.stdout and "DISAGREE" not in run.stdout
    # every backward step is printed: the hand steps and the engine's trace
    for step in ("step 1", "step 2", "step 3", "step 4", "np.outer(delta1, x)", "ReluBackward"):
        assert step in run.stdout


def test_backprop_by_hand_without_torch_says_so_and_still_checks_minigrad(runs):
    run = _ok(runs, "by-hand-no-torch")
    assert "torch is not installed" in run.stdout
    assert run.value("torch_check") == "skipped"
    assert run.value("minigrad_check") == "agree"
    assert "AGREEMENT:" in run.stdout


def _load(script: str):
    spec = importlib.util.spec_from_file_location(f"example_{script}", EXAMPLES / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", ["train_mlp", "backprop_by_hand"])
def test_example_has_a_docstring_main_and_smoke_mode(script):
    source = (EXAMPLES / f"{script}.py").read_text()
    assert source.startswith('"""')
    assert f"python examples/{script}.py" in source.split('"""')[1]
    assert "def main(argv=None) -> int:" in source
    assert '"--smoke"' in source and '"--out"' in source
    assert "raise SystemExit(main())" in source


def test_backprop_by_hand_main_returns_0(tmp_path, capsys):
    module = _load("backprop_by_hand")
    assert module.main(["--smoke", "--out", str(tmp_path)]) == 0
    assert "minigrad_check=agree" in capsys.readouterr().out


def test_train_mlp_digits_loader_needs_no_download_and_scales_pixels():
    module = _load("train_mlp")
    X, y = module.load_dataset("digits", None, 0)
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert sorted(np.unique(y).tolist()) == list(range(10))


def test_every_example_is_run_by_some_test():
    # train_mlp and backprop_by_hand run here; the lesson scripts in test_lesson_examples.py;
    # the outer-product visualizer beside the plots it draws, in test_viz.py.
    tests = Path(__file__).resolve().parent
    suites = ["test_examples.py", "test_lesson_examples.py", "test_viz.py"]
    text = "\n".join((tests / name).read_text() for name in suites)
    untested = [s.name for s in sorted(EXAMPLES.glob("*.py")) if s.stem not in text]
    assert not untested, f"examples no test runs: {untested}"
