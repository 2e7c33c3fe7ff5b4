"""The ``bayesstruct`` command.

    bayesstruct compare polynomial [--degrees 0:9] [--dataset sinusoid --n 20 --noise 0.3 | --data F.csv --x C --y C]
                                   [--alpha A --beta B] [--hyper fixed|learn|prior|normal-gamma]
                                   [--methods exact,elbo,iwae,laplace,smc] [--num-steps N] [--seed S]
                                   [--workers N | --scheduler ADDRESS] [--out DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any, Sequence

from bayesstruct.exceptions import BayesStructError, InvalidArgumentError

__all__ = ["main", "build_parser", "parse_degrees"]

DEFAULT_METHODS = "exact,elbo,iwae,laplace,smc"

#: further sub-commands: each ``bayesstruct.commands.<name>`` module has ``add_parser(subparsers)``, which adds its
#: sub-parser and sets ``run=<function(args) -> exit code>`` as its default
COMMAND_MODULES: tuple[str, ...] = ("prune", "dbn", "network", "search")


def parse_degrees(text: str) -> list[int]:
    """``"0:9"`` (inclusive), ``"3"`` or ``"0,2,5"`` to a list of non-negative integers."""
    text = str(text).strip()
    try:
        if ":" in text:
            lo, hi = (int(t) for t in text.split(":"))
            degrees = list(range(lo, hi + 1))
        else:
            degrees = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InvalidArgumentError(f"--degrees must look like 0:9 or 0,2,5 (integers); got {text!r}") from None
    if not degrees:
        raise InvalidArgumentError(f"--degrees {text!r} is empty (give e.g. 0:9 with start <= stop)")
    if any(d < 0 for d in degrees):
        raise InvalidArgumentError(f"--degrees must be non-negative; got {text!r}")
    return degrees


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayesstruct", description="Bayesian selection of model structure with Pyro.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_ = sub.add_parser("compare", help="compare the structures of a family by their evidence")
    cmp_.add_argument("family", choices=["polynomial"], help="structure family")
    data = cmp_.add_argument_group("data")
    data.add_argument("--dataset", default="sinusoid", choices=["sinusoid"],
                      help="embedded data set: y = sin(2πx) + noise (default)")
    data.add_argument("--n", type=int, default=20, help="number of points of the embedded data set (default 20)")
    data.add_argument("--noise", type=float, default=0.3, help="noise sd of the embedded data set (default 0.3)")
    data.add_argument("--data", type=Path, help="CSV file with a header row (overrides --dataset)")
    data.add_argument("--x", dest="x_col", help="CSV column of the inputs")
    data.add_argument("--y", dest="y_col", help="CSV column of the targets")
    model = cmp_.add_argument_group("model")
    model.add_argument("--degrees", default="0:9", help="degrees to compare: 0:9 (inclusive) or 0,2,5 (default 0:9)")
    model.add_argument("--alpha", type=float, default=5e-3, help="weight precision α (default 5e-3)")
    model.add_argument("--beta", type=float, default=None, help="noise precision β (default 1/noise²)")
    model.add_argument("--hyper", default="fixed", choices=["fixed", "learn", "prior", "normal-gamma"],
                       help="hyperparameters: fixed α, β; type-II ML (learn); Gamma priors (prior); "
                            "conjugate unknown noise (normal-gamma)")
    model.add_argument("--standardize", action="store_true", help="standardise x before the power basis")
    inf = cmp_.add_argument_group("inference")
    inf.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated estimators (default {DEFAULT_METHODS})")
    inf.add_argument("--num-steps", type=int, default=None, help="optimiser iteration cap of elbo/iwae (default 500)")
    inf.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    inf.add_argument("--smoke", action="store_true", help="small sample sizes, for a quick check")
    par = inf.add_mutually_exclusive_group()
    par.add_argument("--workers", type=int, default=None, help="local worker processes (default: CPU count; 1 = inline)")
    par.add_argument("--scheduler", default=None, help="address of a Dask scheduler, e.g. tcp://127.0.0.1:8786")
    out = cmp_.add_argument_group("output")
    out.add_argument("--out", type=Path, default=None, help="directory for figures, netCDF files and results.json")
    out.add_argument("--json", type=Path, default=None, help="write the evidence table as JSON to this path")
    out.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    out.add_argument("--no-loo", action="store_true", help="do not print the LOO comparison")
    dec = sub.add_parser("decompress", help="restore a model from a Deep Compression file")
    dec.add_argument("file", type=Path, help="file written by bayesstruct.prune.compress")
    dec.add_argument("--save", type=Path, default=None, help="also save the restored model (torch.save) to this path")
    cmp_.set_defaults(run=run_compare)
    dec.set_defaults(run=run_decompress)
    for name in COMMAND_MODULES:
        importlib.import_module(f"bayesstruct.commands.{name}").add_parser(sub)
    return parser


def _method_options(methods: Sequence[str], num_steps: int | None, smoke: bool) -> dict[str, dict[str, Any]]:
    opts: dict[str, dict[str, Any]] = {m: {} for m in methods}
    if num_steps is not None:
        if num_steps < 1:
            raise InvalidArgumentError(f"--num-steps must be a positive integer; got {num_steps}")
        for m in ("elbo", "iwae"):
            if m in opts:
                opts[m]["max_iter"] = num_steps
    if smoke:
        for m, o in {"smc": {"num_particles": 1024}, "iwae": {"num_samples": 2048},
                     "elbo": {"num_eval_samples": 1024}}.items():
            if m in opts:
                opts[m].update(o)
    return opts


def _load_data(args: argparse.Namespace):
    from bayesstruct.datasets import load_csv, sinusoid

    if args.data is not None:
        if not args.x_col or not args.y_col:
            raise InvalidArgumentError("--data needs --x COLUMN and --y COLUMN")
        return load_csv(args.data, args.x_col, args.y_col), f"{args.data} ({args.x_col} → {args.y_col})"
    return sinusoid(n=args.n, noise=args.noise, seed=0), f"sinusoid (n={args.n}, noise={args.noise}, seed 0)"


def _executor(args: argparse.Namespace):
    if args.scheduler is None:
        return None, None
    try:
        from distributed import Client
    except ImportError:
        raise InvalidArgumentError("--scheduler needs Dask: pip install 'bayesstruct[distributed]'") from None
    try:
        client = Client(args.scheduler, timeout="10s")
    except OSError as exc:
        raise InvalidArgumentError(f"--scheduler: cannot connect to {args.scheduler!r}: {exc}") from None
    return client, client.get_executor()


def run_compare(args: argparse.Namespace) -> int:
    from bayesstruct.commands import check_output_paths
    from bayesstruct.compare import compare
    from bayesstruct.families import PolynomialFamily

    check_output_paths(json=args.json, out=args.out)
    degrees = parse_degrees(args.degrees)
    (x, y), data_label = _load_data(args)
    beta = args.beta if args.beta is not None else 1.0 / args.noise**2
    family = PolynomialFamily(degrees, hyper=args.hyper, alpha=args.alpha, beta=beta, standardize=args.standardize)
    methods = [m.strip().lower() for m in args.methods.split(",") if m.strip()]
    options = _method_options(methods, args.num_steps, args.smoke)
    client, executor = _executor(args)
    try:
        table = compare(family, x, y, methods=methods, options=options, executor=executor, workers=args.workers,
                        seed=args.seed, progress=not args.no_progress)
    finally:
        if client is not None:
            client.close()
    print(f"data: {data_label}; hyperparameters: {args.hyper}")
    print(table)
    if args.json is not None:
        from bayesstruct.io import write_json

        write_json(table, args.json)
        print(f"wrote {args.json}")
    has_samples = any(r.estimates[m].samples for r in table.rows for m in table.methods)
    if not args.no_loo and has_samples and len(table.rows) > 1:
        from bayesstruct.io import loo_compare

        print("\nLOO (PSIS) for comparison; the evidence above is the Bayesian model-selection criterion:")
        print(loo_compare(table).to_string())
    if args.out is not None:
        _write_outputs(table, args.out, truth=_sinusoid_truth if args.data is None else None)
    return 0


def _sinusoid_truth(x):
    import numpy as np

    return np.sin(2 * np.pi * np.asarray(x))


def _write_outputs(table, out: Path, truth=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesstruct import plots
    from bayesstruct.io import save_netcdf, table_inference_data, write_json

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json"]
    write_json(table, written[0])
    ax = plots.plot_evidence(table)
    ax.figure.savefig(out / "evidence.png", dpi=120, bbox_inches="tight")
    written.append(out / "evidence.png")
    ax = plots.plot_posterior_probabilities(table)
    ax.figure.savefig(out / "posterior_probabilities.png", dpi=120, bbox_inches="tight")
    written.append(out / "posterior_probabilities.png")
    ax = plots.plot_predictive(table, truth=truth)
    ax.figure.savefig(out / "predictive.png", dpi=120, bbox_inches="tight")
    written.append(out / "predictive.png")
    plt.close("all")
    if any(r.estimates[m].samples for r in table.rows for m in table.methods):
        idata = table_inference_data(table)
        best = next(iter(idata.values()))
        fig = plots.plot_weights(best, kind="forest")
        fig.savefig(out / "weights_forest.png", dpi=120, bbox_inches="tight")
        written.append(out / "weights_forest.png")
        plt.close("all")
        written += save_netcdf(table, out / "posterior")
    print(f"wrote {len(written)} files to {out}/")


def run_decompress(args: argparse.Namespace) -> int:
    import torch

    from bayesstruct.prune.compression import decompress

    if not args.file.is_file():
        raise InvalidArgumentError(f"FILE: no such file {str(args.file)!r}")
    if args.save is not None and not args.save.parent.is_dir():
        raise InvalidArgumentError(f"--save: directory {str(args.save.parent)!r} does not exist")
    model = decompress(args.file)
    weights = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    total = sum(w.numel() for w in weights)
    nonzero = sum(int((w != 0).sum()) for w in weights)
    print(model)
    print(f"restored from {args.file} ({args.file.stat().st_size} bytes): {nonzero} of {total} weights non-zero")
    if args.save is not None:
        import io

        from bayesstruct.io import write_atomic

        buf = io.BytesIO()
        torch.save(model, buf)
        write_atomic(args.save, buf.getvalue())  # an existing file is replaced only by a complete one
        print(f"wrote {args.save}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except BayesStructError as exc:
        parser.exit(2, f"bayesstruct: error: {exc}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
