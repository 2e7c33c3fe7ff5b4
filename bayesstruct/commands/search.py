"""``bayesstruct search``: search a network family's structures (DARTS, FBNet, an RL controller, random search).

    bayesstruct search [--method darts|fbnet|reinforce|random] [--family cell|one-layer|conv] [--primitives P,Q]
                       [--hidden H] [--dataset digits | --dataset mnist:PATH | --data F.csv --target COL]
                       [--task classification|regression] [--num-samples N] [--val-fraction F]
                       [--num-epochs E] [--warmup-epochs W] [--batch-size B] [--lr LR] [--arch-lr LR]
                       [--order 1|2] [--latency-exponent B] [--num-updates U] [--children-per-update M] [--num-structures S]
                       [--refit-steps N] [--enumerate K --penalty L] [--seed S] [--smoke] [--no-progress]
                       [--out DIR] [--json PATH]

JSON (``--json PATH``, and ``DIR/results.json`` with ``--out DIR``, which also gets
``search_history.png`` and ``network.pt``): ``SearchResult.to_dict()`` of the search --
``{"method", "choice": {"0->1": name, ...}, "gamma": {"0->1": [...]}, "val_loss",
"val_accuracy", "seconds", "diagnostics", "history"}`` -- or, with ``--enumerate K``,
``{"structures": [that, ...]}`` in the order found.
"""

from __future__ import annotations

import argparse

from bayesstruct.commands import (add_output_arguments, check_applies, check_output_paths, check_ranges, save_torch,
                                  write_results)
from bayesstruct.commands.network import (DEFAULT_PRIMITIVES, _graph, _load, add_data_arguments, check_data_args,
                                          check_primitives)
from bayesstruct.exceptions import InvalidArgumentError

__all__ = ["add_parser", "run_search"]

METHODS = ("darts", "fbnet", "reinforce", "random")
FAMILIES = ("cell", "one-layer", "conv")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "search", help="search a network's structures: DARTS, FBNet, an RL controller or random search",
        description="Search the primitives on a network's edges for the best validation quality "
                    "(bayesstruct.search).")
    p.add_argument("--method", default="darts", choices=METHODS,
                   help="darts (Liu et al. 2019), fbnet (latency-aware, Wu et al. 2019), reinforce (an LSTM "
                        "controller, Zoph & Le 2017) or random (uniform draws, the baseline); default darts")
    fam = p.add_argument_group("family")
    fam.add_argument("--family", default="cell", choices=FAMILIES,
                     help="cell: two hidden layers and a skip edge, 32 structures; one-layer / conv: the "
                          "lecture's examples with --primitives on edge 0->1 (default cell)")
    fam.add_argument("--primitives", default=None, help="comma-separated primitives on edge 0->1 (one-layer, conv)")
    fam.add_argument("--hidden", type=int, default=32, help="width of the hidden vertices (default 32)")
    fam.add_argument("--channels", type=int, default=None, help="channels of the conv feature map")
    fam.add_argument("--image-shape", default=None, help="C,H,W of the images for --family conv with --data")
    data = add_data_arguments(p)
    data.add_argument("--val-fraction", type=float, default=0.5, help="held-out validation share (default 0.5)")
    s = p.add_argument_group("search")
    s.add_argument("--num-epochs", type=int, default=40, help="searching epochs (DARTS, FBNet; default 40)")
    s.add_argument("--warmup-epochs", type=int, default=10, help="weight-only epochs first (default 10)")
    s.add_argument("--batch-size", type=int, default=64, help="minibatch size (default 64)")
    s.add_argument("--lr", type=float, default=0.025, help="SGD learning rate of the weights (default 0.025)")
    s.add_argument("--arch-lr", type=float, default=None,
                   help="Adam learning rate of the architecture logits (default: darts 3e-3, fbnet 0.01)")
    s.add_argument("--order", type=int, default=1, choices=[1, 2], help="DARTS: first or second order (default 1)")
    s.add_argument("--latency-exponent", type=float, default=0.6,
                   help="FBNet's lambda_2 in CE * 0.2 log(LAT)^lambda_2, LAT measured here (default 0.6)")
    s.add_argument("--num-updates", type=int, default=25, help="reinforce: controller updates (default 25)")
    s.add_argument("--children-per-update", type=int, default=4,
                   help="reinforce: structures sampled and trained per update (default 4)")
    s.add_argument("--num-structures", type=int, default=16,
                   help="random: distinct structures drawn and trained (default 16)")
    s.add_argument("--reward", default="accuracy", choices=["accuracy", "log-likelihood", "evidence"],
                   help="reinforce, random: a trained structure's validation accuracy or log-likelihood, or the "
                        "structure's Laplace log evidence on the training split (default accuracy)")
    s.add_argument("--refit-steps", type=int, default=200,
                   help="Adam steps that train the chosen (reinforce: every sampled) structure (default 200)")
    s.add_argument("--enumerate", type=int, default=None, metavar="K",
                   help="find K distinct structures with KL penalties against the earlier ones (darts, fbnet)")
    s.add_argument("--penalty", type=float, default=1.0, help="the KL penalty weight of --enumerate (default 1)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--smoke", action="store_true",
                   help="a quick check on a tiny data subset: it caps --num-epochs at 2, --warmup-epochs at 1, "
                        "--refit-steps at 20, --num-updates and --num-structures at 2")
    add_output_arguments(p, "directory for results.json, search_history.png, network.pt",
                         progress_help="hide the progress bars")
    p.set_defaults(run=run_search)
    return p


def _check_args(args: argparse.Namespace) -> None:
    check_ranges(("--lr", args.lr, 0, True), ("--arch-lr", args.arch_lr, 0, True),
                 ("--num-epochs", args.num_epochs, 1, False), ("--warmup-epochs", args.warmup_epochs, 0, False),
                 ("--batch-size", args.batch_size, 1, False), ("--num-updates", args.num_updates, 1, False),
                 ("--children-per-update", args.children_per_update, 1, False),
                 ("--num-structures", args.num_structures, 1, False), ("--refit-steps", args.refit_steps, 0, False),
                 ("--hidden", args.hidden, 1, False), ("--latency-exponent", args.latency_exponent, 0, False),
                 ("--penalty", args.penalty, 0, False), ("--enumerate", args.enumerate, 1, False))
    check_applies(args.method, ("--reward", args.reward, "accuracy", ("reinforce", "random")),
                  ("--order", args.order, 1, ("darts",)), ("--latency-exponent", args.latency_exponent, 0.6, ("fbnet",)),
                  ("--num-updates", args.num_updates, 25, ("reinforce",)),
                  ("--children-per-update", args.children_per_update, 4, ("reinforce",)),
                  ("--num-structures", args.num_structures, 16, ("random",)))
    if not 0 < args.val_fraction < 1:
        raise InvalidArgumentError(f"--val-fraction must be in (0, 1); got {args.val_fraction}")
    check_data_args(args)
    check_output_paths(args, inputs={"--data": args.data},
                       out_files=("results.json", "network.pt", "search_history.png"))
    if args.enumerate is not None and args.method in ("reinforce", "random"):
        raise InvalidArgumentError("--enumerate needs a differentiable search: --method darts or fbnet")
    if args.family == "cell" and args.primitives is not None:
        raise InvalidArgumentError("--primitives applies to --family one-layer or conv; the cell's are fixed")
    check_primitives(args)


def _options(args: argparse.Namespace) -> dict:
    def cap(value: int, smoke: int) -> int:  # --smoke lowers a setting to its smoke value, never raises it
        return min(value, smoke) if args.smoke else value

    refit = cap(args.refit_steps, 20)
    if args.method == "reinforce":
        return dict(num_updates=cap(args.num_updates, 2), batch_size=args.children_per_update, child_steps=refit,
                    reward=args.reward)
    if args.method == "random":
        return dict(num_samples=cap(args.num_structures, 2), child_steps=refit, reward=args.reward)
    opts = dict(num_epochs=cap(args.num_epochs, 2), warmup_epochs=cap(args.warmup_epochs, 1), batch_size=args.batch_size,
                lr=args.lr, refit_steps=refit)
    if args.method == "darts":
        return dict(opts, order=args.order, arch_lr=3e-3 if args.arch_lr is None else args.arch_lr)
    return dict(opts, latency_exponent=args.latency_exponent, **({} if args.arch_lr is None else {"arch_lr": args.arch_lr}))


def run_search(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesstruct.families.examples import cell_graph
    from bayesstruct.plots import plot_search_history
    from bayesstruct.search import enumerate_structures, search

    _check_args(args)
    x, y, label = _load(args)
    if args.family == "cell":
        num_out = int(y.max()) + 1 if args.task == "classification" else 1
        if args.data is None:
            num_out = 10
        graph = cell_graph(x[0].numel(), num_out, hidden=args.hidden)
    else:
        args.primitives = args.primitives or DEFAULT_PRIMITIVES[args.family]
        graph = _graph(args, x, y)
    if args.family == "conv" and x.dim() == 2:
        x = x.reshape((x.shape[0],) + graph.input_shape)
    run = dict(val_fraction=args.val_fraction, task=args.task, noise_scale=args.noise_scale, seed=args.seed,
               progress=not args.no_progress)
    if args.enumerate is not None:
        results = enumerate_structures(graph, x, y, args.enumerate, penalty=args.penalty, method=args.method, **run,
                                       **_options(args))
        payload = {"structures": [r.to_dict() for r in results]}
    else:
        results = [search(graph, x, y, args.method, **run, **_options(args))]
        payload = results[0].to_dict()
    payload.update(family=args.family, data=label, seed=args.seed)
    print(f"data: {label}; family: {args.family}; method: {args.method}")
    for k, r in enumerate(results):
        head = f"structure {k + 1}: " if len(results) > 1 else "structure: "
        acc = "" if r.val_accuracy is None else f", val accuracy {r.val_accuracy:.4f}"
        lat = f", latency {r.diagnostics['latency']:.1f} us" if "latency" in r.diagnostics else ""
        print(head + ", ".join(f"{e[0]}->{e[1]}: {n}" for e, n in r.choice().items())
              + f"; val loss {r.val_loss:.4f}{acc}{lat}; {r.seconds:.1f} s")
    write_results(payload, args)
    if args.out is not None:
        ax = plot_search_history(results[-1])
        ax.figure.savefig(args.out / "search_history.png", dpi=110)
        plt.close(ax.figure)
        save_torch(results[-1].network, args.out / "network.pt")
        print(f"wrote 3 files to {args.out}/")
    return 0
