"""Linear-Gaussian Bayesian networks: DAG counts, closed-form evidence against analytic
references, recovery of a known graph, structure MCMC against the enumeration, input checks."""

import itertools
import pickle

import pyro
import pytest
import torch

import bayesstruct
from bayesstruct.evidence import log_evidence
from bayesstruct.evidence.density import ModelDensity
from bayesstruct.evidence.exact import gaussian_integral
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families.bayes_net import (DAG, BayesianNetworkFamily, DAGSamples, StructureMCMC, dag_prior, edge_posterior,
                                            enumerate_dags, markov_equivalent, simulate_linear_gaussian)


def _v_structure_data(num_data=500, seed=0):
    dag = DAG("0->2, 1->2", num_variables=3)
    W = torch.zeros(3, 3)
    W[0, 2], W[1, 2] = 0.8, -0.7
    return dag, simulate_linear_gaussian(dag, num_data, weights=W, seed=seed)


def _compare(family, x, **kwargs):
    return bayesstruct.compare(family, x, None, methods="exact", workers=1, progress=False, **kwargs)


@pytest.mark.parametrize("d, count", [(1, 1), (2, 3), (3, 25), (4, 543), (5, 29281)])
def test_dag_counts_match_oeis_a003024(d, count):
    dags = enumerate_dags(d)
    assert len(dags) == count
    assert len(set(dags)) == count
    assert dags[0].num_edges == 0  # fewest edges first


def test_max_parents_keeps_exactly_the_dags_with_small_in_degree():
    for d, k in [(3, 1), (4, 1), (4, 2)]:
        want = {g for g in enumerate_dags(d) if max(len(p) for p in g) <= k}
        assert set(enumerate_dags(d, max_parents=k)) == want
    assert len(enumerate_dags(4, max_parents=0)) == 1


def test_dag_forms_agree_and_round_trip():
    g = DAG(((), (), (0, 1)))
    assert g == DAG({(0, 2), (1, 2)}, num_variables=3) == DAG("0->2, 1->2", num_variables=3) == ((), (), (0, 1))
    assert str(g) == "0->2, 1->2" and str(DAG("empty", num_variables=2)) == "empty"
    assert eval(repr(g), {"DAG": DAG}) == g
    assert pickle.loads(pickle.dumps(g)) == g and isinstance(pickle.loads(pickle.dumps(g)), DAG)
    assert DAG(g) is g and DAG(g, num_variables=3) is g  # immutable and already checked
    with pytest.raises(InvalidArgumentError, match="num_variables=4"):
        DAG(g, num_variables=4)
    assert g.topological_order()[-1] == 2
    assert g.adjacency().tolist() == [[False, False, True], [False, False, True], [False, False, False]]
    assert g.v_structures() == {(0, 2, 1)}
    assert markov_equivalent(DAG("0->1, 1->2", num_variables=3), DAG("2->1, 1->0", num_variables=3))
    assert not markov_equivalent(g, DAG("2->0, 1->2", num_variables=3))


def test_closed_form_evidence_equals_laplace_and_the_gaussian_integral():
    dag, x = _v_structure_data(num_data=60)
    family = BayesianNetworkFamily(3, alpha=0.5, noise_scale=1.2)
    for g in [dag, DAG("empty", num_variables=3), DAG("1->0, 2->0, 2->1", num_variables=3)]:
        exact = family.log_evidence(x, None, g).log_evidence
        bound = family.bind({"dag": g})
        laplace = log_evidence(bound, x, None, method="laplace").log_evidence
        assert laplace == pytest.approx(exact, abs=1e-6)
        assert gaussian_integral(ModelDensity(bound, x, None)) == pytest.approx(exact, abs=1e-6)
        local = sum(family.local_log_evidence(x, j, pa) for j, pa in enumerate(g))
        assert local == pytest.approx(exact, abs=1e-9)


@pytest.mark.parametrize("noise", ["known", "normal-gamma"])
def test_cached_local_terms_equal_a_fresh_solve_and_follow_the_data(noise):
    """The family caches each node's term for the data it last saw; the cached evidence must
    equal the uncached one (solving every node again), for every DAG, and change with the data."""
    _, x = _v_structure_data(num_data=80)
    family = BayesianNetworkFamily(3, noise=noise, alpha=0.7)
    table = _compare(family, x)
    for r in table.rows:
        fresh = bayesstruct.families.bayes_net._bayes_net_conjugate_form(x, dag=r.structure["dag"], **family.model_kwargs)
        assert fresh.values is None
        assert r.log_evidence("exact") == pytest.approx(float(fresh.log_evidence()), abs=1e-9)
    g = table.best["dag"]
    before = family.log_evidence(x, None, g).log_evidence
    x2 = x.clone()
    assert family.log_evidence(x2, None, g).log_evidence == pytest.approx(before, abs=1e-9)  # another tensor
    x2[:, 2] *= 2.0  # modified in place: the cache must not answer for the old values
    after = family.log_evidence(x2, None, g).log_evidence
    assert after == pytest.approx(BayesianNetworkFamily(3, noise=noise, alpha=0.7).log_evidence(x2, None, g).log_evidence,
                                  abs=1e-9)
    assert abs(after - before) > 1.0
    assert family.log_evidence(x, None, g).log_evidence == pytest.approx(before, abs=1e-9)
    # a hyperparameter given to bind is part of the key: alpha=5 is not alpha=0.7's cached term
    other = log_evidence(family.bind(g, alpha=5.0), x, None, method="exact").log_evidence
    assert other == pytest.approx(BayesianNetworkFamily(3, noise=noise, alpha=5.0).log_evidence(x, None, g).log_evidence,
                                  abs=1e-9)
    assert abs(other - before) > 0.1


def test_the_process_pool_equals_the_inline_enumeration():
    """``compare`` sends the 543 DAGs on 4 variables to the pool in chunks, each with the family
    once; the table must equal the inline one structure for structure."""
    _, x = _v_structure_data(num_data=50)
    x = torch.cat([x, x[:, :1] + torch.randn(50, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)], 1)
    family = BayesianNetworkFamily(4)
    inline = _compare(family, x)
    pooled = bayesstruct.compare(family, x, None, methods="exact", workers=2, progress=False)
    assert len(pooled.rows) == 543
    assert [r.structure for r in pooled.rows] == [r.structure for r in inline.rows]
    assert [r.log_evidence("exact") for r in pooled.rows] == pytest.approx([r.log_evidence("exact") for r in inline.rows],
                                                                          abs=1e-9)


def test_normal_gamma_evidence_is_the_student_t_marginal():
    dag, x = _v_structure_data(num_data=40)
    a0, b0, lam = 3.0, 2.0, 0.7
    family = BayesianNetworkFamily(3, noise="normal-gamma", tau_prior=(a0, b0), lam=lam)
    want = 0.0
    for j, pa in enumerate(dag):
        Phi = torch.cat([torch.ones(len(x), 1), x[:, list(pa)]], 1)
        cov = (b0 / a0) * (torch.eye(len(x)) + Phi @ Phi.T / lam)
        want += float(pyro.distributions.MultivariateStudentT(torch.tensor(2 * a0), torch.zeros(len(x)),
                                                              torch.linalg.cholesky(cov)).log_prob(x[:, j]))
    assert family.log_evidence(x, None, dag).log_evidence == pytest.approx(want, abs=1e-8)


def test_v_structure_is_recovered():
    dag, x = _v_structure_data()
    table = _compare(BayesianNetworkFamily(3), x)
    assert len(table.rows) == 25
    assert table.best["dag"] == dag  # a v-structure is alone in its Markov equivalence class
    P = edge_posterior(table)
    assert P[0, 2] > 0.9 and P[1, 2] > 0.9
    assert P.shape == (3, 3) and torch.all(P.diagonal() == 0)
    assert sum(r.posterior_probability for r in table.rows) == pytest.approx(1.0)


def test_independent_data_prefer_the_empty_graph():
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    table = _compare(BayesianNetworkFamily(3), x)
    assert table.best["dag"].num_edges == 0
    assert edge_posterior(table).max() < 0.2


def test_sparsity_prior_shifts_mass_to_fewer_edges():
    dag, x = _v_structure_data(num_data=15, seed=3)
    family = BayesianNetworkFamily(3)
    prior = dag_prior("sparsity", rho=0.1)
    assert prior({"dag": dag}) == pytest.approx(0.1**2 * 0.9)
    uniform, sparse = _compare(family, x), _compare(family, x, structure_prior=prior)
    mean_edges = lambda t: sum(r.posterior_probability * r.structure["dag"].num_edges for r in t.rows)  # noqa: E731
    assert mean_edges(sparse) < mean_edges(uniform)
    row = sparse.row({"dag": DAG("empty", num_variables=3)})
    assert row.log_prior > uniform.row({"dag": DAG("empty", num_variables=3)}).log_prior


@pytest.mark.parametrize("temperatures", [None, 4, [1.0, 0.3]])
def test_structure_mcmc_matches_the_enumeration(temperatures):
    """Plain and tempered chains against the exact edge posterior, within 5 batch-means standard
    errors (at least 0.03); with the swap ratio's sign flipped both tempered cases fail it."""
    dag = DAG("0->2, 1->2, 2->3", num_variables=4)
    W = torch.zeros(4, 4)
    W[0, 2], W[1, 2], W[2, 3] = 0.8, -0.7, 0.6
    x = simulate_linear_gaussian(dag, 200, weights=W, seed=1)
    family = BayesianNetworkFamily(4)
    table = _compare(family, x)
    exact = edge_posterior(table)
    assert 0.1 < exact[0, 3] < 0.9  # an uncertain edge, so the check has teeth
    samples = StructureMCMC(family, x, seed=0, temperatures=temperatures).run(20000, warmup=500, progress=False)
    se = samples.edge_posterior_stderr()
    assert torch.all((edge_posterior(samples) - exact).abs() <= torch.clamp(5 * se, min=0.03))
    assert 0.05 < samples.acceptance_rate < 0.9
    assert (samples.swap_rate is None) == (temperatures is None)
    if temperatures is not None:
        assert 0.05 < samples.swap_rate < 1.0
    for g, score in list(zip(samples.dags, samples.log_scores))[:200]:  # every state a valid DAG, scored exactly
        assert DAG(tuple(g)) == g
        assert score == pytest.approx(table.row({"dag": g}).log_evidence("exact"), abs=1e-8)


def test_acceptance_and_swap_rates_count_only_the_recorded_steps():
    """As SuperpositionSamples: warm-up and earlier runs do not enter a run's rates. A
    second sampler replaying the same seed and counting its own steps gives the reference."""
    _, x = _v_structure_data(num_data=50)
    family = BayesianNetworkFamily(3)
    mcmc = StructureMCMC(family, x, seed=3, temperatures=3)
    mcmc.run(50, warmup=400, progress=False)
    p0, a0, sp0, sa0 = mcmc.proposed, mcmc.accepted, mcmc.swaps_proposed, mcmc.swaps_accepted
    samples = mcmc.run(300, progress=False)
    assert samples.acceptance_rate == (mcmc.accepted - a0) / (mcmc.proposed - p0)
    assert samples.swap_rate == (mcmc.swaps_accepted - sa0) / (mcmc.swaps_proposed - sp0)
    replay = StructureMCMC(family, x, seed=3, temperatures=3)
    for _ in range(450):
        replay.step()
    accepted = sum(replay.step() for _ in range(300))
    assert samples.acceptance_rate == accepted / 300
    assert samples.acceptance_rate != mcmc.accepted / mcmc.proposed  # the lifetime rate differs here


def test_tempered_samples_pool_and_report_their_swap_rate():
    _, x = _v_structure_data(num_data=50)
    family = BayesianNetworkFamily(3)
    runs = [StructureMCMC(family, x, seed=s, temperatures=3).run(300, progress=False) for s in (0, 1)]
    pooled = DAGSamples.concat(runs)
    assert pooled.swap_rate == pytest.approx((runs[0].swap_rate + runs[1].swap_rate) / 2)
    assert pooled.to_dict()["swap_rate"] == pooled.swap_rate
    assert DAGSamples.concat([runs[0], StructureMCMC(family, x).run(10, progress=False)]).swap_rate is None
    assert StructureMCMC(family, x, temperatures=3).betas == [1.0, 0.5, 0.25]
    for bad in ([0.5, 0.25], [1.0, 1.5], "hot", 0):
        with pytest.raises(InvalidArgumentError, match="temperatures"):
            StructureMCMC(family, x, temperatures=bad)


def test_structure_mcmc_respects_max_parents_and_is_seeded():
    _, x = _v_structure_data(num_data=50)
    family = BayesianNetworkFamily(3, max_parents=1)
    a = StructureMCMC(family, x, seed=4).run(300, progress=False)
    b = StructureMCMC(family, x, seed=4).run(300, progress=False)
    assert a.dags == b.dags
    assert all(max(len(p) for p in g) <= 1 for g in a.dags)


@pytest.mark.parametrize("d", [0, 6, -1, 2.5, True])
def test_enumeration_rejects_bad_num_variables(d):
    with pytest.raises(InvalidArgumentError, match="num_variables"):
        enumerate_dags(d)


def test_a_repeated_edge_is_refused_in_every_form():
    # parent lists refused a repeated parent already; a label now refuses a repeated edge, naming it
    with pytest.raises(InvalidArgumentError, match=r"`dag\[1\]` repeats a parent"):
        DAG(((), (0, 0)))
    for label, edge in [("0->1, 0->1", "0->1"), ("0 -> 1,0->1", "0->1"), ("0->2, 1->2, 0->2", "0->2")]:
        with pytest.raises(InvalidArgumentError, match=f"`dag` repeats the edge {edge}"):
            DAG(label, num_variables=3)
    # the edge-set path checks it too (a list of edges reaches it from the label parser)
    with pytest.raises(InvalidArgumentError, match="repeats the edge 1->2"):
        DAG._from_edge_set([(1, 2), (0, 2), (1, 2)], 3)
    # distinct edges, and the two directions of a pair (a cycle, not a repeat), are unaffected
    assert DAG("0->2, 1->2", num_variables=3).edges == ((0, 2), (1, 2))
    with pytest.raises(InvalidArgumentError, match="cycle"):
        DAG("0->1, 1->0", num_variables=2)


@pytest.mark.parametrize("value, num_variables, edge_set, label", [
    ([(0, 1)], 2, "{(0, 1)}", "'0->1'"),
    (((0, 1),), 2, "{(0, 1)}", "'0->1'"),
    ([[0, 2], [1, 2]], 3, "{(0, 2), (1, 2)}", "'0->2, 1->2'"),
    ([(1, 0)], 2, "{(1, 0)}", "'1->0'"),                        # parent 1 "outside" a 1-node graph
    ([(1, 2), (0, 2), (0, 1)], 3, "{(1, 2), (0, 2), (0, 1)}", "'1->2, 0->2, 0->1'"),  # a "cycle"
    ([(0, 1)], None, "{(0, 1)}", "'0->1'"),
])
def test_a_list_of_pairs_hints_at_the_edge_forms(value, num_variables, edge_set, label):
    d = "d" if num_variables is None else num_variables
    with pytest.raises(InvalidArgumentError) as info:
        DAG(value, num_variables=num_variables)
    msg = str(info.value)
    assert "read as parent lists" in msg
    assert f"DAG({edge_set}, num_variables={d})" in msg and f"DAG({label}, num_variables={d})" in msg
    assert msg.count("To give edges") == 0  # the generic tip is replaced, not repeated
    if num_variables is not None:  # the suggested forms are the graph meant
        pairs = tuple(sorted(map(tuple, value)))
        assert DAG(set(map(tuple, value)), num_variables).edges == pairs
        assert DAG(label.strip("'"), num_variables).edges == pairs


def test_a_list_of_pairs_repeating_a_pair_gets_a_hint_without_the_repeat():
    with pytest.raises(InvalidArgumentError, match=r"DAG\('0->1', num_variables=2\) \(give each edge once"):
        DAG([(0, 1), (0, 1)], num_variables=2)


def test_the_edge_hint_is_only_for_lists_of_pairs():
    for value in (((), (), (0, 5)), ((), (0, 0)), ((1, 0, 2), (), ()), ((1,), (0,))):
        with pytest.raises(InvalidArgumentError) as info:
            DAG(value)
        assert "read as parent lists" not in str(info.value)
    assert "To give edges" in str(pytest.raises(InvalidArgumentError, DAG, ((), (), (0, 5))).value)
    # the documented forms still read as before
    assert DAG(((), (), (0, 1))) == ((), (), (0, 1))
    assert DAG([[], [0]], num_variables=2).edges == ((0, 1),)
    assert DAG(((), (0,), (0, 1))).edges == ((0, 1), (0, 2), (1, 2))


def test_bad_structures_name_the_argument():
    with pytest.raises(InvalidArgumentError, match="cycle 0 -> 1 -> 0"):
        DAG(((1,), (0,)))
    with pytest.raises(InvalidArgumentError, match=r"dag\[2\].*outside"):
        DAG(((), (), (0, 5)))
    with pytest.raises(InvalidArgumentError, match="self-loop"):
        DAG({(1, 1)}, num_variables=2)
    with pytest.raises(InvalidArgumentError, match="outside"):
        DAG({(0, 3)}, num_variables=3)
    family = BayesianNetworkFamily(3, max_parents=1)
    with pytest.raises(InvalidArgumentError, match="num_variables=3"):
        family.validate_structure({"dag": ((), ())})
    with pytest.raises(InvalidArgumentError, match="max_parents"):
        family.validate_structure("0->2, 1->2")
    with pytest.raises(InvalidArgumentError, match="cycle"):
        family.validate_structure({(0, 1), (1, 2), (2, 0)})
    with pytest.raises(InvalidArgumentError, match="num_variables"):
        BayesianNetworkFamily(0)
    with pytest.raises(InvalidArgumentError, match="rho"):
        dag_prior("sparsity", rho=1.5)
    with pytest.raises(InvalidArgumentError, match="kind"):
        dag_prior("dense")


def test_bad_data_names_the_argument():
    family = BayesianNetworkFamily(3)
    x = torch.randn(20, 3)
    with pytest.raises(InvalidArgumentError, match=r"`x` must have shape \(N, 3\)"):
        _compare(family, torch.randn(20, 4))
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(InvalidArgumentError, match="`x` contains 1 NaN"):
        _compare(family, bad)
    with pytest.raises(InvalidArgumentError, match="`y` must be None"):
        family.log_evidence(x, x[:, 0], "0->1")
    with pytest.raises(InvalidArgumentError, match="`x` must have shape"):
        StructureMCMC(family, x[:, :2])
    with pytest.raises(InvalidArgumentError, match="`node`"):
        family.local_log_evidence(x, 3, ())
    with pytest.raises(InvalidArgumentError, match="structures="):
        BayesianNetworkFamily(6).structures()


def test_large_families_compare_given_structures():
    x = torch.randn(30, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    family = BayesianNetworkFamily(6)
    table = _compare(family, x, structures=[DAG("empty", num_variables=6), "0->1, 1->2"])
    assert {str(r.structure["dag"]) for r in table.rows} == {"empty", "0->1, 1->2"}


def test_prior_predictive_samples_every_column():
    bound = BayesianNetworkFamily(3).bind("0->2, 1->2")
    draws = pyro.infer.Predictive(bound, num_samples=4)(None, num_data=5)
    assert [draws[f"x_{j}"].shape for j in range(3)] == [torch.Size([4, 5])] * 3
    assert draws["w_2"].shape[-1] == 3
    assert set(itertools.chain(draws)) == {"w_0", "w_1", "w_2", "x_0", "x_1", "x_2"}


def test_compare_refuses_bad_data_before_any_evaluation():
    class NoWork:  # an executor that fails the test if anything is submitted
        def submit(self, *args, **kwargs):
            raise AssertionError("a structure was evaluated before the data were checked")

    fam = BayesianNetworkFamily(3)
    x = torch.randn(20, 2, dtype=torch.float64)   # two columns for three variables
    with pytest.raises(InvalidArgumentError, match=r"`x` must have shape \(N, 3\)"):
        bayesstruct.compare(fam, x, None, methods="exact", executor=NoWork(), progress=False)


def test_table_saves_as_json_with_the_dags_as_labels(tmp_path):
    import json

    from bayesstruct.io import write_json

    x = torch.randn(30, 2, dtype=torch.float64)
    table = bayesstruct.compare(BayesianNetworkFamily(2), x, None, methods="exact", workers=1, progress=False)
    rows = json.loads(write_json(table, tmp_path / "t.json").read_text())["structures"]
    assert [DAG(r["structure"]["dag"], num_variables=2) for r in rows] == [r.structure["dag"] for r in table.rows]


def test_dag_samples_repr_is_short():
    x = simulate_linear_gaussian(DAG("0->1", num_variables=2), 50, seed=0)
    draws = StructureMCMC(BayesianNetworkFamily(2), x, seed=0).run(500, progress=False)
    text = repr(draws)
    assert text.startswith("DAGSamples(500 draws on 2 variables, acceptance ") and len(text) < 150
    best, p = next(iter(draws.posterior_probabilities().items()))
    assert f"; {best}: {p:.3f}" in text
