"""``bayesstruct compare superposition`` and ``bayesstruct compare bayes-net``: what they print and write
is what the library computes on the same data."""

import json

import pytest
import torch

import bayesstruct
from bayesstruct.cli import main
from bayesstruct.datasets import ranking_data
from bayesstruct.families.bayes_net import (DAG, BayesianNetworkFamily, dag_prior, edge_posterior,
                                            simulate_linear_gaussian)
from bayesstruct.families.superposition import Superposition, SuperpositionFamily, SuperpositionGrammar

FAST = ["--workers", "1", "--no-progress"]
TEACHER = Superposition.parse("mul(log1p(x0), x1)")


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().out


def refused(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    assert exc.value.code == 2
    return capsys.readouterr().err


# ----------------------------------------------------------------------------- superposition
def test_superposition_enumeration_is_the_library_comparison(tmp_path, capsys):
    code, out = run(capsys, "compare", "superposition", "--top", "3", *FAST, "--out", str(tmp_path / "o"))
    assert code == 0
    x, y = ranking_data(100, noise=0.3, seed=0)  # the default; from N = 100 the teacher is MAP (BENCHMARKS.md)
    family = SuperpositionFamily(SuperpositionGrammar(2, max_size=4), distinct_on=x)
    table = bayesstruct.compare(family, x, y, methods="exact", structure_prior=family.structure_prior, workers=1,
                                progress=False)
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["variables"] == {"x0": "tf", "x1": "idf"}
    assert saved["best"] == {"tree": str(table.best["tree"])} == {"tree": str(TEACHER)}
    assert [s["structure"]["tree"] for s in saved["structures"]] == [str(r.structure["tree"]) for r in table.rows]
    for s, r in zip(saved["structures"], table.rows):
        assert s["posterior_probability"] == pytest.approx(r.posterior_probability, abs=1e-12)
    assert f"{len(table.rows)} distinct models" in out
    assert f"... {len(table.rows) - 3} more structures" in out  # --top 3
    for name in ("map_tree.png", "posterior.png"):
        assert (tmp_path / "o" / name).stat().st_size > 0


def test_superposition_reads_named_csv_columns_in_the_order_given(tmp_path, capsys):
    x, y = ranking_data(80, noise=0.3, seed=1)
    path = tmp_path / "docs.csv"
    path.write_text("idf,score,tf\n" + "".join(f"{a[1]!r},{b!r},{a[0]!r}\n" for a, b in zip(x.tolist(), y.tolist())))
    code, out = run(capsys, "compare", "superposition", "--data", str(path), "--x", "idf,tf", "--y", "score", *FAST,
                    "--json", str(tmp_path / "r.json"))
    assert code == 0 and "x0 = idf, x1 = tf" in out
    best = Superposition.parse(json.loads((tmp_path / "r.json").read_text())["best"]["tree"])
    # x0 is now idf and x1 is tf: the generating tree reads log1p(x1) * x0
    assert best.canonical() == Superposition.parse("mul(x0, log1p(x1))").canonical()


def test_superposition_mcmc_finds_the_teacher(tmp_path, capsys):
    code, out = run(capsys, "compare", "superposition", "--inference", "mcmc", "--num-samples", "2000", "--chains", "2",
                    "--warmup", "200", "--max-size", "5", *FAST, "--out", str(tmp_path / "o"))
    assert code == 0 and "Metropolis-Hastings" in out
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    probs = [p["probability"] for p in saved["posterior"]]
    assert sum(probs) == pytest.approx(1.0, abs=1e-9) and probs == sorted(probs, reverse=True)
    assert saved["posterior"][0]["structure"]["tree"] == str(TEACHER)
    assert saved["num_samples"] == 2000 and saved["chains"] == 2 and 0 < saved["acceptance_rate"] < 1
    assert saved["temperatures"] == 4 and 0 < saved["swap_rate"] <= 1
    assert set(saved["diagnostics"]) == {"log_evidence", "size"}
    assert saved["diagnostics"]["log_evidence"]["r_hat"] < 1.01
    import arviz as az

    idata = az.from_netcdf(str(tmp_path / "o" / "posterior.nc"))
    assert idata.posterior["log_evidence"].shape == (2, 2000)
    for name in ("trace.png", "posterior.png", "map_tree.png"):
        assert (tmp_path / "o" / name).stat().st_size > 0


def test_superposition_mcmc_warns_when_the_chains_disagree(tmp_path, capsys):
    # N = 40 and up to 5 vertices: with seed 0 the first chain stays in add(mul(x0, x1), x1), 20 nats
    # below the modes the other chains find (benchmarks/superposition.py); without tempering R-hat must say so
    code, out = run(capsys, "compare", "superposition", "--inference", "mcmc", "--n", "40", "--max-size", "5",
                    "--num-samples", "2000", "--chains", "3", "--temperatures", "1", *FAST,
                    "--json", str(tmp_path / "m.json"))
    assert code == 0
    saved = json.loads((tmp_path / "m.json").read_text())
    assert "chain 0 (seed 0): acceptance" in out and "most visited add(mul(x0, x1), x1)" in out
    assert saved["diagnostics"]["log_evidence"]["r_hat"] > 1.1
    assert "warning: the chains disagree" in out


@pytest.mark.parametrize("argv,needle", [
    (["--max-size", "0"], "--max-size"),
    (["--unary", "log1p,nope"], "nope"),
    (["--num-samples", "0", "--inference", "mcmc"], "--num-samples"),
    (["--chains", "0", "--inference", "mcmc"], "--chains"),
    (["--temperatures", "0", "--inference", "mcmc"], "--temperatures"),
    (["--top", "0"], "--top"),
    (["--x", "a,b"], "--data"),
    (["--data", "f.csv"], "--x"),
    (["--unary", "log1p,log1p"], "twice"),
    (["--p-variable", "0.1", "--p-unary", "0"], "subcritical"),
])
def test_superposition_bad_options_are_named(capsys, argv, needle):
    assert needle in refused(capsys, "compare", "superposition", *FAST, *argv)


def test_superposition_refuses_a_space_too_large_to_enumerate_at_once(capsys, monkeypatch):
    def no_trees(self, **kw):
        raise AssertionError("trees were built before the count was checked")

    monkeypatch.setattr(SuperpositionGrammar, "trees", no_trees)
    err = refused(capsys, "compare", "superposition", "--max-size", "30", *FAST)
    count = SuperpositionGrammar(2, max_size=30).count_trees()
    for needle in ("--max-size 30", f"{count:,} trees", "500,000", "--max-size of at most 7", "--inference mcmc"):
        assert needle in err
    assert "Traceback" not in err


def _overflow_csv(tmp_path, n=30):
    # x0 ~ 1e100: square(square(x0)) overflows (1e400), every other tree of at most 3 vertices is finite
    g = torch.Generator().manual_seed(0)
    x0 = (1.0 + torch.rand(n, generator=g, dtype=torch.float64)) * 1e100
    y = torch.log(x0) / 100 + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    path = tmp_path / "huge.csv"
    path.write_text("a,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(x0.tolist(), y.tolist())))
    return path


@pytest.mark.parametrize("all_trees", [False, True])
def test_superposition_leaves_out_trees_not_finite_on_the_data_and_says_so(tmp_path, capsys, all_trees):
    path = _overflow_csv(tmp_path)
    code, out = run(capsys, "compare", "superposition", "--data", str(path), "--x", "a", "--y", "y", "--max-size", "3",
                    "--unary", "square,log1p", "--binary", "add", *FAST, "--json", str(tmp_path / "r.json"),
                    *(["--all-trees"] if all_trees else []))
    assert code == 0
    assert "left out: 1 tree(s) not finite on the data (overflow" in out and "square(square(x0))" in out
    assert "(of 8 trees)" in out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["left_out"] == {"not finite on the data": 1}
    listed = [s["structure"]["tree"] for s in saved["structures"]]
    assert "square(square(x0))" not in listed and "square(x0)" in listed
    from bayesstruct.datasets import load_csv

    x, _ = load_csv(path, ["a"], "y")
    grammar = SuperpositionGrammar(1, unary=("square", "log1p"), binary=("add",), max_size=3)
    with pytest.warns(UserWarning, match="1 of the 8 trees"):  # the library warns; the CLI prints the line above
        family = SuperpositionFamily(grammar, **({"finite_on": x} if all_trees else {"distinct_on": x}))
    assert sorted(listed) == sorted(str(s["tree"]) for s in family.structures())
    assert len(listed) == 7 if all_trees else len(listed) < 7  # x0 and add(x0, x0) are one model


def test_superposition_reports_nothing_left_out_on_the_embedded_data(tmp_path, capsys):
    code, out = run(capsys, "compare", "superposition", "--max-size", "3", *FAST, "--json", str(tmp_path / "r.json"))
    assert code == 0 and "left out" not in out
    assert json.loads((tmp_path / "r.json").read_text())["left_out"] == {}


def test_superposition_mcmc_rejects_trees_not_finite_on_the_data(tmp_path, capsys):
    path = _overflow_csv(tmp_path, n=40)
    code, out = run(capsys, "compare", "superposition", "--data", str(path), "--x", "a", "--y", "y", "--max-size", "5",
                    "--unary", "square,log1p", "--binary", "add,mul", "--inference", "mcmc", "--num-samples", "1000",
                    "--warmup", "100", "--chains", "2", "--temperatures", "1", *FAST, "--json", str(tmp_path / "m.json"))
    assert code == 0
    saved = json.loads((tmp_path / "m.json").read_text())
    n = saved["left_out"]["not finite on the data"]
    assert n >= 1 and f"left out: {n} proposed tree(s) not finite on the data" in out
    for p in saved["posterior"]:
        tree = Superposition.parse(p["structure"]["tree"])
        assert bool(torch.isfinite(tree.evaluate(torch.tensor([[1e100], [2e100]], dtype=torch.float64))).all())


# ----------------------------------------------------------------------------- Bayesian networks
def test_bayes_net_enumeration_matches_the_library(tmp_path, capsys):
    code, out = run(capsys, "compare", "bayes-net", "--prior", "sparsity", "--rho", "0.2", *FAST,
                    "--out", str(tmp_path / "o"))
    assert code == 0
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    true = DAG("0->2, 1->2, 2->3", num_variables=4)
    w = torch.zeros(4, 4, dtype=torch.float64)
    w[0, 2], w[1, 2], w[2, 3] = 0.8, -0.7, 0.6
    x = simulate_linear_gaussian(true, 500, weights=w, intercepts=[1.0, -0.5, 0.0, 2.0], noise_scale=1.0, seed=0)
    table = bayesstruct.compare(BayesianNetworkFamily(4), x, None, methods="exact", workers=1, progress=False,
                                structure_prior=dag_prior("sparsity", rho=0.2))
    assert len(saved["structures"]) == 543
    assert saved["best"] == {"dag": str(true)} == {"dag": str(table.best["dag"])}
    torch.testing.assert_close(torch.tensor(saved["edge_posterior"], dtype=torch.float64), edge_posterior(table),
                               rtol=0, atol=1e-12)
    assert "<- true" in out.splitlines()[out.splitlines().index("most probable DAGs:") + 1]
    for name in ("edge_posterior.png", "top_dags.png"):
        assert (tmp_path / "o" / name).stat().st_size > 0


def _collider_csv(tmp_path, extra_columns=0, n=400):
    true = DAG("0->2, 1->2, 2->3", num_variables=4 + extra_columns)
    w = torch.zeros(4 + extra_columns, 4 + extra_columns, dtype=torch.float64)
    w[0, 2], w[1, 2], w[2, 3] = 0.8, -0.7, 0.6
    x = simulate_linear_gaussian(true, n, weights=w, noise_scale=1.0, seed=3)
    names = ["rain", "sprinkler", "wet", "slippery"] + [f"noise{k}" for k in range(extra_columns)]
    path = tmp_path / "net.csv"
    path.write_text(",".join(names) + "\n" + "".join(",".join(map(repr, row)) + "\n" for row in x.tolist()))
    return path, x, names


def test_bayes_net_csv_names_the_variables_and_mcmc_agrees_with_enumeration(tmp_path, capsys):
    path, x, names = _collider_csv(tmp_path)
    order = ["wet", "rain", "slippery", "sprinkler"]  # the nodes in another order than the file's
    code, out = run(capsys, "compare", "bayes-net", "--data", str(path), "--x", ",".join(order), *FAST,
                    "--json", str(tmp_path / "e.json"))
    assert code == 0
    assert "#1  p = " in out and "rain->wet" in out.split("#2")[0] and "sprinkler->wet" in out.split("#2")[0]
    exact = json.loads((tmp_path / "e.json").read_text())
    assert exact["variables"] == order
    code, out = run(capsys, "compare", "bayes-net", "--data", str(path), "--x", ",".join(order), "--inference", "mcmc",
                    "--num-samples", "4000", "--chains", "2", "--warmup", "300", *FAST, "--json", str(tmp_path / "m.json"))
    mcmc = json.loads((tmp_path / "m.json").read_text())
    assert mcmc["chains"] == 2 and "warning" not in out
    assert mcmc["diagnostics"]["log_score"]["r_hat"] < 1.01 and mcmc["diagnostics"]["num_edges"]["ess_bulk"] > 100
    P_exact, P_mcmc = torch.tensor(exact["edge_posterior"]), torch.tensor(mcmc["edge_posterior"])
    se = torch.tensor(mcmc["edge_posterior_stderr"])
    # the chain's edge frequencies lie within 4 batch-means standard errors (+0.02 for their own noise)
    assert bool(((P_mcmc - P_exact).abs() <= 4 * se + 0.02).all()), (P_mcmc - P_exact).abs().max()


def test_bayes_net_samples_by_default_beyond_five_variables(tmp_path, capsys):
    path, _, names = _collider_csv(tmp_path, extra_columns=2, n=300)
    code, out = run(capsys, "compare", "bayes-net", "--data", str(path), "--x", ",".join(names), "--num-samples", "500",
                    "--chains", "2", "--warmup", "100", "--max-parents", "2", *FAST, "--out", str(tmp_path / "o"))
    assert code == 0 and "structure MCMC: 2 chain(s) of 500 draws after 100 warm-up steps, 1 temperature(s)" in out
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["temperatures"] == 1 and saved["swap_rate"] is None
    code, out = run(capsys, "compare", "bayes-net", "--data", str(path), "--x", ",".join(names), "--num-samples", "200",
                    "--chains", "2", "--warmup", "50", "--max-parents", "2", "--temperatures", "3", *FAST,
                    "--json", str(tmp_path / "t.json"))
    tempered = json.loads((tmp_path / "t.json").read_text())
    assert code == 0 and tempered["temperatures"] == 3 and 0 < tempered["swap_rate"] < 1
    for name in ("edge_posterior.png", "top_dags.png", "trace.png", "posterior.nc", "results.json"):
        assert (tmp_path / "o" / name).stat().st_size > 0
    err = refused(capsys, "compare", "bayes-net", "--data", str(path), "--x", ",".join(names), "--inference",
                  "enumerate", *FAST)
    assert "--inference mcmc" in err


@pytest.mark.parametrize("argv,needle", [
    (["--x", "rain"], "at least 2"),
    (["--x", "rain,nope"], "'nope'"),
    (["--x", "rain,rain"], "twice"),
    (["--rho", "1.5", "--prior", "sparsity"], "rho"),
    (["--x", "rain,wet", "--noise-scale", "0"], "`--noise-scale`"),
    (["--inference", "mcmc", "--temperatures", "0"], "--temperatures"),
])
def test_bayes_net_bad_options_are_named(tmp_path, capsys, argv, needle):
    path, _, _ = _collider_csv(tmp_path, n=20)
    data = [] if argv[0] != "--x" else ["--data", str(path)]
    if argv[0] == "--rho":
        data = []
    assert needle in refused(capsys, "compare", "bayes-net", *data, *argv, *FAST)


def test_bayes_net_standardize_refuses_a_constant_column(tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text("a,b\n1,2\n1,3\n1,5\n")
    assert "constant" in refused(capsys, "compare", "bayes-net", "--data", str(path), "--x", "a,b", "--standardize",
                                 *FAST)


def test_superposition_with_p_unary_zero_compares_the_trees_without_unary_functions(capsys, tmp_path):
    code, _ = run(capsys, "compare", "superposition", "--p-variable", "0.6", "--p-unary", "0", "--max-size", "3", *FAST,
                  "--json", str(tmp_path / "r.json"))
    assert code == 0
    trees = [s["structure"]["tree"] for s in json.loads((tmp_path / "r.json").read_text())["structures"]]
    none = SuperpositionGrammar(2, unary=(), p_variable=0.6, max_size=3)
    assert trees and set(trees) <= {str(t) for t in none.trees()}  # no tree with a unary function
    assert not any(op + "(" in t for t in trees for op in ("log1p", "sqrt", "exp", "square", "inv"))
    assert SuperpositionGrammar(2, p_variable=0.6, p_unary=0.0).unary == ()


@pytest.mark.parametrize("noise, needle", [("0", "--noise must be a finite number > 0"),
                                           ("-0.3", "--noise must be a finite number > 0"),
                                           ("nan", "--noise must be a finite number > 0")])
def test_polynomial_noise_is_checked_with_data_too(capsys, tmp_path, noise, needle):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n0,1\n0.5,0\n1,-1\n")
    err = refused(capsys, "compare", "polynomial", "--data", str(data), "--x", "a", "--y", "b", "--degrees", "0:1",
                  "--methods", "exact", "--noise", noise, *FAST)
    assert needle in err and "Traceback" not in err
