"""Search figures draw the history they are given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bayesstruct.exceptions import InvalidArgumentError  # noqa: E402
from bayesstruct.nn import StructureGraph  # noqa: E402
from bayesstruct.plots import plot_latency_accuracy, plot_search_history  # noqa: E402
from bayesstruct.search import search  # noqa: E402


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 2, generator=gen, dtype=torch.float64)
    return StructureGraph(3, {(0, 1): ["linear_tanh", "zero"], (1, 2): "linear"}, input_shape=(2,),
                          vertex_shapes={1: (4,), 2: (2,)}), x, (x[:, 0] * x[:, 1] > 0).long()


def test_gamma_lines_are_the_history(data):
    graph, x, y = data
    r = search(graph, x, y, "darts", num_epochs=3, warmup_epochs=2, refit_steps=0, arch_lr=0.1, progress=False)
    ax = plot_search_history(r)
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["linear_tanh", "zero"]
    np.testing.assert_allclose(lines[1].get_ydata(), [h["gamma"][(0, 1)][1].item() for h in r.history])
    assert len(ax.patches) == 1  # the shaded warmup
    with pytest.raises(InvalidArgumentError, match="`edge`"):
        plot_search_history(r, edge=(1, 2))
    with pytest.raises(InvalidArgumentError, match="`result`"):
        plot_search_history(r.history)
    plt.close("all")


def test_reward_lines_and_the_tradeoff(data):
    graph, x, y = data
    r = search(graph, x, y, "reinforce", num_updates=3, batch_size=2, child_steps=5, progress=False)
    ax = plot_search_history(r)
    mean, best, base = ax.get_lines()
    np.testing.assert_allclose(best.get_ydata(), [h["best_reward"] for h in r.history])
    assert ax.get_ylabel() == "reward: validation accuracy"
    ax = plot_latency_accuracy([80.0, 65.0, 80.0], [0.97, 0.96, 0.97], labels=["a", "b", "c"],
                               reference=([50.0, 70.0], [0.5, 0.9]))
    grey, found = ax.get_lines()
    np.testing.assert_allclose(found.get_xdata(), [80.0, 65.0, 80.0])
    np.testing.assert_allclose(grey.get_ydata(), [0.5, 0.9])
    assert sorted(t.get_text() for t in ax.texts) == ["a, c", "b"]  # coinciding points share a label
    with pytest.raises(InvalidArgumentError, match="equal length"):
        plot_latency_accuracy([1.0], [0.5, 0.6])
    with pytest.raises(InvalidArgumentError, match="`labels`"):
        plot_latency_accuracy([1.0], [0.5], labels=["a", "b"])
    plt.close("all")


def test_random_search_history_draws_each_structure(data):
    graph, x, y = data
    r = search(graph, x, y, "random", num_samples=2, child_steps=5, progress=False)
    ax = plot_search_history(r)
    points, best = ax.get_lines()
    np.testing.assert_allclose(points.get_ydata(), [h["reward"] for h in r.history])
    assert ax.get_xlabel() == "structures trained"
    plt.close("all")


def test_primitive_colours_are_keyed_by_name_not_position():
    """A primitive has the same colour and line style on every edge's panel, wherever it sits in the list."""
    from bayesstruct.plots.search import primitive_style

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, 2, generator=gen, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    graph = StructureGraph(3, {(0, 1): ["linear_tanh", "linear_relu", "zero"], (1, 2): ["zero", "linear"],
                               (0, 2): ["linear_relu", "zero"]},
                           input_shape=(2,), vertex_shapes={1: (4,), 2: (2,)})
    r = search(graph, x, y, "darts", num_epochs=2, warmup_epochs=1, refit_steps=0, progress=False)
    fig, axes = plt.subplots(1, 3)
    for ax, e in zip(axes, [(0, 1), (1, 2), (0, 2)]):
        plot_search_history(r, ax=ax, edge=e)        # the skip edge 0->2 is drawable like any other
    style = {}
    for ax in axes:
        for ln in ax.get_lines():
            key = (matplotlib.colors.to_hex(ln.get_color()), ln.get_linestyle(), ln.get_marker())
            assert style.setdefault(ln.get_label(), key) == key
    assert style["zero"][0] == matplotlib.colors.to_hex(primitive_style("zero")["color"])
    assert len(set(style.values())) == len(style)    # different primitives look different (not colour alone)
    assert len({v[1:] for v in style.values()}) == len(style)
    assert [ln.get_label() for ln in axes[2].get_lines()] == ["linear_relu", "zero"]
    plt.close("all")


def test_zoomed_latency_accuracy_marks_the_points_below_the_axis():
    ref_lat, ref_acc = [20.0, 25.0, 30.0, 30.0, 35.0], [0.97, 0.10, 0.965, 0.965, 0.50]
    ax = plot_latency_accuracy([25.0, 30.0, 30.0], [0.97, 0.965, 0.965], labels=["$λ$=0", "$λ$=0.6", "$λ$=2"],
                               reference=(ref_lat, ref_acc), ylim=(0.955, 0.98))
    lo, hi = ax.get_ylim()
    assert (lo, hi) == (0.955, 0.98)
    below = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
    assert len(below) == 1
    np.testing.assert_allclose(below[0].get_xdata(), [25.0, 35.0])      # both structures under 0.955 are drawn
    np.testing.assert_allclose(below[0].get_ydata(), [0.955, 0.955])    # ... on the lower edge
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("2 structures below 0.955") for t in legend)
    texts = [t.get_text() for t in ax.texts]
    assert "$λ$ ∈ {0.6, 2}" in texts and "×2" in texts                 # coinciding points: joined label, a count
    plt.close("all")


def test_reward_label_has_a_unit(data):
    graph, x, y = data
    r = search(graph, x, y, "reinforce", reward="log-likelihood", num_updates=2, batch_size=2, child_steps=5,
               progress=False)
    ax = plot_search_history(r)
    assert "nats" in ax.get_ylabel()
    plt.close("all")


def test_found_points_off_the_axis_point_the_way_they_are_off():
    ax = plot_latency_accuracy([10.0, 20.0, 30.0], [0.99, 0.5, 0.8], ylim=(0.6, 0.9))
    marks = {ln.get_marker(): ln for ln in ax.get_lines() if ln.get_marker() in ("v", "^")}
    np.testing.assert_allclose(marks["^"].get_xdata(), [10.0])   # 0.99 is above the axis: an upward triangle at 0.9
    np.testing.assert_allclose(marks["^"].get_ydata(), [0.9])
    np.testing.assert_allclose(marks["v"].get_xdata(), [20.0])
    np.testing.assert_allclose(marks["v"].get_ydata(), [0.6])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "found, above 0.9 (drawn on the edge)" in legend and "found, below 0.6 (drawn on the edge)" in legend
    plt.close("all")
