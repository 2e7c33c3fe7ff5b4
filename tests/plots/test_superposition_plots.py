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


def test_star_is_explained_and_tiny_probabilities_are_printed():
    exact = {"mul(log1p(x0), x1)": 0.8, "mul(sqrt(x0), x1)": 0.2, "add(x0, x1)": 1e-9}
    ax = plot_superposition_posterior(exact, top=3, truth="mul(log1p(x0), x1)")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "★ = true (generating) tree" in legend
    assert [p.get_width() for p in ax.patches] == [0.8, 0.2, 1e-9]      # the bars are still the probabilities
    assert sorted(t.get_text() for t in ax.texts) == ["0.200", "0.800", "<0.001"]
    plt.close("all")


def test_evidence_by_size_marks_every_tree_below_the_floor():
    from bayesstruct.plots.superposition import plot_evidence_by_size

    sizes = [1, 2, 2, 3, 4, 4]
    lz = [-160.0, -400.0, -120.0, -900.0, -40.0, -100.0]
    ax = plot_evidence_by_size(sizes, lz, floor=-290.0, highlight=(4, -40.0), highlight_label="true tree")
    lo, hi = ax.get_ylim()
    assert lo == -290.0 and hi > -40.0
    inside, below, star = ax.collections
    assert len(inside.get_offsets()) == 4
    np.testing.assert_allclose(below.get_offsets()[:, 1], [-290.0, -290.0])   # both drawn on the edge
    assert np.all(np.abs(below.get_offsets()[:, 0] - [2, 3]) <= 0.1)          # jitter stays within +-0.1
    assert np.all(np.abs(inside.get_offsets()[:, 0] - [1, 2, 4, 4]) <= 0.1)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("2 trees below -290") for t in legend) and "★ true tree" in legend
    ax = plot_evidence_by_size(sizes, lz)                                       # no floor: every tree inside
    assert ax.get_ylim()[0] < -900.0
    with pytest.raises(InvalidArgumentError, match="equal length"):
        plot_evidence_by_size([1, 2], [0.0])
    plt.close("all")


def test_evidence_by_size_keeps_a_highlight_below_the_floor_and_labels_the_floor_exactly():
    from bayesstruct.plots.superposition import plot_evidence_by_size

    ax = plot_evidence_by_size([1, 2, 3], [-44.0, -49.8, -60.0], floor=-49.59, highlight=(3, -85.36))
    inside, below, star = ax.collections
    np.testing.assert_allclose(star.get_offsets()[:, 1], [-49.59])  # on the edge, not clipped away
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("2 trees below -49.59") for t in legend)  # not "below -50": -49.8 lies above -50
    assert any("at -85.36, below the edge" in t for t in legend)
    with pytest.raises(InvalidArgumentError, match="`floor`"):
        plot_evidence_by_size([1, 2], [-30.0, -10.0], floor=0.0)
    plt.close("all")


def test_posterior_bars_match_keys_that_are_not_written_canonically():
    ax = plot_superposition_posterior({"add(x1, log1p(x0))": 0.7, "x0": 0.3}, truth="add(x1, log1p(x0))")
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert any(t.startswith("★ ") for t in ticks)  # the true tree is found whichever way the key spells it
    widths = sorted(p.get_width() for p in ax.patches)
    np.testing.assert_allclose(widths, [0.3, 0.7])
    with pytest.raises(InvalidArgumentError, match="`exact` holds no trees"):
        plot_superposition_posterior({})
    plt.close("all")
