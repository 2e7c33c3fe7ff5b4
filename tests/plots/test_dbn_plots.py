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
