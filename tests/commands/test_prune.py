"""``bayesstruct prune`` on 8x8 digits in smoke mode: the JSON it writes, its files, and bad input."""

import json
import os

import pytest
import torch

from bayesstruct.cli import main
from bayesstruct.prune import decompress

SMOKE = ["--smoke", "--epochs", "2", "--no-progress"]


def run(tmp_path, *argv):
    path = tmp_path / f"r{len(list(tmp_path.glob('r*.json')))}.json"  # a new file per run: --json never overwrites
    assert main(["prune", *argv, *SMOKE, "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_magnitude_json_has_per_layer_and_total_numbers(tmp_path, capsys):
    r = run(tmp_path, "--method", "magnitude", "--amount", "0.75", "--out", str(tmp_path / "out"))
    for key in ("layers", "num_nonzero", "num_weights", "weight_bits", "index_bits", "codebook_bits", "total_bits",
                "total_bytes", "compression_ratio", "test_error", "mdl_bits", "data_bits", "model_bits", "dense_test_error"):
        assert key in r, key
    n = 64 * 300 + 300 * 100 + 100 * 10
    assert r["num_weights"] == n
    # --scope layer (the default): every layer keeps round(0.25 * its size)
    assert [la["num_nonzero"] for la in r["layers"]] == [round(0.25 * 19200), round(0.25 * 30000), round(0.25 * 1000)]
    assert r["num_nonzero"] == sum(la["num_nonzero"] for la in r["layers"])
    assert r["total_bytes"] == (r["total_bits"] + 7) // 8 and r["file_bytes"] is None
    assert r["compression_ratio"] == pytest.approx(r["dense_bytes"] / r["total_bytes"])
    assert r["mdl_bits"] == pytest.approx(r["model_bits"] + r["data_bits"])
    assert 0.0 <= r["test_error"] <= 1.0 and r["config"]["method"] == "magnitude"
    assert json.loads((tmp_path / "out" / "results.json").read_text())["num_nonzero"] == r["num_nonzero"]
    state = torch.load(tmp_path / "out" / "model.pt")
    assert int((state["0.weight"] != 0).sum()) == r["layers"][0]["num_nonzero"]


def test_rounds_reach_the_amount_in_prune_retrain_steps(tmp_path, capsys):
    r = run(tmp_path, "--method", "magnitude", "--amount", "0.75", "--rounds", "2", "--retrain-epochs", "1")
    # rounds keep 0.25^(1/2) = 1/2, then 1/4 of every layer
    assert [la["num_nonzero"] for la in r["layers"]] == [4800, 7500, 250] and r["config"]["rounds"] == 2
    assert "round" in capsys.readouterr().out


def test_deep_compression_writes_a_file_whose_size_is_the_total(tmp_path, capsys):
    out = tmp_path / "dc"
    r = run(tmp_path, "--method", "deep-compression", "--amount", "0.9", "--bits", "4", "--out", str(out))
    path = out / "model.bsc"
    assert r["compressed_file"] == str(path)
    assert r["total_bytes"] == r["file_bytes"] == os.path.getsize(path)
    assert r["model_bits"] == 8 * os.path.getsize(path)
    restored = decompress(path)
    assert int((restored[0].weight != 0).sum()) == r["layers"][0]["num_nonzero"]
    assert len(torch.unique(restored[0].weight)) <= 2**4  # 15 centroids and the pruned zero
    assert main(["decompress", str(path)]) == 0


def test_deep_compression_with_overwrite_replaces_an_earlier_model_bsc(tmp_path, capsys):
    # the command checks --out before any work; compress() itself now refuses an existing file unless overwrite=True
    out = tmp_path / "dc"
    out.mkdir()
    (out / "model.bsc").write_bytes(b"an earlier run")
    with pytest.raises(SystemExit) as exc:
        main(["prune", "--method", "deep-compression", "--amount", "0.9", "--out", str(out), *SMOKE])
    assert exc.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "model.bsc").read_bytes() == b"an earlier run"
    r = run(tmp_path, "--method", "deep-compression", "--amount", "0.9", "--bits", "3", "--finetune-steps", "2",
            "--out", str(out), "--overwrite")
    assert r["file_bytes"] == os.path.getsize(out / "model.bsc") and int((decompress(out / "model.bsc")[0].weight != 0).sum()) > 0


def test_graves_and_lenet5(tmp_path, capsys):
    r = run(tmp_path, "--method", "graves", "--amount", "0.5", "--vi-steps", "5")
    assert r["model_bits_source"] == "kl" and r["model_bits"] > 0
    assert abs(r["num_nonzero"] - 0.5 * r["num_weights"]) <= 1  # the threshold is placed between two distinct values
    r = run(tmp_path, "--method", "obd", "--arch", "lenet5", "--threshold", "1e-6", "--hessian-samples", "16")
    assert r["num_weights"] == 500 + 25000 + 50 * 2 * 2 * 500 + 5000 and r["config"]["arch"] == "lenet5"
    r = run(tmp_path, "--method", "obd", "--amount", "0.6", "--num-stages", "3", "--hessian-samples", "64")
    assert r["config"]["num_stages"] == 3 and r["config"]["hessian"] == "gauss-newton"
    assert r["num_nonzero"] == r["num_weights"] - round(0.6 * r["num_weights"])  # rounds end exactly at --amount


def test_obs_prunes_lenet300_layer_wise(tmp_path, capsys):
    # LeNet-300-100 on 8x8 digits has 50,200 weights: too many for one Hessian, so OBS's block="auto" goes layer-wise
    r = run(tmp_path, "--method", "obs", "--arch", "lenet300", "--dataset", "digits", "--amount", "0.9")
    n = 64 * 300 + 300 * 100 + 100 * 10
    assert r["num_weights"] == n and r["num_nonzero"] == n - round(0.9 * n)  # --scope global: one count over all layers
    assert r["config"]["scope"] == "global" and 0.0 <= r["test_error_before_retraining"] <= 1.0
    assert r["config"]["obs_block"] == "auto" and r["config"]["hessian_samples"] == 2048
    assert "obs: removed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--method", "magnitude", "--amount", "1.0"], "--amount"),
        (["--method", "magnitude", "--amount", "-0.1"], "--amount"),
        (["--method", "pca", "--amount", "0.5"], "--method"),
        (["--method", "magnitude", "--arch", "vgg", "--amount", "0.5"], "--arch"),
        (["--method", "magnitude", "--amount", "0.5", "--threshold", "0.1"], "--threshold"),
        (["--method", "magnitude"], "--amount"),
        (["--method", "graves", "--threshold", "2"], "--threshold"),
        (["--method", "deep-compression", "--amount", "0.5"], "--out"),
        (["--method", "obs", "--amount", "0.5", "--hessian-samples", "0"], "--hessian-samples"),
        (["--method", "obd", "--amount", "0.5", "--num-stages", "0"], "--num-stages"),
        (["--method", "magnitude", "--amount", "0.5", "--dataset", "cifar"], "cifar"),
        (["--method", "magnitude", "--amount", "0.5", "--epochs", "-1"], "--epochs"),
        (["--method", "magnitude", "--threshold", "0.1", "--rounds", "2"], "--rounds"),
    ],
)
def test_bad_input_exits_2_naming_the_flag(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["prune", *argv, "--smoke", "--no-progress"])
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "mnist")


@pytest.mark.skipif(not os.path.isfile(os.path.join(MNIST, "t10k-labels-idx1-ubyte.gz")), reason="MNIST IDX files not present")
def test_mnist_path_uses_the_idx_train_and_test_splits(tmp_path, capsys):
    r = run(tmp_path, "--method", "magnitude", "--amount", "0.5", "--epochs", "1", "--dataset", f"mnist:{MNIST}")
    assert r["num_weights"] == 266_200 and r["num_train"] == 2000 and r["num_test"] == 500  # smoke subsets
