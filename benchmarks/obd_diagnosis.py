"""Why one-shot OBD loses to magnitude pruning on the converged LeNet-300-100: a per-layer diagnosis.

The pruning benchmark (``benchmarks/pruning.py``) finds OBD's ``s_i = 1/2 h_ii theta_i^2``
(LeCun, Denker & Solla 1989; the exact Gauss-Newton diagonal) worse than ``|theta_i|`` at
every sparsity below 50% kept. This script separates the two choices a global ranking
makes -- how many weights each layer keeps (the *allocation*) and which weights within a
layer (the *ranking*) -- on the same dense net (the benchmark's recipe and seeds):

1. both rankings under both allocations (magnitude's and OBD's global split);
2. OBD's ranking in one layer only, magnitude's in the others, at magnitude's allocation;
3. in the input layer, the two factors of the Gauss-Newton diagonal, ``h_(i,j) ~ u_i E[x_j^2]``:
   ``theta^2 E[x_j^2]`` (the input's second moment; the layer-wise diagonal) and
   ``theta^2 u_i`` (``u_i = sum_j h_(i,j) / sum_j E[x_j^2]``, the unit's downstream
   sensitivity), with the number of hidden units left with no incoming weight ("dead");
4. the training loss (on the Hessian's own images) after each one-shot pruning: OBD's
   quadratic model is judged on the objective it approximates, not only on test error;
5. in the input layer alone, the loss rise OBD predicts, ``sum 1/2 h_ii dtheta_i^2``, against
   the same Gauss-Newton quadratic with the cross-terms within each hidden unit's row,
   ``1/2N sum_n sum_i c_(n,i) (dtheta_i . x_n)^2`` (``c_(n,i) = J_(n,i)^T H_n J_(n,i)``, the
   curvature of example n's loss in unit i's pre-activation; its diagonal is OBD's ``h``),
   the rise with every ReLU frozen at the dense net's on/off pattern (the logits then move
   linearly, so this is the exact loss along the line the quadratic expands) and the rise
   measured: diagonal vs block isolates the cross-terms of the correlated, non-negative
   pixels, block vs frozen the softmax cross-entropy's departure from its quadratic, frozen
   vs measured the hidden units that switch on or off;
6. OBD on the negative log posterior instead of the likelihood alone (the Laplace posterior
   precision ``N h_ii + alpha`` of a ``N(0, alpha^-1)`` weight prior): ``alpha`` the training's
   own L2 penalty and ``alpha`` at MacKay's (1992) evidence fixed point for the diagonal
   Laplace approximation (:func:`evidence_precision`), one for the whole net and one per layer;
7. OBD in other training settings, each net trained by the same recipe and seeds: the loss of
   LeCun, Denker & Solla (1989) -- the squared error to one-hot targets, :func:`squared_error` --
   instead of the cross-entropy, and tanh hidden units (LeCun's were sigmoidal) instead of ReLU;
8. table 5 for the ReLU net trained on the squared error. Its loss is exactly quadratic in the
   logits, so with the gates frozen the only departure from the block quadratic is the
   first-order term of the 4,096 images (near zero on the whole training set at its optimum): what
   remains between prediction and measurement is the ReLU gates alone.

Run: ``python benchmarks/obd_diagnosis.py`` (MNIST from ``../shared/data/mnist``, ~2.5 min on
one core) or ``--quick`` (8x8 digits, seconds); ``--json PATH [--overwrite]`` writes every number
of the eight tables. Results in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from bayesstruct.prune import evaluate, hessian_diagonal, prune

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:  # the shared helpers, also when the script is loaded by path
    sys.path.insert(0, str(_HERE))
from _common import add_json_argument, check_json_path, machine_info, positive_int, write_json  # noqa: E402


def _load_pruning_benchmark():
    """The recipe, data loading and dense training of ``benchmarks/pruning.py`` (a script, loaded by path)."""
    spec = importlib.util.spec_from_file_location("pruning_benchmark", _HERE / "pruning.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look the module up there
    spec.loader.exec_module(mod)
    return mod


def _linear_weights(net) -> dict[str, torch.Tensor]:
    return {n: m.weight.detach() for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)}


def global_allocation(scores: dict[str, torch.Tensor], keep: float) -> dict[str, float]:
    """Fraction of each layer among the top ``keep`` of one ranking of all layers' ``scores``."""
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    k = max(1, int(round(keep * flat.numel())))
    order = torch.argsort(flat, descending=True, stable=True)
    kept = torch.zeros_like(flat, dtype=torch.bool)
    kept[order[:k]] = True
    return {n: float(part.float().mean()) for n, part in zip(scores, torch.split(kept, [s.numel() for s in scores.values()]))}


def masks_at(scores: dict[str, torch.Tensor], allocation: dict[str, float]) -> dict[str, torch.Tensor]:
    """Per layer, keep its ``allocation[n]`` highest-scoring weights (ties broken by position)."""
    out = {}
    for n, s in scores.items():
        k = int(round(allocation[n] * s.numel()))
        flat = torch.zeros(s.numel())
        flat[torch.argsort(s.reshape(-1), descending=True, stable=True)[:k]] = 1.0
        out[n] = flat.reshape(s.shape)
    return out


def squared_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1/N sum_n 1/2 ||f(x_n) - e_(y_n)||^2``: the squared error to one-hot targets, the training
    loss of LeCun, Denker & Solla (1989). Its Hessian in the outputs is ``I`` for every example."""
    target = (torch.arange(out.shape[-1]) == y.unsqueeze(-1)).to(out.dtype)  # one-hot, and vmap-friendly
    return 0.5 * ((out - target) ** 2).sum(-1).mean()


def unit_curvature(dense, x, y, loss_fn=F.cross_entropy) -> torch.Tensor:
    """``c_(n,i) = J_(n,i)^T H_n J_(n,i)`` ``(N, H)``: the Gauss-Newton curvature of example n's
    loss in the first layer's pre-activation ``z_i`` (``J`` the Jacobian of the logits w.r.t.
    ``z``; ``H_n = diag(p_n) - p_n p_n^T`` for the cross-entropy, ``I`` for
    :func:`squared_error`). The first layer's Gauss-Newton diagonal is
    ``h_(i,j) = 1/N sum_n c_(n,i) x_(n,j)^2``."""
    first, rest = dense[0], dense[1:]
    with torch.no_grad():
        z = first(x)
        p = torch.softmax(rest(z), -1)
    jac = torch.func.vmap(torch.func.jacrev(rest))(z)  # (N, C, H)
    if loss_fn is squared_error:
        hj = jac
    elif loss_fn is F.cross_entropy:
        hj = p[:, :, None] * jac - p[:, :, None] * torch.einsum("nc,nch->nh", p, jac)[:, None, :]
    else:
        raise ValueError(f"`loss_fn` must be F.cross_entropy or squared_error; got {loss_fn!r}")
    return torch.einsum("nch,nch->nh", jac, hj).detach()


def input_layer_rise(dense, sal, curv, loss_fn, scores, allocation) -> list[tuple[float, ...]]:
    """Table 5's cells for each first-layer score in ``scores``: the first layer pruned alone to
    ``allocation``; the loss rise on ``sal`` predicted (diagonal, block), measured with the ReLU
    gates frozen and measured, and the % of first-layer gates flipped."""
    first = next(iter(allocation))
    w1 = dense[0].weight.detach()
    xs = sal[0].reshape(len(sal[1]), -1)
    with torch.no_grad():
        base = float(loss_fn(dense(sal[0]), sal[1]))
    cells = []
    for s in scores:
        mask = masks_at({first: s}, allocation)
        delta = w1 * (1 - mask[first])
        with torch.no_grad():
            pruned = _masked(dense, mask)
            rise = float(loss_fn(pruned(sal[0]), sal[1])) - base
            logits, flipped = frozen_gate_logits(dense, pruned, sal[0])
            frozen = float(loss_fn(logits, sal[1])) - base
        predicted = [quadratic_rise(curv, xs, delta, diagonal=d) for d in (True, False)]
        cells.append((*predicted, frozen, rise, 100 * flipped))
    return cells


def train_variant(bench, cfg, train_data, *, activation: str, loss_fn) -> torch.nn.Module:
    """The benchmark's dense net, recipe and seeds, with ``activation`` ("relu" or "tanh") hidden
    units and trained on ``loss_fn``."""
    torch.manual_seed(0)
    net = bench.build_model(cfg, train_data[0])
    if activation == "tanh":
        for i, m in enumerate(net):
            if isinstance(m, torch.nn.ReLU):
                net[i] = torch.nn.Tanh()
    bench.phases(net, train_data, cfg, cfg.dense_phases, seed=0, loss_fn=loss_fn)
    return net


def quadratic_rise(c, x, delta, *, diagonal: bool) -> float:
    """Gauss-Newton prediction of the mean loss rise when the first layer's weights move by ``delta`` (H, D)."""
    if diagonal:
        return float(0.5 * (c * (x**2 @ (delta**2).T)).sum(1).mean())
    return float(0.5 * (c * (x @ delta.T) ** 2).sum(1).mean())


def evidence_precision(curvature: torch.Tensor, weights: torch.Tensor, num_data: int, *,
                       max_iter: int = 500, rtol: float = 1e-8) -> float:
    """MacKay's (1992) type-II ML prior precision ``alpha`` of ``N(0, alpha^-1 I)`` on ``weights``
    under the *diagonal* Laplace approximation: with likelihood curvature ``l_i = num_data *
    curvature_i`` (``curvature`` the Hessian diagonal of the *mean* loss), iterate
    ``gamma = sum_i l_i / (l_i + alpha)`` (the well-determined parameters) and
    ``alpha <- gamma / sum_i theta_i^2`` to the fixed point."""
    if curvature.shape != weights.shape:
        raise ValueError(f"`curvature` must have the shape of `weights` {tuple(weights.shape)}; got {tuple(curvature.shape)}")
    if num_data < 1:
        raise ValueError(f"`num_data` must be a positive count; got {num_data!r}")
    lam = (num_data * curvature.reshape(-1)).double().clamp_min(0)
    sq = float(weights.double().pow(2).sum())
    if sq <= 0 or not bool((lam > 0).any()):
        raise ValueError("`weights` must have a non-zero entry and `curvature` a positive one")
    alpha = 1.0
    for _ in range(max_iter):
        new = float((lam / (lam + alpha)).sum()) / sq
        if abs(new - alpha) <= rtol * alpha:
            return new
        alpha = new
    return alpha


def frozen_gate_logits(dense, pruned, x) -> tuple[torch.Tensor, float]:
    """Logits of ``pruned`` with every ReLU held at the on/off pattern ``dense`` has on each
    example, and the fraction of (example, unit) gates of the first ReLU that ``pruned`` flips.

    With the gates frozen the logits are linear in the first layer's weights, so the loss rise
    of this net is the cross-entropy along an exactly linear path in logit space: the
    Gauss-Newton block quadratic is its second-order Taylor expansion. The measured rise
    minus this one is what the gates that switch on or off add."""
    h_d, h_p, flipped = x, x, None
    for m_d, m_p in zip(dense, pruned):
        if isinstance(m_d, torch.nn.ReLU):
            gate = h_d > 0
            if flipped is None:
                flipped = float(((h_p > 0) != gate).float().mean())
            h_d, h_p = h_d * gate, h_p * gate
        elif isinstance(m_d, (torch.nn.Linear, torch.nn.Flatten)):
            h_d, h_p = m_d(h_d), m_p(h_p)
        else:
            raise TypeError(f"dense: expected a Sequential of Linear, ReLU and Flatten layers, got {type(m_d).__name__}")
    return h_p, (0.0 if flipped is None else flipped)


def _masked(dense, masks):
    net = copy.deepcopy(dense)
    with torch.no_grad():
        for n, m in net.named_modules():
            if n in masks:
                m.weight.mul_(masks[n])
    return net


def figure_rise(path: Path, rows5, title: str) -> None:
    """Table 5 as a figure: the loss rise of the input layer's two masks against the fraction
    kept, predicted (diagonal, block) and measured (frozen gates, real), on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    from bayesstruct.plots.style import OKABE_ITO, save_figure

    keeps = [k for k, _ in rows5]
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    labels = ("quadratic model, diagonal Hessian", "quadratic model + row cross-terms", "measured, ReLU gates frozen",
              "measured")
    colors = ("#777777", OKABE_ITO[0], OKABE_ITO[1], OKABE_ITO[3])
    markers = ("o", "s", "^", "D")
    styles = {"magnitude's mask": "--", "OBD's mask": "-"}
    for m, style in enumerate(styles.values()):
        for q, (color, mk) in enumerate(zip(colors, markers)):
            ax.plot(keeps, [cells[m][q] for _, cells in rows5], style, color=color, marker=mk, ms=4,
                    mfc="none" if m == 0 else color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator(keeps))
    ax.xaxis.set_major_formatter(FixedFormatter([f"{100 * k:g}%" for k in keeps]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.invert_xaxis()
    ax.set_xlabel("fraction of the input layer's weights kept (magnitude's allocation)")
    ax.set_ylabel("training-loss rise (nats per example, mean cross-entropy)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    what = ax.legend([Line2D([], [], color=c, marker=mk) for c, mk in zip(colors, markers)], labels, fontsize=8,
                     loc="lower right")
    ax.add_artist(what)
    ax.legend([Line2D([], [], color="black", linestyle=st) for st in styles.values()], list(styles), fontsize=8,
              loc="upper left")
    save_figure(fig, path)
    plt.close(fig)


LOSSES = {"cross-entropy": F.cross_entropy, "squared error": squared_error}


def print_rise(rows) -> None:
    print("| kept | magnitude: diagonal | block | frozen gates | measured | gates flipped | "
          "OBD: diagonal | block | frozen gates | measured | gates flipped |")
    print("|---:|" + "---:|" * 10)
    for keep, cells in rows:
        print(f"| {keep:g} | " + " | ".join(" | ".join(f"{v:.4f}" for v in c[:4]) + f" | {c[4]:.1f}%" for c in cells) + " |")


def main(argv: list[str] | None = None) -> int:
    bench = _load_pruning_benchmark()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(bench.DEFAULT_DATA), metavar="PATH", help="the four MNIST IDX .gz files; never downloaded")
    p.add_argument("--quick", "--smoke", action="store_true", help="8x8 digits and the benchmark's small net")
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--figure", default=None, metavar="PATH",
                   help="where table 5's figure goes (default: figures/obd_diagnosis_mnist.png; a temporary folder with --quick)")
    add_json_argument(p)
    args = p.parse_args(argv)
    check_json_path(p, args)  # now, not after the run
    if args.figure is not None and Path(args.figure).is_dir():
        p.error(f"--figure {args.figure!r} is a directory; give a file name")
    torch.set_num_threads(args.threads)
    info = machine_info(argv)
    torch.manual_seed(0)
    cfg = bench.CONFIGS[("lenet300", args.quick)]
    t0 = time.perf_counter()
    try:
        train_data, test_data, label = bench.load_data(args, args.quick)
    except bench.BayesStructError as exc:
        print(f"error: --data: {exc}", file=sys.stderr)
        return 2
    dense = train_variant(bench, cfg, train_data, activation="relu", loss_fn=F.cross_entropy)  # the benchmark's dense net
    sal = bench.subset(train_data, cfg.obd_samples, 1)  # the benchmark's Hessian images
    W = _linear_weights(dense)
    h = hessian_diagonal(dense, F.cross_entropy, sal, hessian="gauss-newton")  # h_ii of the mean loss
    obd = {n: 0.5 * h[n] * W[n] ** 2 for n in W}  # OBD's saliency, as prune(..., "obd", hessian="gauss-newton")
    mag = {n: w.abs() for n, w in W.items()}
    first = next(iter(mag))
    err = lambda masks: 100 * evaluate(_masked(dense, masks), test_data)  # noqa: E731
    keeps = [k for k in cfg.oneshot_keep if k <= 0.3] or list(cfg.oneshot_keep)
    dense_error = 100 * evaluate(dense, test_data)
    print(f"{label}; dense test error {dense_error:.2f}%; OBD: Gauss-Newton diagonal on "
          f"{len(sal[1])} training images")

    rows1, rows2, rows3, rows4, rows5 = [], [], [], [], []
    w1 = W[first]
    xs = sal[0].reshape(len(sal[1]), -1)
    curv = unit_curvature(dense, xs, sal[1])
    own = 0.5 * (curv.T @ xs**2) / len(sal[1]) * w1**2  # OBD's saliency of the first layer, from c
    if not torch.allclose(own, obd[first], rtol=1e-3, atol=1e-6 * float(own.abs().max())):
        raise RuntimeError("unit_curvature does not reproduce the Gauss-Newton diagonal of the first layer")
    pixel = (xs**2).mean(0)
    unit = h[first].sum(1) / pixel.sum().clamp_min(1e-30)
    factors = {"magnitude": mag[first], "theta^2 E[x_j^2]": w1**2 * pixel[None, :], "theta^2 u_i": w1**2 * unit[:, None],
               "OBD (both)": obd[first]}
    n_train = len(train_data[1])
    alpha_net = evidence_precision(torch.cat([c.reshape(-1) for c in h.values()]),
                                   torch.cat([w.reshape(-1) for w in W.values()]), n_train)
    alpha_layer = {n: evidence_precision(h[n], W[n], n_train) for n in W}
    priors = {f"training L2 (alpha/N = {cfg.l2:g})": {n: cfg.l2 for n in W},
              f"evidence, one alpha (alpha = {alpha_net:.3g})": {n: alpha_net / n_train for n in W},
              "evidence, per layer (alpha = " + ", ".join(f"{a:.3g}" for a in alpha_layer.values()) + ")":
                  {n: a / n_train for n, a in alpha_layer.items()}}
    posterior = {k: {n: 0.5 * (h[n] + a[n]) * W[n] ** 2 for n in W} for k, a in priors.items()}
    for keep in tqdm(keeps, desc="obd diagnosis", disable=args.no_progress):
        a_mag, a_obd = global_allocation(mag, keep), global_allocation(obd, keep)
        rows1.append((keep, err(masks_at(mag, a_mag)), err(masks_at(obd, a_mag)), err(masks_at(obd, a_obd)),
                      err(masks_at(mag, a_obd)), a_mag, a_obd))
        rows2.append((keep, [err(masks_at({n: (obd[n] if n == layer else mag[n]) for n in mag}, a_mag)) for layer in mag]))
        cells = []
        for s in factors.values():
            masks = masks_at({**mag, first: s}, a_mag)
            cells.append((err(masks), int((masks[first].sum(1) == 0).sum())))
        rows3.append((keep, cells))
        losses = []
        for method in ("magnitude", bench.FixedScores(obd)):
            net = copy.deepcopy(dense)
            prune(net, method, amount=1.0 - keep, scope="global")
            with torch.no_grad():
                losses.append(float(F.cross_entropy(net(sal[0]), sal[1])))
        rows4.append((keep, *losses))
        rows5.append((keep, input_layer_rise(dense, sal, curv, F.cross_entropy, (mag[first], obd[first]), {first: a_mag[first]})))
    rows6 = [(keep, [err(masks_at(s, global_allocation(s, keep))) for s in (mag, obd, *posterior.values())])
             for keep in cfg.oneshot_keep]
    # 7 and 8: other training settings (each a dense net of its own)
    settings = {("ReLU", "cross-entropy"): dense}
    for activation, loss in (("ReLU", "squared error"), ("tanh", "cross-entropy"), ("tanh", "squared error")):
        settings[activation, loss] = train_variant(bench, cfg, train_data, activation=activation.lower(), loss_fn=LOSSES[loss])
    dense_errors, rows7 = {}, {keep: [] for keep in cfg.oneshot_keep}
    for (activation, loss), net in tqdm(settings.items(), desc="other settings", disable=args.no_progress):
        if net is dense:
            scores = (mag, obd)
        else:
            Wv = _linear_weights(net)
            hv = hessian_diagonal(net, LOSSES[loss], sal, hessian="gauss-newton")
            scores = ({n: w.abs() for n, w in Wv.items()}, {n: 0.5 * hv[n] * Wv[n] ** 2 for n in Wv})
        dense_errors[activation, loss] = 100 * evaluate(net, test_data)
        for keep in cfg.oneshot_keep:
            rows7[keep] += [100 * evaluate(_masked(net, masks_at(sc, global_allocation(sc, keep))), test_data) for sc in scores]
        if (activation, loss) == ("ReLU", "squared error"):
            mag8, obd8 = scores
            curv8 = unit_curvature(net, xs, sal[1], squared_error)
            rows8 = [(keep, input_layer_rise(net, sal, curv8, squared_error, (mag8[first], obd8[first]),
                                             {first: global_allocation(mag8, keep)[first]})) for keep in keeps]

    names = list(mag)
    print("\n1. allocation vs ranking (test error %, whole net; allocation = fraction kept per layer)")
    print("| kept | magnitude | OBD ranking, magnitude's allocation | OBD | magnitude ranking, OBD's allocation | magnitude's allocation | OBD's allocation |")
    print("|---:|---:|---:|---:|---:|---|---|")
    for keep, a, b, c, d, am, ao in rows1:
        fmt = lambda al: " / ".join(f"{100 * al[n]:.1f}" for n in names)  # noqa: E731
        print(f"| {keep:g} | {a:.2f} | {b:.2f} | {c:.2f} | {d:.2f} | {fmt(am)} | {fmt(ao)} |")
    print("\n2. OBD's ranking in one layer, magnitude's elsewhere, magnitude's allocation (test error %)")
    print("| kept | magnitude everywhere | " + " | ".join(f"OBD in layer {n}" for n in names) + " |")
    print("|---:|---:|" + "---:|" * len(names))
    for (keep, cells), r1 in zip(rows2, rows1):
        print(f"| {keep:g} | {r1[1]:.2f} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    print(f"\n3. the input layer ({first}): factors of the Gauss-Newton diagonal, others magnitude (test error %, dead hidden units)")
    print("| kept | " + " | ".join(factors) + " |")
    print("|---:|" + "---:|" * len(factors))
    for keep, cells in rows3:
        print(f"| {keep:g} | " + " | ".join(f"{e:.2f} ({d})" for e, d in cells) + " |")
    print(f"\n4. training loss on the {len(sal[1])} Hessian images after one-shot pruning (nats)")
    print("| kept | magnitude | OBD |")
    print("|---:|---:|---:|")
    for keep, lm, lo in rows4:
        print(f"| {keep:g} | {lm:.4f} | {lo:.4f} |")
    print(f"\n5. the input layer ({first}) pruned alone at magnitude's allocation: training-loss rise (nats), "
          "predicted by the Gauss-Newton quadratic without / with the cross-terms within each unit's row, measured with "
          "the ReLU gates frozen at the dense net's pattern, measured; % of the first layer's gates flipped")
    print_rise(rows5)
    print(f"\n6. OBD on the negative log posterior: s_i = 1/2 (h_ii + alpha/N) theta_i^2, N = {n_train} (test error %, "
          "whole net, global ranking)")
    print("| kept | magnitude | OBD (h_ii alone) | " + " | ".join(priors) + " |")
    print("|---:|" + "---:|" * (2 + len(priors)))
    for keep, cells in rows6:
        print(f"| {keep:g} | " + " | ".join(f"{e:.2f}" for e in cells) + " |")
    print("\n7. OBD in other training settings: the same recipe and seeds, each net its own Gauss-Newton diagonal on the "
          f"{len(sal[1])} images (test error %, whole net, global ranking; magnitude / OBD)")
    print("| kept | " + " | ".join(f"{a}, {l}" + (" (the benchmark)" if (a, l) == ("ReLU", "cross-entropy") else "")
                                  for a, l in settings) + " |")
    print("|---:|" + "---:|" * len(settings))
    print("| dense | " + " | ".join(f"{e:.2f}" for e in dense_errors.values()) + " |")
    for keep, cells in rows7.items():
        print(f"| {keep:g} | " + " | ".join(f"{cells[2 * i]:.2f} / {cells[2 * i + 1]:.2f}" for i in range(len(settings))) + " |")
    print("\n8. table 5 for the ReLU net trained on the squared error (its own magnitude allocation; loss rise in "
          "units of the squared error)")
    print_rise(rows8)
    figure = Path(args.figure) if args.figure else (Path(tempfile.mkdtemp()) / "obd_diagnosis_digits.png" if args.quick
                                                   else _HERE.parent / "figures" / "obd_diagnosis_mnist.png")
    figure.parent.mkdir(parents=True, exist_ok=True)
    figure_rise(figure, rows5, ("8x8 digits, the small net" if args.quick else "MNIST, LeNet-300-100") + ": the input layer pruned alone")
    print(f"\nfigure written to {figure}")
    seconds = time.perf_counter() - t0
    print(f"\n{seconds:.0f} s")
    if args.json:
        rise = lambda rows: [{"kept": k, **{m: dict(zip(("diagonal", "block", "frozen_gates", "measured",  # noqa: E731
                                                          "gates_flipped_percent"), c))
                                            for m, c in zip(("magnitude_mask", "obd_mask"), cells)}} for k, cells in rows]
        write_json(args.json, {
            "machine": info, "quick": args.quick, "data": label, "seconds": seconds, "figure": str(figure),
            "dense_test_error_percent": dense_error, "hessian_images": len(sal[1]), "layers": names,
            "1_allocation_vs_ranking": [
                {"kept": k, "magnitude": a, "obd_ranking_magnitude_allocation": b, "obd": c,
                 "magnitude_ranking_obd_allocation": d, "magnitude_allocation": am, "obd_allocation": ao}
                for k, a, b, c, d, am, ao in rows1],
            "2_obd_in_one_layer": [{"kept": k, "magnitude_everywhere": r1[1], "obd_in_layer": dict(zip(names, cells))}
                                   for (k, cells), r1 in zip(rows2, rows1)],
            "3_input_layer_factors": [{"kept": k, **{f: {"test_error_percent": e, "dead_units": d}
                                                     for f, (e, d) in zip(factors, cells)}} for k, cells in rows3],
            "4_training_loss": [{"kept": k, "magnitude": lm, "obd": lo} for k, lm, lo in rows4],
            "5_input_layer_rise": rise(rows5),
            "6_negative_log_posterior": {"n_train": n_train, "alpha_net": alpha_net, "alpha_layer": alpha_layer,
                                         "columns": ["magnitude", "obd", *priors],
                                         "rows": [{"kept": k, "test_error_percent": cells} for k, cells in rows6]},
            "7_other_settings": {"settings": [f"{a}, {l}" for a, l in settings],
                                 "dense_test_error_percent": list(dense_errors.values()),
                                 "rows": [{"kept": k, "magnitude_obd_per_setting": [cells[2 * i:2 * i + 2]
                                                                                    for i in range(len(settings))]}
                                          for k, cells in rows7.items()]},
            "8_squared_error_rise": rise(rows8)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
