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


def test_pruning_curve_has_readable_ticks_and_style_per_method():
    """The log error axis labels the 3-7 % range; kept fractions read 1, 1/2, ..., 1/32;
    methods differ in colour *and* marker."""
    curves = {"a": [(1.0, 0.035), (0.5, 0.04), (0.25, 0.06), (0.125, 0.5), (0.0625, 0.8), (0.03125, 0.9)],
              "b": [(1.0, 0.031), (0.5, 0.033), (0.25, 0.07), (0.125, 0.2), (0.0625, 0.6), (0.03125, 0.8)]}
    ax = plot_pruning_curve(curves)
    ax.figure.canvas.draw()
    lo, hi = ax.get_ylim()
    labelled = [(t.get_loc(), t.label1.get_text()) for t in ax.yaxis.get_major_ticks()
                if t.label1.get_text() and lo <= t.get_loc() <= hi]
    assert len(labelled) >= 4                       # not only 10^-1 and 10^0
    assert any(0.03 <= loc <= 0.07 for loc, _ in labelled)
    assert all(text.endswith("%") for _, text in labelled)
    xlabels = [t.get_text() for t in ax.get_xticklabels()]
    assert xlabels == ["1", "1/2", "1/4", "1/8", "1/16", "1/32"]
    a, b = ax.get_lines()
    assert a.get_color() != b.get_color() and a.get_marker() != b.get_marker()
    assert "test error" in ax.get_ylabel()
    plt.close("all")


def test_weight_histogram_log_counts():
    net = nn.Sequential(nn.Linear(4, 4, bias=False))
    ax = plot_weight_histogram(weight_histogram(net, bins=5), log=True)
    assert ax.get_yscale() == "log" and "log" in ax.get_ylabel()
    plt.close("all")


def test_histogram_title_counts_the_weights_outside_the_range():
    net = nn.Sequential(nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[-1.0, 0.01, 0.02, 0.0]]))
    hist = weight_histogram(net, bins=4, range=(-0.05, 0.05))
    assert hist.num_outside == 1 and int(hist.counts.sum()) == 2  # -1 lies in no bin
    ax = plot_weight_histogram(hist)
    assert "3 of 4 weights non-zero (1 outside the range, not drawn)" == ax.get_title()
    everything = weight_histogram(net, bins=4, range=(-0.05, 0.05), nonzero_only=False)
    assert everything.num_outside == 1 and int(everything.counts.sum()) == 3  # the zero is in a bar here
    plt.close("all")


def test_a_zero_test_error_is_drawn_at_a_marked_floor_on_the_log_axis():
    ax = plot_pruning_curve({"m": [(1.0, 0.05), (0.5, 0.0), (0.25, 0.02)]})
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "m"]
    y = np.asarray(line.get_ydata())
    assert np.all(y > 0) and y[1] == pytest.approx(0.01)  # half the smallest error, not a gap in the line
    lo, hi = ax.get_ylim()
    assert lo <= 0.01 <= hi
    zeros = [ln for ln in ax.get_lines() if ln.get_marker() == "v" and len(ln.get_xdata())]
    np.testing.assert_allclose(zeros[0].get_xdata(), [0.5])
    assert any(t.get_text().startswith("test error 0 (1), drawn at 1%") for t in ax.get_legend().get_texts())
    with pytest.raises(InvalidArgumentError, match="finite and >= 0"):
        plot_pruning_curve({"m": [(1.0, -0.1)]})
    plt.close("all")
