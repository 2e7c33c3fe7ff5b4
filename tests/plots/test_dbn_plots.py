"""Figures of belief-net structure chains: what is drawn matches the numbers given."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bayesstruct import plots  # noqa: E402
from bayesstruct.exceptions import InvalidArgumentError  # noqa: E402
from bayesstruct.families import CIBPSampler  # noqa: E402
from bayesstruct.families.belief_net_report import to_inference_data  # noqa: E402
from bayesstruct.priors import CascadingIBP  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def chains():
    return [CIBPSampler(1.0, 1.0, 6, seed=s).run(200, progress=False) for s in (0, 1)]


def test_structure_drawing_has_one_segment_per_edge():
    torch.manual_seed(3)
    layers = CascadingIBP(1.5, 1.0, num_visible=10).sample()
    ax = plots.plot_structure(layers)
    segments = ax.collections[0].get_segments()
    assert len(segments) == int(sum(z.sum() for z in layers))
    widths = [10] + [z.shape[1] for z in layers[:-1]]
    dots = [c for c in ax.collections[1:]]
    assert [len(c.get_offsets()) for c in dots] == widths
    for seg in segments:  # every edge joins adjacent layers, child below parent
        (x0, y0), (x1, y1) = seg
        assert y1 == y0 + 1
    with pytest.raises(InvalidArgumentError, match="layers\\[1\\]"):
        plots.plot_structure([np.ones((3, 2)), np.ones((4, 0))])


def test_fantasy_grid_shows_the_images():
    real = np.zeros((3, 4))
    fant = np.array([[1.0, 0.0, 0.0, 0.5]] * 3)
    fig = plots.plot_fantasies(fant, real, ncols=3)
    assert [a.get_title() for a in fig.axes] == ["real images", "fantasies"]
    grid = fig.axes[1].images[0].get_array()
    assert grid.shape == (1 * (2 + 1) + 1, 3 * (2 + 1) + 1)  # one row of three 2x2 images, 1-pixel frames
    assert np.array_equal(grid[1:3, 1:3], [[1.0, 0.0], [0.0, 0.5]])
    with pytest.raises(InvalidArgumentError, match="image_shape"):
        plots.plot_fantasies(np.zeros((2, 5)))
    with pytest.raises(InvalidArgumentError, match="`real` must have 4 pixels"):
        plots.plot_fantasies(fant, np.zeros((2, 9)))


def test_structure_posterior_bars_are_probabilities(chains):
    fig = plots.plot_structure_posterior(chains)
    ax_depth = fig.axes[0]
    heights = np.array([p.get_height() for p in ax_depth.patches])
    assert heights.sum() == pytest.approx(1.0)
    depth = np.concatenate([c.depth for c in chains])
    xs = [p.get_x() + p.get_width() / 2 for p in ax_depth.patches]
    for x, h in zip(xs, heights):
        assert h == pytest.approx(np.mean(depth == round(x)))


def test_trace_plot_has_two_panels_per_variable(chains):
    idata = to_inference_data(chains)
    fig = plots.plot_dbn_trace(idata, var_names=["depth", "num_edges"])
    assert len(fig.axes) == 4
    with pytest.raises(InvalidArgumentError, match="alpha"):
        plots.plot_dbn_trace(idata, var_names=["alpha"])
    with pytest.raises(InvalidArgumentError, match="`var_names` is empty"):
        plots.plot_dbn_trace(idata, var_names=[])


def test_trace_plot_tells_the_chains_apart_and_shows_r_hat(chains):
    idata = to_inference_data(chains)
    fig = plots.plot_dbn_trace(idata, var_names=["depth", "num_edges"], r_hat={"depth": 2.02, "num_edges": None})
    ax_marg, ax_trace = fig.axes[0], fig.axes[1]
    traces = ax_trace.get_lines()
    assert len(traces) == 2                                   # one line per chain
    assert traces[0].get_color() != traces[1].get_color()
    assert traces[0].get_linestyle() != traces[1].get_linestyle()
    np.testing.assert_array_equal(traces[1].get_ydata(), chains[1].depth)
    legend_texts = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    assert legend_texts == ["chain 0", "chain 1"]
    assert "R-hat 2.02" in ax_marg.get_title() and "R-hat 2.02" in ax_trace.get_title()
    assert "R-hat n/a" in fig.axes[2].get_title()
    assert ax_marg.get_ylabel() == "probability"              # depth is discrete: per-chain probabilities
    assert fig.axes[-1].get_xlabel().startswith("draw")
    assert len({tuple(p.get_edgecolor()) for p in ax_marg.patches}) == 2   # one step histogram per chain


def test_structure_posterior_states_pooling_and_labels_every_axis(chains):
    fig = plots.plot_structure_posterior(chains, r_hat={"depth": 1.8})
    title = fig._suptitle.get_text()
    assert "pooled over 2 chains" in title and "R-hat(depth L) = 1.80" in title and "not converged" in title
    ax_d, ax_w, ax_e = fig.axes[:3]
    assert all(ax.get_ylabel().startswith("probability") for ax in (ax_d, ax_w, ax_e))
    heights = np.array([p.get_height() for p in ax_e.patches])
    assert heights.sum() == pytest.approx(1.0)                # probabilities per bin, not a density
    assert "density" not in ax_e.get_ylabel()


def test_structure_posterior_per_chain(chains):
    fig = plots.plot_structure_posterior(chains, per_chain=True, r_hat={"depth": 1.0})
    ax_d, ax_w, ax_e = fig.axes[:3]
    assert [t.get_text() for t in ax_d.get_legend().get_texts()] == ["chain 0", "chain 1"]
    for c, patch in enumerate(ax_d.patches):                  # one step line per chain, each summing to 1
        assert patch.get_edgecolor() != ax_d.patches[1 - c].get_edgecolor()
    assert "drawn separately" in fig._suptitle.get_text() and "not converged" not in fig._suptitle.get_text()
    assert ax_w.get_ylabel().startswith("width")


def test_fantasy_figure_has_no_empty_band_and_says_what_generated_it():
    fig = plots.plot_fantasies(np.zeros((40, 64)), np.zeros((40, 64)), fantasy_title="fantasies of chain 1")
    w, h = fig.get_size_inches()
    assert h / w < 0.45                                       # 5 x 8 grids: wider than tall, no blank band below
    assert fig.axes[1].get_title() == "fantasies of chain 1"


def test_structure_title_and_per_layer_alpha():
    layers = [np.ones((25, 4)), np.array([[1.0], [0.0], [0.0], [0.0]]), np.zeros((1, 0))]
    ax = plots.plot_structure(layers, title="chain 2, final state")
    assert ax.get_title() == "chain 2, final state"
    alphas = ax.collections[0].get_colors()[:, 3]
    assert alphas[0] < alphas[-1]                             # 100 lower edges fainter than the single upper one
    assert "2 hidden layers, 101 edges" in plots.plot_structure(layers).get_title()
    assert not ax.spines["left"].get_visible()


@pytest.mark.parametrize("kw, name", [({"ncols": 0}, "ncols"), ({"ncols": -2}, "ncols"),
                                      ({"max_images": 0}, "max_images"), ({"max_images": -1}, "max_images"),
                                      ({"ncols": 2.5}, "ncols")])
def test_fantasies_refuse_counts_below_one(kw, name):
    # used to be ZeroDivisionError / ValueError, or max_images=-1 silently showing 2 of 3 images
    with pytest.raises(InvalidArgumentError, match=f"`{name}` must be an integer >= 1"):
        plots.plot_fantasies(np.random.default_rng(0).random((3, 64)), **kw)


@pytest.mark.parametrize("kw, name", [({"max_layers": -1}, "max_layers"), ({"max_layers": 0}, "max_layers"),
                                      ({"edge_bins": 0}, "edge_bins")])
def test_structure_posterior_refuses_counts_below_one(chains, kw, name):
    # max_layers=-1 used to drop the last layer silently
    with pytest.raises(InvalidArgumentError, match=f"`{name}` must be an integer >= 1"):
        plots.plot_structure_posterior(chains, **kw)


@pytest.mark.parametrize("max_layers", [-1, 0])
def test_trace_plot_refuses_max_layers_below_one(chains, max_layers):
    with pytest.raises(InvalidArgumentError, match="`max_layers` must be an integer >= 1"):
        plots.plot_dbn_trace(chains, max_layers=max_layers)
