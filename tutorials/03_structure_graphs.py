# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The structure as a latent variable: a one-layer network on the digits
#
# The lecture's one-layer network is a graph $0 \to 1 \to 2$: the edge $0 \to 1$ carries
# $K$ candidate primitives $g_i(x) = \sigma_i(W_i x + b_i)$, mixed by a structure vector
# $\gamma^{0,1}$ on the simplex, and the edge $1 \to 2$ is a linear map to the class logits:
#
# $$f(x) = \mathrm{softmax}\Big(W_2 \sum_i \gamma^{0,1}_i g_i(x) + b_2\Big).$$
#
# Every $\gamma$ defines a model. bayesstruct makes $\Gamma$ a Pyro latent with a
# Gumbel-softmax prior $GS(s = 1/K, \lambda_{temp})$ next to Gaussian priors on the weights,
# fits $q(w)\,q(\Gamma)$ by SVI and reports the ELBO, a lower bound on the evidence
# $\log p(y \mid x, \lambda_{temp})$ of the whole family. This tutorial
#
# 1. fits the posterior over $\Gamma$ at a low temperature and draws it on the 2-simplex;
# 2. draws the graph with line widths growing with $\mathbb E[\gamma]$;
# 3. turns the posterior into one discrete network (`discretize()`) and measures its
#    accuracy and operational criteria (parameters, FLOPs, latency);
# 4. sweeps the prior temperature and plots the ELBO against it;
# 5. puts every discrete structure in one evidence table (`compare`, Laplace).
#
# Run it as a script (`python tutorials/03_structure_graphs.py`) to regenerate
# `figures/structure_posterior_simplex.png`, `figures/structure_graph.png` and
# `figures/elbo_temperature.png`; with `BAYESSTRUCT_SMOKE=1` it runs a small version
# (the test suite does this) and writes to a temporary folder.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import bayesstruct  # noqa: E402
from bayesstruct.datasets import load_digits  # noqa: E402
from bayesstruct.families.network import (  # noqa: E402
    NetworkFamily,
    elbo_temperature_sweep,
    fit_structure_posterior,
    sample_gamma_posterior,
)
from bayesstruct.nn import StructureGraph, StructureNetwork, operational_criteria  # noqa: E402
from bayesstruct.plots import plot_elbo_temperature, plot_gamma_simplex, plot_structure_graph, save_figure  # noqa: E402
from bayesstruct.priors import structure_prior  # noqa: E402

SMOKE = os.environ.get("BAYESSTRUCT_SMOKE", "") not in ("", "0")
FIGURES = Path(tempfile.mkdtemp()) if SMOKE else Path(__file__).resolve().parent.parent / "figures"
FIGURES.mkdir(exist_ok=True)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
T0 = time.perf_counter()

NUM_TRAIN = 100 if SMOKE else 500      # digits used to fit; the rest of NUM_TOTAL is held out
NUM_TOTAL = 200 if SMOKE else 1797
HIDDEN = 4 if SMOKE else 8             # units of vertex 1
NUM_STEPS = 40 if SMOKE else 1000      # SVI steps of the main fit
TEMPERATURE = 0.1                      # lambda_temp of the main fit: a prior close to the vertices
SWEEP_TEMPERATURES = [0.1, 5.0] if SMOKE else [0.1, 1.0, 10.0]
SWEEP_SEEDS = (0,) if SMOKE else (0, 1)
SWEEP_STEPS = 15 if SMOKE else 300
FIT_OPTIONS = dict(lr=0.03, num_elbo_particles=32 if SMOKE else 256, num_gamma_samples=500 if SMOKE else 2000)
PRIMITIVES = ["linear_sigmoid", "linear_tanh", "zero"]

# %% [markdown]
# ## Data and graph
#
# scikit-learn's 8x8 digits, pixels scaled to $[0, 1]$. The hidden edge offers a sigmoid
# layer, a tanh layer, and `zero` -- no hidden layer at all, so the classifier sees only its
# bias: the "nothing to learn" structure, a baseline the evidence must beat.

# %%
x_all, y_all = load_digits(num_samples=NUM_TOTAL, seed=0)
x_all = x_all.to(torch.get_default_dtype())
x, y = x_all[:NUM_TRAIN], y_all[:NUM_TRAIN]
x_test, y_test = x_all[NUM_TRAIN:], y_all[NUM_TRAIN:]
graph = StructureGraph(3, {(0, 1): PRIMITIVES, (1, 2): "linear"}, input_shape=(64,),
                       vertex_shapes={1: (HIDDEN,), 2: (10,)})
print(graph)
print(f"{len(x)} training and {len(x_test)} held-out digits")

# %% [markdown]
# ## The posterior over $\Gamma$ at a low temperature
#
# `fit_structure_posterior` runs SVI with an `AutoNormal` guide over the weights and
# $\Gamma^{0,1}$ (a Normal in the stick-breaking coordinates of the simplex), and returns the
# ELBO and $\mathbb E_q[\Gamma]$; it keeps the guide's draws $\Gamma \sim q$ behind that mean
# (`posterior.gamma_samples`), which `sample_gamma_posterior` and `plot_gamma_simplex` use.
# `jit=True` compiles the ELBO (`pyro.infer.JitTrace_ELBO`), about twice as fast per step here.

# %%
posterior = fit_structure_posterior(graph, x, y, temperature=TEMPERATURE, num_steps=NUM_STEPS, seed=0,
                                    progress=not SMOKE, jit=True, **FIT_OPTIONS)
print(posterior)
draws = sample_gamma_posterior(posterior)[(0, 1)]
for name, mean, sd in zip(PRIMITIVES, draws.mean(0), draws.std(0)):
    print(f"  q(gamma_{name}): mean {float(mean):.3f}, sd {float(sd):.3f}")

# %% [markdown]
# The grey points are the prior $GS(1/3, \lambda_{temp} = 0.1)$: almost all of its mass sits
# at the three vertices. The blue points are $q(\Gamma)$; the hollow diamond is $\mathbb E_q[\Gamma]$, and
# each vertex gives the share of draws with $\gamma_k > 0.9$.

# %%
prior = structure_prior("simplex_interior", torch.ones(3) / 3, TEMPERATURE, kind="gumbel-softmax")
fig, ax = plt.subplots(figsize=(5.6, 4.8), layout="constrained")
plot_gamma_simplex(posterior, ax=ax, prior=prior, seed=0,
                   title=f"posterior of $\\Gamma^{{0,1}}$ on the digits (blue) and its prior (grey),\n"
                         f"$GS(1/3, \\lambda_{{\\mathrm{{temp}}}} = {TEMPERATURE})$")
save_figure(fig, FIGURES / "structure_posterior_simplex.png")  # 150 dpi, tightly cropped
plt.close(fig)

# %% [markdown]
# ## The graph with line widths growing with $\mathbb E[\gamma]$ (width = 0.4 + 8 E[γ] points)

# %%
ax = plot_structure_graph(posterior)
save_figure(ax.figure, FIGURES / "structure_graph.png")
plt.close(ax.figure)

# %% [markdown]
# ## One discrete structure: `discretize()` and operational criteria
#
# The MAP structure keeps the argmax primitive per edge, with the weights at their
# posterior means; it is a plain `torch.nn.Module` holding only the chosen primitives.
# The relaxed fit trained the primitives as a mixture, so dropping the others can cost
# accuracy; `discretize(refit=(x, y))` refits the chosen network's weights by MAP
# (`refit_discrete`: Adam on $-\log p(y \mid x, w) + \frac{\alpha}{2}\lVert w \rVert^2$).
# `operational_criteria` counts its parameters, vertices, edges in use and FLOPs, and times a
# forward pass on this machine -- next to the mixture network that evaluates every primitive.

# %%
net = posterior.discretize(refit=(x, y), refit_steps=20 if SMOKE else 200, lr=0.03)
print(net)
with torch.no_grad():
    accuracy = float((net(x_test).argmax(-1) == y_test).to(torch.float64).mean())
    accuracy_plain = float((posterior.discretize()(x_test).argmax(-1) == y_test).to(torch.float64).mean())
print(f"MAP structure {posterior.choice()}: held-out accuracy {accuracy:.3f} after the MAP refit, "
      f"{accuracy_plain:.3f} at the mixture's weights")
criteria = operational_criteria(net, repeats=5 if SMOKE else 50)
mixture = operational_criteria(StructureNetwork(graph), repeats=5 if SMOKE else 50)
print(f"discrete structure: {criteria}")
print(f"mixture network:    {mixture}")

# %% [markdown]
# ## ELBO against the prior temperature
#
# The ELBO at $\lambda_{temp}$ bounds $\log p(y \mid x, \lambda_{temp})$, the evidence of the
# temperature itself; refitting at several temperatures (two seeds each, error bars: two
# standard errors over the seeds; each seed's ELBO is drawn as a circle beside them) shows
# which prior the data prefer. The bound's gap depends on $\lambda_{temp}$ too, so differences
# within the error bars mean little: the star marks the highest mean, not a winner.

# %%
rows = elbo_temperature_sweep(graph, x, y, SWEEP_TEMPERATURES, seeds=SWEEP_SEEDS, num_steps=SWEEP_STEPS,
                              progress=not SMOKE, **FIT_OPTIONS)
for row in rows:
    print(row)
ax = plot_elbo_temperature(rows, title=f"ELBO against the prior temperature: {len(SWEEP_SEEDS)} seeds × "
                                       f"{SWEEP_STEPS} SVI steps per fit\n(the main fit above ran {NUM_STEPS} steps; "
                                       f"its ELBO is not comparable)")
save_figure(ax.figure, FIGURES / "elbo_temperature.png")
plt.close(ax.figure)

# %% [markdown]
# ## Learned $\Gamma$ and each fixed structure in one evidence table
#
# `NetworkFamily(graph)` enumerates the discrete structures (one primitive per edge); each
# is a model with only the weights latent, so every evidence estimator of
# `bayesstruct.compare` applies. Laplace's method takes a Hessian over all weights (a few
# hundred here). The ELBO of the relaxed family above is a bound for a different model (the
# mixture over $\Gamma$), so compare the two with that in mind: the table says which single
# structure the data prefer, the posterior over $\Gamma$ should put its mass there.

# %%
if SMOKE:
    print("smoke mode: the Laplace evidence table is skipped (a Hessian per structure takes too long here); "
          "run the tutorial without BAYESSTRUCT_SMOKE for it")
else:
    table = bayesstruct.compare(NetworkFamily(graph), x, y, methods="laplace", workers=1, seed=0)
    print(table)
    print(f"relaxed family (learned Gamma, lambda_temp = {TEMPERATURE}): ELBO {posterior.elbo:.1f} nats; "
          f"MAP structure {posterior.choice()}")

# %%
print(f"total time {time.perf_counter() - T0:.0f} s")
print(f"figures written to {FIGURES}")
