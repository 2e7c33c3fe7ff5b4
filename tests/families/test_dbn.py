"""Correctness checks of the cascading-IBP structure sampler.

With no data the chain must sample the CIBP prior. We compare thinned chain draws with
independent draws of ``CascadingIBP.sample()``. Tolerances are 4 standard errors of the
difference of the two means: for the prior draws sd/sqrt(n); for the (autocorrelated)
chain the batch-means standard error (30 batches of 100 thinned draws: with thinning 10
the batches are ~1000 iterations long, far longer than the autocorrelation time -- the
chain includes a full-prior-redraw move chosen with probability 0.2/n(Z); the flip-heavy
chain is thinned by 50), which is
consistent for the Monte Carlo error of a geometrically ergodic chain. Seeds are fixed.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families.dbn import CIBPSampler, CIBPSamples, labelled_log_prob, structure_stats
from bayesstruct.priors import CascadingIBP

ALPHA, BETA, NUM_VISIBLE = 1.0, 1.0, 3
N_DRAWS, THIN, N_BATCHES = 3000, 10, 30


@pytest.fixture(scope="module")
def prior_stats():
    torch.manual_seed(1234)
    cibp = CascadingIBP(ALPHA, BETA, NUM_VISIBLE)
    draws = [structure_stats(cibp.sample()) for _ in range(N_DRAWS)]
    depth = np.array([d for d, _, _ in draws])
    k1 = np.array([w[0] if w else 0 for _, w, _ in draws])
    edges = np.array([e for _, _, e in draws])
    return {"depth": depth, "k1": k1, "edges": edges}


def _chain_stats(thin=THIN, **kwargs):
    out = CIBPSampler(ALPHA, BETA, NUM_VISIBLE, seed=7, **kwargs).run(N_DRAWS, warmup=1000, progress=False, thin=thin)
    return {"depth": out.depth, "k1": out.width(1), "edges": out.num_edges}, out


def _batch_se(x):
    b = np.asarray(x, dtype=np.float64).reshape(N_BATCHES, -1).mean(1)
    return b.std(ddof=1) / math.sqrt(N_BATCHES)


def _z_scores(prior, chain):
    """z = (chain mean - prior mean) / se for depth, K_1, edges and the indicators depth == 0, 1, 2."""
    series = {}
    for key in ("depth", "k1", "edges"):
        series[key] = (prior[key], chain[key])
    for d in (0, 1, 2):
        series[f"P(depth={d})"] = ((prior["depth"] == d).astype(float), (chain["depth"] == d).astype(float))
    z = {}
    for key, (p, c) in series.items():
        se = math.sqrt(p.var(ddof=1) / len(p) + _batch_se(c) ** 2)
        z[key] = (c.mean() - p.mean()) / se
    return z


def test_labelled_log_prob_is_class_log_prob_plus_labelling_correction():
    torch.manual_seed(0)
    cibp = CascadingIBP(1.3, 0.7, 4)
    for _ in range(30):
        layers = cibp.sample()
        correction = 0.0
        for Z in layers[:-1]:
            _, k_h = torch.unique(Z, dim=1, return_counts=True)
            correction += sum(math.lgamma(c + 1.0) for c in k_h.tolist()) - math.lgamma(Z.shape[1] + 1.0)
        expected = cibp.log_prob(layers).item() + correction
        assert labelled_log_prob(layers, 1.3, 0.7) == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_prior_depth_is_small_for_the_check_parameters(prior_stats):
    # P(depth = 0) = P(K_1 = 0) = exp(-alpha * H_3) exactly; the cascade is shallow.
    p0 = math.exp(-ALPHA * (1 + 1 / 2 + 1 / 3))
    p_hat = (prior_stats["depth"] == 0).mean()
    assert abs(p_hat - p0) < 4 * math.sqrt(p0 * (1 - p0) / N_DRAWS)
    assert prior_stats["depth"].max() < 40


def test_chain_without_data_samples_the_cibp_prior(prior_stats):
    chain, out = _chain_stats()
    z = _z_scores(prior_stats, chain)
    assert all(abs(v) < 4 for v in z.values()), z
    for kind in ("flip", "resample"):
        assert 0.05 < out.acceptance[kind] < 1.0, out.acceptance


def test_flip_heavy_chain_samples_the_cibp_prior(prior_stats):
    # Depth changes only through the (rare) resample move here, so the chain mixes more
    # slowly in depth: thin 50 makes the batches 5000 iterations long.
    chain, out = _chain_stats(thin=50, move_probs={"flip": 0.95, "resample": 0.05})
    z = _z_scores(prior_stats, chain)
    assert all(abs(v) < 4 for v in z.values()), z


def test_dropping_the_proposal_correction_fails_the_check(prior_stats):
    chain, out = _chain_stats(_drop_proposal_correction=True)
    z = _z_scores(prior_stats, chain)
    assert max(abs(v) for v in z.values()) > 4, z
    assert z["depth"] > 4  # the wrong chain prefers deep structures


def test_flip_moves_alone_sample_the_exact_conditional_law():
    """Flips keep all widths; given the widths the labelled prior makes the columns of
    each Z_m i.i.d. with P(column c) ∝ Γ(m)Γ(N-m+β), m = |c| >= 1, so the column sum
    has law P(m) ∝ C(N, m) Γ(m) Γ(N-m+β) on m = 1..N."""
    alpha, beta, N = 1.0, 0.6, 4
    init = [torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]), torch.ones(2, 1), torch.zeros(1, 0)]
    s = CIBPSampler(alpha, beta, N, seed=3, move_probs={"flip": 1.0}, init=init)
    m_vals = np.arange(1, N + 1)
    law = np.array([math.comb(N, m) * math.exp(math.lgamma(m) + math.lgamma(N - m + beta)) for m in m_vals])
    law /= law.sum()
    sums = []
    for _ in range(4000):
        for _ in range(5):
            s.step()
        sums.extend(s._Z[0].sum(0).tolist())
        assert [z.shape for z in s._Z] == [(4, 2), (2, 1), (1, 0)]
    counts = np.bincount(np.array(sums), minlength=N + 1)[1:]
    # 8000 column sums, correlated within ~5 flips' worth of steps: a chi-square test
    # with a generous threshold (the statistic is inflated by at most the IAT).
    chi2 = ((counts - law * counts.sum()) ** 2 / (law * counts.sum())).sum()
    assert chi2 < 4 * stats.chi2.ppf(0.9999, df=N - 1), (counts / counts.sum(), law)
    # Z_2 is 2x1 with column sum m in {1, 2}; its column must stay non-empty.
    assert int(s._Z[1].sum()) >= 1


def test_log_likelihood_is_plugged_in():
    """A likelihood 0 on depth <= 1 and -inf above restricts the prior to depth <= 1:
    P(depth=0 | depth<=1) = p0 / (p0 + p1), p0 = e^{-H_3}, p1 = sum_K Poisson(K; H_3) e^{-H_K}."""
    h3 = 1 + 1 / 2 + 1 / 3
    p0 = math.exp(-h3)
    p1 = sum(stats.poisson.pmf(k, h3) * math.exp(-sum(1 / i for i in range(1, k + 1))) for k in range(1, 60))
    target = p0 / (p0 + p1)

    def ll(layers):
        assert all(isinstance(z, torch.Tensor) for z in layers)
        return 0.0 if len(layers) <= 2 else -math.inf

    s = CIBPSampler(ALPHA, BETA, NUM_VISIBLE, log_likelihood=ll, seed=5, init=[torch.zeros(3, 0)])
    out = s.run(2000, warmup=200, progress=False, thin=5)
    assert out.depth.max() <= 1
    x = (out.depth == 0).astype(float)
    se = x.reshape(20, -1).mean(1).std(ddof=1) / math.sqrt(20)
    assert abs(x.mean() - target) < 4 * max(se, 0.005), (x.mean(), target)


def test_seeded_runs_are_reproducible_and_output_is_consistent():
    a = CIBPSampler(1.0, 1.0, 3, seed=11).run(50, warmup=10, progress=False)
    b = CIBPSampler(1.0, 1.0, 3, seed=11).run(50, warmup=10, progress=False)
    assert isinstance(a, CIBPSamples)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.num_edges, b.num_edges)
    assert a.widths == b.widths
    assert all(len(w) == d for w, d in zip(a.widths, a.depth))
    s = CIBPSampler(1.0, 1.0, 3, seed=2)
    for _ in range(200):
        s.step()
        state = s.state
        # every visited state is a valid cascade and log_target is the labelled prior
        assert s.log_target == pytest.approx(labelled_log_prob(state, 1.0, 1.0))
        CascadingIBP(1.0, 1.0, 3).log_prob(state)


def test_invalid_arguments():
    with pytest.raises(InvalidArgumentError, match="alpha"):
        CIBPSampler(-1.0, 1.0, 3)
    with pytest.raises(InvalidArgumentError, match="move_probs"):
        CIBPSampler(1.0, 1.0, 3, move_probs={"jump": 1.0})
    with pytest.raises(InvalidArgumentError):
        CIBPSampler(1.0, 1.0, 3, init=[torch.zeros(3, 1)])  # empty column / no terminating layer
    with pytest.raises(InvalidArgumentError, match="log_likelihood"):
        CIBPSampler(1.0, 1.0, 3, log_likelihood=3.0)
