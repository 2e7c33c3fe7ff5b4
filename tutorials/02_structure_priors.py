# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Priors over a model's structure: the simplex, the cube and a temperature
#
# A structure parameter $\gamma \in [0, 1]^K$ weighs the $K$ candidate operations on one
# edge of a structure graph. The lecture restricts it to one of four sets: the simplex's
# vertices (pick exactly one operation), its interior (a soft mixture), the cube's vertices
# (switch each operation on or off) or its interior (weigh each independently).
#
# The relaxed priors have a location $s$ and a temperature $\lambda_{temp}$:
#
# * Gumbel-softmax $GS(s, \lambda_{temp})$: $\gamma = \mathrm{softmax}((\log s + g)/\lambda_{temp})$,
#   $g_k$ standard Gumbel (Jang et al. 2016; Maddison et al. 2016);
# * Dirichlet $\mathrm{Dir}(s, \lambda_{temp}) = \mathrm{Dirichlet}(K \lambda_{temp} s)$, mean $s$;
# * on the cube, their two-option versions per coordinate: relaxed Bernoulli and
#   $\mathrm{Beta}(2\lambda_{temp} s, 2\lambda_{temp}(1-s))$.
#
# In all four, $\lambda_{temp} \to 0$ pushes the samples onto the vertices, and a large
# $\lambda_{temp}$ pulls them into the interior. Run it as a script to regenerate
# `figures/structure_priors_simplex.png` and `figures/structure_priors_cube.png`; with
# `BAYESSTRUCT_SMOKE=1` it draws fewer samples and writes to a temporary folder.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pyro  # noqa: E402
import torch  # noqa: E402

from bayesstruct.plots.structure import draw_simplex, to_ternary  # noqa: E402
from bayesstruct.plots.style import color, save_figure  # noqa: E402
from bayesstruct.priors import Restriction, structure_prior  # noqa: E402

SMOKE = os.environ.get("BAYESSTRUCT_SMOKE", "") not in ("", "0")
FIGURES = Path(tempfile.mkdtemp()) if SMOKE else Path(__file__).resolve().parent.parent / "figures"
FIGURES.mkdir(exist_ok=True)
NUM_SAMPLES = 300 if SMOKE else 2000
TEMPERATURES = [0.05, 0.995, 5.0]
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
pyro.set_rng_seed(0)

# %% [markdown]
# ## A structure prior is a Pyro distribution
#
# `structure_prior(restriction, s, temperature, kind=...)` returns an ordinary Pyro
# distribution with event shape `(K,)`, usable in `pyro.sample` and broadcast by plates.

# %%
s_simplex = torch.tensor([0.5, 0.3, 0.2])


def model():
    with pyro.plate("edges", 4):
        return pyro.sample("gamma", structure_prior(Restriction.SIMPLEX_INTERIOR, s_simplex, 0.3))


print(model())

# %% [markdown]
# ## The simplex: Gumbel-softmax and Dirichlet
#
# A point $\gamma$ of the 2-simplex is drawn in barycentric coordinates: vertex $e_k$ of the
# triangle is "only operation $k$". The location is $s = (0.5, 0.3, 0.2)$ (the cross); the
# percentage next to each vertex label is the share of samples with $\gamma_k > 0.9$. As
# $\lambda_{temp} \to 0$ both priors put mass $s_k$ on vertex $e_k$. The Dirichlet's mean is $s$
# at every temperature; the Gumbel-softmax's is not: at large $\lambda_{temp}$ its samples
# gather at the centre $(1/3, 1/3, 1/3)$, away from the cross.


# %%
# the ternary projection (to_ternary, draw_simplex) comes from bayesstruct.plots.structure


def vertex_closeness(x):
    return float(x.max(-1).values.mean())


families = [("gumbel-softmax", "Gumbel-softmax $GS(s, \\lambda_{\\mathrm{temp}})$", color(0)),
            ("dirichlet", "Dirichlet $\\mathrm{Dir}(s, \\lambda_{\\mathrm{temp}})$", color(1))]
fig, axes = plt.subplots(2, 3, figsize=(11, 7.6))
for row, (kind, title, color_) in enumerate(families):
    for col, lam in enumerate(TEMPERATURES):
        x = structure_prior("simplex_interior", s_simplex, lam, kind=kind).sample((NUM_SAMPLES,))
        ax = axes[row, col]
        # share of the samples with gamma_k > 0.9, next to vertex e_k (a scatter hides how many pile up there)
        near = (x > 0.9).to(torch.float64).mean(0)
        draw_simplex(ax, [f"$e_{k + 1}$: {100 * float(near[k]):.0f}%" for k in range(3)], fontsize=10, pad=0.22)
        xy = to_ternary(x)
        ax.scatter(xy[:, 0], xy[:, 1], s=5, alpha=0.45, color=color_, lw=0)
        loc = to_ternary(s_simplex)
        ax.plot(loc[0], loc[1], "k+", ms=12, mew=2)
        ax.set_title(f"{title}\n$\\lambda_{{\\mathrm{{temp}}}} = {lam}$, mean max $\\gamma_k$ = {vertex_closeness(x):.2f}",
                     fontsize=10)
        print(f"simplex {kind:15s} lambda={lam:<6} mean max-coordinate {vertex_closeness(x):.3f}")
fig.suptitle("Structure priors on the 2-simplex: $\\lambda_{\\mathrm{temp}} \\to 0$ puts the samples on the vertices\n"
             "+ = the location $s = (0.5, 0.3, 0.2)$;  $e_k$: x% = share of the samples with $\\gamma_k > 0.9$",
             fontsize=11)
fig.text(0.5, 0.005, "The Dirichlet's mean is s at every $\\lambda_{\\mathrm{temp}}$; the Gumbel-softmax's is not: "
         "as $\\lambda_{\\mathrm{temp}}$ grows its samples move to the centre (1/3, 1/3, 1/3).",
         ha="center", va="bottom", fontsize=9, color="0.25")
fig.tight_layout(rect=(0, 0.02, 1, 1))
save_figure(fig, FIGURES / "structure_priors_simplex.png")  # 150 dpi, tightly cropped
plt.close(fig)

# %% [markdown]
# ## The cube: relaxed Bernoulli and Beta
#
# On the cube each coordinate is independent; with $K = 2$ the cube is the unit square and
# its vertices are the four on/off patterns. The location is $s = (0.7, 0.4)$ (the cross);
# the percentage at each corner is the share of samples within 0.1 of it in both coordinates.

# %%
s_cube = torch.tensor([0.7, 0.4])
families = [("relaxed-bernoulli", "RelaxedBernoulli$(s, \\lambda_{\\mathrm{temp}})$", color(2)),
            ("beta", "Beta$(2\\lambda_{\\mathrm{temp}} s, 2\\lambda_{\\mathrm{temp}}(1-s))$", color(4))]
CORNERS = [(0, 0), (1, 0), (0, 1), (1, 1)]
fig, axes = plt.subplots(2, 3, figsize=(11, 9.2))
for row, (kind, title, color_) in enumerate(families):
    for col, lam in enumerate(TEMPERATURES):
        x = structure_prior("cube_interior", s_cube, lam, kind=kind).sample((NUM_SAMPLES,))
        ax = axes[row, col]
        ax.add_patch(plt.Rectangle((0, 0), 1, 1, fill=False, color="0.3", lw=1))
        ax.scatter(x[:, 0], x[:, 1], s=6, alpha=0.5, color=color_, lw=0)
        ax.plot(s_cube[0], s_cube[1], "k+", ms=12, mew=2)
        # share of the samples within 0.1 of each corner (both coordinates), written outside the square
        for a, b in CORNERS:
            corner = torch.tensor([float(a), float(b)])
            share = float(((x - corner).abs() < 0.1).all(-1).to(torch.float64).mean())
            ax.text(a + (0.04 if a else -0.04), b + (0.04 if b else -0.04), f"{100 * share:.0f}%",
                    ha="left" if a else "right", va="bottom" if b else "top", fontsize=8, color="0.2")
        ax.set_xlim(-0.2, 1.2)
        ax.set_ylim(-0.2, 1.2)
        ax.set_xticks([0, 0.5, 1])
        ax.set_yticks([0, 0.5, 1])
        ax.set_aspect("equal")
        ax.set_xlabel("$\\gamma_1$")
        ax.set_ylabel("$\\gamma_2$")
        closeness = float(torch.maximum(x, 1 - x).mean())
        ax.set_title(f"{title}\n$\\lambda_{{\\mathrm{{temp}}}} = {lam}$, mean max$(\\gamma, 1-\\gamma)$ = {closeness:.2f}",
                     fontsize=10)
        print(f"cube    {kind:17s} lambda={lam:<6} mean max(x, 1-x) {closeness:.3f}")
fig.suptitle("Structure priors on the square $[0, 1]^2$ (the cube with K = 2): $\\lambda_{\\mathrm{temp}} \\to 0$ puts "
             "the samples on the corners\n+ = the location $s = (0.7, 0.4)$;  x% at a corner = share of the samples "
             "within 0.1 of it", fontsize=11)
fig.text(0.5, 0.005, "The Beta's mean is s at every $\\lambda_{\\mathrm{temp}}$; the relaxed Bernoulli's is not: "
         "as $\\lambda_{\\mathrm{temp}}$ grows its samples move to (0.5, 0.5).",
         ha="center", va="bottom", fontsize=9, color="0.25")
fig.tight_layout(rect=(0, 0.025, 1, 1))
save_figure(fig, FIGURES / "structure_priors_cube.png")
plt.close(fig)

# %%
print(f"figures written to {FIGURES}")
