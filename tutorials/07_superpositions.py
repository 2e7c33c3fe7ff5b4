# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Superpositions of elementary functions: which ranking function do the data support?
#
# The lecture's second example of a structure that is a graph: a ranking function is a
# *superposition* of elementary functions, a tree whose vertices carry functions and whose
# leaves are the features. The lecture encodes it as triples $(i, j, g)$: an edge from vertex
# $i$ to vertex $j$, and $g$ the function at $j$. The relevance scores here come from the
# log-tf·idf weight $\log(1 + \mathrm{tf}) \cdot \mathrm{idf}$ plus noise
# (`bayesstruct.datasets.ranking_data`). This tutorial
#
# 1. lists every superposition of at most four vertices over
#    $\{\log(1+|u|), \sqrt{|u|}, e^u, u^2, 1/(1+|u|), +, -, \times, u/(1+|v|)\}$ and the two
#    features, one tree per distinct model on the data;
# 2. compares them by their exact evidence $p(y \mid x, \Gamma)$ (each tree is a Bayesian
#    linear model in its feature) times the grammar prior $p(\Gamma)$;
# 3. samples trees by Metropolis–Hastings (regrow a subtree, relabel a vertex, insert or delete
#    a unary vertex) and checks the chain against the enumeration, then lets tempered chains
#    loose on trees of up to seven vertices, a space too large to list.
#
# Run it as a script (`python tutorials/07_superpositions.py`) to regenerate
# `figures/superpositions.png`; with `BAYESSTRUCT_SMOKE=1` it runs a small version (the test
# suite does this) and writes to a temporary folder.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import bayesstruct  # noqa: E402
from bayesstruct.datasets import ranking_data  # noqa: E402
from bayesstruct.families import (  # noqa: E402
    Superposition,
    SuperpositionFamily,
    SuperpositionGrammar,
    SuperpositionSamples,
    sample_superpositions,
)
from bayesstruct.io import chain_diagnostics  # noqa: E402
from bayesstruct.plots import plot_superposition, plot_superposition_posterior  # noqa: E402
from bayesstruct.plots.style import save_figure  # noqa: E402
from bayesstruct.plots.superposition import TRUTH_LABEL, plot_evidence_by_size  # noqa: E402

SMOKE = os.environ.get("BAYESSTRUCT_SMOKE", "") not in ("", "0")
FIGURES = Path(tempfile.mkdtemp()) if SMOKE else Path(__file__).resolve().parent.parent / "figures"
FIGURES.mkdir(exist_ok=True)
T0 = time.perf_counter()
TEACHER = Superposition.parse("mul(log1p(x0), x1)")

x, y = ranking_data(100, noise=0.3, seed=0)
print("teacher", TEACHER, "encoded as", TEACHER.edges)

# %% [markdown]
# ## Every superposition of at most four vertices
#
# The grammar is the structure prior: each vertex is a feature with probability 1/2, a unary
# function with 1/4, a binary one with 1/4, then one of its kind uniformly. `distinct_on=x`
# keeps one tree per model on these inputs (`x0` and `add(x0, x0)` are one model once the
# feature is standardised) and gives it the prior mass of all the trees it stands for.

# %%
grammar = SuperpositionGrammar(2, max_size=4)
family = SuperpositionFamily(grammar, distinct_on=x)
table = bayesstruct.compare(family, x, y, methods="exact", structure_prior=family.structure_prior, workers=1,
                            progress=False)
print(f"{len(family.structures())} distinct superpositions ({len(grammar.trees(canonical=False))} trees)")
for r in table.rows[:5]:
    print(f"  {str(r.structure['tree']):24s} log evidence {r.log_evidence('exact'):8.2f}  p = {r.posterior_probability:.3f}")
assert table.best["tree"] == TEACHER

# %% [markdown]
# Every tree has the same two linear parameters (an intercept and the slope of its
# standardised feature), so the evidence compares only the fit; the prior prices the size.

# %% [markdown]
# ## Metropolis–Hastings over trees
#
# The main move picks a vertex uniformly and regrows its sub-tree from the grammar; with the
# grammar as the prior the acceptance probability is
# $\min(1, \frac{p(y|x,\Gamma')|\Gamma|}{p(y|x,\Gamma)|\Gamma'|})$. Relabelling a vertex and
# inserting or deleting a unary vertex (Jin et al. 2019) reach neighbours that regrowth finds only
# by luck. The chain runs over all trees (no merging of equal models), so the exact reference is
# the family without `distinct_on`, one tree per function up to argument order.

# %%
num_samples = 3000 if SMOKE else 300000
canonical = SuperpositionFamily(grammar)
exact = bayesstruct.compare(canonical, x, y, methods="exact", structure_prior=canonical.structure_prior,
                            workers=1, progress=False)
chain = sample_superpositions(x, y, grammar, num_samples=num_samples, seed=0, progress=not SMOKE)
exact_post = {str(r.structure["tree"]): r.posterior_probability for r in exact.rows}
mh_post = chain.posterior()
tv = 0.5 * sum(abs(mh_post.get(k, 0.0) - p) for k, p in exact_post.items())
print(f"MH, {num_samples} draws: acceptance {chain.acceptance_rate:.2f}, total variation to the enumeration {tv:.3f}")

# %% [markdown]
# With seven vertices the grammar has hundreds of thousands of trees; the chain needs only the
# ones it proposes. Without a reference, run several chains and check that they agree (R-hat of
# the log evidence, Vehtari et al. 2021); parallel tempering (`temperatures=4`: replicas at
# inverse temperatures 1, 1/2, 1/4, 1/8 that swap trees) keeps a chain from sitting in a tree
# with no better neighbour.

# %%
big = SuperpositionGrammar(2, max_size=7)
chains = [sample_superpositions(x, y, big, num_samples=num_samples // 4, temperatures=4, seed=1 + c,
                                progress=not SMOKE) for c in range(2)]
wide = SuperpositionSamples.concat(chains)
r_hat = chain_diagnostics(np.stack([c.stats()["log_evidence"] for c in chains]))["r_hat"]
print(f"max_size 7, 2 tempered chains: {len(wide.log_evidence)} trees proposed, swap rate {wide.swap_rate:.2f}, "
      f"R-hat of the log evidence {r_hat:.3f}; top: "
      + ", ".join(f"{t} {p:.2f}" for t, p in list(wide.posterior().items())[:3]))

# %%
fig = plt.figure(figsize=(14, 4.6))
gs = fig.add_gridspec(1, 3, width_ratios=[1.0, 1.6, 1.3])
best = table.best["tree"]
plot_superposition(best, fig.add_subplot(gs[0]),
                   title=f"MAP tree{' = the ' + TRUTH_LABEL if best == TEACHER else ''}\n{best}")
plot_superposition_posterior(exact, chain, fig.add_subplot(gs[1]), top=6, truth=TEACHER,
                             title="p(Γ | D), trees of ≤ 4 vertices")
sizes = np.array([r.structure["tree"].size for r in table.rows])
lz = np.array([r.log_evidence("exact") for r in table.rows])
FLOOR = lz.max() - 250  # the y axis shows 250 nats below the best tree; trees further down sit on its edge
plot_evidence_by_size(sizes, lz, fig.add_subplot(gs[2]), floor=FLOOR,
                      highlight=(TEACHER.size, table.row({"tree": TEACHER}).log_evidence("exact")),
                      highlight_label=f"{TRUTH_LABEL} {TEACHER}", title="exact evidence of every distinct tree")
fig.tight_layout()
save_figure(fig, FIGURES / "superpositions.png")
print(f"figure: {int((lz < FLOOR).sum())} of {len(lz)} trees lie more than 250 nats below the best "
      f"(lowest {lz.min() - lz.max():.0f} nats), drawn on the lower edge")

# %%
print(f"total time {time.perf_counter() - T0:.0f} s")
print(f"figures written to {FIGURES}")
