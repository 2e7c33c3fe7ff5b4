"""Pruning figures draw the numbers they are given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from bayesstruct.exceptions import InvalidArgumentError  # noqa: E402
from bayesstruct.plots.pruning import plot_pruning_curve, plot_weight_histogram  # noqa: E402
from bayesstruct.prune import weight_histogram  # noqa: E402


def test_histogram_bars_are_the_counts():
    net = nn.Sequential(nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[-1.0, 0.0], [0.25, 1.0]]))
    hist = weight_histogram(net, bins=4)
    ax = plot_weight_histogram(hist)
    (patch,) = ax.patches
    ys = patch.get_path().vertices[:, 1]
    assert ys.max() == 1 and "3 of 4 weights non-zero" in ax.get_title()
    plt.close("all")
    with pytest.raises(InvalidArgumentError, match="hist"):
        plot_weight_histogram(np.zeros(3))


def test_pruning_curve_one_line_per_method_and_bad_input():
    curves = {"magnitude": [(1.0, 0.02), (0.5, 0.03), (0.1, 0.2)], "obd": [(1.0, 0.02), (0.1, 0.1)]}
    ax = plot_pruning_curve(curves)
    lines = ax.get_lines()
    assert [l.get_label() for l in lines] == ["magnitude", "obd"]
    assert np.allclose(lines[0].get_xydata(), np.asarray(curves["magnitude"]))
    assert ax.xaxis_inverted() and ax.get_xscale() == "log"
    plt.close("all")
    with pytest.raises(InvalidArgumentError, match="fractions kept"):
        plot_pruning_curve({"m": [(0.0, 0.1)]})
    with pytest.raises(InvalidArgumentError, match="curves"):
        plot_pruning_curve({})
