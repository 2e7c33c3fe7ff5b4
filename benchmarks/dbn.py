"""Speed of the cascading-IBP belief-net MCMC on scikit-learn's digits: sweeps/s, ESS/s, time per layer.

For each data size (default: 500 images and all 1,797) one chain of
:class:`bayesstruct.families.belief_net.BeliefNetSampler` runs ``--warmup`` sweeps and
then ``--num-sweeps`` timed sweeps. The table reports

* sweeps per second and seconds per sweep *per layer* (a sweep's time divided by the
  number of layers with weights, L + 1, averaged over the timed sweeps);
* the bulk ESS (ArviZ, one chain) of the total number of hidden units and of the number
  of edges, and the ESS per second of sampling;
* the share of the moves' summed time spent in each move (the sampler's methods are wrapped with
  timers on the instance, so ``sweep()`` itself is what is measured).

    python benchmarks/dbn.py [--sizes 500,1797] [--warmup 50] [--num-sweeps 200] [--seed 0] [--smoke]
                             [--json PATH [--overwrite]]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from bayesstruct.datasets import load_dataset
from bayesstruct.families.belief_net import BeliefNetSampler

_BENCHMARKS = str(Path(__file__).resolve().parent)
if _BENCHMARKS not in sys.path:  # the shared helpers, also when the script is loaded by path
    sys.path.insert(0, _BENCHMARKS)
from _common import (add_json_argument, check_json_path, machine_info, nonnegative_int, positive_int,  # noqa: E402
                     positive_int_list, write_json)

MOVES = ("update_weights", "update_precisions", "update_activations", "update_edges", "birth_death",
         "resample_above", "resample_above_hyper", "update_alpha_beta")


def _instrument(sampler: BeliefNetSampler) -> dict[str, float]:
    """Wrap the sampler's move methods (on the instance) so that their wall time adds up in the returned dict."""
    spent: dict[str, float] = defaultdict(float)
    for name in MOVES:
        method = getattr(sampler, name)

        def timed(*args, _method=method, _name=name, **kwargs):
            t = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                spent[_name] += time.perf_counter() - t

        setattr(sampler, name, timed)
    return spent


def _ess(x: np.ndarray) -> float:
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        val = float(az.ess(np.asarray(x, dtype=np.float64)[None, :], method="bulk"))
    return val if np.isfinite(val) else float("nan")


def bench(num_images: int, warmup: int, num_sweeps: int, seed: int) -> dict:
    x, _ = load_dataset("digits", num_samples=None if num_images >= 1797 else num_images, seed=0)
    sampler = BeliefNetSampler(x.to(torch.float64), seed=seed)
    for _ in range(warmup):
        sampler.sweep()
    spent = _instrument(sampler)
    units, edges, depth, per_layer = [], [], [], []
    t0 = time.perf_counter()
    for _ in range(num_sweeps):
        t = time.perf_counter()
        sampler.sweep()
        dt = time.perf_counter() - t
        st = sampler.stats()
        per_layer.append(dt / (st["depth"] + 1))
        units.append(sum(st["widths"]))
        edges.append(st["num_edges"])
        depth.append(st["depth"])
    seconds = time.perf_counter() - t0  # includes the stats() calls, as a user's run would
    ess_units, ess_edges = _ess(units), _ess(edges)
    total_moves = sum(spent.values())
    return {
        "N": int(x.shape[0]), "sweeps_per_s": num_sweeps / seconds, "s_per_sweep": seconds / num_sweeps,
        "s_per_layer": float(np.mean(per_layer)), "depth": float(np.mean(depth)), "units": float(np.mean(units)),
        "edges": float(np.mean(edges)), "ess_units": ess_units, "ess_units_per_s": ess_units / seconds,
        "ess_edges": ess_edges, "ess_edges_per_s": ess_edges / seconds,
        "share": {k: spent[k] / total_moves for k in MOVES},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=positive_int_list, default=[500, 1797],
                        help="numbers of digits images, comma-separated (default 500,1797; 1797 or more: all)")
    parser.add_argument("--warmup", type=nonnegative_int, default=50, help="untimed sweeps first (default 50)")
    parser.add_argument("--num-sweeps", type=positive_int, default=200, help="timed sweeps (default 200)")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny run (100 images, 5 + 10 sweeps)")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    check_json_path(parser, args)  # now, not after the run
    torch.set_num_threads(1)
    info = machine_info(argv)
    sizes = args.sizes
    if args.smoke:
        sizes, args.warmup, args.num_sweeps = [100], 5, 10
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"torch {torch.__version__}, 1 thread; warm-up {args.warmup}, timed sweeps {args.num_sweeps}, "
          f"seed {args.seed}")
    rows = [bench(n, args.warmup, args.num_sweeps, args.seed) for n in sizes]
    print(f"\n{'N':>5} {'sweeps/s':>9} {'s/sweep':>8} {'s/layer':>8} {'depth':>6} {'units':>6} {'edges':>7} "
          f"{'ESS units':>10} {'ESS/s':>7} {'ESS edges':>10} {'ESS/s':>7}")
    for r in rows:
        print(f"{r['N']:>5} {r['sweeps_per_s']:>9.2f} {r['s_per_sweep']:>8.3f} {r['s_per_layer']:>8.4f} "
              f"{r['depth']:>6.1f} {r['units']:>6.1f} {r['edges']:>7.0f} {r['ess_units']:>10.1f} "
              f"{r['ess_units_per_s']:>7.2f} {r['ess_edges']:>10.1f} {r['ess_edges_per_s']:>7.2f}")
    print("\nshare of the moves' summed time per move (the state refresh between moves, ~3%, is not in it):")
    print(f"{'N':>5} " + " ".join(f"{m.replace('update_', ''):>12}" for m in MOVES))
    for r in rows:
        print(f"{r['N']:>5} " + " ".join(f"{100 * r['share'][m]:>11.1f}%" for m in MOVES))
    if args.json:
        write_json(args.json, {"machine": info, "smoke": args.smoke, "sizes": sizes, "warmup": args.warmup,
                               "num_sweeps": args.num_sweeps, "seed": args.seed, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
