"""Bayesian networks: the cost of enumerating DAGs, and structure MCMC with and without tempering.

Three tables, on linear-Gaussian data (``simulate_linear_gaussian``, noise σ = 1) from random DAGs
(each pair of nodes joined with probability ``p`` along a random order, weights ±U(a, b)):

1. **Enumeration.** ``compare(BayesianNetworkFamily(d), x, None, methods="exact")`` over every DAG
   (543 at d = 4, 29281 at d = 5), inline (``workers=1``, what the command line does for an
   exact-only comparison) and in a process pool of 2 (``workers=2``), for comparison. Reported: seconds and DAGs per second.
2. **Structure MCMC against the enumeration** (d = 5). Four chains per data set, pooled, from the
   empty graph: one chain of S steps, one of 4S steps (the work of the next sampler) and parallel
   tempering over 4 temperatures (``temperatures=4``) for S steps. Reported over the data sets:
   total variation distance to the exact posterior over DAGs, the largest error of an edge
   probability, the R-hat of the log score across the 4 chains, the swap rate and the seconds.
3. **A larger graph** (d = 10, N = 10000, strong weights), where no enumeration exists: two chains
   start from the empty graph and two from the complete DAG along 0..d-1. Reported: R-hat of the
   log score, the largest disagreement of an edge probability between two chains, whether all
   chains found the same best graph, and the seconds; single chains of 4S steps against tempering
   with 4 temperatures for S steps (the same number of proposals).

    python benchmarks/bayes_net.py [--seeds 3] [--json PATH [--overwrite]] [--smoke]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import bayesstruct
from bayesstruct.families.bayes_net import DAG, BayesianNetworkFamily, DAGSamples, StructureMCMC, simulate_linear_gaussian
from bayesstruct.io import chain_diagnostics

_BENCHMARKS = str(Path(__file__).resolve().parent)
if _BENCHMARKS not in sys.path:  # the shared helpers, also when the script is loaded by path
    sys.path.insert(0, _BENCHMARKS)
from _common import add_json_argument, check_json_path, machine_info, positive_int, write_json  # noqa: E402


def random_network(d: int, num_data: int, *, p: float, weights: tuple[float, float], seed: int) -> tuple[DAG, torch.Tensor]:
    """A random DAG (each pair along a random order joined with probability ``p``) and data from it."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(d)
    W = torch.zeros(d, d, dtype=torch.float64)
    edges = set()
    for a in range(d):
        for b in range(a + 1, d):
            if rng.random() < p:
                i, j = int(order[a]), int(order[b])
                edges.add((i, j))
                W[i, j] = float(rng.choice([-1.0, 1.0]) * rng.uniform(*weights))
    dag = DAG(edges, num_variables=d)
    return dag, simulate_linear_gaussian(dag, num_data, weights=W, noise_scale=1.0, seed=seed)


def enumeration(sizes: list[int], num_data: int) -> list[dict]:
    rows = []
    for d in sizes:
        _, x = random_network(d, num_data, p=0.5, weights=(0.5, 1.5), seed=0)
        for workers in (1, 2):
            t0 = time.perf_counter()
            table = bayesstruct.compare(BayesianNetworkFamily(d), x, None, methods="exact", workers=workers,
                                        progress=False)
            seconds = time.perf_counter() - t0
            rows.append({"d": d, "dags": len(table.rows), "workers": workers, "seconds": seconds,
                         "dags_per_second": len(table.rows) / seconds})
    return rows


#: name -> (steps as a multiple of S, temperatures)
SAMPLERS = {"single, S steps": (1, None), "single, 4S steps": (4, None), "tempered (4), S steps": (1, 4)}


def _chains(family, x, steps: int, temperatures, *, initials) -> tuple[list[DAGSamples], float]:
    t0 = time.perf_counter()
    runs = [StructureMCMC(family, x, seed=c, temperatures=temperatures, initial=init).run(
        steps, warmup=steps // 10, progress=False) for c, init in enumerate(initials)]
    return runs, time.perf_counter() - t0


def _r_hat(runs: list[DAGSamples]) -> float | None:
    return chain_diagnostics(np.stack([r.log_scores for r in runs]))["r_hat"]


def against_enumeration(seeds: int, d: int, sizes: list[int], steps: int) -> list[dict]:
    rows = []
    for n in sizes:
        for seed in range(seeds):
            _, x = random_network(d, n, p=0.5, weights=(0.5, 1.5), seed=seed)
            family = BayesianNetworkFamily(d)
            table = bayesstruct.compare(family, x, None, methods="exact", workers=1, progress=False)
            exact = {r.structure["dag"]: r.posterior_probability for r in table.rows}
            exact_edges = bayesstruct.families.bayes_net.edge_posterior(table)
            for name, (factor, temperatures) in SAMPLERS.items():
                runs, seconds = _chains(family, x, factor * steps, temperatures, initials=[None] * 4)
                pooled = DAGSamples.concat(runs)
                post = pooled.posterior_probabilities()
                rows.append({"d": d, "N": n, "seed": seed, "sampler": name, "steps": factor * steps,
                             "tv": 0.5 * sum(abs(post.get(g, 0.0) - p) for g, p in exact.items()),
                             "edge_error": float((pooled.edge_posterior() - exact_edges).abs().max()),
                             "r_hat": _r_hat(runs), "swap_rate": pooled.swap_rate, "top_p": table.rows[0].posterior_probability,
                             "seconds": seconds / len(runs)})
    return rows


def larger_graph(seeds: int, d: int, n: int, steps: int) -> list[dict]:
    rows = []
    complete = DAG(tuple(tuple(range(j)) for j in range(d)))
    for seed in range(seeds):
        _, x = random_network(d, n, p=0.5, weights=(1.0, 3.0), seed=seed)
        family = BayesianNetworkFamily(d)
        for name, (factor, temperatures) in SAMPLERS.items():
            if name == "single, S steps":
                continue
            runs, seconds = _chains(family, x, factor * steps, temperatures, initials=[None, complete] * 2)
            edges = [r.edge_posterior() for r in runs]
            best = {r.dags[int(np.argmax(r.log_scores))] for r in runs}
            rows.append({"d": d, "N": n, "seed": seed, "sampler": name, "steps": factor * steps, "r_hat": _r_hat(runs),
                         "edge_spread": max(float((a - b).abs().max()) for a in edges for b in edges),
                         "same_best": len(best) == 1, "swap_rate": DAGSamples.concat(runs).swap_rate,
                         "seconds": seconds / len(runs)})
    return rows


def _fmt(v, spec=".3f") -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=positive_int, default=3, help="data sets per setting")
    add_json_argument(ap)
    ap.add_argument("--smoke", action="store_true", help="small settings (d = 3, 4 and 6, few steps, one seed)")
    args = ap.parse_args(argv)
    check_json_path(ap, args)  # now, not after the run
    torch.set_num_threads(1)
    info = machine_info(argv)
    seeds = 1 if args.smoke else args.seeds
    t0 = time.perf_counter()
    enum = enumeration([3] if args.smoke else [4, 5], 500)
    mcmc = against_enumeration(seeds, 4 if args.smoke else 5, [200] if args.smoke else [200, 2000],
                               500 if args.smoke else 5000)
    large = larger_graph(seeds, 6 if args.smoke else 10, 500 if args.smoke else 10_000, 300 if args.smoke else 10_000)
    seconds = time.perf_counter() - t0
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, one thread, "
          f"{seconds:.0f} s in all\n")
    print("| d | DAGs | workers | seconds | DAGs per second |")
    print("|---:|---:|---:|---:|---:|")
    for r in enum:
        print(f"| {r['d']} | {r['dags']:,} | {r['workers']} | {r['seconds']:.2f} | {r['dags_per_second']:,.0f} |")
    print(f"\n| N | sampler (d = {mcmc[0]['d']}) | total variation (mean, max) | max edge error | R-hat (max) | swap rate | s per chain |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in sorted({r["N"] for r in mcmc}):
        for name in SAMPLERS:
            rs = [r for r in mcmc if r["N"] == n and r["sampler"] == name]
            swaps = [r["swap_rate"] for r in rs if r["swap_rate"] is not None]
            print(f"| {n} | {name} | {statistics.mean(r['tv'] for r in rs):.3f}, {max(r['tv'] for r in rs):.3f} | "
                  f"{max(r['edge_error'] for r in rs):.3f} | {_fmt(max((r['r_hat'] for r in rs if r['r_hat'] is not None), default=None))} | "
                  f"{_fmt(statistics.mean(swaps) if swaps else None, '.2f')} | {statistics.mean(r['seconds'] for r in rs):.2f} |")
    print("\n| d | N | seed | sampler | R-hat | max edge disagreement | same best graph | swap rate | s per chain |")
    print("|---:|---:|---:|---|---:|---:|---|---:|---:|")
    for r in large:
        print(f"| {r['d']} | {r['N']:,} | {r['seed']} | {r['sampler']} | {_fmt(r['r_hat'])} | {r['edge_spread']:.3f} | "
              f"{'yes' if r['same_best'] else 'no'} | {_fmt(r['swap_rate'], '.2f')} | {r['seconds']:.1f} |")
    if args.json:
        write_json(args.json, {"machine": info, "smoke": args.smoke, "seeds": seeds, "seconds": seconds,
                               "enumeration": enum, "mcmc": mcmc, "larger": large})


if __name__ == "__main__":
    main()
