# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Pruning and compressing a small network
#
# The structure $\Gamma$ of a network is also *which weights exist*. This tutorial removes
# weights from a trained multilayer perceptron on scikit-learn's 8x8 digits and compares
#
# * one-shot saliency pruning without retraining: magnitude $|\theta_i|$, Optimal Brain
#   Damage $s_i = \tfrac12 h_{ii}\theta_i^2$ (LeCun et al. 1989) and Optimal Brain Surgeon
#   $s_q = \theta_q^2 / (2[H^{-1}]_{qq})$ with the compensating update of the survivors
#   (Hassibi & Stork 1992);
# * iterative magnitude pruning with retraining (Han et al. 2015: prune half, retrain,
#   prune half again, ...);
# * Deep Compression of the pruned net (weight sharing, centroid fine-tuning, Huffman-coded
#   sparse file; Han, Mao & Dally 2016);
# * Graves's variational description length (NIPS 2011) and pruning by the relative
#   density $\lambda_i = q_i(0)/q_i(\mu_i)$.
#
# Run it as a script (`python tutorials/04_pruning.py`) to regenerate
# `figures/pruning_curve.png` and `figures/weight_histograms.png`; with `BAYESSTRUCT_SMOKE=1`
# it runs a small version (the test suite does this) and writes to a temporary folder.
#
# Everything below is the package's API: the network from `bayesstruct.nn.zoo`, training,
# pruning, compression and the accounting from `bayesstruct.prune`, the figures from
# `bayesstruct.plots`. The tutorial only chooses sizes and puts the pieces together.

# %%
import copy
import math
import os
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from bayesstruct.nn.zoo import lenet300  # noqa: E402
from bayesstruct.plots import plot_pruning_curve, plot_weight_histogram  # noqa: E402
from bayesstruct.plots.style import color, save_figure  # noqa: E402
from bayesstruct.prune import (  # noqa: E402
    account,
    accounting_table,
    apply_masks,
    compress,
    decompress,
    evaluate,
    finetune_centroids,
    fit_variational,
    fraction_kept,
    get_masks,
    iterative_prune,
    log_relative_density,
    prune,
    prune_by_relative_density,
    share_weights,
    train,
)

SMOKE = os.environ.get("BAYESSTRUCT_SMOKE", "") not in ("", "0")
FIGURES = Path(tempfile.mkdtemp()) if SMOKE else Path(__file__).resolve().parent.parent / "figures"
FIGURES.mkdir(exist_ok=True)
torch.set_num_threads(1)
torch.manual_seed(0)
T0 = time.perf_counter()

# Sizes. 64-20-10 has 1,480 prunable weights: under bayesstruct.prune.saliency.MAX_EXACT
# (5,000), so OBS uses one full Hessian over both layers. OBS removes one weight at a time
# with a rank-1 update of the inverse Hessian, so its cost grows like n^3: with 64-40-10
# (2,960 weights) the OBS curve alone takes about 15 s on 1 CPU thread, and a 64-100-10 net
# (7,400 weights) is above MAX_EXACT, where OBS switches to per-layer blocks.
HIDDEN = 8 if SMOKE else 20
EPOCHS = 15 if SMOKE else 150
RETRAIN_EPOCHS = 5 if SMOKE else 40
ROUNDS = 5  # halve the survivors each round: keep 1/2, 1/4, ..., 1/32
KEEP = [0.5**r for r in range(ROUNDS + 1)]  # fraction of weights kept: 1, 0.5, ..., 0.03125
TABLE_KEEP = 0.125  # the fraction at which the histograms, Deep Compression and the table compare methods
FINETUNE_STEPS = 20 if SMOKE else 200
VI_STEPS = 50 if SMOKE else 400
RUN_OBS = True  # cheap at this size in both modes (see the timing printed below)

# %% [markdown]
# ## Data and a dense network
#
# `lenet300(64, hidden=(HIDDEN,))` is LeNet-300-100's fully connected ReLU net cut down to one
# hidden layer for 8x8 inputs; `train` is minibatch Adam on the cross-entropy and
# `evaluate` the test error rate.

# %%
digits = load_digits()
X = (digits.data / 16.0).astype(np.float32)
y = digits.target.astype(np.int64)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
data = (torch.from_numpy(Xtr), torch.from_numpy(ytr))
test = (torch.from_numpy(Xte), torch.from_numpy(yte))
# OBD's Gauss-Newton diagonal and OBS's Hessian are sums over training examples: the smoke
# run estimates them from the first 200 examples only
saliency_data = (data[0][:200], data[1][:200]) if SMOKE else data
print(f"train {tuple(data[0].shape)}, test {tuple(test[0].shape)}")

dense = lenet300(64, hidden=(HIDDEN,))
train(dense, data, epochs=EPOCHS, lr=3e-3, batch_size=64, seed=0, progress=False)
DENSE_ERR = evaluate(dense, test)
num_weights = sum(p.numel() for n, p in dense.named_parameters() if n.endswith("weight"))
print(f"dense 64-{HIDDEN}-10: {num_weights} prunable weights, test error {DENSE_ERR:.4f}")

# %% [markdown]
# ## One-shot pruning, no retraining
#
# Each saliency ranks the weights of the *trained* dense net; the lowest-ranked are masked
# (`prune(..., amount=...)` removes that fraction of the survivors, over all layers).
# OBD uses the Gauss-Newton diagonal, LeCun et al.'s own approximation (for cross-entropy,
# the true Fisher): one backward pass per class, against about 1.5 s per call here for the
# exact diagonal (`hessian="exact"`, what `"auto"` picks at this size).
# Magnitude and OBD are re-ranked from the dense net for every target fraction. OBS moves the
# survivors when it removes a weight, so its pruned nets are built incrementally: each call
# removes half of the survivors of the previous one, recomputing the Hessian at the new
# weights (still no retraining).

# %%
loss_fn = F.cross_entropy
curves: dict[str, list[tuple[float, float]]] = {}
timings: dict[str, float] = {}
at_table_keep = {}  # method -> its net pruned to TABLE_KEEP, for the accounting table

for method, opts in [("magnitude", {}), ("obd", {"hessian": "gauss-newton"})]:
    t = time.perf_counter()
    rows = []
    for keep in KEEP:
        net = copy.deepcopy(dense)
        if keep < 1.0:
            prune(net, method, amount=1.0 - keep, loss_fn=loss_fn, data=saliency_data, **opts)
        rows.append((fraction_kept(net), evaluate(net, test)))
        if keep == TABLE_KEEP:
            at_table_keep[method] = net
    curves[method] = rows
    timings[method] = time.perf_counter() - t

if RUN_OBS:
    t = time.perf_counter()
    net = copy.deepcopy(dense)
    rows = [(1.0, DENSE_ERR)]
    for keep in KEEP[1:]:
        res = prune(net, "obs", amount=0.5, loss_fn=loss_fn, data=saliency_data)
        rows.append((fraction_kept(net), evaluate(net, test)))
        if keep == TABLE_KEEP:
            at_table_keep["obs"] = copy.deepcopy(net)
    curves["obs"] = rows
    timings["obs"] = time.perf_counter() - t
    print(f"OBS used block={res.diagnostics.get('block')!r}, damping {res.diagnostics.get('damping')}")

for method, rows in curves.items():
    print(f"{method:>10} ({timings[method]:.1f} s): " + "  ".join(f"{k:.3f}->{e:.3f}" for k, e in rows))

# %% [markdown]
# ## Iterative magnitude pruning with retraining (Han et al. 2015)
#
# `iterative_prune(..., amounts=0.5, rounds=r)` prunes half of the surviving weights by
# magnitude and retrains the survivors with an L2 penalty (the masks keep the removed weights
# at exactly zero under Adam), `r` times. It runs in two calls so that the net at
# `TABLE_KEEP` can be kept for Deep Compression: the second call continues from where the
# first stopped, with the remaining fractions kept as its `schedule` (its round `r` retrains
# with seed `seed + r`, so the second call starts its seeds after the first's).

# %%
t = time.perf_counter()
iterative = copy.deepcopy(dense)
first = round(math.log2(1 / TABLE_KEEP))
common = dict(retrain_epochs=RETRAIN_EPOCHS, regularization="l2", test_data=test, lr=1e-3, batch_size=64, progress=False)
res = iterative_prune(iterative, data, amounts=0.5, rounds=first, seed=0, **common)
at_table_keep["magnitude + retrain"] = copy.deepcopy(iterative)
# `amounts` counts from the dense net (amounts=0.5 always targets 1/2, 1/4, ... of *all* weights,
# whatever the model's fraction kept), so the continuation names its targets with `schedule`
res_more = iterative_prune(iterative, data, schedule=KEEP[first + 1:], seed=first, **common)
rounds = res.rounds + res_more.rounds[1:]  # res_more.rounds[0] is the net it was given
curves["magnitude + retrain"] = [(r.fraction_kept, r.test_error) for r in rounds]
timings["magnitude + retrain"] = time.perf_counter() - t
print(res)
print(res_more)
print(f"magnitude + retrain ({timings['magnitude + retrain']:.1f} s): "
      + "  ".join(f"{k:.3f}->{e:.3f}" for k, e in curves["magnitude + retrain"]))

# %% [markdown]
# ## Saving a pruned net and resuming it
#
# A pruned layer's state dict holds `parametrizations.weight.original` and the mask, so it
# loads into a fresh net once `apply_masks` has installed the same masks there; the resumed
# net computes the same outputs and its pruned weights stay zero if it is trained further.

# %%
path = Path(tempfile.mkdtemp()) / "pruned_net.pt"  # a scratch file, not part of the figures
torch.save({"state": iterative.state_dict(), "masks": get_masks(iterative)}, path)
saved = torch.load(path)
resumed = apply_masks(lenet300(64, hidden=(HIDDEN,)), saved["masks"])
resumed.load_state_dict(saved["state"])
assert torch.equal(resumed(test[0]), iterative(test[0]))
print(f"resumed from {path.name}: {fraction_kept(resumed):.4f} of the weights kept, test error {evaluate(resumed, test):.4f}")

# %% [markdown]
# ## Weight histograms before and after
#
# The dense net's weights are unimodal around zero. After pruning the small ones and
# retraining, the survivors move away from zero: the non-zero weights form two modes, one
# on each side of the pruned gap (Han et al. 2015, fig. 4). `iterative_prune` returns both
# histograms on the same bins.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
plot_weight_histogram(res.histogram_before, ax=axes[0], color=color(0),
                      label=f"dense: all {res.histogram_before.num_weights} weights")
after = res.histogram_after
plot_weight_histogram(after, ax=axes[1], color=color(0),
                      label=f"pruned to {TABLE_KEEP:.1%} + retrained: {after.num_weights - after.num_zero} non-zero "
                            f"(zeros not drawn)")
fig.suptitle(f"MLP 64-{HIDDEN}-10 on 8x8 digits: weights before / after iterative magnitude pruning "
             "(same bins, different count scales)")
fig.tight_layout()
save_figure(fig, FIGURES / "weight_histograms.png")
plt.close(fig)


def gap_around_zero(hist) -> tuple[float, float]:
    """Inner edges of the non-empty bins nearest to zero on each side (the empty gap between them);
    ``(0, 0)`` when a non-empty bin straddles zero: no gap."""
    full = np.flatnonzero(hist.counts)
    if ((hist.edges[full] < 0) & (hist.edges[full + 1] > 0)).any():
        return 0.0, 0.0
    neg, pos = full[hist.edges[full + 1] <= 0], full[hist.edges[full] >= 0]
    return (float(hist.edges[neg.max() + 1]) if neg.size else 0.0, float(hist.edges[pos.min()]) if pos.size else 0.0)


print("empty gap around zero of the non-zero weights: dense ({:.3f}, {:.3f}), pruned + retrained ({:.3f}, {:.3f})".format(
    *gap_around_zero(res.histogram_before), *gap_around_zero(res.histogram_after)))

# %% [markdown]
# ## Deep Compression of the pruned net
#
# 5-bit weight sharing (31 centroids per layer + the pruned zero), centroid fine-tuning with
# the assignments fixed, then a real file: Huffman-coded codebook indices and relative
# positions of the non-zeros. `decompress` rebuilds the `nn.Sequential` from the file alone.

# %%
quantised = copy.deepcopy(at_table_keep["magnitude + retrain"])
err_pruned = evaluate(quantised, test)
shared = share_weights(quantised, bits=5)
err_shared = evaluate(quantised, test)
finetune_centroids(quantised, shared, loss_fn, data, num_steps=FINETUNE_STEPS)
err_finetuned = evaluate(quantised, test)
print(shared)
print(f"test error: pruned {err_pruned:.4f}, shared 5 bits {err_shared:.4f}, centroids fine-tuned {err_finetuned:.4f}")

workdir = Path(tempfile.mkdtemp())
report = compress(quantised, shared, workdir / "digits_mlp.bsdc", index_bits=5)
print(report)
restored = decompress(report.path)
with torch.no_grad():
    same = torch.equal(restored(test[0]), quantised(test[0]))
assert same, "decompressed model does not reproduce the quantised model"
print(f"decompressed outputs equal the quantised model's exactly: {same}; test error {evaluate(restored, test):.4f}")

# %% [markdown]
# ## Graves: variational description length and relative-density pruning
#
# `fit_variational` fits a mean-field Gaussian $q(w)$ to the dense net's weights (means
# started at the trained weights) under a prior $N(0, \sigma_p^2)$ and reports
# $L(D\mid w) + L(w)$ in bits. Weights whose posterior puts nearly as much density at 0 as at
# its mean (large $\lambda_i$) are removed. $\lambda_i$ spans a hundred orders of magnitude
# (it underflows float32 for the most confident weights), so the thresholds are quantiles of
# $\log\lambda_i = -\mu_i^2/(2\sigma_i^2)$
# (`log_relative_density`), passed as `log_threshold` to reach the same fractions kept as above.

# %%
t = time.perf_counter()
fit = fit_variational(dense, data, num_steps=VI_STEPS, lr=0.01, prior_scale=1.0, init_scale=0.05, seed=0, progress=False)
timings["graves"] = time.perf_counter() - t
print(fit)
print(f"  = {fit.data_bits:.1f} data bits + {fit.model_bits:.1f} model bits ({timings['graves']:.1f} s, {VI_STEPS} steps)")

log_lam = torch.cat([v.reshape(-1) for v in log_relative_density(fit).values()])
float32_underflow = math.log(torch.finfo(torch.float32).tiny)
print(f"log lambda in [{float(log_lam.min()):.3g}, {float(log_lam.max()):.3g}]; "
      f"{float((log_lam < float32_underflow).double().mean()):.1%} of the weights have lambda below float32's range")


def graves_pruned(log_threshold: float):
    """A copy of the dense net set to the posterior means, the weights with log lambda > log_threshold masked."""
    net = copy.deepcopy(dense)
    prune_by_relative_density(net, fit, log_threshold=log_threshold)
    return net


# the largest log lambda keeps every weight: the unpruned net of posterior means
mu_net = graves_pruned(min(float(log_lam.max()), -1e-300))
graves_rows = [(fraction_kept(mu_net), evaluate(mu_net, test))]
for keep in KEEP[1:]:
    net = graves_pruned(min(float(torch.quantile(log_lam, keep)), -1e-300))
    graves_rows.append((fraction_kept(net), evaluate(net, test)))
    if keep == TABLE_KEEP:
        at_table_keep["Graves relative density"] = net
curves["Graves relative density"] = graves_rows
print("Graves: " + "  ".join(f"{k:.3f}->{e:.3f}" for k, e in graves_rows))

# %% [markdown]
# ## Test error against the fraction of weights kept

# %%
labels = {"obd": "OBD (one-shot)", "obs": "OBS (one weight at a time, no retraining)", "magnitude": "magnitude (one-shot)",
          "magnitude + retrain": "magnitude + retrain (Han et al. 2015)"}
# the figure's legend adds footnote marks (the accounting table below keeps the plain labels)
curve_labels = {**labels, "obs": labels["obs"] + "¹", "Graves relative density": "Graves relative density (variational means)²"}
fig, ax = plt.subplots(figsize=(7.5, 6.0))
plot_pruning_curve({curve_labels.get(m, m): rows for m, rows in curves.items()}, ax=ax, legend=False)
ax.plot([fraction_kept(quantised)], [err_finetuned], linestyle="none", marker="*", color="black", ms=14,
        label=f"Deep Compression of the retrained net at 1/{round(1 / TABLE_KEEP)} ({report.compression_ratio:.0f}x smaller file)")
ax.set_title(f"Pruning an MLP 64-{HIDDEN}-10 on 8x8 digits ({len(test[1])} test images)")
ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
fig.text(0.01, 0.005, "¹ cumulative: each point prunes half of the previous point's survivors; magnitude and OBD "
         "prune the dense net afresh at each point.\n² starts from the posterior means, a different network "
         f"from the dense one (test error {graves_rows[0][1]:.3f} vs {DENSE_ERR:.3f}).",
         fontsize=7, ha="left", va="bottom", color="0.25")
fig.tight_layout(rect=(0, 0.05, 1, 1))
save_figure(fig, FIGURES / "pruning_curve.png")
plt.close(fig)

# %% [markdown]
# ## Summary: every method on one scale of bits
#
# `account` measures each model the same way: bits to store it (dense float32, the sparse
# float32 format, or the actual Deep Compression file), test error, and the two-part
# description length $L(M) + L(D\mid M)$ on the test set ($L(M)$ is the storage, or for
# Graves's fit the bits-back KL of the kept weights plus their positions and the float32 biases).

# %%
accounts = [account(dense, test, method="dense float32")]
for method in ["magnitude", "obd", "obs", "magnitude + retrain"]:
    if method in at_table_keep:
        accounts.append(account(at_table_keep[method], test, method=labels.get(method, method)))
accounts.append(account(quantised, test, method="Deep Compression (5 bit, Huffman file)", compressed=report))
accounts.append(account(mu_net, test, method="Graves VI means (unpruned)", fit=fit))
accounts.append(account(at_table_keep["Graves relative density"], test, method="Graves relative density", fit=fit))
table = accounting_table(accounts)
print()
print(table.to_markdown())
print(f"\nMDL of the training labels (fit_variational): {fit.total_bits:.1f} bits "
      f"= {fit.data_bits:.1f} data + {fit.model_bits:.1f} model")
print(f"total time {time.perf_counter() - T0:.1f} s")
print(f"figures written to {FIGURES}")
