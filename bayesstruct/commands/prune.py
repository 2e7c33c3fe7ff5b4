"""``bayesstruct prune``: train a reference network, prune it with one method, account for it in bits.

    bayesstruct prune --method obd|obs|magnitude|deep-compression|graves --arch lenet300|lenet5
                      --dataset digits|mnist:PATH (--amount A | --threshold T) [--out DIR] [--json PATH]
                      [--epochs N] [--retrain-epochs N] [--rounds R] [--seed S] [--smoke] ...

Steps: load the data (``digits``: scikit-learn's 8x8 digits, a stratified 75/25 split drawn
with ``--seed``; ``mnist:PATH``: the IDX files' own train/test split), train the dense
architecture, then

* ``magnitude``, ``obd``, ``obs``: :func:`bayesstruct.prune.prune` with ``--amount`` (fraction
  of the weights removed, of every layer with ``--scope layer``) or ``--threshold`` (saliency
  below it removed), then retrain the survivors (masks applied) for ``--retrain-epochs``.
  OBS uses ``--obs-block`` (default ``auto``): the exact Hessian for small nets, and for
  LeNet-size nets layer-wise OBS (Dong, Chen & Pan 2017; one ``d_in x d_in`` Hessian
  ``2/N X^T X`` per layer, :class:`bayesstruct.prune.OBS`). With
  ``--rounds R`` the removal is spread over ``R`` prune -> retrain rounds that keep
  ``(1 - amount)^(r/R)`` of the weights after round ``r``
  (:func:`bayesstruct.prune.iterative_prune`, Han et al. 2015);
* ``deep-compression``: magnitude pruning and retraining as above, per-layer k-means weight
  sharing (``--bits``), centroid fine-tuning, and a Huffman-coded file ``DIR/model.bsc``
  (restore it with ``bayesstruct decompress DIR/model.bsc``);
* ``graves``: Graves's variational fit (``--vi-steps`` of SVI) and pruning by relative
  density: ``--threshold`` is the relative density ``q(0)/q(mu)`` in (0, 1) above which a
  weight goes; ``--amount`` picks the threshold that removes that fraction. No retraining
  (Graves's method) unless ``--retrain-epochs N`` is given; then ``L(M)`` is the stored
  weights' bits instead of the KL.

The result is :func:`bayesstruct.prune.account`'s report (per-layer and total non-zeros,
bits, bytes, compression ratio, test error, MDL bits) plus the run's settings, printed and
written as JSON (``--json PATH`` and ``DIR/results.json``).
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from typing import Any

from bayesstruct.commands import add_output_arguments, check_applies, check_output_paths, save_torch, write_results
from bayesstruct.exceptions import InvalidArgumentError

METHODS = ("magnitude", "obd", "obs", "deep-compression", "graves")
ARCHS = ("lenet300", "lenet5")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("prune", help="train a LeNet, prune it with one method and account for it in bits",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True, choices=METHODS, help="pruning method")
    p.add_argument("--arch", default="lenet300", choices=ARCHS, help="architecture (default lenet300)")
    p.add_argument("--dataset", default="digits", help="'digits' (8x8, bundled) or 'mnist:PATH' (IDX .gz files in PATH)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--amount", type=float, help="fraction of the prunable weights to remove, in [0, 1)")
    how.add_argument("--threshold", type=float,
                     help="remove weights with saliency below it (graves: relative density above it, in (0, 1))")
    p.add_argument("--scope", default=None, choices=["layer", "global"],
                   help="layer: every layer loses --amount of its weights (default for magnitude and deep-compression, "
                        "Han et al.'s per-layer thresholds); global: one ranking over all layers (default for obd and obs, "
                        "whose saliency -- the estimated rise of the loss -- compares across layers)")
    tr = p.add_argument_group("training")
    tr.add_argument("--epochs", type=int, default=10, help="epochs of dense training (default 10)")
    tr.add_argument("--retrain-epochs", type=int, default=None, help="epochs of retraining after pruning (default max(1, epochs // 2); at most 2 with --smoke)")
    tr.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    tr.add_argument("--batch-size", type=int, default=128, help="minibatch size (default 128)")
    tr.add_argument("--rounds", type=int, default=1,
                    help="prune -> retrain rounds reaching --amount geometrically (Han et al. 2015; default 1 = one shot)")
    tr.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the weights while retraining (default 0)")
    tr.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    tr.add_argument("--smoke", action="store_true", help="a quick check: 600 digits (MNIST: 2000 train, 500 test), at most 5 epochs, "
                         "2 retraining epochs, 20 SVI and 10 fine-tuning steps")
    me = p.add_argument_group("method options")
    me.add_argument("--hessian", default="gauss-newton", choices=["gauss-newton", "fisher", "exact", "hutchinson", "layerwise", "auto"],
                    help="OBD's Hessian diagonal: of the loss (gauss-newton, fisher, exact, hutchinson, auto) or of each "
                         "layer's reconstruction error (layerwise) (default gauss-newton, LeCun et al.'s approximation)")
    me.add_argument("--num-stages", type=int, default=None,
                    help="obd and obs: removal rounds with the Hessian recomputed in between, no retraining "
                         "(default 1 for obd, 4 for obs; needs --amount)")
    me.add_argument("--hessian-samples", type=int, default=None,
                    help="training examples the OBD/OBS Hessian is computed on (default 256 for obd, 2048 for obs: "
                         "layer-wise OBS needs more examples than a layer's inputs for a well-posed refit)")
    me.add_argument("--obs-block", default="auto", choices=["auto", "full", "layer", "row"],
                    help="OBS Hessian blocks: full, per layer, or per output row of the layer-wise error "
                         "(Dong et al. 2017); auto picks by size (default)")
    me.add_argument("--bits", type=int, default=5, help="deep-compression: bits per shared-weight index (default 5)")
    me.add_argument("--index-bits", type=int, default=5, help="width of relative sparse indices (default 5)")
    me.add_argument("--finetune-steps", type=int, default=200, help="deep-compression: centroid fine-tuning steps (default 200)")
    me.add_argument("--vi-steps", type=int, default=500, help="graves: SVI steps (default 500)")
    me.add_argument("--prior-scale", type=float, default=0.1, help="graves: prior standard deviation (default 0.1)")
    add_output_arguments(p, "directory for results.json and the model (model.bsc for deep-compression, else model.pt)",
                         json_help="write the results as JSON to this path", progress_help="hide progress bars")
    p.set_defaults(run=run_prune)
    return p


def _check_args(args: argparse.Namespace) -> None:
    if args.amount is not None and not (math.isfinite(args.amount) and 0.0 <= args.amount < 1.0):
        raise InvalidArgumentError(f"--amount must be a fraction in [0, 1) of the weights to remove; got {args.amount}")
    if args.threshold is not None:
        if not math.isfinite(args.threshold):
            raise InvalidArgumentError(f"--threshold must be a finite number; got {args.threshold}")
        if args.method == "graves" and not 0.0 < args.threshold < 1.0:
            raise InvalidArgumentError(f"--threshold for graves is a relative density in (0, 1); got {args.threshold}")
        if args.method != "graves" and args.threshold < 0:
            raise InvalidArgumentError(f"--threshold for {args.method} is a saliency (magnitude or estimated loss "
                                       f"increase) >= 0; got {args.threshold}, which would remove nothing")
    if args.num_stages is not None and args.num_stages > 1 and args.amount is None:
        raise InvalidArgumentError("--num-stages > 1 needs --amount (a --threshold has no rounds)")
    check_applies(args.method, ("--num-stages", args.num_stages, None, ("obd", "obs")),
                  ("--hessian-samples", args.hessian_samples, None, ("obd", "obs")),
                  ("--hessian", args.hessian, "gauss-newton", ("obd",)), ("--obs-block", args.obs_block, "auto", ("obs",)),
                  ("--bits", args.bits, 5, ("deep-compression",)),
                  ("--finetune-steps", args.finetune_steps, 200, ("deep-compression",)),
                  ("--vi-steps", args.vi_steps, 500, ("graves",)), ("--prior-scale", args.prior_scale, 0.1, ("graves",)))
    for flag, value, lo in (("--epochs", args.epochs, 0), ("--retrain-epochs", args.retrain_epochs, 0),
                            ("--batch-size", args.batch_size, 1), ("--hessian-samples", args.hessian_samples, 1),
                            ("--finetune-steps", args.finetune_steps, 0), ("--vi-steps", args.vi_steps, 1),
                            ("--num-stages", args.num_stages, 1)):
        if value is not None and value < lo:
            raise InvalidArgumentError(f"{flag} must be an integer >= {lo}; got {value}")
    if not 1 <= args.bits <= 16 or not 1 <= args.index_bits <= 16:
        raise InvalidArgumentError(f"--bits and --index-bits must be in 1..16; got {args.bits} and {args.index_bits}")
    for flag, value in (("--lr", args.lr), ("--prior-scale", args.prior_scale)):
        if not (math.isfinite(value) and value > 0):
            raise InvalidArgumentError(f"{flag} must be a finite number > 0; got {value}")
    if not (math.isfinite(args.l2) and args.l2 >= 0):
        raise InvalidArgumentError(f"--l2 must be a finite number >= 0; got {args.l2}")
    if args.rounds < 1:
        raise InvalidArgumentError(f"--rounds must be an integer >= 1; got {args.rounds}")
    if args.rounds > 1 and (args.amount is None or args.method == "graves"):
        raise InvalidArgumentError("--rounds > 1 needs --amount (the final fraction removed) and a method that retrains (not graves)")
    if args.method == "deep-compression" and args.out is None:
        raise InvalidArgumentError("--method deep-compression writes DIR/model.bsc: give --out DIR")
    check_output_paths(args, out_files=("results.json", "model.bsc", "model.pt"))


def load_split(spec: str, *, flatten: bool, seed: int, smoke: bool):
    """``((x_train, y_train), (x_test, y_test))`` for a ``--dataset`` spec."""
    import torch

    from bayesstruct.datasets import load_dataset

    key = spec.strip().lower()
    if key.startswith("mnist"):
        n_train, n_test = (2000, 500) if smoke else (None, None)
        train = load_dataset(spec, split="train", num_samples=n_train, seed=seed, flatten=flatten)
        test = load_dataset(spec, split="test", num_samples=n_test, seed=seed, flatten=flatten)
        return train, test
    x, y = load_dataset(spec, num_samples=600 if smoke else None, seed=seed, flatten=flatten)
    # stratified 75/25 split: a seeded permutation within each class
    g = torch.Generator().manual_seed(seed)
    tr, te = [], []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).reshape(-1)
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = int(round(0.25 * len(idx)))
        te.append(idx[:k])
        tr.append(idx[k:])
    tr_i, te_i = torch.sort(torch.cat(tr)).values, torch.sort(torch.cat(te)).values
    return (x[tr_i], y[tr_i]), (x[te_i], y[te_i])


def _graves_log_threshold(fit: Any, amount: float) -> float:
    """A log relative density with ``round(amount * N)`` weights above it (fewer where values tie)."""
    import torch

    from bayesstruct.prune import log_relative_density

    v = torch.sort(torch.cat([t.reshape(-1) for t in log_relative_density(fit).values()]), descending=True).values
    k = int(round(amount * v.numel()))
    if k == 0:
        return min(float(v[0]), -1e-300)  # nothing lies above the largest value
    if k >= v.numel():
        return float(v[-1]) - 1.0
    hi, lo = float(v[k - 1]), float(v[k])
    return min(0.5 * (hi + lo) if hi > lo else lo, -1e-300)


def run_prune(args: argparse.Namespace) -> int:
    import torch
    from torch.nn import functional as F

    from bayesstruct.nn.zoo import make_architecture
    from bayesstruct.prune import (
        account,
        compress,
        evaluate,
        finetune_centroids,
        fit_variational,
        iterative_prune,
        prune,
        prune_by_relative_density,
        remove_pruning,
        share_weights,
        train,
    )
    _check_args(args)
    if args.scope is None:
        args.scope = "global" if args.method in ("obd", "obs") else "layer"
    smoke, progress = args.smoke, not args.no_progress
    epochs = min(args.epochs, 5) if smoke else args.epochs
    retrain_epochs = args.retrain_epochs if args.retrain_epochs is not None else max(1, epochs // 2)
    if smoke:
        retrain_epochs = min(retrain_epochs, 2)
    vi_steps = min(args.vi_steps, 20) if smoke else args.vi_steps
    finetune_steps = min(args.finetune_steps, 10) if smoke else args.finetune_steps
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    train_data, test_data = load_split(args.dataset, flatten=args.arch == "lenet300", seed=args.seed, smoke=smoke)
    model = make_architecture(args.arch, train_data[0], int(max(train_data[1].max(), test_data[1].max())) + 1, dtype=torch.float32)
    num_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))
    fit_opts = dict(lr=args.lr, batch_size=args.batch_size, seed=args.seed, progress=progress)
    print(f"data {args.dataset}: train {tuple(train_data[0].shape)}, test {tuple(test_data[0].shape)}; {args.arch}")
    train(model, train_data, epochs=epochs, **fit_opts)
    dense_error = evaluate(model, test_data)
    print(f"dense: {num_weights} prunable weights, test error {dense_error:.4f}")

    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(args.seed)
    hessian_samples = args.hessian_samples if args.hessian_samples is not None else (2048 if args.method == "obs" else 256)
    sub = torch.randperm(train_data[0].shape[0], generator=g)[:hessian_samples]
    hessian_data = (train_data[0][sub], train_data[1][sub])
    compressed = fit = None
    amount_or_threshold = {"amount": args.amount} if args.amount is not None else {"threshold": args.threshold}
    before_retrain_error = None
    if args.method in ("magnitude", "obd", "obs", "deep-compression"):
        method = "magnitude" if args.method == "deep-compression" else args.method
        options = {"hessian": args.hessian} if method == "obd" else {"block": args.obs_block, "progress": progress} if method == "obs" else {}
        if args.num_stages is not None and method in ("obd", "obs"):
            options["num_stages"] = args.num_stages
        if args.rounds > 1:
            schedule = [(1.0 - args.amount) ** (r / args.rounds) for r in range(1, args.rounds + 1)]
            hist = iterative_prune(model, train_data, schedule=schedule, retrain_epochs=retrain_epochs,
                                   regularization="l2" if args.l2 > 0 else "none", strength=args.l2, method=method,
                                   scope=args.scope, test_data=test_data, saliency_data=hessian_data, lr=args.lr,
                                   batch_size=args.batch_size, seed=args.seed + 1, progress=progress, **options)
            print(hist)
            before_retrain_error = hist.rounds[-1].test_error_before_retrain
        else:
            res = prune(model, method, **amount_or_threshold, scope=args.scope, loss_fn=F.cross_entropy, data=hessian_data, **options)
            before_retrain_error = evaluate(model, test_data)
            print(f"{method}: removed {res.num_removed} weights; test error before retraining {before_retrain_error:.4f}")
            if retrain_epochs:
                train(model, train_data, epochs=retrain_epochs, l2=args.l2, **{**fit_opts, "seed": args.seed + 1})
                print(f"retrained {retrain_epochs} epochs: test error {evaluate(model, test_data):.4f}")
    if args.method == "deep-compression":
        shared = share_weights(model, bits=args.bits)
        shared_error = evaluate(model, test_data)
        finetune_centroids(model, shared, F.cross_entropy, _batches(train_data, args.batch_size, args.seed), num_steps=finetune_steps)
        print(f"{args.bits}-bit weight sharing: test error {shared_error:.4f}, after {finetune_steps} centroid steps "
              f"{evaluate(model, test_data):.4f}")
        # check_output_paths refused an earlier run's model.bsc before any work unless --overwrite was given
        compressed = compress(model, shared, args.out / "model.bsc", index_bits=args.index_bits, overwrite=True)
    elif args.method == "graves":
        fit = fit_variational(model, train_data, num_steps=vi_steps, lr=1e-2, prior_scale=args.prior_scale, init_scale=1e-3,
                              seed=args.seed, progress=progress)
        print(fit)
        if args.amount is not None:
            log_t = _graves_log_threshold(fit, args.amount)
            res = prune_by_relative_density(model, fit, log_threshold=log_t)
        else:
            res = prune_by_relative_density(model, fit, args.threshold)
        print(f"relative density: removed {res.num_removed} weights (log threshold {res.diagnostics['log_threshold']:.3g})")
        if args.retrain_epochs:  # Graves does not retrain; on request, and then L(M) is the stored weights' bits
            before_retrain_error = evaluate(model, test_data)
            train(model, train_data, epochs=retrain_epochs, l2=args.l2, **{**fit_opts, "seed": args.seed + 1})
            print(f"retrained {retrain_epochs} epochs: test error {evaluate(model, test_data):.4f} (was {before_retrain_error:.4f})")
            fit = None

    acc = account(model, test_data, method=args.method, compressed=compressed, fit=fit, index_bits=args.index_bits)
    print(acc)
    result = {
        "command": "prune",
        "config": {
            "method": args.method, "arch": args.arch, "dataset": args.dataset, "amount": args.amount,
            "threshold": args.threshold, "scope": args.scope if args.method != "graves" else None, "epochs": epochs,
            "retrain_epochs": retrain_epochs if args.method != "graves" or args.retrain_epochs else 0,
            "rounds": args.rounds, "lr": args.lr, "batch_size": args.batch_size, "l2": args.l2, "seed": args.seed,
            "smoke": smoke, "bits": args.bits, "index_bits": args.index_bits,
            "obs_block": args.obs_block if args.method == "obs" else None, "hessian_samples": hessian_samples,
            "num_stages": args.num_stages if args.method in ("obd", "obs") else None,
            "hessian": args.hessian if args.method == "obd" else None,
        },
        "num_train": int(train_data[1].shape[0]),
        "dense_test_error": dense_error,
        "test_error_before_retraining": before_retrain_error,
        **acc.to_dict(),
        "compressed_file": str(compressed.path) if compressed is not None else None,
        "seconds": time.perf_counter() - t0,
    }
    write_results(result, args)
    if args.out is not None:
        if compressed is None:
            save_torch(remove_pruning(copy.deepcopy(model)).state_dict(), args.out / "model.pt")
        print(f"wrote {args.out}/results.json and {'model.bsc' if compressed is not None else 'model.pt'}")
    return 0


def _batches(data: Any, batch_size: int, seed: int) -> list:
    import torch

    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(data[0].shape[0], generator=g)
    return [(data[0][i], data[1][i]) for i in perm.split(batch_size)]
