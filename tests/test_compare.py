import json
import math

import numpy as np
import pytest
import torch

from bayesstruct import PolynomialFamily, compare
from bayesstruct.datasets import sinusoid
from bayesstruct.evidence import LinearGaussian
from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.families.polynomial import polynomial_design

DEGREES = [1, 3, 5]


@pytest.fixture(scope="module")
def data():
    return sinusoid(n=20, noise=0.3, seed=0)


@pytest.fixture(scope="module")
def table(data):
    x, y = data
    return compare(PolynomialFamily(DEGREES), x, y, methods="exact,laplace,smc", workers=1, progress=False,
                   options={"smc": {"num_particles": 1024}})


def test_table_is_sorted_and_normalised(table):
    ref = [r.log_evidence(table.reference_method) for r in table.rows]
    assert table.reference_method == "exact"  # the most accurate method requested
    assert ref == sorted(ref, reverse=True)
    probs = np.array([r.posterior_probability for r in table.rows])
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    # Bayes' rule under the uniform prior: p(s|D) ∝ Z_s
    z = np.exp(np.array(ref) - max(ref))
    np.testing.assert_allclose(probs, z / z.sum(), rtol=1e-10)
    assert table.rows[0].log_bayes_factor_vs_best == 0.0
    assert all(r.log_bayes_factor_vs_best <= 0 for r in table.rows)
    assert table.best == {"degree": 5}  # exact: -17.63 (5) > -19.16 (3) > -51.53 (1)


def test_exact_matches_closed_form(table, data):
    x, y = data
    for r in table.rows:
        phi = polynomial_design(x, r.structure["degree"])
        expected = float(LinearGaussian(phi, y, 5e-3, 1 / 0.09).log_evidence())
        assert r.log_evidence("exact") == pytest.approx(expected, abs=1e-10)


def test_json_schema(table):
    d = json.loads(table.to_json())
    assert set(d) >= {"structures", "best"}
    assert d["best"] == {"degree": 5}
    for s in d["structures"]:
        assert set(s) >= {"structure", "estimates", "log_bayes_factor_vs_best", "log_prior", "posterior_probability"}
        for m, e in s["estimates"].items():
            assert set(e) >= {"log_evidence", "stderr", "seconds"}
            assert (e["stderr"] is None) == (m in ("exact", "laplace"))
    # the posterior probabilities follow from the JSON alone: softmax of log evidence + log prior
    scores = torch.tensor([s["estimates"][table.reference_method]["log_evidence"] + s["log_prior"] for s in d["structures"]])
    probs = torch.softmax(scores.double(), 0)
    assert probs.tolist() == pytest.approx([s["posterior_probability"] for s in d["structures"]], abs=1e-12)
    text = str(table)
    assert "degree=3" in text and "exact" in text


def test_to_string_keeps_the_most_probable_rows(table):
    text = table.to_string(max_rows=1)
    assert "degree=5" in text and "degree=3" not in text and "degree=1" not in text
    rest = sum(r.posterior_probability for r in table.rows[1:])
    assert f"... 2 more structures (total p(s|D) = {rest:.3g})" in text
    assert table.to_string(max_rows=3) == str(table)  # nothing left out: no closing line
    with pytest.raises(InvalidArgumentError, match="max_rows"):
        table.to_string(max_rows=0)


def test_user_structure_prior_applies_bayes_rule(data):
    x, y = data
    prior = [0.7, 0.2, 0.1]
    t = compare(PolynomialFamily(DEGREES), x, y, methods="exact", structure_prior=prior, workers=1, progress=False)
    log_z = {r.structure["degree"]: r.log_evidence("exact") for r in t.rows}
    post = np.array([math.log(p) + log_z[d] for p, d in zip(prior, DEGREES)])
    post = np.exp(post - np.logaddexp.reduce(post))
    got = {r.structure["degree"]: r.posterior_probability for r in t.rows}
    np.testing.assert_allclose([got[d] for d in DEGREES], post, rtol=1e-10)


def test_bayes_factors_are_against_the_most_probable_structure(data):
    """With a prior that favours degree 3, degree 3 is `best` although degree 5 has more evidence."""
    x, y = data
    t = compare(PolynomialFamily(DEGREES), x, y, methods="exact", structure_prior=[1.0, 1000.0, 1.0], workers=1,
                progress=False)
    assert t.best == t.rows[0].structure == {"degree": 3}  # p(s|D) ∝ Z_s p(s): 0.995
    by_degree = {r.structure["degree"]: r for r in t.rows}
    assert by_degree[5].log_evidence("exact") > by_degree[3].log_evidence("exact")  # -17.63 > -19.16
    assert t.rows[0].log_bayes_factor_vs_best == 0.0
    log_z_best = t.rows[0].log_evidence("exact")
    for r in t.rows:
        assert r.log_bayes_factor_vs_best == pytest.approx(r.log_evidence("exact") - log_z_best, abs=1e-12)
    assert by_degree[5].log_bayes_factor_vs_best == pytest.approx(1.533, abs=1e-3)  # more evidence, less prior
    assert by_degree[1].log_bayes_factor_vs_best < -30
    assert json.loads(t.to_json())["structures"][0]["log_bayes_factor_vs_best"] == 0.0
    lines = str(t).splitlines()
    assert "log BF vs best" in lines[1]
    assert lines[3].split()[:1] == ["degree=3"] and lines[3].split()[-2] == "0.00"


def test_model_averaged_predictive_matches_closed_form(data):
    """Predictive mean/variance of one structure against PRML eqs. 3.58-3.59."""
    x, y = data
    t = compare(PolynomialFamily([3]), x, y, methods="exact", workers=1, progress=False)
    x_new = torch.tensor([0.1, 0.5, 0.9])
    pred = t.posterior_predictive(x_new, num_samples=4000, seed=1)
    m, S = LinearGaussian(polynomial_design(x, 3), y, 5e-3, 1 / 0.09).posterior()
    phi = polynomial_design(x_new, 3)
    mean = phi @ m
    var = 0.09 + ((phi @ S) * phi).sum(-1)
    # Monte Carlo tolerance: 5 standard errors of a mean of 4000 draws
    assert torch.allclose(pred.average.mean(0), mean, atol=float(5 * (var / 4000).sqrt().max()))
    assert torch.allclose(pred.average.var(0), var, rtol=0.15)
    assert pred.best.shape == (4000, 3)


def test_model_average_mixes_structures(table):
    pred = table.posterior_predictive(torch.linspace(0, 1, 5), num_samples=2000, seed=0)
    assert pred.average.shape == (2000, 5)
    mean, lo, hi = pred.band(pred.average, 0.9)
    assert torch.all(lo < mean) and torch.all(mean < hi)


def test_same_seed_same_table_and_process_pool_equals_serial(data):
    x, y = data
    kw = dict(methods="laplace,smc", options={"smc": {"num_particles": 512}}, progress=False, seed=3)
    serial = compare(PolynomialFamily([1, 3]), x, y, workers=1, **kw)
    pooled = compare(PolynomialFamily([1, 3]), x, y, workers=2, **kw)
    for a, b in zip(serial.rows, pooled.rows):
        assert a.structure == b.structure
        for m in ("laplace", "smc"):
            assert a.log_evidence(m) == b.log_evidence(m)


def test_exact_alone_runs_inline_unless_workers_are_asked_for(data, monkeypatch):
    """A closed form costs less than a process: without ``workers`` only other methods get a pool."""
    import importlib

    module = importlib.import_module("bayesstruct.compare")  # the module, not the function it exports
    started = []

    class Pool:  # records that a pool was made, then refuses the work
        def __init__(self, n, **kwargs):
            started.append(n)
            raise RuntimeError("no pool in this test")

    monkeypatch.setattr(module.cf, "ProcessPoolExecutor", Pool)
    x, y = data
    table = compare(PolynomialFamily([1, 3]), x, y, methods="exact", progress=False)
    assert started == [] and len(table.rows) == 2
    for kwargs in ({"methods": "exact", "workers": 2}, {"methods": "exact,laplace"}):
        with pytest.raises(RuntimeError, match="no pool"):
            compare(PolynomialFamily([1, 3]), x, y, progress=False, **kwargs)
    assert started[0] == 2 and len(started) == 2


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"methods": "exact,nope"}, UnknownNameError, "nope"),
        ({"methods": ""}, InvalidArgumentError, "methods"),
        ({"structure_prior": [1.0]}, InvalidArgumentError, "structure_prior"),
        ({"structure_prior": [-1.0, 1.0, 1.0]}, InvalidArgumentError, "structure_prior"),
        ({"workers": 0}, InvalidArgumentError, "workers"),
        ({"structures": [{"order": 2}]}, InvalidArgumentError, "structure"),
        ({"options": {"smcc": {}}}, UnknownNameError, "smcc"),
    ],
)
def test_bad_arguments(data, kwargs, exc, match):
    x, y = data
    args = dict(methods="exact", workers=1, progress=False)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        compare(PolynomialFamily(DEGREES), x, y, **args)


def test_bad_data():
    with pytest.raises(InvalidArgumentError, match="same length"):
        compare(PolynomialFamily([1]), [0.0, 1.0], [1.0], methods="exact", workers=1)
    with pytest.raises(InvalidArgumentError, match="NaN"):
        compare(PolynomialFamily([1]), [0.0, float("nan")], [1.0, 2.0], methods="exact", workers=1)
    with pytest.raises(InvalidArgumentError, match="family"):
        compare(lambda x: x, [0.0], [1.0], methods="exact")


def test_a_failing_structure_is_named_in_the_error(data):
    import pyro
    import pyro.distributions as dist

    import bayesstruct
    from bayesstruct.exceptions import BayesStructError

    @bayesstruct.structure_family({"discrete": [False, True]})
    def family(x, y=None, *, discrete):
        law = dist.Bernoulli(0.5) if discrete else dist.Normal(0.0, 1.0)
        mean = pyro.sample("m", law)
        with pyro.plate("data", len(x)):
            pyro.sample("y", dist.Normal(mean, 1.0), obs=y)

    x, y = data
    with pytest.raises(BayesStructError, match=r"^structure discrete=True, method 'laplace': latent sample site 'm' is discrete"):
        compare(family, x, y, methods="laplace", workers=1, progress=False)


def test_rows_of_equal_posterior_are_ordered_by_evidence(data):
    x, y = data
    table = compare(PolynomialFamily(range(6)), x, y, methods="exact", workers=1, progress=False,
                    structure_prior=[0, 0, 0, 0, 1, 1])
    zero = [r for r in table.rows if r.posterior_probability == 0]
    assert [r.structure["degree"] for r in table.rows[:2]] == sorted([4, 5], key=lambda d: -table.row({"degree": d}).log_evidence("exact"))
    assert [r.log_evidence("exact") for r in zero] == sorted((r.log_evidence("exact") for r in zero), reverse=True)


def test_posterior_predictive_needs_a_y():
    from bayesstruct.families.bayes_net import DAG, BayesianNetworkFamily, simulate_linear_gaussian

    xb = simulate_linear_gaussian(DAG("0->1", num_variables=2), 30, seed=0)
    table = compare(BayesianNetworkFamily(2), xb, None, methods="exact", workers=1, progress=False)
    with pytest.raises(InvalidArgumentError, match="has no y"):
        table.posterior_predictive(xb[:3])
    from bayesstruct.plots import plot_predictive
    with pytest.raises(InvalidArgumentError, match="has no y"):
        plot_predictive(table)


def test_repr_is_a_one_line_summary_and_len_counts_rows(table):
    text = repr(table)
    assert text.startswith("ComparisonTable(polynomial: 3 structures, methods=['exact', 'laplace', 'smc'], best={'degree': ")
    assert "\n" not in text and len(text) < 200 and len(table) == 3


def test_to_dataframe_matches_the_rows(table):
    df = table.to_dataframe()
    assert list(df.index) == [f"degree={r.structure['degree']}" for r in table.rows]
    for (_, rec), r in zip(df.iterrows(), table.rows):
        for m in table.methods:
            assert rec[f"log_evidence[{m}]"] == r.estimates[m].log_evidence
        assert rec["posterior_probability"] == r.posterior_probability
        assert rec["log_bayes_factor_vs_best"] == r.log_bayes_factor_vs_best
    assert df["posterior_probability"].sum() == pytest.approx(1.0)
