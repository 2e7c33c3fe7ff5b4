"""Tests of the CIBP nonlinear Gaussian belief network sampler (bayesstruct.families.belief_net).

* The API contract (state_dict round trip continues bit for bit; stats/structure/run/fantasies).
* With no data the chain's law over structures equals the CIBP prior (depth, K_1, edges), compared
  with independent CascadingIBP draws; tolerance: 4 standard errors of the difference of means
  (prior: sd/sqrt(n); chain: batch means over 30 batches, each batch far longer than the chain's
  integrated autocorrelation time, measured at ~4 sweeps for these statistics).
* Conditionals against closed forms: the batched Bayesian linear regression (weights and biases)
  against a direct dense computation; the weight-integrated edge likelihood ratio against two full
  marginal likelihoods; the alpha/beta MH chain against 2-D quadrature of its target; the hidden
  activation MH chain against 1-D quadrature of the exact conditional.
* Bad input gets clear errors.
"""

import copy
import json
import math
import pickle

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import expit

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families.belief_net import (BeliefNetSampler, BeliefNetSamples, _gamma_logpdf,
                                             bayesian_linear_regressions)
from bayesstruct.families.dbn import labelled_log_prob, structure_stats
from bayesstruct.priors import CascadingIBP


def _toy_data(n=40, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d))


# ---------------------------------------------------------------- API contract
@pytest.mark.parametrize("with_data", [True, False])
def test_state_dict_round_trip_continues_identically(with_data):
    data = _toy_data() if with_data else None
    kw = {} if with_data else {"num_visible": 4}
    s = BeliefNetSampler(data, seed=3, **kw)
    for _ in range(3):
        s.sweep()
    d = pickle.loads(pickle.dumps(s.state_dict()))
    assert not any(torch.is_tensor(v) for v in d.values())
    r = BeliefNetSampler.from_state_dict(torch.as_tensor(data) if with_data else None, d)
    assert r.stats() == s.stats()
    for _ in range(4):
        s.sweep()
        r.sweep()
        assert r.stats() == s.stats()
    assert all(torch.equal(a, b) for a, b in zip(r.structure, s.structure))
    assert r.acceptance == pytest.approx(s.acceptance, nan_ok=True)
    assert torch.equal(r.fantasies(5, seed=1), s.fantasies(5, seed=1))
    # the state dict is a snapshot: sweeping on does not alter it
    d2 = s.state_dict()
    s.sweep()
    assert d2["num_sweeps"] == 7 and s.state_dict()["num_sweeps"] == 8


def test_state_saved_before_the_joint_hyper_move_continues_as_it_ran():
    """A checkpoint written before ``hyper_resample_per_sweep`` and the ``resample_hyper`` counts
    existed loads with the move off, so it continues exactly as the older sampler would."""
    data = _toy_data()
    s = BeliefNetSampler(data, seed=4, hyper_resample_per_sweep=0, init="prior", birth_death_per_sweep=10)
    s.sweep()
    old = s.state_dict()
    del old["settings"]["hyper_resample_per_sweep"]
    for key in ("proposed", "accepted"):
        del old[key]["resample_hyper"]
    r = BeliefNetSampler.from_state_dict(data, old)
    assert r.hyper_resample_per_sweep == 0 and r.proposed["resample_hyper"] == 0
    for _ in range(2):
        s.sweep()
        r.sweep()
    assert r.stats() == s.stats()


def test_from_state_dict_rejects_corrupt_or_mismatched_state():
    data = _toy_data()
    s = BeliefNetSampler(data, seed=0)
    s.sweep()
    good = s.state_dict()

    def corrupt(fn):
        d = copy.deepcopy(good)
        fn(d)
        return d

    with pytest.raises(InvalidArgumentError, match="missing"):
        BeliefNetSampler.from_state_dict(data, corrupt(lambda d: d.pop("Z")))
    with pytest.raises(InvalidArgumentError, match="Z\\[0\\]"):
        BeliefNetSampler.from_state_dict(data, corrupt(lambda d: d["Z"].__setitem__(0, d["Z"][0][:-1])))
    with pytest.raises(InvalidArgumentError, match="nu"):
        BeliefNetSampler.from_state_dict(data, corrupt(lambda d: d["nu"].__setitem__(0, -1.0)))
    with pytest.raises(InvalidArgumentError, match="rng"):
        BeliefNetSampler.from_state_dict(data, corrupt(lambda d: d.__setitem__("rng", {"state": 3})))
    with pytest.raises(InvalidArgumentError, match="alpha"):
        BeliefNetSampler.from_state_dict(data, corrupt(lambda d: d.__setitem__("alpha", 0.0)))
    with pytest.raises(InvalidArgumentError, match="checksum"):
        BeliefNetSampler.from_state_dict(1.0 - data, good)
    with pytest.raises(InvalidArgumentError, match="shape"):
        BeliefNetSampler.from_state_dict(data[:10], good)
    with pytest.raises(InvalidArgumentError, match="dict"):
        BeliefNetSampler.from_state_dict(data, [1, 2])


def test_public_outputs_are_consistent():
    data = torch.as_tensor(_toy_data(30, 6), dtype=torch.float32)
    s = BeliefNetSampler(data, seed=1)
    out = s.run(6, warmup=2, thin=2, progress=False)
    assert isinstance(out, BeliefNetSamples)
    for arr in (out.depth, out.num_edges, out.alpha, out.beta, out.log_joint):
        assert arr.shape == (6,)
    assert [len(w) for w in out.widths] == out.depth.tolist()
    assert np.array_equal(out.width(1), [w[0] if w else 0 for w in out.widths])
    assert np.all(out.width(out.depth.max() + 1) == 0)
    st = s.stats()
    assert st["depth"] == out.depth[-1] and st["widths"] == out.widths[-1]
    assert st["log_joint"] == pytest.approx(out.log_joint[-1])
    # the structure is a valid cascade in CascadingIBP.sample format
    layers = s.structure
    assert layers[0].shape[0] == 6 and layers[-1].shape[1] == 0
    assert math.isfinite(float(CascadingIBP(st["alpha"], st["beta"], 6).log_prob(layers)))
    assert st["num_edges"] == structure_stats(layers)[2]
    assert set(out.acceptance) >= {"edge", "birth", "death", "resample", "alpha", "beta"}
    assert json.loads(json.dumps(out.to_dict()))["widths"] == out.widths
    f = s.fantasies(7, seed=0)
    assert f.shape == (7, 6) and bool(((f >= 0) & (f <= 1)).all())
    assert torch.equal(f, s.fantasies(7, seed=0))
    # log_joint is the sum of its parts (checked against an independent recomputation)
    assert st["log_joint"] == pytest.approx(_independent_log_joint(s), rel=1e-10)


def _independent_log_joint(s):
    """log joint recomputed from the public views only (no cached residuals)."""
    x = s._y_obs
    Ys = [x] + [y for y in s._Y[1:]]
    Ws, bs, nus = s.weights, s.biases, s.precisions
    out = 0.0
    for c, Y in enumerate(Ys):
        mean = bs[c].numpy()[None, :] + (expit(Ys[c + 1]) @ Ws[c].numpy().T if c + 1 < len(Ys) else 0.0)
        out += stats.norm(mean, 1 / math.sqrt(nus[c])).logpdf(Y).sum()
        out += stats.gamma(s.precision_prior[0], scale=1 / s.precision_prior[1]).logpdf(nus[c])
        out += stats.norm(0, 1 / math.sqrt(s.bias_precision)).logpdf(bs[c].numpy()).sum()
        Z = s.structure[c].numpy().astype(bool)
        out += stats.norm(0, 1 / math.sqrt(s.weight_precision)).logpdf(Ws[c].numpy()[Z]).sum()
    out += labelled_log_prob(s.structure, s.alpha, s.beta)
    if s.learn_alpha_beta:
        out += stats.gamma(s.alpha_prior[0], scale=1 / s.alpha_prior[1]).logpdf(s.alpha)
        out += stats.gamma(s.beta_prior[0], scale=1 / s.beta_prior[1]).logpdf(s.beta)
    return out


# ---------------------------------------------------------------- prior-only chain = CIBP prior
ALPHA, BETA, NUM_VISIBLE = 1.0, 1.0, 3
N_PRIOR, N_CHAIN, N_BATCHES = 2500, 1500, 30


@pytest.fixture(scope="module")
def prior_stats():
    torch.manual_seed(1234)
    cibp = CascadingIBP(ALPHA, BETA, NUM_VISIBLE)
    draws = [structure_stats(cibp.sample()) for _ in range(N_PRIOR)]
    return {
        "depth": np.array([d for d, _, _ in draws]),
        "k1": np.array([w[0] if w else 0 for _, w, _ in draws]),
        "edges": np.array([e for _, _, e in draws]),
    }


def _z_scores(prior, chain):
    z = {}
    series = {k: (prior[k], chain[k]) for k in ("depth", "k1", "edges")}
    for d in (0, 1, 2):
        series[f"P(depth={d})"] = ((prior["depth"] == d).astype(float), (chain["depth"] == d).astype(float))
    for key, (p, c) in series.items():
        b = np.asarray(c, dtype=np.float64).reshape(N_BATCHES, -1).mean(1)
        se = math.sqrt(p.var(ddof=1) / len(p) + b.var(ddof=1) / N_BATCHES)
        z[key] = (c.mean() - p.mean()) / se
    return z


def _prior_chain(seed=7, **kw):
    # 10 birth/death proposals per sweep (the default is 40): the same kernels, cheaper to run
    kw.setdefault("birth_death_per_sweep", 10)
    s = BeliefNetSampler(None, ALPHA, BETA, learn_alpha_beta=False, num_visible=NUM_VISIBLE, seed=seed, **kw)
    out = s.run(N_CHAIN, warmup=100, progress=False)
    return {"depth": out.depth, "k1": out.width(1), "edges": out.num_edges}, out


def test_chain_without_data_samples_the_cibp_prior(prior_stats):
    chain, out = _prior_chain()
    z = _z_scores(prior_stats, chain)
    assert all(abs(v) < 4 for v in z.values()), z
    for kind in ("edge", "birth", "death", "resample"):
        assert 0.05 < out.acceptance[kind] < 1.0, out.acceptance


@pytest.mark.slow
def test_birth_death_and_edges_alone_sample_the_cibp_prior(prior_stats):
    # Without the cascade-redraw move, depth changes only by unit births/deaths at the top.
    chain, _ = _prior_chain(seed=11, resample_per_sweep=0, birth_death_per_sweep=20)
    z = _z_scores(prior_stats, chain)
    assert all(abs(v) < 4 for v in z.values()), z


def _regenerate_visible(s):
    """Draw the visible pre-activations from the model given the current state (Geweke's step)."""
    N, D = s._Y[0].shape
    mean = (expit(s._Y[1]) @ s._W[0].T if s.depth > 0 else np.zeros((N, D))) + s._b[0]
    s._Y[0] = mean + s.rng.standard_normal((N, D)) / math.sqrt(s._nu[0])
    s._refresh()


@pytest.mark.slow
def test_successive_conditional_simulator_recovers_the_prior(prior_stats):
    """Geweke (2004): alternating 'data | state' (a forward draw) with one MCMC sweep given the
    data leaves the joint law invariant, so the state's marginal is the prior. This exercises
    every data-dependent acceptance ratio (edges, births/deaths, cascade redraw, activations,
    Gibbs steps); a sign error in any of them shifts the structure or the parameters.
    Tolerance: 4 batch-means standard errors (30 batches of 100 sweeps)."""
    s = BeliefNetSampler(np.full((5, NUM_VISIBLE), 0.5), ALPHA, BETA, learn_alpha_beta=False, seed=3)
    rec = {"depth": [], "k1": [], "edges": [], "nu0": [], "b0": []}
    for i in range(3200):
        _regenerate_visible(s)
        s.sweep()
        if i >= 200:
            st = s.stats()
            rec["depth"].append(st["depth"])
            rec["k1"].append(st["widths"][0] if st["widths"] else 0)
            rec["edges"].append(st["num_edges"])
            rec["nu0"].append(s._nu[0])
            rec["b0"].append(s._b[0][0])
    chain = {k: np.asarray(v, dtype=np.float64) for k, v in rec.items()}
    z = _z_scores(prior_stats, chain)
    # parameters against their priors: nu_0 ~ Gamma(1, 1) (mean 1), b_0j ~ N(0, 1)
    for key, ref in (("nu0", 1.0), ("b0", 0.0)):
        b = chain[key].reshape(N_BATCHES, -1).mean(1)
        z[key] = (chain[key].mean() - ref) / (b.std(ddof=1) / math.sqrt(N_BATCHES))
    assert all(abs(v) < 4 for v in z.values()), z


@pytest.mark.slow
def test_prior_chain_with_learned_alpha_beta_keeps_the_hyperpriors():
    """With no data and alpha, beta learned, (alpha, beta, Z) targets Gamma x Gamma x CIBP, so the
    alpha and beta marginals are the Gamma(20, 20) hyperpriors (mean 1, sd 0.22) and the depth
    law is the CIBP mixed over them (reference: two-stage direct draws)."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    ref_depth = []
    for _ in range(2500):
        a, b = rng.gamma(20.0, 1 / 20.0), rng.gamma(20.0, 1 / 20.0)
        ref_depth.append(structure_stats(CascadingIBP(a, b, NUM_VISIBLE).sample())[0])
    ref_depth = np.asarray(ref_depth, dtype=np.float64)
    # 6000 sweeps (30 batches of 200): with the joint alpha/beta/cascade move the depth makes
    # excursions of a few hundred sweeps, and batches of 100 underestimated the standard error
    s = BeliefNetSampler(None, num_visible=NUM_VISIBLE, seed=9, alpha_prior=(20.0, 20.0), beta_prior=(20.0, 20.0),
                         birth_death_per_sweep=10)
    out = s.run(6000, warmup=200, progress=False)
    for x, ref, ref_se in ((out.alpha, 1.0, 0.0), (out.beta, 1.0, 0.0),
                           (out.depth.astype(float), ref_depth.mean(), ref_depth.std() / math.sqrt(2500))):
        b = x.reshape(N_BATCHES, -1).mean(1)
        se = math.sqrt(b.var(ddof=1) / N_BATCHES + ref_se**2)
        assert abs(x.mean() - ref) < 4 * se, (x.mean(), ref, se)
    assert abs(out.alpha.std() - math.sqrt(20) / 20) < 0.15 * math.sqrt(20) / 20


def test_n_zero_data_is_the_prior_only_chain():
    a = BeliefNetSampler(np.zeros((0, 3)), seed=2)
    b = BeliefNetSampler(None, num_visible=3, seed=2)
    for _ in range(5):
        a.sweep()
        b.sweep()
    assert a.stats() == b.stats()


# ---------------------------------------------------------------- conditionals vs closed forms
def test_bayesian_linear_regressions_match_dense_posterior():
    rng = np.random.default_rng(0)
    N, P, C = 25, 4, 3
    X, T = rng.random((N, P)), rng.standard_normal((N, C))
    mask = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    prior_prec, nu = np.array([1.0, 2.0, 0.5, 3.0]), 1.7
    mean, draw, log_ml = bayesian_linear_regressions(X, T, mask, prior_prec, nu, np.random.default_rng(1))
    for i in range(C):
        S = mask[i]
        Xs = X[:, S]
        A = np.diag(prior_prec[S]) + nu * Xs.T @ Xs
        m = np.linalg.solve(A, nu * Xs.T @ T[:, i])
        np.testing.assert_allclose(mean[i, S], m, rtol=1e-10)
        assert np.all(mean[i, ~S] == 0) and np.all(draw[i, ~S] == 0)
        cov = np.eye(N) / nu + Xs @ np.diag(1 / prior_prec[S]) @ Xs.T
        ref = stats.multivariate_normal(np.zeros(N), cov).logpdf(T[:, i])
        assert log_ml[i] == pytest.approx(ref, rel=1e-10)
    # draws: mean and covariance of 20000 draws of regression 0 match N(m, A^-1) (4 se on the mean)
    reps = 20000
    Xr = X
    S = mask[0]
    A = np.diag(prior_prec[S]) + nu * X[:, S].T @ X[:, S]
    cov = np.linalg.inv(A)
    _, draws, _ = bayesian_linear_regressions(Xr, np.repeat(T[:, :1], reps, 1), np.repeat(mask[:1], reps, 0),
                                              prior_prec, nu, np.random.default_rng(2))
    d = draws[:, S]
    se = np.sqrt(np.diag(cov) / reps)
    assert np.all(np.abs(d.mean(0) - mean[0, S]) < 4 * se)
    # sample covariance: relative error of the variances ~ sqrt(2/reps) = 1%; allow 5%
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.all(np.abs(np.cov(d.T) - cov) < 0.05 * scale)


def test_edge_likelihood_ratio_is_a_ratio_of_marginal_likelihoods():
    s = BeliefNetSampler(_toy_data(), seed=0)
    rng = np.random.default_rng(5)
    N = 40
    e, u = rng.standard_normal(N), expit(rng.standard_normal(N))
    nu = 2.3
    gain, w_mean, w_prec = s._rank_one_gain(e, u, nu)
    _, _, ml1 = bayesian_linear_regressions(u[:, None], e[:, None], np.ones((1, 1), bool),
                                            np.array([s.weight_precision]), nu)
    ml0 = stats.norm(0, 1 / math.sqrt(nu)).logpdf(e).sum()
    assert gain == pytest.approx(ml1[0] - ml0, rel=1e-10)
    assert w_prec == pytest.approx(s.weight_precision + nu * u @ u)
    assert w_mean == pytest.approx(nu * (u @ e) / w_prec)


def test_alpha_beta_mh_samples_its_target_for_a_fixed_structure():
    """Structure fixed: the (alpha, beta) chain targets Gamma(a)Gamma(b) P_lab(Z | alpha, beta),
    whose means we get by quadrature on a grid. The alpha-marginal of the target, for fixed beta,
    is the conjugate Gamma(a + sum K_m, b + sum_m sum_n beta/(beta+n-1))."""
    s = BeliefNetSampler(None, num_visible=4, seed=4, alpha_prior=(2.0, 2.0), beta_prior=(3.0, 2.0))
    Z = s._Z
    grid = np.linspace(0.01, 6.0, 150)
    lp = np.array([[labelled_log_prob(Z, a, b) + _gamma_logpdf(a, 2.0, 2.0) + _gamma_logpdf(b, 3.0, 2.0)
                    for b in grid] for a in grid])
    p = np.exp(lp - lp.max())
    p /= p.sum()
    mean_a, mean_b = (p.sum(1) * grid).sum(), (p.sum(0) * grid).sum()
    sd_a = math.sqrt((p.sum(1) * grid**2).sum() - mean_a**2)
    sd_b = math.sqrt((p.sum(0) * grid**2).sum() - mean_b**2)
    n = 6000
    a_s, b_s = np.zeros(n), np.zeros(n)
    for i in range(n):
        s.update_alpha_beta()
        a_s[i], b_s[i] = s.alpha, s.beta
    for x, m, sd in ((a_s, mean_a, sd_a), (b_s, mean_b, sd_b)):
        bm = x.reshape(40, -1).mean(1)
        se = bm.std(ddof=1) / math.sqrt(40)
        assert abs(x.mean() - m) < 4 * se + 1e-3, (x.mean(), m, se)
        assert abs(x.std() - sd) < 0.1 * sd
    # the conjugate alpha conditional, as a sanity check of the formula in the docstring
    K = sum(z.shape[1] for z in Z)
    H = sum(sum(1.0 / (1.0 + i) for i in range(z.shape[0])) for z in Z)  # beta = 1
    la = np.array([labelled_log_prob(Z, a, 1.0) + _gamma_logpdf(a, 2.0, 2.0) for a in grid])
    pa = np.exp(la - la.max())
    pa /= pa.sum()
    assert (pa * grid).sum() == pytest.approx((2.0 + K) / (2.0 + H), rel=1e-3)  # quadrature error << 1e-3


def _find_inserted(big, small, m):
    """(m, p): hidden layer m of ``big`` has one unit more than in ``small``, at position p."""
    Zb, Zs = big.structure, small.structure
    bb, bs = big.biases, small.biases
    for p in range(Zb[m - 1].shape[1]):
        same_z = torch.equal(torch.cat([Zb[m - 1][:, :p], Zb[m - 1][:, p + 1:]], 1), Zs[m - 1])
        same_b = m >= len(bs) or torch.equal(torch.cat([bb[m][:p], bb[m][p + 1:]]), bs[m])
        if same_z and same_b:
            return p
    raise AssertionError("no inserted unit found")


def _birth_log_q(small, big, m, p):
    """log q(small -> big) of the birth move, from the public views and scipy densities."""
    L = small.depth
    rows = small.structure[m - 1].shape[0]
    K_m = small.widths[m - 1] if m <= L else 0
    j = int(torch.nonzero(big.structure[m - 1][:, p])[0, 0])
    Ys = [small._y_obs] + small._Y[1:]
    e = Ys[m - 1][:, j] - small.biases[m - 1].numpy()[j]
    if m <= L:
        e = e - expit(Ys[m]) @ small.weights[m - 1].numpy()[j]
    nu_child = small.precisions[m - 1]
    nu_m = big.precisions[m]
    b = big.biases[m].numpy()[p]
    y = big._Y[m][:, p]
    w = big.weights[m - 1].numpy()[j, p]
    u = expit(y)
    prec = small.weight_precision + nu_child * u @ u
    out = math.log(0.5 / ((L + 1) * rows * (K_m + 1)))
    out += stats.norm(0, 1 / math.sqrt(small.bias_precision)).logpdf(b)
    out += stats.norm(b, 1 / math.sqrt(nu_m)).logpdf(y).sum()
    out += stats.norm(nu_child * (u @ e) / prec, 1 / math.sqrt(prec)).logpdf(w)
    if m == L + 1:
        out += stats.gamma(small.precision_prior[0], scale=1 / small.precision_prior[1]).logpdf(nu_m)
    return out


def _death_log_q(big, m):
    """log q(big -> small) of the death move: layer m, then one of its death candidates."""
    Zb = big.structure
    one_child = Zb[m - 1].sum(0) == 1
    no_parents = Zb[m].sum(1) == 0
    return math.log(0.5 / (big.depth * int((one_child & no_parents).sum())))


def test_birth_and_death_ratios_match_the_full_joint():
    """Each proposed birth/death's log acceptance ratio equals
    log_joint(x') - log_joint(x) + log q(x | x') - log q(x' | x), with the joint recomputed
    from scratch and the proposal densities from scipy: checks the weight-integrated gain, the
    labelled-prior change and the Hastings terms, with data. Both kinds and new/removed top
    layers occur among the trials."""
    base = BeliefNetSampler(_toy_data(30, 3, seed=2), seed=5)
    for _ in range(3):
        base.sweep()
    seen, checked = set(), 0
    for trial in range(60):
        s = BeliefNetSampler.from_state_dict(_toy_data(30, 3, seed=2), base.state_dict())
        s.rng = np.random.default_rng(trial)
        if trial % 3 == 0:  # vary the starting state
            base.sweep()
        before = BeliefNetSampler.from_state_dict(_toy_data(30, 3, seed=2), s.state_dict())
        log_r = []
        s._accept = lambda lr: log_r.append(lr) or True
        kind = "birth" if trial % 2 == 0 else "death"
        ok = s._birth(s.depth) if kind == "birth" else s._death(s.depth)
        if not ok:
            continue
        s._refresh()
        d_joint = s.log_joint() - before.log_joint()
        if kind == "birth":
            m = next((i + 1 for i, (a, b) in enumerate(zip(s.widths, before.widths + [0])) if a != b))
            p = _find_inserted(s, before, m)
            expected = d_joint + _death_log_q(s, m) - _birth_log_q(before, s, m, p)
            seen.add(("birth", s.depth > before.depth))
        else:
            m = next((i + 1 for i, (a, b) in enumerate(zip(before.widths, s.widths + [0])) if a != b))
            p = _find_inserted(before, s, m)
            expected = d_joint + _birth_log_q(s, before, m, p) - _death_log_q(before, m)
            seen.add(("death", s.depth < before.depth))
        assert log_r[0] == pytest.approx(expected, rel=1e-8, abs=1e-7), (kind, m)
        checked += 1
    assert checked >= 20, checked
    assert {k for k, _ in seen} == {"birth", "death"} and any(changed for _, changed in seen), seen


def _tail_log_q(s, c, alpha, beta):
    """log density, from the public views and scipy, of drawing the state's Z[c:], the hidden
    layers above c (weights, biases, precisions, pre-activations from their priors, top down) and
    W[c] (rows from their Gaussian conditional given the parents), as the cascade redraw does."""
    Z, W, b, nu = s.structure, s.weights, s.biases, s.precisions
    Ys = [s._y_obs] + s._Y[1:]
    L = s.depth
    out = labelled_log_prob(Z[c:], alpha, beta)
    for m in range(c + 1, L + 1):
        out += stats.norm(0, 1 / math.sqrt(s.bias_precision)).logpdf(b[m].numpy()).sum()
        out += stats.gamma(s.precision_prior[0], scale=1 / s.precision_prior[1]).logpdf(nu[m])
        mean = b[m].numpy()[None, :] + (expit(Ys[m + 1]) @ W[m].numpy().T if m < L else 0.0)
        out += stats.norm(mean, 1 / math.sqrt(nu[m])).logpdf(Ys[m]).sum()
        Zm = Z[m].numpy().astype(bool)
        out += stats.norm(0, 1 / math.sqrt(s.weight_precision)).logpdf(W[m].numpy()[Zm]).sum()
    if c < L:
        X = expit(Ys[c + 1])
        for j in range(Z[c].shape[0]):
            S = Z[c][j].numpy().astype(bool)
            if not S.any():
                continue
            A = s.weight_precision * np.eye(S.sum()) + nu[c] * X[:, S].T @ X[:, S]
            cov = np.linalg.inv(A)
            mean = cov @ (nu[c] * X[:, S].T @ (Ys[c][:, j] - b[c].numpy()[j]))
            out += stats.multivariate_normal(mean, cov).logpdf(W[c].numpy()[j, S])
    return out


@pytest.mark.parametrize("hyper", [False, True])
def test_cascade_redraw_ratios_match_the_full_joint(hyper):
    """resample_above (hyper=False) and resample_above_hyper (hyper=True): the log acceptance
    ratio equals log_joint(x') - log_joint(x) + log q(x | x') - log q(x' | x), the joint recomputed
    from scratch and the proposal densities (layer choice, log-normal alpha/beta steps, the
    redrawn tail's prior under the proposed alpha/beta, W[c]'s Gaussian conditional) from scipy.
    A wrong Hastings term, a missing P_lab(Z[:c]) change or Jacobian fails it. Redraws that
    remove layers and that add layers both occur among the trials."""
    data = _toy_data(25, 3, seed=4)
    base = BeliefNetSampler(data, alpha=2.0, seed=0, init="prior", alpha_prior=(2.0, 2.0), beta_prior=(2.0, 1.0))
    assert base.depth >= 5  # a deep start, so that redraws can remove layers
    step = base.log_step
    depth_changes, checked = set(), 0
    for trial in range(30):
        if trial % 6 == 5:
            base.sweep()
        s = BeliefNetSampler.from_state_dict(data, base.state_dict())
        s.rng = np.random.default_rng(100 + trial)
        before = BeliefNetSampler.from_state_dict(data, s.state_dict())
        log_r, cs = [], []
        s._accept = lambda lr: log_r.append(lr) or True
        inner = s._redraw_above
        s._redraw_above = lambda c, *a: cs.append(c) or inner(c, *a)
        ok = s.resample_above_hyper() if hyper else s.resample_above()
        if not ok:
            continue
        c = cs[0]
        d_joint = s.log_joint() - before.log_joint()
        q_fwd = -math.log(before.depth + 1) + _tail_log_q(s, c, s.alpha, s.beta)
        q_rev = -math.log(s.depth + 1) + _tail_log_q(before, c, before.alpha, before.beta)
        if hyper:
            for new, old in ((s.alpha, before.alpha), (s.beta, before.beta)):
                q_fwd += stats.norm(math.log(old), step).logpdf(math.log(new)) - math.log(new)
                q_rev += stats.norm(math.log(new), step).logpdf(math.log(old)) - math.log(old)
        else:
            assert (s.alpha, s.beta) == (before.alpha, before.beta)
        assert log_r[0] == pytest.approx(d_joint + q_rev - q_fwd, rel=1e-8, abs=1e-6), (trial, c)
        depth_changes.add(int(np.sign(s.depth - before.depth)))
        checked += 1
    assert checked >= 10, checked
    assert {-1, 1} <= depth_changes, depth_changes


def _tiny_state(y_obs_value, n_copies, w, b_vis, b_hid, nu_vis, nu_hid):
    """A hand-built state: one visible unit with one hidden parent (weight w), n_copies equal data points."""
    base = BeliefNetSampler(np.full((n_copies, 1), y_obs_value), num_visible=1, seed=0,
                            learn_alpha_beta=False, clip_eps=1e-3)
    d = base.state_dict()
    d["Z"] = [np.ones((1, 1), np.int8), np.zeros((1, 0), np.int8)]
    d["W"] = [np.array([[w]]), np.zeros((1, 0))]
    d["b"] = [np.array([b_vis]), np.array([b_hid])]
    d["nu"] = [nu_vis, nu_hid]
    d["Y_hidden"] = [np.zeros((n_copies, 1))]
    return BeliefNetSampler.from_state_dict(np.full((n_copies, 1), y_obs_value), d)


def test_activation_mh_samples_the_exact_conditional():
    """N copies of one data point are N independent chains for the hidden pre-activation; after
    60 updates their spread must match p(y | x) ∝ N(y; b_h, 1/nu_h) N(y_obs; b_v + w σ(y), 1/nu_v),
    computed by quadrature. Tolerance: mean within 4 sd/sqrt(N); sd within 5% (sqrt(1/2N) = 1%)."""
    x, w, bv, bh, nuv, nuh = 0.8, 4.0, -1.0, 0.5, 4.0, 0.7
    n = 5000
    s = _tiny_state(x, n, w, bv, bh, nuv, nuh)
    y_obs = math.log(x / (1 - x))
    grid = np.linspace(-12, 12, 20001)
    lp = stats.norm(bh, 1 / math.sqrt(nuh)).logpdf(grid)
    lp += stats.norm(bv + w * expit(grid), 1 / math.sqrt(nuv)).logpdf(y_obs)
    p = np.exp(lp - lp.max())
    p /= p.sum()
    m = (p * grid).sum()
    sd = math.sqrt((p * grid**2).sum() - m**2)
    for _ in range(60):
        s.update_activations()
    y = s._Y[1][:, 0]
    assert abs(y.mean() - m) < 4 * sd / math.sqrt(n), (y.mean(), m)
    assert abs(y.std() - sd) < 0.05 * sd, (y.std(), sd)
    # residual bookkeeping stays exact
    r_vis = s._R[0][:, 0]
    np.testing.assert_allclose(r_vis, y_obs - bv - w * expit(y), atol=1e-9)


def test_weight_gibbs_recovers_a_planted_linear_layer():
    """With hidden activations fixed at known values and a large N, the Gibbs draw of the
    visible weights concentrates on the planted ones (posterior sd ~ 1/sqrt(N nu var(u)))."""
    n = 4000
    s = _tiny_state(0.5, n, 0.0, 0.0, 0.0, 1.0, 1.0)
    rng = np.random.default_rng(0)
    y_h = rng.standard_normal(n) * 2
    s._Y[1][:, 0] = y_h
    s._Y[0] = (-1.0 + 3.0 * expit(y_h) + rng.standard_normal(n) * 0.5)[:, None]
    s._refresh()
    s.update_weights()
    assert s._W[0][0, 0] == pytest.approx(3.0, abs=0.15)
    assert s._b[0][0] == pytest.approx(-1.0, abs=0.1)
    s.update_precisions()
    assert s._nu[0] == pytest.approx(4.0, rel=0.1)


# ---------------------------------------------------------------- bad input
def test_invalid_arguments_get_clear_errors():
    with pytest.raises(InvalidArgumentError, match="alpha"):
        BeliefNetSampler(None, alpha=0.0, num_visible=3)
    with pytest.raises(InvalidArgumentError, match="beta"):
        BeliefNetSampler(None, beta=-1.0, num_visible=3)
    with pytest.raises(InvalidArgumentError, match="num_visible"):
        BeliefNetSampler(None)
    with pytest.raises(InvalidArgumentError, match=r"\[0, 1\]"):
        BeliefNetSampler(np.full((4, 3), 2.0))
    with pytest.raises(InvalidArgumentError, match="2-D"):
        BeliefNetSampler(np.full(4, 0.5))
    with pytest.raises(InvalidArgumentError, match="NaN"):
        BeliefNetSampler(np.array([[0.5, np.nan]]))
    with pytest.raises(InvalidArgumentError, match="num_visible"):
        BeliefNetSampler(np.full((4, 3), 0.5), num_visible=5)
    with pytest.raises(InvalidArgumentError, match="clip_eps"):
        BeliefNetSampler(None, num_visible=3, clip_eps=0.7)
    with pytest.raises(InvalidArgumentError, match="alpha_prior"):
        BeliefNetSampler(None, num_visible=3, alpha_prior=(1.0,))
    with pytest.raises(InvalidArgumentError, match="num_samples"):
        BeliefNetSampler(None, num_visible=3).run(0)
    with pytest.raises(InvalidArgumentError, match="init"):
        BeliefNetSampler(None, num_visible=3, init="deep")
    with pytest.raises(InvalidArgumentError, match="hyper_resample_per_sweep"):
        BeliefNetSampler(None, num_visible=3, hyper_resample_per_sweep=-1)


def test_shallow_init_starts_with_at_most_one_hidden_layer():
    """init="shallow" (the default with data) truncates the prior draw above its first hidden
    layer; init="prior" keeps it (alpha = 3 makes deep prior draws likely: checked below)."""
    data = _toy_data(10, 8)
    depths = [BeliefNetSampler(data, alpha=3.0, seed=k, init="prior").depth for k in range(5)]
    assert max(depths) >= 2, depths
    for k in range(5):
        s = BeliefNetSampler(data, alpha=3.0, seed=k)
        assert s.depth <= 1
        assert s.widths[:1] == BeliefNetSampler(data, alpha=3.0, seed=k, init="prior").widths[:1]


def test_samples_stats_are_per_draw_arrays_like_the_other_samplers():
    # BeliefNetSamples.stats() follows DAGSamples/SuperpositionSamples.stats(): a dict of (S,) arrays, one chain
    from bayesstruct.families.belief_net_report import to_inference_data

    out = BeliefNetSampler(_toy_data(30, 5), seed=2).run(25, progress=False)
    st = out.stats()
    M = max(len(w) for w in out.widths)
    assert M >= 1
    assert sorted(st) == sorted(["depth", "num_edges", "num_hidden_units", "alpha", "beta", "log_joint"]
                                + [f"width_{m}" for m in range(1, M + 1)])
    for k, v in st.items():
        assert isinstance(v, np.ndarray) and v.shape == (25,), k
        assert v.dtype == (np.float64 if k in ("alpha", "beta", "log_joint") else np.int64), k
    for k in ("depth", "num_edges", "alpha", "beta", "log_joint", "num_hidden_units"):
        assert np.array_equal(st[k], getattr(out, k))
    for m in range(1, M + 1):
        assert np.array_equal(st[f"width_{m}"], out.width(m))
    assert np.array_equal(sum(st[f"width_{m}"] for m in range(1, M + 1)), st["num_hidden_units"])
    # the per-layer widths agree with belief_net_report's InferenceData of the same chain
    post = to_inference_data(out).posterior
    for k in post.data_vars:
        assert np.array_equal(post[k].values[0], st[k]), k
    # num_layers pads with zero widths (so chains of different depths stack) and is validated
    padded = out.stats(num_layers=M + 2)
    assert np.all(padded[f"width_{M + 2}"] == 0) and len(padded) == len(st) + 2
    for bad in (0, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="num_layers"):
            out.stats(num_layers=bad)
    # a prior-only chain with fixed alpha, beta still records them (constant) and its log joint
    prior = BeliefNetSampler(None, learn_alpha_beta=False, num_visible=3, seed=0).run(5, progress=False).stats()
    assert np.all(prior["alpha"] == 1.0) and prior["log_joint"].shape == (5,)
