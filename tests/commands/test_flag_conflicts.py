"""A flag the chosen method or data source would ignore is refused by name, before any work."""

import pytest

from bayesstruct.cli import main


@pytest.mark.parametrize("argv, needle", [
    (["compare", "polynomial", "--x", "a", "--y", "b"], "--x and --y name columns of a --data CSV file"),
    (["compare", "polynomial", "--hyper", "prior", "--alpha", "1"], "--alpha is integrated out under --hyper prior"),
    (["compare", "polynomial", "--hyper", "prior", "--alpha", "1", "--beta", "100"], "--alpha and --beta are integrated"),
    (["compare", "bayes-net", "--rho", "0.3"], "--rho is the edge parameter of --prior sparsity"),
    (["compare", "bayes-net", "--num-samples", "50"], "--num-samples applies to --inference mcmc"),
    (["compare", "superposition", "--chains", "2"], "--chains applies to --inference mcmc"),
    (["compare", "superposition", "--inference", "mcmc", "--all-trees"], "--all-trees applies to --inference enumerate"),
    (["compare", "superposition", "--inference", "enumerate", "--warmup", "0"], "--warmup applies to --inference mcmc"),
    (["compare", "bayes-net", "--inference", "mcmc", "--chains", "0"], "--chains"),
    (["search", "--method", "darts", "--reward", "evidence"], "--reward applies to --method reinforce or random"),
    (["search", "--method", "fbnet", "--order", "2"], "--order applies to --method darts"),
    (["search", "--method", "darts", "--num-structures", "5"], "--num-structures applies to --method random"),
    (["search", "--family", "one-layer", "--primitives", "linear_tanh,linear_tanh"], "more than once"),
    (["fit", "network", "--primitives", ""], "--primitives must be comma-separated primitive names"),
    (["fit", "network", "--primitives", "linear,,zero"], "--primitives must be comma-separated primitive names"),
    (["prune", "--method", "magnitude", "--amount", "0.5", "--hessian", "exact"], "--hessian applies to --method obd"),
    (["prune", "--method", "obd", "--amount", "0.5", "--obs-block", "row"], "--obs-block applies to --method obs"),
    (["prune", "--method", "magnitude", "--amount", "0.5", "--vi-steps", "3"], "--vi-steps applies to --method graves"),
    (["prune", "--method", "magnitude", "--threshold", "-1"], "which would remove nothing"),
    (["prune", "--method", "obd", "--threshold", "0.1", "--num-stages", "3"], "--num-stages > 1 needs --amount"),
])
def test_ignored_flags_exit_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--no-progress"])
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and needle in err and out == ""


def test_n_with_data_is_refused(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n0,1\n0.5,0\n1,-1\n")
    for argv in (["compare", "polynomial", "--data", str(data), "--x", "a", "--y", "b", "--n", "5"],
                 ["compare", "bayes-net", "--data", str(data), "--x", "a,b", "--n", "5"]):
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--no-progress"])
        assert exc.value.code == 2 and "--n sets the size of the embedded data set" in capsys.readouterr().err


def test_polynomial_header_shows_the_hyperparameters(capsys):
    assert main(["compare", "polynomial", "--degrees", "1", "--methods", "exact", "--no-progress", "--noise", "0.5"]) == 0
    assert "hyperparameters: fixed (α = 0.005, β = 4)" in capsys.readouterr().out


def test_standardize_on_one_row_names_the_flag(tmp_path, capsys):
    data = tmp_path / "one.csv"
    data.write_text("a,b,c\n0.1,0.2,0.3\n")  # x.std(0) of one row is NaN: it was blamed on the data
    with pytest.raises(SystemExit) as exc:
        main(["compare", "bayes-net", "--data", str(data), "--x", "a,b,c", "--standardize", "--no-progress"])
    assert exc.value.code == 2 and "--standardize needs at least 2 rows" in capsys.readouterr().err
