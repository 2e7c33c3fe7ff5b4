"""bayesstruct.plots: each figure draws what it promises, under the Agg backend."""

import matplotlib

matplotlib.use("Agg")

import dataclasses  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bayesstruct import PolynomialFamily, compare  # noqa: E402
from bayesstruct.datasets import sinusoid  # noqa: E402
from bayesstruct.exceptions import InvalidArgumentError  # noqa: E402
from bayesstruct.io import table_inference_data  # noqa: E402
from bayesstruct.plots import plot_evidence, plot_posterior_probabilities, plot_predictive, plot_weights  # noqa: E402

DEGREES = (1, 3, 5)
METHODS = ("exact", "laplace", "iwae", "smc")


@pytest.fixture(scope="module")
def table():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        x, y = sinusoid(n=20, noise=0.3, seed=0)
        return compare(PolynomialFamily(range(10)), x, y, methods=",".join(METHODS),
                       structures=[{"degree": d} for d in DEGREES], workers=1, progress=False, seed=0)
    finally:
        torch.set_default_dtype(old)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _errorbars(ax):
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def test_plot_evidence_zooms_on_top_structures(table):
    ax = plot_evidence(table)
    fig = ax.figure
    assert len(fig.axes) == 2  # degree 1 is ~30 nats below the best: a zoomed panel is added
    for panel in fig.axes:
        assert len(_errorbars(panel)) == len(METHODS) - 1  # one per method, exact is a line
        assert [line.get_label() for line in panel.lines if line.get_label() == "exact"] == ["exact"]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(d) for d in DEGREES]
    zoomed = fig.axes[1]
    assert [t.get_text() for t in zoomed.get_xticklabels()] == ["3", "5"]
    lo, hi = zoomed.get_ylim()
    ref = {r.structure["degree"]: r.estimates["exact"].log_evidence for r in table.rows}
    assert lo <= min(ref[3], ref[5]) and max(ref[3], ref[5]) <= hi
    assert not lo <= ref[1] <= hi
    assert hi - lo < 10
    # error bars are num_stderr standard errors wide
    smc = _errorbars(ax)[METHODS.index("smc") - 1]
    segments = smc.lines[2][0].get_segments()
    widths = sorted(abs(s[1][1] - s[0][1]) for s in segments)
    expected = sorted(4 * r.estimates["smc"].stderr for r in table.rows)
    np.testing.assert_allclose(widths, expected, rtol=1e-6)


def test_plot_evidence_into_given_axes_without_exact(table):
    no_exact = dataclasses.replace(table, methods=("laplace", "smc"), reference_method="smc")
    fig, ax = plt.subplots()
    assert plot_evidence(no_exact, ax=ax, zoom=None) is ax
    assert len(fig.axes) == 1
    assert len(_errorbars(ax)) == 2
    assert not [line for line in ax.lines if line.get_label() == "exact"]
    assert ax.get_legend() is not None and ax.get_title()
    with pytest.raises(InvalidArgumentError, match="`zoom`"):
        plot_evidence(table, zoom=-1)


def test_plot_predictive(table):
    ax = plot_predictive(table, truth=lambda x: np.sin(2 * np.pi * x), num_samples=300)
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(bands) == 2 and len(points) == 1
    assert len(ax.lines) == 3  # best mean, average mean, truth
    assert points[0].get_offsets().shape == (20, 2)
    assert ax.get_legend() is not None
    fig, ax2 = plt.subplots()
    assert plot_predictive(table, x_grid=np.linspace(0, 1, 50), level=0.5, ax=ax2, num_samples=200) is ax2
    assert len(ax2.lines) == 2
    with pytest.raises(InvalidArgumentError, match="`level`"):
        plot_predictive(table, level=1.5)


def test_plot_posterior_probabilities(table):
    ax = plot_posterior_probabilities(table)
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == len(DEGREES)
    probs = {r.structure["degree"]: r.posterior_probability for r in table.rows}
    np.testing.assert_allclose([b.get_height() for b in bars], [probs[d] for d in DEGREES])
    best = table.best["degree"]
    colors = [b.get_facecolor() for b in bars]
    assert colors[DEGREES.index(best)] != colors[DEGREES.index(best) - 1]


def test_plot_weights(table):
    idatas = table_inference_data(table, "smc")
    fig = plot_weights(idatas, kind="forest")
    assert isinstance(fig, Figure)
    fig = plot_weights(idatas["degree=3"], kind="posterior")
    assert isinstance(fig, Figure)
    assert sum(ax.has_data() for ax in fig.axes) == 4  # w_0..w_3
    with pytest.raises(InvalidArgumentError, match="`var_names`"):
        plot_weights(idatas["degree=3"], var_names=("beta",))
    with pytest.raises(InvalidArgumentError, match="`kind`"):
        plot_weights(idatas["degree=3"], kind="trace")
    with pytest.raises(InvalidArgumentError, match="kind='posterior'"):
        plot_weights(idatas, kind="posterior")


# -- readability: what a referee checks (markers, zoom window, legends, labels) ---------


def test_plot_evidence_tells_methods_apart_without_colour(table):
    ax = plot_evidence(table)
    for panel in ax.figure.axes:
        markers = [c.lines[0].get_marker() for c in _errorbars(panel)]
        assert len(set(markers)) == len(markers) == len(METHODS) - 1  # one shape per method, not all "o"
        colors = [c.lines[0].get_color() for c in _errorbars(panel)]
        assert len(set(colors)) == len(colors)
        assert panel.get_ylabel().startswith("log evidence")
    labels = [t.get_text() for t in ax.figure.axes[1].get_legend().get_texts()]
    assert "laplace (no s.e.)" in labels  # an estimator without a standard error says so


def test_plot_evidence_zoom_panel_draws_nothing_outside_its_window(table):
    ax = plot_evidence(table)
    zoomed = ax.figure.axes[1]
    lo, hi = zoomed.get_ylim()
    # the old panel drew the exact line down to degree 1 (30 nats below), a "cliff" at the edge
    for line in zoomed.lines:
        y = np.asarray(line.get_ydata(), dtype=float)
        y = y[np.isfinite(y)]
        assert np.all((lo <= y) & (y <= hi)), (line.get_label(), y, (lo, hi))
    (exact,) = [line for line in zoomed.lines if line.get_label() == "exact"]
    assert np.isfinite(np.asarray(exact.get_ydata(), dtype=float)).sum() == 2  # degrees 3 and 5
    # the full panel still shows every structure
    (full_exact,) = [line for line in ax.lines if line.get_label() == "exact"]
    assert np.isfinite(np.asarray(full_exact.get_ydata(), dtype=float)).all()


def test_plot_posterior_probabilities_explains_the_best_bar_and_labels_every_bar(table):
    ax = plot_posterior_probabilities(table)
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    best = DEGREES.index(table.best["degree"])
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    handles = legend.legend_handles
    (best_handle,) = [h for h, t in zip(handles, texts) if "best" in t]
    assert f"degree={table.best['degree']}" in texts[handles.index(best_handle)]
    np.testing.assert_allclose(best_handle.get_facecolor(), bars[best].get_facecolor())
    assert any("prior" in t for t in texts)
    # one label per bar, "<0.01" where the bar is too low to see, above the bar *and* the prior mark
    prior = {r.structure["degree"]: float(np.exp(r.log_prior)) for r in table.rows}
    probs = {r.structure["degree"]: r.posterior_probability for r in table.rows}
    labels = {int(round(t.xy[0])): t for t in ax.texts}
    assert sorted(labels) == sorted(DEGREES)
    for d, t in labels.items():
        expected = f"{probs[d]:.2f}" if probs[d] >= 0.005 else "<0.01"
        assert t.get_text() == expected
        assert t.xy[1] >= max(probs[d], prior[d]) - 1e-12
    assert ax.get_ylabel()


def test_plot_predictive_names_its_bands_and_keeps_truth_apart(table):
    ax = plot_predictive(table, truth=lambda x: np.sin(2 * np.pi * x), num_samples=200)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sum("90% predictive interval of y" in t for t in texts) == 2
    assert not any(t.endswith("band") for t in texts)
    best, average, truth = ax.lines
    assert truth.get_linestyle() == ":" and best.get_linestyle() == "-" and average.get_linestyle() == "--"
    assert len({best.get_color(), average.get_color(), truth.get_color()}) == 3
    assert ax.get_ylabel() == "y" and ax.get_xlabel() == "x"


def test_plot_weights_forest_uses_90_percent_and_labels_axis_and_rows(table):
    idatas = table_inference_data(table, "laplace")
    fig = plot_weights(idatas["degree=3"], kind="forest")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "weight value"
    assert "90" in ax.get_title() and "94" not in ax.get_title()
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(rows) == [f"w[{k}]" for k in range(4)]  # not ArviZ's "w[0]", "[1]", "[2]", ...
    assert "Gaussian approximation" in fig._suptitle.get_text()
    # an explicit hdi_prob still wins
    fig = plot_weights(idatas["degree=3"], kind="forest", hdi_prob=0.5)
    assert "50" in fig.axes[0].get_title()


def test_plot_posterior_probabilities_leaves_room_for_the_label_of_a_bar_at_1():
    with torch.random.fork_rng():
        x, y = sinusoid(n=20, noise=0.3, seed=0)
        t = compare(PolynomialFamily([0, 1, 3]), x.double(), y.double(), methods="exact", workers=1, progress=False)
    assert max(r.posterior_probability for r in t.rows) > 0.99
    ax = plot_posterior_probabilities(t)
    ax.figure.canvas.draw()
    top = ax.get_window_extent().y1
    labels = [a for a in ax.texts if a.get_text() == "1.00"]
    assert labels and labels[0].get_window_extent().y1 <= top  # inside the axes, not into the title
    assert max(ax.get_yticks()) <= 1.0 + 1e-9


def test_plot_evidence_says_so_in_a_given_zoom_axes_when_nothing_needs_a_zoom(table):
    fig, (ax, zoom_ax) = plt.subplots(1, 2)
    plot_evidence(table, ax=ax, zoom=1e6, zoom_ax=zoom_ax)
    assert any("every structure is within" in t.get_text() for t in zoom_ax.texts)
    assert not zoom_ax.axison
