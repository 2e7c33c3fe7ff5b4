"""Figures of a Bayesian-network posterior: what is drawn matches the numbers given."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import bayesstruct  # noqa: E402
from bayesstruct.exceptions import InvalidArgumentError  # noqa: E402
from bayesstruct.families.bayes_net import (DAG, BayesianNetworkFamily, StructureMCMC, edge_posterior,  # noqa: E402
                                            simulate_linear_gaussian)
from bayesstruct.plots.bayes_net import plot_edge_posterior, plot_top_dags  # noqa: E402

TRUE = DAG("0->2, 1->2", num_variables=3)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    W = torch.zeros(3, 3, dtype=torch.float64)
    W[0, 2], W[1, 2] = 0.8, -0.7
    return simulate_linear_gaussian(TRUE, 200, weights=W, seed=0)


@pytest.fixture(scope="module")
def table(data):
    return bayesstruct.compare(BayesianNetworkFamily(3), data, None, methods="exact", workers=1, progress=False)


def test_heatmap_shows_the_edge_posterior_and_marks_the_true_edges(table):
    ax = plot_edge_posterior(table, true_dag=TRUE, variable_names=["a", "b", "c"])
    P = edge_posterior(table).numpy()
    shown = np.asarray(ax.images[0].get_array(), dtype=float)
    assert np.all(np.isnan(np.diag(shown)))
    off = ~np.eye(3, dtype=bool)
    assert np.allclose(shown[off], P[off])
    marks = [p for p in ax.patches if p.get_gid() == "true-edge"]
    assert sorted((int(round(p.get_y() + 0.5)), int(round(p.get_x() + 0.5))) for p in marks) == list(TRUE.edges)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert sum(t.get_text() == f"{P[0, 2]:.2f}" for t in ax.texts) >= 1


def test_heatmap_accepts_samples_and_matrices(data):
    samples = StructureMCMC(BayesianNetworkFamily(3), data, seed=0).run(200, progress=False)
    ax = plot_edge_posterior(samples, annotate=False)
    assert not ax.texts and not ax.patches
    plot_edge_posterior(np.eye(2)[::-1])
    with pytest.raises(InvalidArgumentError, match="square"):
        plot_edge_posterior(np.zeros((2, 3)))
    with pytest.raises(InvalidArgumentError, match=r"\[0, 1\]"):
        plot_edge_posterior(np.full((2, 2), 2.0))
    with pytest.raises(InvalidArgumentError, match="variable_names"):
        plot_edge_posterior(np.zeros((2, 2)), variable_names=["a"])
    with pytest.raises(InvalidArgumentError, match="cycle"):
        plot_edge_posterior(np.zeros((2, 2)), true_dag=((1,), (0,)))


def test_top_dags_draw_one_arrow_per_edge(table):
    fig = plot_top_dags(table, 3, true_dag=TRUE)
    assert len(fig.axes) == 3
    for ax, row in zip(fig.axes, table.rows):
        arrows = [p for p in ax.patches if p.get_gid() == "edge"]
        assert len(arrows) == row.structure["dag"].num_edges
        assert f"{row.posterior_probability:.3f}" in ax.get_title()
    assert fig.axes[0].get_title().endswith("(true)")
    with pytest.raises(InvalidArgumentError, match="num_dags"):
        plot_top_dags(table, 0)
    with pytest.raises(InvalidArgumentError, match="ComparisonTable"):
        plot_top_dags(np.zeros((3, 3)))


def test_top_dags_of_mcmc_draws_show_visit_frequencies(data):
    samples = StructureMCMC(BayesianNetworkFamily(3), data, seed=0).run(600, warmup=100, progress=False)
    visits = list(samples.posterior_probabilities().items())
    fig = plot_top_dags(samples, 2)
    assert len(fig.axes) == 2
    for ax, (dag, p) in zip(fig.axes, visits):
        assert ax.get_xlabel() == str(dag)
        assert f"{p:.3f}" in ax.get_title()
        assert len([q for q in ax.patches if q.get_gid() == "edge"]) == dag.num_edges
    assert "600" in fig._suptitle.get_text()


@pytest.mark.parametrize("num_dags", [1, 2, 3])
def test_top_dag_edge_lists_lie_inside_the_figure(table, num_dags):
    # the old figure cut the edge lists off at its bottom edge (saved without a tight crop)
    fig = plot_top_dags(table, num_dags, true_dag=TRUE)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for ax in fig.axes:
        label = ax.xaxis.label.get_window_extent(renderer)
        assert box.y0 <= label.y0 and label.y1 <= box.y1 and box.x0 <= label.x0 and label.x1 <= box.x1
    title = fig._suptitle.get_window_extent(renderer)
    assert box.x0 <= title.x0 and title.x1 <= box.x1
    assert "p(G | D)" in fig._suptitle.get_text() and f"{len(table.rows)} DAGs" in fig._suptitle.get_text()


def test_top_dags_can_write_typographic_arrows_without_touching_str(table):
    fig = plot_top_dags(table, 2, edge_arrow="→")
    for ax, row in zip(fig.axes, table.rows):
        assert ax.get_xlabel() == str(row.structure["dag"]).replace("->", "→")
    assert "->" in str(table.rows[0].structure["dag"])  # DAG.__str__ is unchanged
    assert plot_top_dags(table, 1).axes[0].get_xlabel() == str(table.rows[0].structure["dag"])  # default
    with pytest.raises(InvalidArgumentError, match="edge_arrow"):
        plot_top_dags(table, 1, edge_arrow="")


def test_heatmap_legend_uses_arrows_and_title_explains_the_diagonal(table):
    ax = plot_edge_posterior(table, true_dag=TRUE)
    (text,) = [t.get_text() for t in ax.get_legend().get_texts()]
    assert text == "true edges (0→2, 1→2)"
    assert "self-loops" in ax.get_title()
