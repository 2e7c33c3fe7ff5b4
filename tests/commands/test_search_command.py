"""``bayesstruct search``: the JSON, the output folder, enumeration, and bad input naming the flag."""

import json

import pytest
import torch

from bayesstruct.cli import main


def test_darts_on_digits_writes_json_figure_and_network(tmp_path, capsys):
    out, js = tmp_path / "out", tmp_path / "r.json"
    assert main(["search", "--smoke", "--no-progress", "--json", str(js), "--out", str(out)]) == 0
    d = json.loads(js.read_text())
    assert d["method"] == "darts" and d["family"] == "cell"
    assert set(d["choice"]) == {"0->1", "0->2", "1->2"}
    for edge, gamma in d["gamma"].items():
        assert sum(gamma) == pytest.approx(1.0) and d["choice"][edge]
    assert 0.0 <= d["val_accuracy"] <= 1.0 and len(d["history"]) == 3  # 1 warmup + 2 epochs
    assert json.loads((out / "results.json").read_text())["choice"] == d["choice"]
    assert (out / "search_history.png").stat().st_size > 0
    net = torch.load(out / "network.pt", weights_only=False)
    assert net.choice[(0, 1)] == d["choice"]["0->1"]
    assert "structure: 0->1:" in capsys.readouterr().out


def test_enumerate_and_reinforce(tmp_path):
    js = tmp_path / "e.json"
    assert main(["search", "--method", "fbnet", "--smoke", "--no-progress", "--enumerate", "2", "--penalty", "10",
                 "--json", str(js)]) == 0  # distinct in 5 of 5 runs at penalty 1; 10 for margin
    d = json.loads(js.read_text())
    assert len(d["structures"]) == 2 and all("latency" in s["diagnostics"] for s in d["structures"])
    assert main(["search", "--method", "reinforce", "--family", "one-layer", "--primitives", "linear_tanh,zero",
                 "--smoke", "--no-progress", "--json", str(js), "--overwrite"]) == 0
    d = json.loads(js.read_text())
    assert d["method"] == "reinforce" and d["choice"]["0->1"] in ("linear_tanh", "zero")
    assert main(["search", "--method", "random", "--reward", "log-likelihood", "--smoke", "--no-progress",
                 "--json", str(js), "--overwrite"]) == 0
    d = json.loads(js.read_text())
    assert d["method"] == "random" and d["diagnostics"]["num_evaluated"] == 2
    assert d["diagnostics"]["best_reward"] == pytest.approx(-d["val_loss"])


@pytest.mark.parametrize("argv, match", [
    (["--method", "evolution"], "--method"),
    (["--num-epochs", "0"], "--num-epochs"),
    (["--val-fraction", "1.5"], "--val-fraction"),
    (["--method", "reinforce", "--enumerate", "2"], "--enumerate"),
    (["--method", "random", "--num-structures", "0"], "--num-structures"),
    (["--primitives", "linear"], "--primitives"),
    (["--latency-exponent", "-1"], "--latency-exponent"),
    (["--json", "/nonexistent/dir/r.json"], "--json"),
    (["--dataset", "cifar"], "--dataset"),
])
def test_bad_input_names_the_flag(argv, match, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--smoke", "--no-progress", *argv])
    assert exc.value.code == 2
    assert match in capsys.readouterr().err


def test_regression_from_a_csv(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    t = np.tanh(3 * x[:, 0] - 2 * x[:, 1]) + 0.05 * rng.normal(size=120)
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,t\n" + "\n".join(f"{a},{b},{c}" for (a, b), c in zip(x, t)) + "\n")
    js = tmp_path / "r.json"
    assert main(["search", "--family", "one-layer", "--primitives", "linear,linear_tanh", "--hidden", "4",
                 "--data", str(csv), "--target", "t", "--task", "regression", "--noise-scale", "0.1",
                 "--smoke", "--no-progress", "--json", str(js), "--overwrite"]) == 0
    d = json.loads(js.read_text())
    assert d["val_accuracy"] is None and d["val_loss"] > 0 and set(d["choice"]) == {"0->1"}
    with pytest.raises(SystemExit):
        main(["search", "--data", str(csv), "--smoke"])  # --data without --target


def test_conv_family_searches_convolution_against_pooling(tmp_path):
    js = tmp_path / "c.json"
    assert main(["search", "--family", "conv", "--smoke", "--no-progress", "--json", str(js)]) == 0
    d = json.loads(js.read_text())
    assert set(d["choice"]) == {"0->1"} and d["choice"]["0->1"] in ("conv3x3", "avgpool3x3")
    assert len(d["gamma"]["0->1"]) == 2


def test_a_bad_seed_is_named_as_the_seed_flag(capsys):
    from bayesstruct.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["search", "--seed", "-1", "--smoke", "--no-progress"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "`--seed` must be an integer in [0, 2**63)" in err and "--dataset" not in err


def test_smoke_lowers_settings_and_never_raises_them(tmp_path):
    js = tmp_path / "r.json"
    assert main(["search", "--method", "random", "--num-structures", "1", "--smoke", "--no-progress",
                 "--json", str(js)]) == 0
    assert len(json.loads(js.read_text())["history"]) == 1  # one structure trained, not the smoke value 2
