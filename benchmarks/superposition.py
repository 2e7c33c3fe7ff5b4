"""Superpositions: does the evidence find the ranking function, and does MH agree with enumeration?

Two tables, on ``bayesstruct.datasets.ranking_data`` (relevance = log(1 + tf) · idf + N(0, 0.3²)):

1. **Recovery.** For every seed and number of documents N, every distinct superposition of at most
   ``max_size`` vertices (``SuperpositionFamily(..., distinct_on=x)``) is scored by its exact
   evidence times the grammar prior (``compare(..., methods="exact")``). Reported: how often the
   generating tree ``mul(log1p(x0), x1)`` is the MAP structure, its mean posterior probability, the
   number of distinct trees and the seconds per comparison.
2. **MH against enumeration.** ``sample_superpositions`` against the exact posterior over canonical
   trees (max_size 4 and 5), side by side in one run: subtree regeneration alone
   (``moves={"regenerate": 1}``), the default mixture of regenerate / relabel / resize moves, and
   that mixture with parallel tempering over 4 temperatures (``temperatures=4``).
   Reported per number of draws, over the seeds: total variation distance, the error in E[|Γ|],
   how many chains put the most mass on the exact MAP tree, the acceptance rate and the seconds
   per chain. A chain that mixes has a total variation falling like 1/sqrt(draws).

    python benchmarks/superposition.py [--seeds 5] [--json PATH [--overwrite]] [--smoke]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import bayesstruct
from bayesstruct.datasets import ranking_data
from bayesstruct.families import Superposition, SuperpositionFamily, SuperpositionGrammar, sample_superpositions

_BENCHMARKS = str(Path(__file__).resolve().parent)
if _BENCHMARKS not in sys.path:  # the shared helpers, also when the script is loaded by path
    sys.path.insert(0, _BENCHMARKS)
from _common import add_json_argument, check_json_path, machine_info, positive_int, write_json  # noqa: E402

TEACHER = "mul(log1p(x0), x1)"


def recovery(seeds: int, sizes: list[int], max_sizes: list[int]) -> list[dict]:
    rows = []
    for max_size in max_sizes:
        grammar = SuperpositionGrammar(2, max_size=max_size)
        for n in sizes:
            wins, probs, seconds, counts = 0, [], [], []
            for seed in range(seeds):
                x, y = ranking_data(n, 0.3, seed=seed)
                t0 = time.perf_counter()
                fam = SuperpositionFamily(grammar, distinct_on=x)
                table = bayesstruct.compare(fam, x, y, methods="exact", structure_prior=fam.structure_prior,
                                            workers=1, progress=False)
                seconds.append(time.perf_counter() - t0)
                counts.append(len(fam.structures()))
                wins += str(table.best["tree"]) == TEACHER
                probs.append(table.row({"tree": TEACHER}).posterior_probability)
            rows.append({"max_size": max_size, "N": n, "seeds": seeds, "teacher_is_map": wins,
                         "teacher_posterior_mean": statistics.mean(probs), "distinct_trees": max(counts),
                         "seconds": statistics.mean(seconds)})
    return rows


#: the samplers compared: regeneration alone, the default mixture of moves, and the latter with
#: parallel tempering over 4 temperatures (4 times the work a draw; not run at 10^6 draws)
SAMPLERS = {"regenerate": ({"regenerate": 1.0}, None), "default": (None, None), "tempered (4)": (None, 4)}


def mh_agreement(seeds: int, draws: list[int], n: int, max_size: int) -> list[dict]:
    grammar = SuperpositionGrammar(2, max_size=max_size)
    rows = []
    for seed in range(seeds):
        x, y = ranking_data(n, 0.3, seed=seed)
        fam = SuperpositionFamily(grammar)
        table = bayesstruct.compare(fam, x, y, methods="exact", structure_prior=fam.structure_prior, workers=1,
                                    progress=False)
        exact = {str(r.structure["tree"]): r.posterior_probability for r in table.rows}
        size = {k: Superposition.parse(k).size for k in exact}
        exact_size = sum(p * size[k] for k, p in exact.items())
        exact_map = str(table.best["tree"])
        for d in draws:
            for sampler, (moves, temperatures) in SAMPLERS.items():
                if temperatures and d > 100_000:
                    continue
                t0 = time.perf_counter()
                chain = sample_superpositions(x, y, grammar, num_samples=d, seed=seed, moves=moves,
                                              temperatures=temperatures, progress=False)
                seconds = time.perf_counter() - t0
                post = chain.posterior()
                tv = 0.5 * sum(abs(post.get(k, 0.0) - p) for k, p in exact.items())
                rows.append({"max_size": max_size, "trees": len(exact), "sampler": sampler, "seed": seed, "draws": d,
                             "tv": tv, "size_error": sum(p * size[k] for k, p in post.items()) - exact_size,
                             "finds_map": next(iter(post)) == exact_map, "acceptance": chain.acceptance_rate,
                             "seconds": seconds})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=positive_int, default=5)
    add_json_argument(ap)
    ap.add_argument("--smoke", action="store_true", help="two seeds, small settings")
    args = ap.parse_args(argv)
    check_json_path(ap, args)  # now, not after the run
    torch.set_num_threads(1)
    info = machine_info(argv)
    seeds = 2 if args.smoke else args.seeds
    sizes = [30] if args.smoke else [30, 100, 300]
    max_sizes = [4] if args.smoke else [4, 5]
    draws = {4: [2000], 5: []} if args.smoke else {4: [10_000, 100_000, 1_000_000], 5: [10_000, 100_000]}
    t0 = time.perf_counter()
    rec = recovery(seeds, sizes, max_sizes)
    mh = [r for m, ds in draws.items() if ds for r in mh_agreement(seeds, ds, 40, m)]
    seconds = time.perf_counter() - t0
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, one thread, "
          f"{seconds:.0f} s in all\n")
    print("| max vertices | N | distinct trees (max over seeds) | teacher is MAP | mean p(teacher \\| D) | s per comparison |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rec:
        print(f"| {r['max_size']} | {r['N']} | {r['distinct_trees']} | {r['teacher_is_map']}/{r['seeds']} | "
              f"{r['teacher_posterior_mean']:.3f} | {r['seconds']:.2f} |")
    print("\n| max vertices (trees) | MH draws | moves | total variation (mean, max over seeds) | E[size] error (max abs) "
          "| finds the MAP tree | acceptance | s per chain |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for m, ds in draws.items():
        for d in ds:
            for sampler in SAMPLERS:
                rs = [r for r in mh if r["max_size"] == m and r["draws"] == d and r["sampler"] == sampler]
                if not rs:
                    continue
                print(f"| {m} ({rs[0]['trees']}) | {d:,} | {sampler} | {statistics.mean(r['tv'] for r in rs):.4f}, "
                      f"{max(r['tv'] for r in rs):.4f} | {max(abs(r['size_error']) for r in rs):.4f} | "
                      f"{sum(r['finds_map'] for r in rs)}/{len(rs)} | {statistics.mean(r['acceptance'] for r in rs):.2f} | "
                      f"{statistics.mean(r['seconds'] for r in rs):.1f} |")
    if args.json:
        write_json(args.json, {"machine": info, "smoke": args.smoke, "seeds": seeds, "seconds": seconds,
                               "recovery": rec, "mh": mh})


if __name__ == "__main__":
    main()
