"""``bayesstruct fit network``: JSON schema, the two restriction routes, and bad input naming the flag."""

import json
import math

import numpy as np
import pytest

from bayesstruct.cli import main


def _csv(path, n=80, seed=0):
    # y = tanh(3 a - 2 b + 0.3) + N(0, 0.1²): the tanh edge is the teacher
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    t = np.tanh(3 * x[:, 0] - 2 * x[:, 1] + 0.3) + 0.1 * rng.normal(size=n)
    path.write_text("a,b,t\n" + "\n".join(f"{a},{b},{c}" for (a, b), c in zip(x, t)) + "\n")
    return path


def _check_schema(d, primitives):
    assert isinstance(d["elbo"], float) and math.isfinite(d["elbo"])
    assert [e["edge"] for e in d["edges"]] == [[0, 1], [1, 2]]
    first = d["edges"][0]
    assert first["primitives"] == primitives
    assert len(first["posterior_mean_gamma"]) == len(primitives)
    assert all(0.0 <= g <= 1.0 for g in first["posterior_mean_gamma"])
    assert sum(first["posterior_mean_gamma"]) == pytest.approx(1.0, abs=1e-6)
    assert d["edges"][1] == {"edge": [1, 2], "primitives": ["linear"], "posterior_mean_gamma": [1.0]}
    choice = d["discrete_structure"]["choice"]
    assert set(choice) == {"0->1", "1->2"} and choice["0->1"] in primitives
    c = d["criteria"]
    assert set(c) == {"num_params", "num_vertices", "num_edges", "flops", "latency_ms"}
    assert all(isinstance(c[k], int) for k in ("num_params", "num_vertices", "num_edges", "flops"))
    assert isinstance(c["latency_ms"], float) and c["latency_ms"] > 0
    assert c["num_vertices"] == 3 and c["num_edges"] == 2


def test_fit_network_svi_on_digits_writes_the_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["fit", "network", "--dataset", "digits", "--smoke", "--hidden", "8", "--temperature", "0.5",
                 "--jit", "--elbo", "meanfield", "--no-progress", "--json", str(out), "--out", str(tmp_path / "dir")])
    assert code == 0
    d = json.loads(out.read_text())
    _check_schema(d, ["linear", "linear_sigmoid"])
    assert d["elbo_estimator"] == "meanfield"
    # one-layer, hidden 8, one primitive kept on 0->1: 64*8+8 + 8*10+10 parameters
    assert d["criteria"]["num_params"] == 64 * 8 + 8 + 8 * 10 + 10
    assert d["criteria"]["flops"] == 2 * 64 * 8 + 2 * 8 * 10
    # 10 classes: chance is 0.1; the discretised net alone is near chance, the MAP refit (20 smoke steps) fixes it
    assert d["discrete_structure"]["train_accuracy"] > 0.5 and d["discrete_structure"]["refit_steps"] == 20
    assert json.loads((tmp_path / "dir" / "results.json").read_text()) == d
    assert (tmp_path / "dir" / "network.pt").is_file()
    assert "E[γ]" in capsys.readouterr().out


def test_fit_network_vertices_compare_structures_by_evidence(tmp_path):
    out = tmp_path / "r.json"
    code = main(["fit", "network", "--data", str(_csv(tmp_path / "d.csv")), "--target", "t", "--task", "regression",
                 "--noise-scale", "0.1", "--hidden", "2", "--primitives", "linear,linear_tanh",
                 "--restriction", "simplex_vertices", "--no-progress", "--json", str(out)])
    assert code == 0
    d = json.loads(out.read_text())
    _check_schema(d, ["linear", "linear_tanh"])
    # the teacher is tanh: its structure carries the posterior mass and the highest evidence
    assert d["discrete_structure"]["choice"]["0->1"] == "linear_tanh"
    assert d["edges"][0]["posterior_mean_gamma"][1] > 0.99
    assert d["structures"][0]["log_evidence"] > d["structures"][1]["log_evidence"] + 50
    # the family's log evidence is log of the mean of the structures' evidences (uniform prior)
    lz = [s["log_evidence"] for s in d["structures"]]
    assert d["elbo"] == pytest.approx(float(np.logaddexp.reduce(lz) - math.log(2)))
    assert d["discrete_structure"]["train_rmse"] < 0.2  # noise sd 0.1


@pytest.mark.parametrize("argv, flag", [
    (["--temperature", "0"], "--temperature"),
    (["--temperature", "-1"], "--temperature"),
    (["--num-steps", "0"], "--num-steps"),
    (["--primitives", "linear,conv5x5"], "--primitives"),
    (["--primitives", "linear,conv3x3"], "--primitives"),
    (["--restriction", "cube_vertices"], "cube_vertices"),
    (["--weight-precision", "-2"], "--weight-precision"),
    (["--weight-precision", "gamma:1"], "--weight-precision"),
    (["--dataset", "cifar"], "--dataset"),
    (["--dataset", "mnist:/nonexistent/dir"], "--dataset"),
    (["--task", "regression"], "--task regression"),
    (["--target", "t"], "--target"),
    (["--family", "conv", "--image-shape", "1,8"], "--image-shape"),
])
def test_bad_input_exits_2_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "network", "--smoke", "--no-progress", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err, err


def test_csv_errors_name_the_flag(tmp_path, capsys):
    path = _csv(tmp_path / "d.csv")
    for argv, flag in ((["--data", str(path), "--target", "zz"], "--target"),
                       (["--data", str(tmp_path / "missing.csv"), "--target", "t"], "--data"),
                       (["--data", str(path), "--target", "t"], "--target")):  # real-valued target, classification
        with pytest.raises(SystemExit) as exc:
            main(["fit", "network", "--smoke", "--no-progress", *argv])
        assert exc.value.code == 2
        assert flag in capsys.readouterr().err
    path.write_text("a,b,t\n1,nan,0\n")
    with pytest.raises(SystemExit):
        main(["fit", "network", "--smoke", "--no-progress", "--data", str(path), "--target", "t"])
    assert "NaN" in capsys.readouterr().err
