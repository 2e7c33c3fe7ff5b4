"""Evidence with Gamma priors on both precisions (``PolynomialFamily(hyper="prior")``).

No estimator but ``exact`` (2-D quadrature over (log α, log β), ``GammaPrecisions``) is
exact here; the joint posterior over (w, log α, log β) is funnel-shaped and, at some
degrees, its mass lies far from the joint mode. This script prints each estimator's
error against the quadrature per degree, with its CPU time, so users see where the
sampling and variational estimators can be trusted.

    python benchmarks/prior_hyperparameters.py [--degrees 0:9] [--seed 0] [--json PATH [--overwrite]]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

from bayesstruct import PolynomialFamily, get_estimator
from bayesstruct.datasets import sinusoid

_BENCHMARKS = str(Path(__file__).resolve().parent)
if _BENCHMARKS not in sys.path:  # the shared helpers, also when the script is loaded by path
    sys.path.insert(0, _BENCHMARKS)
from _common import (add_json_argument, check_json_path, machine_info, nonnegative_int, parse_degrees,  # noqa: E402
                     write_json)

METHODS = ("laplace", "elbo", "iwae", "smc")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degrees", type=parse_degrees, default=parse_degrees("0:9"),
                        help="0:9 (inclusive, the default) or 0,3,6")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    check_json_path(parser, args)  # now, not after the run
    torch.set_num_threads(1)
    info = machine_info(argv)
    warnings.simplefilter("ignore")
    x, y = sinusoid(n=20, noise=0.3, seed=0)
    family = PolynomialFamily(args.degrees, hyper="prior")
    cpu = {m: 0.0 for m in METHODS}
    rows = []
    print(f"{'degree':>6}  {'exact (quadrature)':>18}  " + "  ".join(f"{m + ' error':>13}" for m in METHODS))
    worst = {m: 0.0 for m in METHODS}
    for structure in family.structures():
        ref = family.log_evidence(x, y, structure, method="exact").log_evidence
        cells = []
        row = {"degree": structure["degree"], "exact": ref, "error": {}, "stderr": {}}
        for m in METHODS:
            t = time.process_time()
            r = family.log_evidence(x, y, structure, method=get_estimator(m, seed=args.seed))
            cpu[m] += time.process_time() - t
            err = r.log_evidence - ref
            worst[m] = max(worst[m], abs(err))
            row["error"][m], row["stderr"][m] = err, r.stderr
            se = "" if r.stderr is None else f"±{r.stderr:.2f}"
            cells.append(f"{err:+8.3f}{se:>5}")
        rows.append(row)
        print(f"{structure['degree']:>6}  {ref:>18.4f}  " + "  ".join(f"{c:>13}" for c in cells), flush=True)
    print(f"{'max |error|':>26}  " + "  ".join(f"{worst[m]:>13.3f}" for m in METHODS))
    print(f"{'CPU-s (sweep)':>26}  " + "  ".join(f"{cpu[m]:>13.2f}" for m in METHODS))
    if args.json:
        write_json(args.json, {"machine": info, "degrees": args.degrees, "seed": args.seed, "rows": rows,
                               "max_abs_error": worst, "cpu_seconds": cpu})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
