"""Enumerating superpositions: the tree count before any is built, the refusal of a space too large
to list, and trees that are not finite on the data (left out, counted, and refused when asked for)."""

import math
import warnings

import pytest
import torch

import bayesstruct
from bayesstruct.datasets import ranking_data
from bayesstruct.exceptions import InvalidArgumentError, ModelSpecError
from bayesstruct.families import superposition as sp
from bayesstruct.families.superposition import (ELEMENTARY_FUNCTIONS, MAX_ENUMERATED_TREES, NOT_FINITE,
                                                ElementaryFunction, Superposition, SuperpositionFamily,
                                                SuperpositionGrammar, SuperpositionSamples, TreesLeftOutWarning,
                                                sample_superpositions)

OVERFLOW = Superposition.parse("square(square(x0))")


def small_grammar(**kw):
    # trees of at most 3 vertices over x0: x0, square(x0), log1p(x0), add(x0, x0), square(square(x0)),
    # square(log1p(x0)), log1p(square(x0)), log1p(log1p(x0)); on x0 ~ 1e100 only square(square(x0)) overflows
    return SuperpositionGrammar(1, unary=("square", "log1p"), binary=("add",), max_size=3, **kw)


def huge_data(n=30):
    g = torch.Generator().manual_seed(0)
    x = (1.0 + torch.rand(n, 1, generator=g, dtype=torch.float64)) * 1e100
    y = torch.log(x[:, 0]) / 100 + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("grammar", [
    dict(num_variables=2), dict(num_variables=3, unary=()), dict(num_variables=1, binary=("mul", "sub")),
    dict(num_variables=2, unary=("sin",), binary=("add", "div")),
])
def test_count_trees_is_the_number_listed_and_trees_lists_them_in_order(grammar):
    for size in range(1, 6):
        g = SuperpositionGrammar(**grammar, max_size=size)
        everything = g.trees(canonical=False)
        assert g.count_trees(canonical=False) == len(everything)
        # the canonical trees are built directly, in the order in which they come in the full list
        assert g.trees() == [t for t in everything if t.canonical() == t]
        assert g.count_trees() == len(g.trees())


def test_count_trees_of_the_default_grammar():
    g = SuperpositionGrammar(2, max_size=30)
    counts = [g.count_trees(max_size=s) for s in range(1, 9)]
    assert counts == [2, 12, 76, 516, 3794, 29304, 234942, 1934892]
    assert g.count_trees() > 10 ** 27  # exact integers, no overflow
    assert counts[6] <= MAX_ENUMERATED_TREES < counts[7]  # size 7 is enumerated, size 8 is not


def test_a_space_too_large_is_refused_before_any_tree_is_built(monkeypatch):
    def no_trees(self, **kw):
        raise AssertionError("trees were built before the count was checked")

    monkeypatch.setattr(SuperpositionGrammar, "trees", no_trees)
    with pytest.raises(InvalidArgumentError) as err:
        SuperpositionFamily(SuperpositionGrammar(2, max_size=30))
    msg = str(err.value)
    for needle in ("max_size 30", f"{SuperpositionGrammar(2, max_size=30).count_trees():,} trees", "max_trees",
                   "a max_size of at most 7 (234,942 trees)", "sample_superpositions"):
        assert needle in msg
    with pytest.raises(InvalidArgumentError, match="max_size 3: .*76 trees.*at most 2 \\(12 trees\\)"):
        SuperpositionFamily(SuperpositionGrammar(2, max_size=3), max_trees=20)
    with pytest.raises(InvalidArgumentError, match="max_trees"):
        SuperpositionFamily(SuperpositionGrammar(2, max_size=3), max_trees=0)


def test_max_trees_can_be_raised_or_lifted():
    g = SuperpositionGrammar(2, max_size=3)
    assert len(SuperpositionFamily(g, max_trees=76).structures()) == 76
    assert len(SuperpositionFamily(g, max_trees=None).structures()) == 76


@pytest.mark.parametrize("on", ["distinct_on", "finite_on"])
def test_trees_not_finite_on_the_data_are_left_out_and_counted(on):
    x, y = huge_data()
    with pytest.warns(TreesLeftOutWarning, match=f"1 of the 8 trees of at most 3 vertices are left out: {NOT_FINITE}"):
        fam = SuperpositionFamily(small_grammar(), **{on: x})
    assert fam.left_out == {NOT_FINITE: (OVERFLOW,)}
    trees = [s["tree"] for s in fam.structures()]
    assert OVERFLOW not in trees and Superposition.parse("square(x0)") in trees
    table = bayesstruct.compare(fam, x, y, methods="exact", structure_prior=fam.structure_prior, workers=1,
                                progress=False)
    assert len(table.rows) == len(trees)
    assert all(math.isfinite(r.log_evidence("exact")) for r in table.rows)
    assert sum(r.posterior_probability for r in table.rows) == pytest.approx(1.0)
    # a left-out tree asked for by name is refused, naming why
    with pytest.raises(ModelSpecError, match=r"square\(square\(x0\)\) is not finite on the data \(overflow"):
        fam.validate_structure({"tree": "square(square(x0))"})
    with pytest.raises(ModelSpecError, match="not finite"):
        bayesstruct.compare(fam, x, y, methods="exact", structures=[{"tree": "square(square(x0))"}], workers=1,
                            progress=False)


def test_without_data_the_family_lists_every_tree_and_one_explicit_tree_fails_clearly():
    x, y = huge_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TreesLeftOutWarning)
        fam = SuperpositionFamily(small_grammar())
    assert fam.left_out == {} and len(fam.structures()) == 8
    with pytest.raises(ModelSpecError, match=r"square\(square\(x0\)\) is not finite on the data"):
        fam.log_evidence(x, y, {"tree": "square(square(x0))"}, method="exact")
    with pytest.raises(ModelSpecError, match="not finite"):  # the public distinct() keeps raising too
        small_grammar().distinct(x)


def test_trees_outside_a_functions_domain_are_left_out_like_overflows(monkeypatch):
    # a user-registered, unprotected log: NaN at the negative inputs, -inf at 0
    monkeypatch.setitem(ELEMENTARY_FUNCTIONS, "log", ElementaryFunction("log", 1, torch.log, "log(u)"))
    x = torch.linspace(-1.0, 3.0, 21, dtype=torch.float64).unsqueeze(-1)
    g = SuperpositionGrammar(1, unary=("log", "square"), binary=(), max_size=3)
    with pytest.warns(TreesLeftOutWarning, match="3 of the 7 trees"):
        fam = SuperpositionFamily(g, distinct_on=x)
    assert {str(t) for t in fam.left_out[NOT_FINITE]} == {"log(x0)", "log(log(x0))", "square(log(x0))"}
    assert "log(square(x0))" not in {str(t) for t in fam.left_out[NOT_FINITE]}  # -inf at x0 = 0
    with pytest.warns(TreesLeftOutWarning, match="1 of the 7 trees"):  # log(x0) < 0 below x0 = 1
        assert SuperpositionFamily(g, distinct_on=x[x[:, 0] > 0.5]).left_out == {NOT_FINITE: (Superposition.parse("log(log(x0))"),)}
    with warnings.catch_warnings():
        warnings.simplefilter("error", TreesLeftOutWarning)
        assert SuperpositionFamily(g, distinct_on=x[x[:, 0] > 1.5]).left_out == {}


def test_every_tree_left_out_is_an_error(monkeypatch):
    # leaves are finite on finite data, so only a broken evaluation gets here: the guard still names it
    monkeypatch.setattr(sp, "_shared_features", lambda trees, x: ((t, None) for t in trees))
    with pytest.raises(ModelSpecError, match="every one of the 8 trees .* not finite on the data"):
        SuperpositionFamily(small_grammar(), finite_on=huge_data()[0])


def test_a_large_finite_feature_is_standardised_not_flattened():
    x, _ = ranking_data(100, 0.3, seed=0)
    tree = Superposition.parse("square(square(square(exp(exp(x0)))))")  # up to ~1e174: its variance overflows
    phi = tree.evaluate(x)
    assert bool(torch.isfinite(phi).all()) and not bool(torch.isfinite(phi.std()))
    feature, (loc, scale) = sp._standardised(tree, x, None)
    assert math.isfinite(loc) and math.isfinite(scale) and scale > 0
    assert float(feature.std(unbiased=False)) == pytest.approx(1.0) and float(feature.mean()) == pytest.approx(0.0, abs=1e-9)


def test_the_sampler_rejects_trees_not_finite_on_the_data():
    x, y = huge_data(40)
    g = SuperpositionGrammar(1, unary=("square", "log1p"), binary=("add", "mul"), max_size=5)
    runs = [sample_superpositions(x, y, g, num_samples=1500, warmup_steps=100, seed=s, progress=False)
            for s in (0, 1)]
    for r in runs:
        assert r.not_finite and r.left_out == {NOT_FINITE: len(r.not_finite)}
        assert not set(r.not_finite) & set(r.trees)  # never a state of the chain
        assert not set(r.not_finite) & set(r.log_evidence)
        assert all(math.isfinite(v) for v in r.log_evidence.values())
        for t in r.not_finite:
            assert not bool(torch.isfinite(Superposition.parse(t).evaluate(x)).all())
    pooled = SuperpositionSamples.concat(runs)
    assert set(pooled.not_finite) == set(runs[0].not_finite) | set(runs[1].not_finite)
    assert pooled.to_dict()["left_out"] == {NOT_FINITE: len(pooled.not_finite)}
    with pytest.raises(InvalidArgumentError, match=r"`init` square\(square\(x0\)\) is not finite on the data"):
        sample_superpositions(x, y, g, init="square(square(x0))", num_samples=10, progress=False)


@pytest.mark.parametrize("max_cached", [0, 500, 2 ** 25])
def test_shared_evaluation_gives_each_trees_own_values(max_cached):
    x, _ = ranking_data(30, 0.3, seed=0)
    x = torch.cat([x, x[:1] * 1e80])  # one huge row: some trees overflow, inv() of some overflows is finite
    trees = SuperpositionGrammar(2, max_size=5).trees()
    shared = list(sp._shared_features(trees, x, max_cached=max_cached))
    assert [t for t, _ in shared] == trees
    assert any(v is None for _, v in shared) and any(v is not None for _, v in shared)
    for t, v in shared:
        own = sp._finite_feature(t, x)
        assert (v is None) == (own is None)
        if v is not None:
            assert torch.equal(v, own)
