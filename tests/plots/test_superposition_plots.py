"""Superposition figures draw the tree and the posterior they are given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import bayesstruct  # noqa: E402
from bayesstruct.datasets import ranking_data  # noqa: E402
from bayesstruct.exceptions import InvalidArgumentError  # noqa: E402
from bayesstruct.families import SuperpositionFamily, SuperpositionGrammar, sample_superpositions  # noqa: E402
from bayesstruct.plots import plot_superposition, plot_superposition_posterior  # noqa: E402


def test_tree_shows_the_lecture_numbering():
    ax = plot_superposition("mul(log1p(x0), x1)")
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == ["0: y", "1: mul", "2: log1p", "3: x0", "4: x1"]
    assert len(ax.get_lines()) == 4                     # one line per edge (i, j, g)
    plt.close("all")


def test_posterior_bars_are_the_probabilities():
    x, y = ranking_data(30, 0.3, seed=0)
    g = SuperpositionGrammar(2, max_size=3)
    fam = SuperpositionFamily(g)
    table = bayesstruct.compare(fam, x, y, methods="exact", structure_prior=fam.structure_prior, workers=1,
                                progress=False)
    chain = sample_superpositions(x, y, g, num_samples=500, warmup_steps=10, seed=0, progress=False)
    ax = plot_superposition_posterior(table, chain, top=4, truth="mul(x0, x1)")
    widths = [p.get_width() for p in ax.patches]
    exact = sorted((r.posterior_probability for r in table.rows), reverse=True)[:4]
    assert np.allclose(widths[:4], exact)               # the exact bars come first, largest at the top
    assert np.isclose(sum(widths[4:]), sum(chain.posterior().get(str(r.structure["tree"]), 0.0)
                                            for r in table.rows[:4]))
    assert any(t.get_text().startswith("★") for t in ax.get_yticklabels()) == any(
        str(r.structure["tree"]) == "mul(x0, x1)" for r in table.rows[:4])
    with pytest.raises(InvalidArgumentError, match="exact"):
        plot_superposition_posterior()
    plt.close("all")
