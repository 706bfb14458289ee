"""The outer-product lesson's example scripts run in their --smoke mode and keep their promises.

Each script runs once per module in a subprocess (``sys.executable``, ``MPLBACKEND=Agg``), from
an empty working directory with ``--out`` pointing elsewhere; the tests read the ``key=value``
lines it prints and the PNGs it writes.
"""

from __future__ import annotations

import pytest
from example_runs import EXAMPLES, PNG_MAGIC, Run, finish, start_script

# script -> the PNGs it promises to write under --out
SCRIPTS = {
    "per_sample_gradients": ["per_sample_gradients.png"],
    "lora_finetune": ["lora_finetune.png"],
    "attention": ["attention.png"],
    "svd_low_rank": ["svd_low_rank_error.png", "svd_low_rank_layer.png"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every script's --smoke run (and attention's without torch), started together."""
    base = tmp_path_factory.mktemp("examples")
    started = {name: start_script(base / name, name) for name in SCRIPTS}
    started["attention-no-torch"] = start_script(
        base / "attention-no-torch", "attention", hide_torch=True
    )
    started["per_sample_gradients-again"] = start_script(
        base / "per_sample_gradients-again", "per_sample_gradients"
    )
    finished = {name: finish(s) for name, s in started.items()}

    def get(name: str) -> Run:
        run = finished[name]
        assert run.returncode == 0, f"{name} failed:\n{run.stdout}\n{run.stderr}"
        return run

    return get


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_exits_0_and_writes_its_pngs_under_out_only(runs, name):
    run = runs(name)
    for png in SCRIPTS[name]:
        path = run.out / png
        assert path.is_file(), f"{name} did not write {png}"
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert any(line["wrote"].endswith(png) for line in run.rows("wrote"))
    assert sorted(p.name for p in run.out.iterdir()) == sorted(SCRIPTS[name])
    assert list(run.cwd.iterdir()) == [], f"{name} wrote into its working directory"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_has_a_docstring_a_main_and_a_smoke_mode(name):
    source = (EXAMPLES / f"{name}.py").read_text()
    assert source.startswith('"""'), f"{name} has no module docstring"
    assert f"python examples/{name}.py" in source.split('"""')[1]  # says how to run it
    assert "def main(argv=None) -> int:" in source
    assert '"--smoke"' in source and '"--out"' in source
    assert "raise SystemExit(main())" in source


# ----------------------------------------------------------------------- per_sample_gradients


def test_a_second_run_prints_the_same_numbers(runs):
    """Seeded: two runs differ only in their timings and output paths."""

    def numbers(run: Run) -> list[str]:
        return [
            line for line in run.stdout.splitlines() if not line.startswith(("seconds=", "wrote="))
        ]

    first, second = runs("per_sample_gradients"), runs("per_sample_gradients-again")
    assert numbers(first) == numbers(second)
    assert len(numbers(first)) > 5


def test_per_sample_norm_shortcut_equals_the_materialised_norms(runs):
    run = runs("per_sample_gradients")
    # ||delta_i|| ||x_i|| (norms_only=True) against ||grad_sample[i]||_F, in float64.
    assert run.number("norm_shortcut_max_abs_diff") < 1e-12
    assert run.number("norm_by_hand_max_abs_diff") < 1e-12
    assert run.number("largest_per_sample_norm") > 0.1  # the norms compared are not all ~0
    assert run.value("every_grad_sample_rank_one") == "True"
    # Clipping from the norms alone plus one reweighted backward = the materialised clipped sum.
    assert run.number("ghost_clipping_max_abs_diff") < 1e-12


def test_dp_sgd_learns_and_costs_some_accuracy_against_sgd(runs):
    run = runs("per_sample_gradients")
    sgd, dpsgd = run.number("sgd_test_accuracy"), run.number("dpsgd_test_accuracy")
    assert sgd >= 0.85
    assert dpsgd >= 0.75  # clipped and noisy, but still learns (chance is 0.5)
    assert dpsgd <= sgd + 0.02
    assert 0 < run.number("clipped_fraction_last_epoch") < 1  # clipping actually happened


# ----------------------------------------------------------------------- lora_finetune


def test_lora_update_has_exactly_rank_nonzero_singular_values(runs):
    run = runs("lora_finetune")
    rows = run.rows("nonzero_singular_values")
    assert {int(row["lora_rank"]) for row in rows} == {1, 2, 4}
    assert len(rows) == 6  # three ranks, two LoRALinear layers each
    for row in rows:
        assert int(row["nonzero_singular_values"]) == int(row["lora_rank"]), row
    assert run.number("outer_sum_max_abs_diff") < 1e-12  # B A = sum_r outer(B[:, r], A[r])
    assert run.number("merged_weight_max_abs_diff") < 1e-5  # merged_weight() = W + B A (float32)


def test_lora_trains_a_fraction_of_the_parameters_and_adapts(runs):
    run = runs("lora_finetune")
    before = run.number("before_adaptation_rotated_test_accuracy")
    assert run.number("pretrained_test_accuracy") >= 0.85
    assert before < 0.3  # the rotated task is new to the pretrained model
    n_full = 64 * 128 + 128 + 128 * 10 + 10  # every weight and bias of the 64-128-10 MLP
    assert run.number("full_finetune_trainable_params") == n_full
    assert run.number("full_finetune_test_accuracy") > 0.8
    rows = [row for row in run.rows("trainable_params") if "lora_rank" in row]
    assert len(rows) == 3
    for row in rows:
        rank = int(row["lora_rank"])
        # A (rank, in) and B (out, rank) for the 64 -> 128 and the 128 -> 10 layer.
        assert int(row["trainable_params"]) == rank * (64 + 128) + rank * (128 + 10)
        assert float(row["test_accuracy"]) > before + 0.1, row


# ----------------------------------------------------------------------- attention


def test_qk_is_the_sum_of_outer_products_of_columns(runs):
    run = runs("attention")
    assert run.number("qk_outer_sum_max_abs_diff") < 1e-12
    assert run.number("qk_outer_sum_grad_max_abs_diff") < 1e-12
    assert run.value("outer_product_term_ranks") == "1,1,1,1"  # d_head = 4 rank-1 terms
    assert run.value("attention_rows_sum_to_one") == "True"
    assert run.value("gradcheck") == "passed"


def test_attention_gradients_agree_with_torch(runs, torch_module):
    run = runs("attention")
    assert run.value("torch_check") == "agree"
    for name in ("output", "grad_X", "grad_Wq", "grad_Wk", "grad_Wv"):
        assert run.number(f"torch_max_abs_diff_{name}") < 1e-10


def test_attention_without_torch_says_so_and_still_checks_gradients(runs):
    run = runs("attention-no-torch")
    assert "torch is not installed" in run.stdout
    assert run.value("torch_check") == "skipped"
    assert run.value("gradcheck") == "passed"
    assert run.number("qk_outer_sum_max_abs_diff") < 1e-12


# ----------------------------------------------------------------------- svd_low_rank


def test_svd_error_equals_eckart_young(runs):
    run = runs("svd_low_rank")
    assert run.number("eckart_young_frobenius_max_abs_diff") < 1e-9
    assert run.number("eckart_young_spectral_max_abs_diff") < 1e-9
    assert run.value("random_directions_never_better") == "True"
    for row in run.rows("frobenius_error"):
        assert float(row["frobenius_error"]) == pytest.approx(float(row["eckart_young"]))
        assert float(row["random_directions"]) > float(row["frobenius_error"])


def test_compressed_layer_keeps_accuracy_as_k_grows(runs):
    run = runs("svd_low_rank")
    full = run.number("uncompressed_test_accuracy")
    assert full >= 0.85
    rows = {int(row["layer_k"]): row for row in run.rows("layer_k")}
    assert sorted(rows) == [1, 2, 4, 8, 16, 32, 64]
    acc = {k: float(row["test_accuracy"]) for k, row in rows.items()}
    for k, row in rows.items():
        assert int(row["weight_params"]) == k * (64 + 128)
        # The two thin layers' product is as far from W as Eckart-Young says (float32 factors).
        assert float(row["relative_weight_error"]) == pytest.approx(
            float(row["eckart_young"]), abs=2e-4
        )
    assert acc[64] == pytest.approx(full, abs=0.01)  # every term: the same layer
    assert run.number("full_rank_output_max_abs_diff") < 1e-4  # float32 round-off
    assert acc[32] >= full - 0.05
    assert acc[1] < acc[16]  # one outer product is not enough
