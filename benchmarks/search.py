"""Structure search against the ground truth of every structure trained, on scikit-learn's digits.

The search space is ``cell_graph(64, 10)``: 32 structures, few enough to train each one. Per seed,
the digits are shuffled (seeded); 30 % are a test set no search sees, the rest is split in half
(``prepare_data``: training and validation) exactly as every search splits it. The ground truth
trains all 32 structures on the training half (``train_discrete``: 200 full-batch Adam steps from
the seed's initialisation) and scores each on the validation half (Q) and on the test set.

Each search then runs on the same data and seed, and the table reports, over the seeds:

* the rank of the structure it found among the 32 by validation loss (1 is the best; competition
  rank: 1 + the number of structures with a strictly lower validation loss, so structures that
  compute the same function -- every one with ``zero`` on 1->2, say -- share their best rank),
* its regret: validation loss of the found structure minus the best's (ground-truth numbers),
* the test accuracy of the found structure (ground-truth training, so the searches are compared on
  what they chose, not on how their own refit went), against the oracle (the best by validation
  loss) and the best test accuracy of any structure,
* the networks trained (a supernet counts as one) and the wall time.

Random search at the RL controller's number of trained structures is the baseline at equal cost
(Li & Talwalkar 2019).

    python benchmarks/search.py [--seeds 3] [--hidden 32] [--json PATH [--overwrite]] [--smoke]
    python benchmarks/search.py --dataset mnist:../shared/data/mnist [--num-samples 6000] [--num-test 2000]

On MNIST (IDX files read from the path; nothing is downloaded) the searched rows are a seeded
random subset of the training set and the test set a subset of MNIST's own test split.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from bayesstruct.datasets import load_digits, load_mnist
from bayesstruct.exceptions import BayesStructError
from bayesstruct.families import cell_graph
from bayesstruct.search import SearchData, latency_table, prepare_data, search, searchable_edges, train_discrete

_BENCHMARKS = str(Path(__file__).resolve().parent)
if _BENCHMARKS not in sys.path:  # the shared helpers, also when the script is loaded by path
    sys.path.insert(0, _BENCHMARKS)
from _common import add_json_argument, check_json_path, machine_info, positive_int, write_json  # noqa: E402


def ground_truth(graph, data: SearchData, test: tuple, seed: int, steps: int) -> dict:
    """``{names: (val_loss, val_accuracy, test_accuracy)}`` of every structure."""
    edges = searchable_edges(graph)
    test_data = SearchData(data.x_train, data.y_train, test[0], test[1], data.task, data.noise_scale)
    out = {}
    for names in itertools.product(*(graph.edges[e] for e in edges)):
        net = train_discrete(graph, dict(zip(edges, names)), data, num_steps=steps, lr=0.02, weight_decay=3e-4,
                             seed=seed)
        out[names] = (*data.score(net), test_data.score(net)[1])
    return out


def rank_of(truth: dict, names: tuple) -> int:
    """Competition rank of ``names`` by validation loss: 1 + how many structures are strictly better."""
    mine = truth[names][0]
    return 1 + sum(v[0] < mine for v in truth.values())


def methods(table, smoke: bool) -> dict[str, dict]:
    """The searches, by label; the labels give the settings really used (``smoke``: fewer updates and samples)."""
    ep = dict(num_epochs=2, warmup_epochs=1) if smoke else dict(num_epochs=40, warmup_epochs=10)
    steps = 20 if smoke else 200
    updates = 2 if smoke else 25
    samples = 2 if smoke else 16
    return {
        "DARTS, first order": dict(method="darts", order=1, arch_lr=3e-3, refit_steps=steps, **ep),
        "DARTS, second order": dict(method="darts", order=2, arch_lr=3e-3, refit_steps=steps, **ep),
        "FBNet, lambda2 = 0.6": dict(method="fbnet", latency=table, latency_exponent=0.6, refit_steps=steps, **ep),
        "FBNet, lambda2 = 4": dict(method="fbnet", latency=table, latency_exponent=4.0, refit_steps=steps, **ep),
        f"RL controller, {updates} x 4": dict(method="reinforce", reward="log-likelihood", num_updates=updates, batch_size=4,
                                      child_steps=steps),
        "random search, 4": dict(method="random", reward="log-likelihood", num_samples=4, child_steps=steps),
        f"random search, {samples}": dict(method="random", reward="log-likelihood", num_samples=samples,
                                          child_steps=steps),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=positive_int, default=3)
    p.add_argument("--hidden", type=positive_int, default=32, help="hidden width of the cell (8 with --smoke)")
    p.add_argument("--dataset", default="digits", help='"digits" (default) or "mnist:PATH"')
    p.add_argument("--num-samples", type=positive_int, default=6000, help="MNIST: training rows searched (default 6000)")
    p.add_argument("--num-test", type=positive_int, default=2000, help="MNIST: test rows (default 2000)")
    p.add_argument("--threads", type=positive_int, default=1)
    add_json_argument(p)
    p.add_argument("--smoke", action="store_true", help="300 digits (or MNIST rows), hidden 8, short searches")
    args = p.parse_args(argv)
    check_json_path(p, args)  # now, not after the run
    mnist = args.dataset.strip().lower().startswith("mnist:")
    if not mnist and args.dataset.strip().lower() != "digits":
        p.error(f"--dataset must be digits or mnist:PATH; got {args.dataset!r}")
    if mnist:  # fail before any work if the data are not there (the package never downloads)
        try:
            load_mnist(args.dataset.split(":", 1)[1], split="test", num_samples=1)
        except BayesStructError as exc:
            p.error(f"--dataset: {exc}")
        for flag, value, size in (("--num-samples", args.num_samples, 60_000), ("--num-test", args.num_test, 10_000)):
            if value > size and not args.smoke:
                p.error(f"{flag} must be <= {size:,} (MNIST's {'training' if size == 60_000 else 'test'} split); "
                        f"got {value}")
    torch.set_num_threads(args.threads)
    info = machine_info(argv)
    t0 = time.perf_counter()
    num = 300 if args.smoke else None
    graph = cell_graph(784 if mnist else 64, 10, hidden=8 if args.smoke else args.hidden)
    edges = searchable_edges(graph)
    table = latency_table(graph)
    print(f"# {args.dataset}; {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s)")
    print("latency table (us): " + "; ".join(
        f"{e[0]}->{e[1]}: " + ", ".join(f"{n} {v:.1f}" for n, v in zip(graph.edges[e], t.tolist()))
        for e, t in table.items()))
    rows: dict[str, list[dict]] = {}
    oracle, best_test, truths = [], [], []
    for seed in range(args.seeds):
        if mnist:
            path = args.dataset.split(":", 1)[1]
            x, y = load_mnist(path, split="train", num_samples=300 if args.smoke else args.num_samples, seed=seed)
            test = load_mnist(path, split="test", num_samples=100 if args.smoke else args.num_test, seed=seed)
        else:
            x, y = load_digits(num_samples=num, seed=seed)
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1000 + seed))
            x, y = x[perm], y[perm]  # the bundled order groups writers: shuffle before holding out the test set
            n_test = int(0.3 * len(x))
            test, x, y = (x[:n_test], y[:n_test]), x[n_test:], y[n_test:]
        data = prepare_data(graph, x, y, seed=seed)
        truth = ground_truth(graph, data, test, seed, 20 if args.smoke else 200)
        ranking = sorted(truth, key=lambda k: truth[k][0])
        oracle.append(truth[ranking[0]][2])
        best_test.append(max(v[2] for v in truth.values()))
        truths.append({"seed": seed, "best": list(ranking[0]), "best_val_loss": truth[ranking[0]][0],
                       "best_test_accuracy": truth[ranking[0]][2],
                       "top10_val_accuracy": [truth[k][1] for k in ranking[:10]],
                       "structures": [{"structure": list(k), "val_loss": v[0], "val_accuracy": v[1], "test_accuracy": v[2]}
                                      for k, v in truth.items()]})
        print(f"seed {seed}: best by validation loss {ranking[0]} ({truth[ranking[0]][0]:.4f}, test accuracy "
              f"{truth[ranking[0]][2]:.4f}); validation accuracies of the top 10: "
              + ", ".join(f"{truth[k][1]:.3f}" for k in ranking[:10]))
        for label, options in methods(table, args.smoke).items():
            opts = dict(options)
            method = opts.pop("method")
            start = time.perf_counter()
            r = search(graph, x, y, method, seed=seed, progress=False, **opts)
            seconds = time.perf_counter() - start
            names = tuple(r.choice()[e] for e in edges)
            rows.setdefault(label, []).append({
                "seed": seed, "structure": names, "rank": rank_of(truth, names),
                "regret": truth[names][0] - truth[ranking[0]][0], "test_accuracy": truth[names][2],
                "trained": r.diagnostics.get("num_evaluated", 1), "seconds": seconds})
            print(f"  {label:24s} {names}: rank {rows[label][-1]['rank']}, {seconds:.1f} s")

    total = time.perf_counter() - t0
    print(f"\nResults over {args.seeds} seed(s) ({total:.0f} s in all):\n")
    print("| search | mean rank of 32 | ranks | mean regret (nats) | test accuracy of the structure found | "
          "networks trained | seconds |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for label, rs in rows.items():
        print(f"| {label} | {statistics.mean(r['rank'] for r in rs):.1f} | {', '.join(str(r['rank']) for r in rs)} | "
              f"{statistics.mean(r['regret'] for r in rs):.4f} | {statistics.mean(r['test_accuracy'] for r in rs):.4f} | "
              f"{statistics.mean(r['trained'] for r in rs):.1f} | {statistics.mean(r['seconds'] for r in rs):.1f} |")
    print(f"| oracle (best validation loss) | 1 | | 0 | {statistics.mean(oracle):.4f} | 32 | |")
    print(f"| best test accuracy of any structure | | | | {statistics.mean(best_test):.4f} | | |")
    if args.json:
        write_json(args.json, {
            "machine": info, "dataset": args.dataset, "smoke": args.smoke, "seeds": args.seeds, "seconds": total,
            "latency_us": {f"{e[0]}->{e[1]}": dict(zip(graph.edges[e], t.tolist())) for e, t in table.items()},
            "rows": {k: [dict(r, structure=list(r["structure"])) for r in v] for k, v in rows.items()},
            "ground_truth": truths, "oracle_test_accuracy": oracle, "best_test_accuracy": best_test})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
