"""bayesstruct.plots.structure: the posterior over Gamma on the simplex, the structure graph, ELBO vs temperature."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyro  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

from bayesstruct.exceptions import InvalidArgumentError  # noqa: E402
from bayesstruct.families.network import fit_structure_posterior  # noqa: E402
from bayesstruct.nn import StructureGraph  # noqa: E402
from bayesstruct.families.network import TemperatureSweepRow, sample_gamma_posterior  # noqa: E402
from bayesstruct.plots import plot_elbo_temperature, plot_gamma_simplex, plot_structure_graph  # noqa: E402
from bayesstruct.plots.structure import SIMPLEX_CORNERS, to_ternary  # noqa: E402
from bayesstruct.priors import structure_prior  # noqa: E402

PRIMITIVES = ["linear_sigmoid", "linear_tanh", "zero"]
FIT = dict(num_steps=15, num_elbo_particles=8, num_gamma_samples=500)


def tiny_graph():
    return StructureGraph(3, {(0, 1): PRIMITIVES, (1, 2): "linear"}, input_shape=(2,), vertex_shapes={1: (3,), 2: (2,)})


def tiny_data(n=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=gen)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def posterior():
    x, y = tiny_data()
    return fit_structure_posterior(tiny_graph(), x, y, temperature=0.3, progress=False, **FIT)


def _texts(ax):
    return [t.get_text() for t in ax.texts]


# -- ternary projection --------------------------------------------------------------


def test_to_ternary_maps_vertices_to_corners_and_centre_to_centroid():
    np.testing.assert_allclose(to_ternary(np.eye(3)), SIMPLEX_CORNERS)
    np.testing.assert_allclose(to_ternary([1 / 3, 1 / 3, 1 / 3]), SIMPLEX_CORNERS.mean(0))
    # an equilateral triangle of side 1: every pair of corners is 1 apart
    d = np.linalg.norm(SIMPLEX_CORNERS[:, None] - SIMPLEX_CORNERS[None], axis=-1)
    np.testing.assert_allclose(d[~np.eye(3, dtype=bool)], 1.0)
    with pytest.raises(InvalidArgumentError, match=r"\(\.\.\., 3\)"):
        to_ternary([[0.5, 0.5]])


# -- plot_gamma_simplex ----------------------------------------------------------------


def test_plot_gamma_simplex_draws_every_sample_prior_mean_and_vertex_shares():
    # 10 samples near vertex 1, 30 in the interior: 25 % of gamma_1 > 0.9, 0 % for the others
    samples = np.array([[0.95, 0.03, 0.02]] * 10 + [[0.2, 0.3, 0.5]] * 30)
    prior = torch.distributions.Dirichlet(torch.ones(3)).sample((77,))
    ax = plot_gamma_simplex(samples, prior=prior, primitives=["a", "b", "c"])
    prior_pc, post_pc = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert prior_pc.get_label() == "prior" and len(prior_pc.get_offsets()) == 77
    assert post_pc.get_label() == "posterior" and len(post_pc.get_offsets()) == 40
    np.testing.assert_allclose(post_pc.get_offsets(), to_ternary(samples))
    assert _texts(ax)[:3] == ["a\n$P(\\gamma_k > 0.9)$ = 25%", "b\n$P(\\gamma_k > 0.9)$ = 0%",
                              "c\n$P(\\gamma_k > 0.9)$ = 0%"]
    (mean_line,) = [line for line in ax.lines if line.get_label() == "E[gamma]"]
    np.testing.assert_allclose(np.ravel(mean_line.get_xydata()), to_ternary(samples.mean(0)))


def test_plot_gamma_simplex_samples_a_prior_distribution_and_draws_a_density():
    samples = structure_prior("simplex_interior", torch.ones(3) / 3, 0.5, kind="dirichlet").sample((500,))
    prior = structure_prior("simplex_interior", torch.ones(3) / 3, 0.5)
    ax = plot_gamma_simplex(samples, prior=prior, kind="density", num_samples=123)
    (prior_pc,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(prior_pc.get_offsets()) == 123
    (hexes,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert hexes.get_label() == "posterior"
    assert hexes.get_array().sum() == 500  # every sample falls in a hexagon inside the triangle's box
    assert any(getattr(a, "get_ylabel", lambda: "")() == "posterior samples per hexagon" for a in ax.figure.axes)
    assert _texts(ax)[0].startswith("$e_1$")


def test_plot_gamma_simplex_of_a_posterior_uses_its_edge_and_primitive_names(posterior):
    ax = plot_gamma_simplex(posterior, num_samples=300, seed=1)
    (pc,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(pc.get_offsets()) == 300
    assert [t.split("\n")[0] for t in _texts(ax)[:3]] == PRIMITIVES
    # the points are a seeded subset of the fit's own draws
    draws = sample_gamma_posterior(posterior, 300, seed=1)[(0, 1)].numpy()
    (mean_line,) = [line for line in ax.lines if line.get_label() == "E[gamma]"]
    np.testing.assert_allclose(np.ravel(mean_line.get_xydata()), to_ternary(draws.mean(0)), atol=1e-6)
    # by default every stored draw, whose mean is E_q[gamma] itself; no param store needed
    pyro.clear_param_store()
    ax = plot_gamma_simplex(posterior)
    (pc,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(pc.get_offsets()) == FIT["num_gamma_samples"]
    (mean_line,) = [line for line in ax.lines if line.get_label() == "E[gamma]"]
    np.testing.assert_allclose(np.ravel(mean_line.get_xydata()),
                               to_ternary(posterior.posterior_mean_gamma[(0, 1)].numpy()), atol=1e-6)
    with pytest.raises(InvalidArgumentError, match="1 primitives"):
        plot_gamma_simplex(posterior, edge=(1, 2))


@pytest.mark.parametrize("samples, match", [
    (np.full((5, 4), 0.25), "3 columns"),                       # K = 4 is not the 2-simplex
    (np.array([[1.2, -0.2, 0.0]]), "negative"),
    (np.array([[0.5, 0.4, 0.4]]), "sum to 1"),
    (np.array([[np.nan, 0.5, 0.5]]), "NaN"),
    (np.zeros((0, 3)), "non-empty"),
])
def test_plot_gamma_simplex_rejects_points_off_the_2_simplex(samples, match):
    with pytest.raises(InvalidArgumentError, match=match):
        plot_gamma_simplex(samples)


def test_plot_gamma_simplex_rejects_bad_options():
    ok = np.full((4, 3), 1 / 3)
    with pytest.raises(InvalidArgumentError, match="kind"):
        plot_gamma_simplex(ok, kind="contour")
    with pytest.raises(InvalidArgumentError, match="primitives"):
        plot_gamma_simplex(ok, primitives=["a", "b"])
    with pytest.raises(InvalidArgumentError, match="edge"):
        plot_gamma_simplex(ok, edge=(0, 1))
    with pytest.raises(InvalidArgumentError, match="prior"):
        plot_gamma_simplex(ok, prior=np.full((4, 2), 0.5))


# -- plot_structure_graph --------------------------------------------------------------


def _primitive_lines(ax):
    return {line.get_gid(): line for line in ax.lines if line.get_gid()}


def test_plot_structure_graph_widths_follow_the_posterior_mean_gamma():
    gamma = {(0, 1): [0.7, 0.1, 0.2]}
    ax = plot_structure_graph(tiny_graph(), gamma, max_width=10.0, min_width=0.5)
    lines = _primitive_lines(ax)
    assert set(lines) == {"0->1:linear_sigmoid", "0->1:linear_tanh", "0->1:zero", "1->2:linear"}
    widths = [lines[f"0->1:{n}"].get_linewidth() for n in PRIMITIVES]
    np.testing.assert_allclose(widths, [0.5 + 10 * 0.7, 0.5 + 10 * 0.1, 0.5 + 10 * 0.2])
    assert lines["1->2:linear"].get_linewidth() == pytest.approx(10.5)  # a lone primitive has gamma = 1
    texts = _texts(ax)
    assert {"0", "1", "2"} <= set(texts)
    assert "linear_sigmoid\n0.70" in texts and "zero\n0.20" in texts
    # the three arcs of edge 0 -> 1 all join vertex 0 (x = 0) to vertex 1 (x = 1), fanned apart
    for n in PRIMITIVES:
        xy = lines[f"0->1:{n}"].get_xydata()
        np.testing.assert_allclose([xy[0, 0], xy[-1, 0]], [0.0, 1.0])
    mids = sorted(lines[f"0->1:{n}"].get_xydata()[25, 1] for n in PRIMITIVES)
    assert mids[0] < mids[1] < mids[2]


def test_plot_structure_graph_lays_vertices_out_by_depth_and_takes_a_posterior(posterior):
    skip = StructureGraph(4, {(0, 1): ["linear_tanh", "linear_relu"], (1, 2): "linear_tanh", (0, 2): "linear_tanh",
                              (2, 3): "linear"}, input_shape=(2,), vertex_shapes={1: (3,), 2: (3,), 3: (2,)})
    lines = _primitive_lines(plot_structure_graph(skip))
    xy = lines["0->2:linear_tanh"].get_xydata()
    assert (xy[0, 0], xy[-1, 0]) == (0.0, 2.0)  # vertex 2 is two steps deep (longest path 0 -> 1 -> 2)
    assert lines["0->1:linear_tanh"].get_linewidth() == lines["0->1:linear_relu"].get_linewidth()  # no gamma given
    widths = {n: line.get_linewidth() for n, line in _primitive_lines(plot_structure_graph(posterior)).items()}
    order = np.argsort(posterior.posterior_mean_gamma[(0, 1)].numpy())
    assert np.all(np.diff([widths[f"0->1:{PRIMITIVES[i]}"] for i in order]) > 0)


@pytest.mark.parametrize("gamma, match", [
    ({(0, 1): [0.5, 0.5]}, r"shape \(3,\)"),
    ({(0, 1): [0.5, -0.1, 0.6]}, r"\[0, 1\]"),
    ({(0, 2): [1.0]}, "not edges"),
    ({(1, 2): [1.0]}, "lacks edge"),
    ([0.3, 0.3, 0.4], "dict"),
])
def test_plot_structure_graph_rejects_bad_gamma(gamma, match):
    with pytest.raises(InvalidArgumentError, match=match):
        plot_structure_graph(tiny_graph(), gamma)


def test_plot_structure_graph_rejects_a_non_graph():
    with pytest.raises(InvalidArgumentError, match="StructureGraph"):
        plot_structure_graph({(0, 1): ["linear"]})


# -- ELBO against temperature ----------------------------------------------------------


def test_plot_elbo_temperature_sorts_points_and_marks_the_best():
    ax = plot_elbo_temperature([5.0, 0.1, 1.0], [-12.0, -10.0, -11.0], stderr=[0.5, 0.2, 0.1])
    (eb,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    x, y = eb.lines[0].get_data()
    np.testing.assert_allclose(x, [0.1, 1.0, 5.0])
    np.testing.assert_allclose(y, [-10.0, -11.0, -12.0])
    (bar_lines,) = eb.lines[2]
    half = [seg[1, 1] - seg[0, 1] for seg in bar_lines.get_segments()]
    np.testing.assert_allclose(half, [2 * 2 * 0.2, 2 * 2 * 0.1, 2 * 2 * 0.5])  # +-2 s.e., sorted
    (best,) = [line for line in ax.lines if line.get_label().startswith("best")]
    assert tuple(np.ravel(best.get_xydata())) == (0.1, -10.0)
    assert ax.get_xscale() == "log"


@pytest.mark.parametrize("args, match", [
    (([0.1, 1.0], [-1.0]), "one value per temperature"),
    (([0.0, 1.0], [-1.0, -2.0]), "> 0"),
    (([0.1, 1.0], [-1.0, -2.0], [0.1, -0.1]), ">= 0"),
    (([0.1, 1.0], [-1.0, -2.0], [0.1]), "stderr"),
    (([0.1, 1.0],), "elbos"),
    (([0.1, 1.0], [-1.0, np.inf]), "NaN or infinite"),
])
def test_plot_elbo_temperature_rejects_bad_input(args, match):
    with pytest.raises(InvalidArgumentError, match=match):
        plot_elbo_temperature(*args)


def test_plot_elbo_temperature_takes_sweep_rows():
    # rows as elbo_temperature_sweep returns them (its fits are tested in tests/families/test_network.py)
    gamma = {(0, 1): torch.tensor([0.5, 0.3, 0.2])}
    rows = [TemperatureSweepRow(temperature=2.0, elbo=-12.0, elbo_stderr=0.5, posterior_mean_gamma=gamma,
                                elbos=(-11.5, -12.5)),
            TemperatureSweepRow(temperature=0.1, elbo=-10.0, elbo_stderr=0.25, posterior_mean_gamma=gamma,
                                elbos=(-9.75, -10.25))]
    ax = plot_elbo_temperature(rows)
    (eb,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose(eb.lines[0].get_data()[0], [0.1, 2.0])
    np.testing.assert_allclose(eb.lines[0].get_data()[1], [-10.0, -12.0])
    (best,) = [line for line in ax.lines if line.get_label().startswith("best")]
    assert tuple(np.ravel(best.get_xydata())) == (0.1, -10.0)
    with pytest.raises(InvalidArgumentError, match="leave `elbos`"):
        plot_elbo_temperature(rows, [-1.0, -2.0])


# -- readability: legends, markers and line styles a referee can read ------------------


def test_plot_gamma_simplex_mean_marker_is_hollow_and_the_legend_is_readable():
    samples = np.array([[0.01, 0.98, 0.01]] * 90 + [[0.2, 0.3, 0.5]] * 10)
    prior = torch.distributions.Dirichlet(torch.ones(3)).sample((50,))
    ax = plot_gamma_simplex(samples, prior=prior, primitives=["sig", "tanh", "zero"])
    (mean_line,) = [line for line in ax.lines if line.get_label() == "E[gamma]"]
    assert mean_line.get_markerfacecolor() == "none"  # the pile of draws under it stays visible
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert not any("gamma" in t for t in texts)  # "E[γ]", not the ASCII spelling
    (mean_text,) = [t for t in texts if t.startswith("E[γ]")]
    assert "(0.03, 0.91, 0.06)" in mean_text and "(sig, tanh, zero)" in mean_text  # value and order
    # fixed-size handles, not the samples' 2-pixel dots
    assert all(h.get_markersize() >= 5 for h in legend.legend_handles)
    assert _texts(ax)[1] == "tanh\n$P(\\gamma_k > 0.9)$ = 90%"


def test_plot_structure_graph_primitives_differ_by_line_style_and_legend_widths_are_fixed():
    gamma = {(0, 1): [0.01, 0.97, 0.02]}
    ax = plot_structure_graph(tiny_graph(), gamma)
    lines = _primitive_lines(ax)
    styles = {n: lines[f"0->1:{n}"].get_linestyle() for n in PRIMITIVES}
    assert len(set(styles.values())) == 3  # readable in greyscale, not colour alone
    colors = {n: lines[f"0->1:{n}"].get_color() for n in PRIMITIVES}
    assert len(set(colors.values())) == 3
    legend = ax.get_legend()
    widths = {h.get_linewidth() for h in legend.legend_handles}
    assert len(widths) == 1 and widths.pop() >= 2.0  # a hairline arc gets a readable legend entry
    texts = [t.get_text() for t in legend.get_texts()]
    for h, t in zip(legend.legend_handles, texts):
        if t in styles:
            assert h.get_linestyle() == styles[t]
    assert "grows with" in ax.get_title()


def test_plot_elbo_temperature_shows_each_seed_and_calls_the_star_highest_mean():
    gamma = {(0, 1): torch.tensor([0.5, 0.3, 0.2])}
    rows = [TemperatureSweepRow(temperature=t, elbo=e, elbo_stderr=se, posterior_mean_gamma=gamma,
                                elbos=(e - se, e + se))
            for t, e, se in [(10.0, -654.0, 9.0), (0.1, -632.0, 9.0), (1.0, -630.0, 9.0)]]
    ax = plot_elbo_temperature(rows, title="300 SVI steps per fit")
    (seeds,) = [line for line in ax.lines if line.get_gid() == "seeds"]
    ys = sorted(np.asarray(seeds.get_ydata(), dtype=float).tolist())
    assert ys == sorted(v for r in rows for v in r.elbos)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert not any(t.startswith("best") for t in texts)
    (star_text,) = [t for t in texts if t.startswith("highest mean")]
    assert "= 1" in star_text and "within the error bars" in star_text
    assert any("2 seeds" in t for t in texts)
    assert ax.get_title() == "300 SVI steps per fit"
    assert ax.get_ylabel().startswith("ELBO")
    # seeds can be switched off; plain arrays have none
    assert not [line for line in plot_elbo_temperature(rows, show_seeds=False).lines if line.get_gid() == "seeds"]
    ax = plot_elbo_temperature([0.1, 1.0], [-5.0, -50.0], stderr=[0.1, 0.1])
    (star_text,) = [t.get_text() for t in ax.get_legend().get_texts() if t.get_text().startswith("highest")]
    assert "within" not in star_text  # separated by far more than the error bars
