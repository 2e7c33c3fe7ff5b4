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

# %%
import copy
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
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from bayesstruct.prune import (  # noqa: E402
    compress,
    decompress,
    finetune_centroids,
    fit_variational,
    get_masks,
    prune,
    relative_density,
    remove_pruning,
    share_weights,
    threshold_sweep,
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
# (2,960 weights) the OBS curve alone took ~300 s on 1 CPU thread, and a 64-100-10 net
# (7,400 weights, per-layer blocks) is out of reach here.
HIDDEN = 16 if SMOKE else 20
EPOCHS = 15 if SMOKE else 150
RETRAIN_EPOCHS = 5 if SMOKE else 40
KEEP = [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]  # fraction of weights kept: halve each round
FINETUNE_STEPS = 20 if SMOKE else 200
VI_STEPS = 50 if SMOKE else 400
RUN_OBS = True  # cheap at this size in both modes (see the timing printed below)

# %% [markdown]
# ## Data and a dense network

# %%
digits = load_digits()
X = (digits.data / 16.0).astype(np.float32)
y = digits.target.astype(np.int64)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
xtr, xte = torch.from_numpy(Xtr), torch.from_numpy(Xte)
ytr_t, yte_t = torch.from_numpy(ytr), torch.from_numpy(yte)
print(f"train {tuple(xtr.shape)}, test {tuple(xte.shape)}")


def make_net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))


def train(net: nn.Module, epochs: int, lr: float = 3e-3, seed: int = 0) -> nn.Module:
    """Minibatch Adam on the cross-entropy; pruning masks keep removed weights at zero."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(xtr), generator=g)
        for idx in perm.split(64):
            opt.zero_grad()
            F.cross_entropy(net(xtr[idx]), ytr_t[idx]).backward()
            opt.step()
    return net


@torch.no_grad()
def test_error(net: nn.Module) -> float:
    return float((net(xte).argmax(-1) != yte_t).float().mean())


def fraction_kept(net: nn.Module) -> float:
    masks = get_masks(net)
    if not masks:
        return 1.0
    return float(sum(m.sum() for m in masks.values())) / sum(m.numel() for m in masks.values())


def num_weights(net: nn.Module) -> int:
    return sum(m.weight.numel() for m in net if isinstance(m, nn.Linear))


dense = train(make_net(), EPOCHS)
DENSE_ERR = test_error(dense)
print(f"dense 64-{HIDDEN}-10: {num_weights(dense)} prunable weights, test error {DENSE_ERR:.4f}")

# %% [markdown]
# ## One-shot pruning, no retraining
#
# Each saliency ranks the weights of the *trained* dense net; the lowest-ranked are masked
# (`prune(..., amount=...)` removes that fraction of the survivors, over all layers).
# OBD uses the Fisher (Gauss-Newton) diagonal: the exact diagonal (`hessian="exact"`,
# what `"auto"` picks at this size) costs ~7 s per call here, ten times the Fisher's.
# Magnitude and OBD are re-ranked from the dense net for every target fraction. OBS moves the
# survivors when it removes a weight, so its pruned nets are built incrementally: each call
# removes half of the survivors of the previous one, recomputing the Hessian at the new
# weights (still no retraining).

# %%
loss_fn = F.cross_entropy
data = (xtr, ytr_t)
curves: dict[str, list[tuple[float, float]]] = {}
timings: dict[str, float] = {}

for method, opts in [("magnitude", {}), ("obd", {"hessian": "fisher"})]:
    t = time.perf_counter()
    rows = []
    for keep in KEEP:
        net = copy.deepcopy(dense)
        if keep < 1.0:
            prune(net, method, amount=1.0 - keep, loss_fn=loss_fn, data=data, **opts)
        rows.append((fraction_kept(net), test_error(net)))
    curves[method] = rows
    timings[method] = time.perf_counter() - t

if RUN_OBS:
    t = time.perf_counter()
    net = copy.deepcopy(dense)
    rows = [(1.0, DENSE_ERR)]
    for keep in KEEP[1:]:
        res = prune(net, "obs", amount=0.5, loss_fn=loss_fn, data=data)
        rows.append((fraction_kept(net), test_error(net)))
    curves["obs"] = rows
    timings["obs"] = time.perf_counter() - t
    print(f"OBS used block={res.diagnostics['block']!r}, damping {res.diagnostics['damping']}")

for method, rows in curves.items():
    print(f"{method:>10} ({timings[method]:.1f} s): " + "  ".join(f"{k:.3f}->{e:.3f}" for k, e in rows))

# %% [markdown]
# ## Iterative magnitude pruning with retraining (Han et al. 2015)
#
# Prune half of the surviving weights by magnitude, retrain the survivors (the masks keep
# the removed weights at exactly zero under Adam), repeat.

# %%
t = time.perf_counter()
iterative = copy.deepcopy(dense)
rows = [(1.0, DENSE_ERR)]
snapshots = {1.0: copy.deepcopy(iterative)}
for i, keep in enumerate(KEEP[1:]):
    prune(iterative, "magnitude", amount=0.5)
    train(iterative, RETRAIN_EPOCHS, lr=1e-3, seed=i + 1)
    rows.append((fraction_kept(iterative), test_error(iterative)))
    snapshots[keep] = copy.deepcopy(iterative)
curves["magnitude + retrain"] = rows
timings["magnitude + retrain"] = time.perf_counter() - t
print(f"magnitude + retrain ({timings['magnitude + retrain']:.1f} s): " + "  ".join(f"{k:.3f}->{e:.3f}" for k, e in rows))

# %% [markdown]
# ## Weight histograms before and after
#
# The dense net's weights are unimodal around zero. After pruning the small ones and
# retraining, the survivors move away from zero: the non-zero weights form two modes, one
# on each side of the pruned gap (Han et al. 2015, fig. 4).

# %%
HIST_KEEP = 0.125
hist_net = snapshots[HIST_KEEP]
w_before = torch.cat([m.weight.detach().reshape(-1) for m in dense if isinstance(m, nn.Linear)]).numpy()
w_after = torch.cat([m.weight.detach().reshape(-1) for m in hist_net if isinstance(m, nn.Linear)]).numpy()
w_after_nz = w_after[w_after != 0]

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
lim = float(np.abs(w_before).max()) * 1.05
lim = max(lim, float(np.abs(w_after_nz).max()) * 1.05)
bins = np.linspace(-lim, lim, 81)
axes[0].hist(w_before, bins=bins, color="tab:blue")
axes[0].set_title(f"dense: all {w_before.size} weights")
axes[1].hist(w_after_nz, bins=bins, color="tab:orange")
axes[1].set_title(f"pruned to {HIST_KEEP:.1%} + retrained: {w_after_nz.size} non-zero weights")
for ax in axes:
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
fig.suptitle(f"MLP 64-{HIDDEN}-10 on 8x8 digits: weights before / after iterative magnitude pruning")
fig.tight_layout()
fig.savefig(FIGURES / "weight_histograms.png", dpi=120)
plt.close(fig)
print(f"non-zero weights after pruning: {(w_after_nz < 0).sum()} negative, {(w_after_nz > 0).sum()} positive; "
      f"smallest |w| {np.abs(w_after_nz).min():.3f} (dense: {np.abs(w_before).min():.2e})")

# %% [markdown]
# ## Deep Compression of the pruned net
#
# 5-bit weight sharing (31 centroids per layer + the pruned zero), centroid fine-tuning with
# the assignments fixed, then a real file: Huffman-coded codebook indices and relative
# positions of the non-zeros. `decompress` rebuilds the `nn.Sequential` from the file alone.

# %%
DC_KEEP = 0.125
quantised = copy.deepcopy(snapshots[DC_KEEP])
err_pruned = test_error(quantised)
shared = share_weights(quantised, bits=5)
err_shared = test_error(quantised)
finetune_centroids(quantised, shared, loss_fn, data, num_steps=FINETUNE_STEPS, lr=1e-3)
err_finetuned = test_error(quantised)
print(shared)
print(f"test error: pruned {err_pruned:.4f}, shared 5 bits {err_shared:.4f}, centroids fine-tuned {err_finetuned:.4f}")

workdir = Path(tempfile.mkdtemp())
report = compress(quantised, shared, workdir / "digits_mlp.bsdc", index_bits=5)
print(report)
restored = decompress(report.path)
with torch.no_grad():
    same = torch.equal(restored(xte), quantised(xte))
assert same, "decompressed model does not reproduce the quantised model"
print(f"decompressed outputs equal the quantised model's exactly: {same}; test error {test_error(restored):.4f}")

# %% [markdown]
# ## Graves: variational description length and relative-density pruning
#
# `fit_variational` fits a mean-field Gaussian $q(w)$ to the dense net's weights (means
# started at the trained weights) under a prior $N(0, \sigma_p^2)$ and reports
# $L(D\mid w) + L(w)$ in bits. Weights whose posterior puts nearly as much density at 0 as at
# its mean (large $\lambda_i$) are removed. To hit the same fractions kept as above, the
# thresholds are quantiles of $\lambda$.

# %%
t = time.perf_counter()
fit = fit_variational(dense, data, num_steps=VI_STEPS, lr=0.01, prior_scale=1.0, init_scale=0.05, seed=0, progress=False)
timings["graves"] = time.perf_counter() - t
print(fit)
print(f"  = {fit.data_bits:.1f} data bits + {fit.model_bits:.1f} model bits ({timings['graves']:.1f} s, {VI_STEPS} steps)")

lam = torch.cat([v.reshape(-1) for v in relative_density(fit).values()]).double()
# lambda is computed in float32 and underflows to exactly 0 for confident weights; those can
# never be removed by a threshold in (0, 1), so only quantiles above 0 make distinct thresholds
print(f"lambda == 0 (float32 underflow) for {float((lam == 0).double().mean()):.1%} of the weights")
thresholds = sorted({min(float(torch.quantile(lam, keep)), 1 - 1e-12) for keep in KEEP[1:]} - {0.0}, reverse=True)
sweep = threshold_sweep(dense, fit, thresholds, test_error)
mu_net = copy.deepcopy(dense)
with torch.no_grad():
    for name, mod in mu_net.named_children():
        if isinstance(mod, nn.Linear):
            mod.weight.copy_(fit.loc[name])
            mod.bias.copy_(fit.point_params[f"{name}.bias"])
curves["Graves relative density"] = [(1.0, test_error(mu_net))] + [(r.fraction_kept, float(r.value)) for r in sweep]
print("Graves sweep: " + "  ".join(f"t={r.threshold:.2e}: {r.fraction_kept:.3f}->{float(r.value):.3f}" for r in sweep))

# %% [markdown]
# ## Test error against the fraction of weights kept

# %%
styles = {
    "magnitude": dict(marker="o"),
    "obd": dict(marker="s"),
    "obs": dict(marker="^"),
    "magnitude + retrain": dict(marker="D", lw=2.5),
    "Graves relative density": dict(marker="v", ls="--"),
}
labels = {"obd": "OBD (one-shot)", "obs": "OBS (one weight at a time, no retraining)", "magnitude": "magnitude (one-shot)"}
fig, ax = plt.subplots(figsize=(7.5, 4.8))
for method, rows in curves.items():
    k, e = zip(*rows)
    ax.plot(k, e, label=labels.get(method, method), **styles.get(method, {}))
ax.plot([DC_KEEP], [err_finetuned], "k*", ms=14, label=f"Deep Compression ({report.compression_ratio:.0f}x smaller file)")
ax.set_xscale("log", base=2)
ax.set_xticks(KEEP, [f"{k:.3g}" for k in KEEP])
ax.invert_xaxis()
ax.set_yscale("log")
ax.set_xlabel("fraction of weights kept")
ax.set_ylabel("test error")
ax.set_title(f"Pruning an MLP 64-{HIDDEN}-10 on 8x8 digits ({len(xte)} test images)")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(FIGURES / "pruning_curve.png", dpi=120)
plt.close(fig)

# %% [markdown]
# ## Summary

# %%
dense_bytes = 4 * sum(p.numel() for p in dense.parameters())
print(f"\n{'method':<34}{'kept':>8}{'test err':>10}{'bytes':>10}")
print(f"{'dense float32':<34}{1.0:>8.3f}{DENSE_ERR:>10.4f}{dense_bytes:>10}")
for method, rows in curves.items():
    for k, e in rows[1:]:
        print(f"{method:<34}{k:>8.3f}{e:>10.4f}{'':>10}")
print(f"{'Deep Compression (5 bit, Huffman)':<34}{fraction_kept(quantised):>8.3f}{err_finetuned:>10.4f}{report.total_bytes:>10}")
print(f"{'Graves VI means (unpruned)':<34}{1.0:>8.3f}{curves['Graves relative density'][0][1]:>10.4f}{'':>10}")
print(f"MDL: {fit.total_bits:.1f} bits = {fit.data_bits:.1f} data + {fit.model_bits:.1f} model")
print(f"total time {time.perf_counter() - T0:.1f} s")
print(f"figures written to {FIGURES}")
