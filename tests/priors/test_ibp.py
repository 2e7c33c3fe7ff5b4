"""Tests of the (cascading) Indian buffet process against closed forms.

Monte Carlo tolerances are 4 standard errors of the estimator under the analytic law
(K+ ~ Poisson, row sums ~ Poisson(alpha), class frequencies ~ Binomial), so with the
fixed seeds a failure means a wrong sampler or density, not bad luck (p ~ 6e-5 per check).
"""

import itertools
import math
from collections import Counter

import numpy as np
import pyro
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from bayesstruct.exceptions import BayesStructError, InvalidArgumentError
from bayesstruct.priors import CascadingIBP, IndianBuffetProcess, left_ordered_form


def _harmonic_mean_count(alpha, beta, n):
    """alpha * sum_{i=1..n} beta / (beta + i - 1): E[K+] of IBP(alpha, beta) with n rows."""
    return alpha * sum(beta / (beta + i - 1.0) for i in range(1, n + 1))


def _num_features(Z):
    return (Z.sum(-2) > 0).sum(-1)


def _matrix_from_counts(histories, counts, num_rows):
    """A matrix with counts[h] copies of column histories[h]."""
    cols = [torch.tensor(h, dtype=torch.float64) for h, c in zip(histories, counts) for _ in range(c)]
    return torch.stack(cols, dim=1) if cols else torch.zeros(num_rows, 0)


def _class_key(Z):
    """Canonical hashable key of [Z]: the left-ordered form without its zero columns."""
    Z = Z[:, Z.sum(0) > 0]
    return tuple(map(tuple, left_ordered_form(Z).to(torch.int64).tolist()))


# --------------------------------------------------------------------------- sampler


@pytest.mark.parametrize("alpha,beta,num_rows", [(2.0, 1.0, 10), (2.0, 1.5, 10), (0.7, 0.5, 6)])
def test_expected_num_features(alpha, beta, num_rows):
    ibp = IndianBuffetProcess(alpha, beta, num_rows)
    mean = _harmonic_mean_count(alpha, beta, num_rows)
    assert ibp.expected_num_features == pytest.approx(mean, rel=1e-12)
    if beta == 1.0:  # one-parameter IBP: alpha * H_N (Griffiths & Ghahramani 2005)
        assert mean == pytest.approx(alpha * sum(1.0 / n for n in range(1, num_rows + 1)))
    draws = 4000
    Z = ibp.sample((draws,))
    assert Z.shape[:2] == (draws, num_rows)
    k = _num_features(Z).double()
    # K+ ~ Poisson(mean): sample mean has standard error sqrt(mean / draws).
    assert abs(k.mean().item() - mean) < 4 * math.sqrt(mean / draws)


def test_row_sums_are_poisson_alpha():
    alpha, beta, num_rows, draws = 2.0, 1.5, 8, 4000
    Z = IndianBuffetProcess(alpha, beta, num_rows).sample((draws,))
    for n in (0, num_rows - 1):  # the first and the last customer both take Poisson(alpha) dishes
        r = Z[:, n, :].sum(-1)
        assert abs(r.mean().item() - alpha) < 4 * math.sqrt(alpha / draws)
        # Var of the sample variance of Poisson(lam): (lam + 2 lam^2) / draws.
        assert abs(r.var().item() - alpha) < 4 * math.sqrt((alpha + 2 * alpha**2) / draws)


def test_single_sample_shape_and_nonempty_columns():
    Z = IndianBuffetProcess(3.0, 1.0, 7).sample()
    assert Z.dim() == 2 and Z.shape[0] == 7
    assert bool(((Z == 0) | (Z == 1)).all())
    assert bool((Z.sum(0) > 0).all())
    assert Z.dtype == torch.float64


def test_padded_batch_has_zero_columns_only_at_the_end():
    Z = IndianBuffetProcess(1.0, 1.0, 5).sample((50,))
    nonempty = Z.sum(-2) > 0
    # once a column is empty, all later columns of that draw are empty
    assert bool((nonempty.int().diff(dim=-1) <= 0).all())


# --------------------------------------------------------------------------- density


def test_log_prob_matches_griffiths_ghahramani_beta_one():
    # G&G 2005 eq. (14): alpha^K+/prod K_h! exp(-alpha H_N) prod (N-m_k)!(m_k-1)!/N!
    Z = torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    alpha, N = 1.7, 3
    h_n = sum(1.0 / n for n in range(1, N + 1))
    m = [2, 2, 2, 1]
    expected = (
        4 * math.log(alpha)
        - math.log(2)  # histories: (1,1,0) twice, (0,1,1) once, (1,0,0) once
        - alpha * h_n
        + sum(math.log(math.factorial(N - mk) * math.factorial(mk - 1) / math.factorial(N)) for mk in m)
    )
    assert IndianBuffetProcess(alpha, 1.0, N).log_prob(Z).item() == pytest.approx(expected, rel=1e-12)


def test_log_prob_matches_two_parameter_formula():
    Z = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    alpha, beta, N = 0.9, 2.5, 2
    B = lambda a, b: math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)  # noqa: E731
    expected = (
        2 * math.log(alpha * beta)
        - alpha * (beta / beta + beta / (beta + 1))
        + B(2, N - 2 + beta)
        + B(1, N - 1 + beta)
    )
    assert IndianBuffetProcess(alpha, beta, N).log_prob(Z).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("alpha,beta,num_rows,cap", [(0.7, 1.5, 2, 12), (1.2, 1.0, 2, 12), (0.6, 0.8, 3, 6)])
def test_log_prob_normalises_over_equivalence_classes(alpha, beta, num_rows, cap):
    """Sum of P([Z]) over all classes with K+ <= cap equals P(K+ <= cap) = PoissonCDF(cap)."""
    ibp = IndianBuffetProcess(alpha, beta, num_rows)
    histories = [h for h in itertools.product((0, 1), repeat=num_rows) if any(h)]
    by_k = np.zeros(cap + 1)
    for counts in itertools.product(range(cap + 1), repeat=len(histories)):
        k = sum(counts)
        if k > cap:
            continue
        Z = _matrix_from_counts(histories, counts, num_rows)
        by_k[k] += math.exp(ibp.log_prob(Z).item())
    mean = _harmonic_mean_count(alpha, beta, num_rows)
    # Each P(K+ = k) is exact (a finite sum), so only rounding error is allowed.
    np.testing.assert_allclose(by_k, stats.poisson.pmf(np.arange(cap + 1), mean), rtol=1e-9, atol=1e-14)
    total = by_k.sum()
    assert total < 1.0
    assert 1.0 - total == pytest.approx(stats.poisson.sf(cap, mean), rel=1e-6, abs=1e-13)


def test_log_prob_matches_empirical_class_frequencies():
    alpha, beta, num_rows, draws = 0.7, 1.5, 2, 20000
    ibp = IndianBuffetProcess(alpha, beta, num_rows)
    Z = ibp.sample((draws,))
    # [Z] for N = 2 is fixed by how many columns have each history (1,1), (1,0), (0,1).
    hist = (2 * Z[:, 0, :] + Z[:, 1, :]).to(torch.int64)  # 3, 2, 1; 0 for padding
    counts = torch.stack([(hist == h).sum(-1) for h in (3, 2, 1)], dim=-1)
    freq = Counter(map(tuple, counts.tolist()))
    histories = [(1, 1), (1, 0), (0, 1)]
    spot = Z[:50]  # the vectorised key agrees with the left-ordered form on a few draws
    for z, c in zip(spot, counts[:50].tolist()):
        assert _class_key(z) == _class_key(_matrix_from_counts(histories, c, num_rows))
    for key, count in freq.most_common(6):
        rep = _matrix_from_counts(histories, key, num_rows)
        p = math.exp(ibp.log_prob(rep).item())
        se = math.sqrt(p * (1 - p) / draws)
        assert abs(count / draws - p) < 4 * se, (key, count / draws, p)


def test_log_prob_batch_shape_and_invariances():
    ibp = IndianBuffetProcess(1.3, 0.7, 4)
    Z = ibp.sample((3, 5))
    lp = ibp.log_prob(Z)
    assert lp.shape == (3, 5)
    z = Z[1, 2]
    padded = torch.cat([z, torch.zeros(4, 2)], dim=1)
    perm = torch.randperm(padded.shape[1])
    assert ibp.log_prob(padded[:, perm]).item() == pytest.approx(lp[1, 2].item(), rel=1e-12)
    assert ibp.log_prob(z.bool()).item() == pytest.approx(lp[1, 2].item(), rel=1e-12)


def test_pyro_trace_uses_log_prob():
    ibp = IndianBuffetProcess(1.0, 1.0, 3)
    cibp = CascadingIBP(0.8, 1.2, 3)

    def model():
        Z = pyro.sample("Z", ibp)
        layers = cibp.pyro_sample("W")
        return Z, layers

    tr = pyro.poutine.trace(model).get_trace()
    Z, layers = tr.nodes["_RETURN"]["value"]
    expected = ibp.log_prob(Z) + cibp.log_prob(layers)
    assert tr.log_prob_sum().item() == pytest.approx(expected.item(), rel=1e-10)
    assert [f"W_{m}" for m in range(1, len(layers) + 1)] == [n for n in tr.nodes if n.startswith("W_")]

    # conditioning fixes the cascade's structure
    fixed = {"W_1": torch.tensor([[1.0], [0.0], [1.0]]), "W_2": torch.zeros(1, 0)}
    _, layers2 = pyro.poutine.condition(model, data=fixed)()
    assert len(layers2) == 2 and torch.equal(layers2[0], fixed["W_1"])


# --------------------------------------------------------------------------- cascading IBP


def test_cascading_ibp_terminates_and_matches_layer_laws():
    alpha, beta, num_visible, draws = 0.8, 1.0, 4, 800
    cibp = CascadingIBP(alpha, beta, num_visible)
    samples = [cibp.sample() for _ in range(draws)]
    depths = np.array([len(s) for s in samples])
    for layers in samples:  # every sample terminates, with consistent shapes
        assert layers[0].shape[0] == num_visible and layers[-1].shape[1] == 0
        for a, b in zip(layers[:-1], layers[1:]):
            assert a.shape[1] == b.shape[0] and a.shape[1] > 0
    assert np.isfinite(depths.mean())

    # K_1 is the K+ of an IBP with num_visible customers.
    k1 = np.array([s[0].shape[1] for s in samples])
    mean1 = _harmonic_mean_count(alpha, beta, num_visible)
    assert abs(k1.mean() - mean1) < 4 * math.sqrt(mean1 / draws)
    # P(no hidden layer) = P(K_1 = 0) = exp(-E[K_1]); binomial standard error.
    p0 = math.exp(-mean1)
    assert abs((depths == 1).mean() - p0) < 4 * math.sqrt(p0 * (1 - p0) / draws)

    # Given K_1 >= 1, K_2 ~ Poisson(alpha sum_{n<=K_1} beta/(beta+n-1)): the residuals
    # K_2 - E[K_2 | K_1] have mean 0 and variance E[E[K_2 | K_1]].
    cond = np.array([_harmonic_mean_count(alpha, beta, s[0].shape[1]) for s in samples if len(s) > 1])
    k2 = np.array([s[1].shape[1] for s in samples if len(s) > 1])
    assert len(k2) > 300
    assert abs((k2 - cond).mean()) < 4 * math.sqrt(cond.mean() / len(k2))


def test_cascading_ibp_log_prob_is_sum_of_layers():
    cibp = CascadingIBP(1.0, 1.0, 3)
    layers = [torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), torch.tensor([[1.0], [0.0]]), torch.zeros(1, 0)]
    expected = sum(IndianBuffetProcess(1.0, 1.0, z.shape[0]).log_prob(z).item() for z in layers)
    assert cibp.log_prob(layers).item() == pytest.approx(expected, rel=1e-12)


def test_cascading_ibp_max_depth_raises():
    with pytest.raises(BayesStructError, match="max_depth"):
        CascadingIBP(20.0, 1.0, 5, max_depth=3).sample()


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(alpha=0.0, beta=1.0, num_rows=3), "alpha"),
        (dict(alpha=-1.0, beta=1.0, num_rows=3), "alpha"),
        (dict(alpha=float("nan"), beta=1.0, num_rows=3), "alpha"),
        (dict(alpha=1.0, beta=0.0, num_rows=3), "beta"),
        (dict(alpha=1.0, beta=-2.0, num_rows=3), "beta"),
        (dict(alpha=1.0, beta=1.0, num_rows=0), "num_rows"),
        (dict(alpha=1.0, beta=1.0, num_rows=2.5), "num_rows"),
        (dict(alpha=1.0, beta=1.0, num_rows=True), "num_rows"),
    ],
)
def test_ibp_bad_parameters(kwargs, name):
    with pytest.raises(InvalidArgumentError, match=f"`{name}`"):
        IndianBuffetProcess(**kwargs)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(alpha=0.0, beta=1.0, num_visible=3), "alpha"),
        (dict(alpha=1.0, beta=-1.0, num_visible=3), "beta"),
        (dict(alpha=1.0, beta=1.0, num_visible=0), "num_visible"),
        (dict(alpha=1.0, beta=1.0, num_visible=3, max_depth=0), "max_depth"),
    ],
)
def test_cibp_bad_parameters(kwargs, name):
    with pytest.raises(InvalidArgumentError, match=f"`{name}`"):
        CascadingIBP(**kwargs)


@pytest.mark.parametrize(
    "Z,fragment",
    [
        (torch.tensor([[1.0, 0.5], [0.0, 1.0]]), "binary"),
        (torch.tensor([[2.0], [0.0]]), "binary"),
        (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), "NaN"),
        (torch.tensor([1.0, 0.0]), "shape"),
        (torch.ones(3, 2), "num_rows=2"),
    ],
)
def test_ibp_log_prob_bad_matrix(Z, fragment):
    with pytest.raises(InvalidArgumentError, match=f"`Z`.*{fragment}|{fragment}.*`Z`"):
        IndianBuffetProcess(1.0, 1.0, 2).log_prob(Z)


def test_left_ordered_form_rejects_non_binary():
    with pytest.raises(InvalidArgumentError, match="`Z`.*binary"):
        left_ordered_form([[0.0, 3.0]])


@pytest.mark.parametrize(
    "layers,fragment",
    [
        ([torch.ones(2, 1), torch.zeros(1, 0)], "3 rows"),
        ([torch.ones(3, 1)], "end with"),
        ([torch.tensor([[1.0, 0.0]] * 3), torch.zeros(2, 0)], "all-zero"),
        ([torch.ones(3, 1), torch.full((1, 1), 0.5), torch.zeros(1, 0)], "binary"),
        (torch.ones(3, 1), "list"),
    ],
)
def test_cibp_log_prob_bad_layers(layers, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment):
        CascadingIBP(1.0, 1.0, 3).log_prob(layers)


def test_expand_to_a_batch_is_refused():
    ibp = IndianBuffetProcess(1.0, 1.0, 3)
    assert ibp.expand(torch.Size()) is ibp
    with pytest.raises(InvalidArgumentError, match="varying width"):
        ibp.expand(torch.Size([4]))


# --------------------------------------------------------------------------- validate_args


def _half_filled():
    return torch.full((2, 3), 0.5)


def test_ibp_validate_args_false_skips_the_support_check():
    with pytest.raises(InvalidArgumentError, match="`Z` must be binary"):
        IndianBuffetProcess(1.0, 1.0, 2, validate_args=True).log_prob(_half_filled())
    ibp = IndianBuffetProcess(1.0, 1.0, 2, validate_args=False)
    assert ibp._validate_args is False
    lp = ibp.log_prob(torch.stack([_half_filled()] * 4))  # the result is undefined, but no error
    assert lp.shape == (4,) and lp.dtype == torch.float64
    ibp.log_prob(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))  # NaN too (torch skips its support check)
    # a binary value gets the same density either way
    Z = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    assert ibp.log_prob(Z).item() == IndianBuffetProcess(1.0, 1.0, 2).log_prob(Z).item()


@pytest.mark.parametrize("Z,fragment", [(torch.ones(3, 2), "num_rows=2"), (torch.tensor([1.0, 0.0]), "shape"),
                                        ("ab", "array of numbers")])
def test_ibp_validate_args_false_keeps_the_shape_checks(Z, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment):
        IndianBuffetProcess(1.0, 1.0, 2, validate_args=False).log_prob(Z)


def test_ibp_validate_args_none_follows_the_torch_default():
    ibp = IndianBuffetProcess(1.0, 1.0, 2)  # made while validation is on (conftest)
    with pytest.raises(InvalidArgumentError, match="binary"):
        ibp.log_prob(_half_filled())
    try:
        torch.distributions.Distribution.set_default_validate_args(False)
        assert torch.isfinite(ibp.log_prob(_half_filled())).all()  # read at call time, as torch does
        assert torch.isfinite(IndianBuffetProcess(1.0, 1.0, 2).log_prob(_half_filled())).all()
        with pytest.raises(InvalidArgumentError, match="binary"):  # an explicit True wins
            IndianBuffetProcess(1.0, 1.0, 2, validate_args=True).log_prob(_half_filled())
        pyro.enable_validation(True)  # Pyro's switch sets the same default
        with pytest.raises(InvalidArgumentError, match="binary"):
            ibp.log_prob(_half_filled())
        pyro.enable_validation(False)
        assert torch.isfinite(ibp.log_prob(_half_filled())).all()
    finally:
        pyro.enable_validation(True)


@pytest.mark.parametrize("cls,kwargs", [(IndianBuffetProcess, dict(num_rows=2)), (CascadingIBP, dict(num_visible=2))])
@pytest.mark.parametrize("bad", ["yes", 1, 0.0])
def test_bad_validate_args_is_named(cls, kwargs, bad):
    with pytest.raises(InvalidArgumentError, match="`validate_args`"):
        cls(1.0, 1.0, validate_args=bad, **kwargs)


def test_cibp_validate_args_false_skips_the_support_checks():
    # non-binary, an all-zero column, and no terminating empty matrix: all support violations
    layers = [torch.tensor([[0.5, 0.0], [1.0, 0.0], [0.0, 0.0]]), torch.full((2, 1), 0.5)]
    strict = CascadingIBP(1.0, 1.0, 3)
    with pytest.raises(InvalidArgumentError):
        strict.log_prob(layers)
    loose = CascadingIBP(1.0, 1.0, 3, validate_args=False)
    expected = sum(IndianBuffetProcess(1.0, 1.0, z.shape[0], validate_args=False).log_prob(z).item() for z in layers)
    assert loose.log_prob(layers).item() == pytest.approx(expected, rel=1e-12)
    assert loose.layer(4)._validate_args is False  # passed on to the layers (and so to pyro_sample's sites)
    try:
        torch.distributions.Distribution.set_default_validate_args(False)
        assert strict.log_prob(layers).item() == pytest.approx(expected, rel=1e-12)  # None follows the default
    finally:
        pyro.enable_validation(True)


@pytest.mark.parametrize("layers,fragment", [
    ([torch.ones(2, 1), torch.zeros(1, 0)], "3 rows"),
    ([torch.ones(3, 0), torch.zeros(0, 0)], "end with"),  # would need an IBP with 0 customers
    ([torch.ones(3, 1, 1)], "2-dimensional"),
    (torch.ones(3, 1), "list"),
])
def test_cibp_validate_args_false_keeps_the_shape_checks(layers, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment):
        CascadingIBP(1.0, 1.0, 3, validate_args=False).log_prob(layers)


# --------------------------------------------------------------------------- CascadingIBP.sample(sample_shape)


def _assert_cascade(layers, num_visible):
    assert isinstance(layers, list) and all(torch.is_tensor(z) for z in layers)
    assert layers[0].shape[0] == num_visible and layers[-1].shape[1] == 0
    for a, b in zip(layers[:-1], layers[1:]):
        assert a.shape[1] == b.shape[0] > 0


def test_cibp_sample_shape_gives_nested_lists_of_cascades():
    cibp = CascadingIBP(1.5, 1.0, 3)
    one = cibp.sample(())
    _assert_cascade(one, 3)
    batch = cibp.sample((4,))
    assert isinstance(batch, list) and len(batch) == 4
    for layers in batch:
        _assert_cascade(layers, 3)
    grid = cibp.sample(torch.Size([2, 3]))
    assert len(grid) == 2 and all(len(row) == 3 for row in grid)
    for row in grid:
        for layers in row:
            _assert_cascade(layers, 3)
    assert cibp.sample((0,)) == [] and cibp.sample((2, 0)) == [[], []]
    assert all(torch.isfinite(cibp.log_prob(layers)) for layers in batch)


def test_cibp_sample_shape_draws_independent_cascades_of_the_same_law():
    cibp = CascadingIBP(1.5, 1.0, 3)
    pyro.set_rng_seed(7)
    batch = cibp.sample((6,))
    pyro.set_rng_seed(7)
    one_by_one = [cibp.sample() for _ in range(6)]
    assert len(batch) == len(one_by_one)
    for a, b in zip(batch, one_by_one):
        assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
    # not 6 copies of one draw
    assert len({tuple(tuple(z.shape) for z in layers) for layers in cibp.sample((30,))}) > 1


@pytest.mark.parametrize("shape", [(-1,), "a", 3, (2.5,)])
def test_cibp_bad_sample_shape(shape):
    with pytest.raises(InvalidArgumentError, match="`sample_shape` must be a tuple of non-negative ints"):
        CascadingIBP(1.0, 1.0, 2).sample(shape)


# --------------------------------------------------------------------------- properties


@st.composite
def _binary_matrix_and_permutation(draw):
    n = draw(st.integers(1, 5))
    k = draw(st.integers(0, 7))
    Z = draw(arrays(np.bool_, (n, k)))
    perm = draw(st.permutations(list(range(k))))
    return Z.astype(np.float64), list(perm)


@settings(max_examples=60, deadline=None)
@given(_binary_matrix_and_permutation())
def test_left_ordered_form_idempotent_and_permutation_invariant(data):
    Z, perm = data
    Zt = torch.as_tensor(Z)
    lof = left_ordered_form(Zt)
    assert torch.equal(left_ordered_form(lof), lof)
    assert torch.equal(left_ordered_form(Zt[:, perm]), lof)
    # same multiset of columns, histories non-increasing as binary numbers (row 0 most significant)
    weights = torch.tensor([2.0 ** (Z.shape[0] - 1 - n) for n in range(Z.shape[0])])
    hist = weights @ lof
    assert bool((hist[1:] <= hist[:-1]).all())
    assert sorted(map(tuple, Z.T.tolist())) == sorted(map(tuple, lof.T.tolist()))
    # the class probability depends on the class only
    ibp = IndianBuffetProcess(0.9, 1.3, Z.shape[0])
    assert ibp.log_prob(Zt[:, perm]).item() == pytest.approx(ibp.log_prob(lof).item(), rel=1e-12)


def test_cascade_log_prob_keeps_the_matrices_float64():
    # summed in float64 and returned in the input's dtype (it was cast to float32: 5e-5 nats off at K0=300)
    torch.manual_seed(0)
    cibp = CascadingIBP(1.0, 1.0, 300)
    layers = [z.double() for z in cibp.sample()]
    lp = cibp.log_prob(layers)
    per_layer = [cibp.layer(z.shape[0]).log_prob(z).double() for z in layers]
    assert lp.dtype == torch.float64
    assert float(lp) == pytest.approx(float(sum(per_layer)), abs=1e-9)
    assert cibp.log_prob([z.float() for z in layers]).dtype == torch.float32
