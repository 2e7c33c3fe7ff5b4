"""Evidence with Gamma priors on both precisions (``PolynomialFamily(hyper="prior")``).

No estimator but ``exact`` (2-D quadrature over (log α, log β), ``GammaPrecisions``) is
exact here; the joint posterior over (w, log α, log β) is funnel-shaped and, at some
degrees, its mass lies far from the joint mode. This script prints each estimator's
error against the quadrature per degree, with its CPU time, so users see where the
sampling and variational estimators can be trusted.

    python benchmarks/prior_hyperparameters.py [--degrees 0:9] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from bayesstruct import PolynomialFamily, get_estimator
from bayesstruct.cli import parse_degrees
from bayesstruct.datasets import sinusoid

METHODS = ("laplace", "elbo", "iwae", "smc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degrees", default="0:9")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    x, y = sinusoid(n=20, noise=0.3, seed=0)
    family = PolynomialFamily(parse_degrees(args.degrees), hyper="prior")
    cpu = {m: 0.0 for m in METHODS}
    print(f"{'degree':>6}  {'exact (quadrature)':>18}  " + "  ".join(f"{m + ' error':>13}" for m in METHODS))
    worst = {m: 0.0 for m in METHODS}
    for structure in family.structures():
        ref = family.log_evidence(x, y, structure, method="exact").log_evidence
        cells = []
        for m in METHODS:
            t = time.process_time()
            r = family.log_evidence(x, y, structure, method=get_estimator(m, seed=args.seed))
            cpu[m] += time.process_time() - t
            err = r.log_evidence - ref
            worst[m] = max(worst[m], abs(err))
            se = "" if r.stderr is None else f"±{r.stderr:.2f}"
            cells.append(f"{err:+8.3f}{se:>5}")
        print(f"{structure['degree']:>6}  {ref:>18.4f}  " + "  ".join(f"{c:>13}" for c in cells), flush=True)
    print(f"{'max |error|':>26}  " + "  ".join(f"{worst[m]:>13.3f}" for m in METHODS))
    print(f"{'CPU-s (sweep)':>26}  " + "  ".join(f"{cpu[m]:>13.2f}" for m in METHODS))


if __name__ == "__main__":
    main()
