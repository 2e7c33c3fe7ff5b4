"""``bayesstruct compare FAMILY``: rank the structures of a family by their evidence.

    bayesstruct compare polynomial    [--degrees 0:9] [--dataset sinusoid --n 20 --noise 0.3 | --data F.csv --x C --y C]
                                      [--alpha A --beta B] [--hyper fixed|learn|prior|normal-gamma] [--standardize]
                                      [--methods exact,elbo,iwae,laplace,smc] [--num-steps N] [--smoke] [--no-loo]
    bayesstruct compare superposition [--dataset ranking --n 100 --noise 0.3 | --data F.csv --x C1,C2 --y C]
                                      [--max-size 4] [--unary log1p,sqrt,...] [--binary add,sub,mul,div]
                                      [--p-variable 0.5 --p-unary 0.25] [--noise-scale S | --lam L] [--alpha A]
                                      [--inference enumerate|mcmc] [--all-trees] [--num-samples N --warmup N]
                                      [--chains C] [--temperatures T] [--top K]
    bayesstruct compare bayes-net     [--dataset collider --n 500 | --data F.csv --x C1,C2,...] [--standardize]
                                      [--alpha A] [--noise known|normal-gamma] [--noise-scale S] [--max-parents K]
                                      [--prior uniform|sparsity --rho R] [--inference enumerate|mcmc]
                                      [--num-samples N --warmup N] [--chains C] [--temperatures T] [--top K]

and, for all of them, ``[--seed S] [--workers N | --scheduler ADDRESS] [--out DIR] [--json PATH] [--no-progress]``.

``enumerate`` scores every structure by its exact evidence with :func:`bayesstruct.compare`
(the superposition grammar's prior, or ``--prior`` over DAGs, as the structure prior);
``mcmc`` samples structures (:func:`~bayesstruct.families.superposition.sample_superpositions`,
:class:`~bayesstruct.families.bayes_net.StructureMCMC`) where the space is too large to list.

JSON (``--json PATH``, and ``DIR/results.json`` with ``--out DIR``): with ``enumerate`` the
evidence table (:meth:`~bayesstruct.compare.ComparisonTable.to_dict`); with ``mcmc``
``{"family", "inference": "mcmc", "num_samples", "warmup", "acceptance_rate", "posterior":
[{"structure", "probability"}, ...], "chains", "diagnostics": {STAT: {"mean", "sd", "num_chains",
"r_hat", "ess_bulk", "ess_tail"}}}`` (``STAT``: ``log_evidence`` and ``size`` of a tree,
``log_score`` and ``num_edges`` of a DAG; the run warns when an R-hat exceeds 1.01),
``"temperatures"`` and ``"swap_rate"`` (None without tempering). With ``--out`` the chains are also
written as ``posterior.nc`` (ArviZ) and ``trace.png``. Both add ``"variables"`` (the column of each
variable); a Bayesian network adds ``"edge_posterior"`` (``P[i][j] = p(i → j | D)``) and, with
``mcmc``, its Monte Carlo standard error ``"edge_posterior_stderr"``; a superposition adds
``"left_out"`` (``{reason: number of trees}``: trees not finite on the data, left out of the
enumeration or rejected by the sampler).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any, Sequence

from bayesstruct.commands import add_output_arguments, check_output_paths, check_ranges, write_results
from bayesstruct.exceptions import InvalidArgumentError

__all__ = ["add_parser", "parse_degrees", "parse_names", "run_compare_polynomial", "run_compare_superposition",
           "run_compare_bayes_net"]

DEFAULT_METHODS = "exact,elbo,iwae,laplace,smc"
UNARY = "log1p,sqrt,exp,square,inv"
BINARY = "add,sub,mul,div"
#: the example of ``compare bayes-net --dataset collider`` (tutorial 08): 0 → 2 ← 1, 2 → 3
COLLIDER = {"dag": "0->2, 1->2, 2->3", "weights": {(0, 2): 0.8, (1, 2): -0.7, (2, 3): 0.6},
            "intercepts": (1.0, -0.5, 0.0, 2.0)}


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


def parse_names(text: str | None, option: str, *, allow_empty: bool = False) -> list[str]:
    """``"a,b, c"`` to ``["a", "b", "c"]``; refuses repeats, and an empty list unless ``allow_empty``."""
    names = [t.strip() for t in (text or "").split(",") if t.strip()]
    if not names and not allow_empty:
        raise InvalidArgumentError(f"{option} must be a comma-separated list of names; got {text!r}")
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"{option} names something twice: {text!r}")
    return names


# ----------------------------------------------------------------------------- the parser
def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``compare`` with one sub-command per structure family."""
    cmp_ = subparsers.add_parser("compare", help="compare the structures of a family by their evidence",
                                 description="Rank the structures of a family by their evidence p(D | structure).")
    families = cmp_.add_subparsers(dest="family", required=True, metavar="FAMILY")
    _add_polynomial(families)
    _add_superposition(families)
    _add_bayes_net(families)
    return cmp_


def _add_common(p: argparse.ArgumentParser, inf: argparse._ArgumentGroup) -> None:
    inf.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    par = inf.add_mutually_exclusive_group()
    par.add_argument("--workers", type=int, default=None,
                     help="local worker processes (default: CPU count, or inline when only the closed-form "
                          "'exact' evidence is computed; 1 = inline)")
    par.add_argument("--scheduler", default=None, help="address of a Dask scheduler, e.g. tcp://127.0.0.1:8786")


def _add_polynomial(families: argparse._SubParsersAction) -> None:
    p = families.add_parser("polynomial", help="polynomials of each degree (Bayesian linear regression)",
                            description="Compare polynomial degrees by their evidence, with several estimators.")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="sinusoid", choices=["sinusoid"],
                      help="embedded data set: y = sin(2πx) + noise (default)")
    data.add_argument("--n", type=int, default=None, help="number of points of the embedded data set (default 20)")
    data.add_argument("--noise", type=float, default=0.3,
                      help="noise sd of the embedded data set, and of the model unless --beta is given: "
                           "β = 1/noise², also with --data (default 0.3)")
    data.add_argument("--data", type=Path, help="CSV file with a header row (overrides --dataset)")
    data.add_argument("--x", dest="x_col", help="CSV column of the inputs")
    data.add_argument("--y", dest="y_col", help="CSV column of the targets")
    model = p.add_argument_group("model")
    model.add_argument("--degrees", default="0:9", help="degrees to compare: 0:9 (inclusive) or 0,2,5 (default 0:9)")
    model.add_argument("--alpha", type=float, default=None, help="weight precision α (default 5e-3)")
    model.add_argument("--beta", type=float, default=None, help="noise precision β (default 1/noise²)")
    model.add_argument("--hyper", default="fixed", choices=["fixed", "learn", "prior", "normal-gamma"],
                       help="hyperparameters: fixed α, β; type-II ML (learn); Gamma priors (prior); "
                            "conjugate unknown noise (normal-gamma)")
    model.add_argument("--standardize", action="store_true", help="standardise x before the power basis")
    inf = p.add_argument_group("inference")
    inf.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated estimators (default {DEFAULT_METHODS})")
    inf.add_argument("--num-steps", type=int, default=None, help="optimiser iteration cap of elbo/iwae (default 500)")
    inf.add_argument("--smoke", action="store_true", help="small sample sizes, for a quick check")
    _add_common(p, inf)
    out = add_output_arguments(p, "directory for figures, netCDF files and results.json",
                               "write the evidence table as JSON to this path")
    out.add_argument("--no-loo", action="store_true", help="do not print the LOO comparison")
    p.set_defaults(run=run_compare_polynomial)


def _add_graph_inference(p: argparse.ArgumentParser, default_inference: str | None, inference_help: str,
                         num_samples: int, temperatures: int) -> argparse._ArgumentGroup:
    inf = p.add_argument_group("inference")
    inf.add_argument("--inference", choices=["enumerate", "mcmc"], default=default_inference, help=inference_help)
    # None: not given; _mcmc_settings fills the defaults for --inference mcmc and refuses them for enumerate
    p.set_defaults(mcmc_defaults={"num_samples": num_samples, "warmup": 500, "chains": 4, "temperatures": temperatures})
    inf.add_argument("--num-samples", type=int, default=None,
                     help=f"MCMC draws kept per chain (default {num_samples})")
    inf.add_argument("--warmup", type=int, default=None, help="MCMC steps discarded first, per chain (default 500)")
    inf.add_argument("--chains", type=int, default=None,
                     help="independent MCMC chains, seeds SEED, SEED+1, ... (default 4; R-hat needs >= 2)")
    inf.add_argument("--temperatures", type=int, default=None,
                     help=f"parallel tempering: replicas at inverse temperatures 1, 1/2, ..., per chain (default "
                          f"{temperatures}{'; 1 = none' if temperatures > 1 else ' = none'})")
    _add_common(p, inf)
    return inf


def _add_superposition(families: argparse._SubParsersAction) -> None:
    p = families.add_parser("superposition", help="superpositions of elementary functions (trees; ranking functions)",
                            description="Rank superpositions of elementary functions (trees whose leaves are the "
                                        "columns of x) by evidence times the grammar's prior.")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="ranking", choices=["ranking"],
                      help="embedded data set: relevance = log(1 + tf)·idf + noise, x0 = tf, x1 = idf (default)")
    data.add_argument("--n", type=int, default=100, help="number of points of the embedded data set (default 100)")
    data.add_argument("--noise", type=float, default=0.3, help="noise sd of the embedded data set (default 0.3)")
    data.add_argument("--data", type=Path, help="CSV file with a header row (overrides --dataset)")
    data.add_argument("--x", dest="x_cols", help="CSV columns of the variables x0, x1, ..., comma-separated")
    data.add_argument("--y", dest="y_col", help="CSV column of the targets")
    model = p.add_argument_group("model (the grammar is the structure prior)")
    model.add_argument("--max-size", type=int, default=4, help="largest number of vertices of a tree (default 4)")
    model.add_argument("--unary", default=UNARY, help=f"unary functions (default {UNARY}; '' for none)")
    model.add_argument("--binary", default=BINARY, help=f"binary functions (default {BINARY}; '' for none)")
    model.add_argument("--p-variable", type=float, default=0.5, help="probability that a vertex is a leaf (default 0.5)")
    model.add_argument("--p-unary", type=float, default=0.25, help="probability that a vertex is unary (default 0.25)")
    model.add_argument("--noise-scale", type=float, default=None,
                       help="known noise sd σ (default: unknown, with a conjugate Gamma prior on 1/σ²)")
    model.add_argument("--alpha", type=float, default=0.01, help="weight precision α with --noise-scale (default 0.01)")
    model.add_argument("--lam", type=float, default=0.01,
                       help="weight precision relative to the noise precision, without --noise-scale (default 0.01)")
    model.add_argument("--all-trees", action="store_true",
                       help="keep one tree per function up to argument order, not one per distinct model on x")
    inf = _add_graph_inference(p, "enumerate", "score every tree (enumerate, default) or sample trees by "
                                               "Metropolis-Hastings (mcmc, for large --max-size)", 5000, 4)
    inf.add_argument("--top", type=int, default=10, help="structures to print (default 10)")
    add_output_arguments(p, "directory for the figures and results.json")
    p.set_defaults(run=run_compare_superposition)


def _add_bayes_net(families: argparse._SubParsersAction) -> None:
    p = families.add_parser("bayes-net", help="Bayesian networks: DAGs over the columns, linear-Gaussian nodes",
                            description="Rank the directed acyclic graphs over the columns of x by their exact "
                                        "evidence (every DAG up to 5 variables) or sample them by structure MCMC.")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="collider", choices=["collider"],
                      help="embedded data set: 4 variables from 0 -> 2 <- 1, 2 -> 3 (default)")
    data.add_argument("--n", type=int, default=None, help="number of points of the embedded data set (default 500)")
    data.add_argument("--data", type=Path, help="CSV file with a header row (overrides --dataset)")
    data.add_argument("--x", dest="x_cols", help="CSV columns of the variables, comma-separated (the nodes)")
    data.add_argument("--standardize", action="store_true",
                      help="scale every column to mean 0, sd 1 (then --noise-scale is in sd units)")
    model = p.add_argument_group("model")
    model.add_argument("--alpha", type=float, default=1.0, help="precision of each weight and intercept (default 1)")
    model.add_argument("--noise", default="known", choices=["known", "normal-gamma"],
                       help="each node's noise: known sd (--noise-scale) or unknown with a Gamma prior")
    model.add_argument("--noise-scale", type=float, default=1.0, help="noise sd σ of every node (default 1)")
    model.add_argument("--max-parents", type=int, default=None, help="at most this many parents per node")
    model.add_argument("--prior", default="uniform", choices=["uniform", "sparsity"],
                       help="prior over DAGs: uniform, or sparsity (each edge multiplies the prior by --rho/(1 - --rho))")
    model.add_argument("--rho", type=float, default=None, help="edge parameter of --prior sparsity, the prior odds rho/(1-rho) per edge (default 0.2)")
    inf = _add_graph_inference(p, None, "score every DAG (enumerate; the default up to 5 variables) or sample "
                                        "DAGs by structure MCMC (mcmc; the default above)", 5000, 1)
    inf.add_argument("--top", type=int, default=6, help="DAGs to print (default 6)")
    add_output_arguments(p, "directory for the figures and results.json")
    p.set_defaults(run=run_compare_bayes_net)


# ----------------------------------------------------------------------------- shared helpers
def _executor(args: argparse.Namespace):
    if args.scheduler is None:
        return None, None
    try:
        from distributed import Client
    except ImportError:
        raise InvalidArgumentError("--scheduler needs Dask: pip install 'bayesstruct[distributed]'") from None
    try:
        client = Client(args.scheduler, timeout="10s")
    except (OSError, ValueError, TypeError) as exc:  # ValueError: a malformed address, e.g. no port
        raise InvalidArgumentError(f"--scheduler: cannot connect to {args.scheduler!r} ({exc}); give the "
                                   "scheduler's address as tcp://HOST:PORT") from None
    return client, client.get_executor()


def _compare(family, x, y, args: argparse.Namespace, **kwargs: Any):
    from bayesstruct.compare import compare

    client, executor = _executor(args)
    try:
        return compare(family, x, y, executor=executor, workers=args.workers, seed=args.seed,
                       progress=not args.no_progress, **kwargs)
    finally:
        if client is not None:
            client.close()


def _mcmc_settings(args: argparse.Namespace, inference: str) -> None:
    """The sampler's flags: refused with ``--inference enumerate`` (which would ignore them), else
    their defaults filled in and checked (``--warmup`` may be 0, the others >= 1)."""
    for name, default in args.mcmc_defaults.items():
        flag = f"--{name.replace('_', '-')}"
        if inference == "enumerate" and getattr(args, name) is not None:
            raise InvalidArgumentError(f"{flag} applies to --inference mcmc; enumeration scores every structure exactly")
        if getattr(args, name) is None:
            setattr(args, name, default)
        _check_counts(args, name, minimum=0 if name == "warmup" else 1)


def _check_counts(args: argparse.Namespace, *names: str, minimum: int = 1) -> None:
    from bayesstruct._validation import check_positive_int

    for name in names:
        check_positive_int(getattr(args, name), f"--{name.replace('_', '-')}", minimum=minimum)


#: the files and folders each comparison may write in ``--out`` (refused without ``--overwrite`` when present)
POLYNOMIAL_OUT = ("results.json", "evidence.png", "posterior_probabilities.png", "predictive.png", "weights_forest.png",
                  "posterior")
SUPERPOSITION_OUT = ("results.json", "map_tree.png", "posterior.png", "posterior.nc", "trace.png")
BAYES_NET_OUT = ("results.json", "edge_posterior.png", "top_dags.png", "posterior.nc", "trace.png")


def _save(fig_or_ax, path: Path, written: list[Path]) -> None:
    import matplotlib.pyplot as plt

    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    written.append(path)


def _report_chains(chains: Sequence[Any], pooled: Any, family: str, stats: Sequence[str], args: argparse.Namespace,
                   describe) -> tuple[dict[str, Any], Any]:
    """Print each chain and the convergence diagnostics of ``stats``; return the JSON result so far
    (the run's settings, rates and diagnostics) and the chains as ArviZ InferenceData.

    Warns when a statistic's R-hat is above 1.01 (Vehtari et al. 2021): the chains then disagree
    and their pooled visit frequencies are not to be trusted.
    """
    from bayesstruct.io import chain_diagnostics, structure_inference_data

    result = {"family": family, "inference": "mcmc", "num_samples": args.num_samples, "warmup": args.warmup,
              "temperatures": args.temperatures, "acceptance_rate": pooled.acceptance_rate,
              "swap_rate": pooled.swap_rate}

    for c, chain in enumerate(chains):
        print(f"  chain {c} (seed {args.seed + c}): acceptance {chain.acceptance_rate:.2f}, most visited {describe(chain)}")
    idata = structure_inference_data(chains, family=result["family"])
    diagnostics = {k: chain_diagnostics(idata.posterior[k].values) for k in stats}
    cells = []
    for k, d in diagnostics.items():
        rhat = "n/a" if d["r_hat"] is None else f"{d['r_hat']:.3f}"
        ess = "n/a" if d["ess_bulk"] is None else f"{d['ess_bulk']:.0f}"
        cells.append(f"{k}: R-hat {rhat}, bulk ESS {ess}")
    print("diagnostics: " + "; ".join(cells))
    bad = [k for k, d in diagnostics.items() if d["r_hat"] is not None and d["r_hat"] > 1.01]
    if bad:
        print(f"warning: the chains disagree (R-hat of {', '.join(bad)} above 1.01): the pooled frequencies are not "
              "reliable; run longer chains (--num-samples, --warmup) or compare the chains above")
    result.update(chains=len(chains), diagnostics=diagnostics)
    return result, idata


def _write_trace(idata, stats: Sequence[str], out: Path, written: list[Path]) -> None:
    from bayesstruct.io import _quiet_arviz

    with _quiet_arviz() as az, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a stuck chain's constant trace has no density to draw
        warnings.simplefilter("ignore", DeprecationWarning)  # ArviZ 0.23 calls a deprecated matplotlib helper
        axes = az.plot_trace(idata, var_names=list(stats), compact=False, figsize=(10, 3.0 * len(stats)))
        axes.ravel()[0].figure.tight_layout()
        idata.to_netcdf(str(out / "posterior.nc"))
    written.append(out / "posterior.nc")
    _save(axes.ravel()[0].figure, out / "trace.png", written)


def _headless() -> None:
    import matplotlib

    matplotlib.use("Agg")


# ----------------------------------------------------------------------------- polynomial
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


def run_compare_polynomial(args: argparse.Namespace) -> int:
    from bayesstruct.datasets import load_csv, sinusoid
    from bayesstruct.families import PolynomialFamily

    check_output_paths(args, inputs={"--data": args.data}, out_files=POLYNOMIAL_OUT)
    degrees = parse_degrees(args.degrees)
    if args.data is not None:
        if not args.x_col or not args.y_col:
            raise InvalidArgumentError("--data needs --x COLUMN and --y COLUMN")
        if args.n is not None:
            raise InvalidArgumentError("--n sets the size of the embedded data set; with --data every row is used")
        (x, y), data_label = load_csv(args.data, args.x_col, args.y_col), f"{args.data} ({args.x_col} → {args.y_col})"
    else:
        if args.x_col or args.y_col:
            raise InvalidArgumentError("--x and --y name columns of a --data CSV file")
        n = 20 if args.n is None else args.n
        (x, y), data_label = sinusoid(n=n, noise=args.noise, seed=0), f"sinusoid (n={n}, noise={args.noise}, seed 0)"
    if args.hyper == "prior":  # alpha and beta are latent sites with Gamma priors: a value would be ignored
        given = [flag for flag, value in (("--alpha", args.alpha), ("--beta", args.beta)) if value is not None]
        if given:
            raise InvalidArgumentError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} integrated out "
                                       "under --hyper prior (Gamma priors); drop it, or use --hyper fixed or learn")
        beta = None
    else:
        if args.beta is None:
            check_ranges(("--noise", args.noise, 0, True))  # beta = 1 / noise^2 (checked by sinusoid() only without --data)
        beta = args.beta if args.beta is not None else 1.0 / args.noise**2
    family = PolynomialFamily(degrees, hyper=args.hyper, alpha=args.alpha, beta=beta, standardize=args.standardize)
    alpha, beta = family.model_kwargs["alpha"], family.model_kwargs["beta"]  # the family's defaults filled in
    methods = [m.strip().lower() for m in args.methods.split(",") if m.strip()]
    options = _method_options(methods, args.num_steps, args.smoke)
    table = _compare(family, x, y, args, methods=methods, options=options)
    start = {"fixed": "", "learn": " (start)"}.get(args.hyper)
    shown = f" (α = {alpha:g}, β = {beta:g}{start})" if start is not None else ""
    print(f"data: {data_label}; hyperparameters: {args.hyper}{shown}")
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
        _write_polynomial_outputs(table, args.out, truth=_sinusoid_truth if args.data is None else None)
    return 0


def _sinusoid_truth(x):
    import numpy as np

    return np.sin(2 * np.pi * np.asarray(x))


def _write_polynomial_outputs(table, out: Path, truth=None) -> None:
    _headless()
    from bayesstruct import plots
    from bayesstruct.io import save_netcdf, table_inference_data, write_json

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json"]
    write_json(table, written[0])
    _save(plots.plot_evidence(table), out / "evidence.png", written)
    _save(plots.plot_posterior_probabilities(table), out / "posterior_probabilities.png", written)
    _save(plots.plot_predictive(table, truth=truth), out / "predictive.png", written)
    if any(r.estimates[m].samples for r in table.rows for m in table.methods):
        idata = table_inference_data(table)
        best = next(iter(idata.values()))
        _save(plots.plot_weights(best, kind="forest"), out / "weights_forest.png", written)
        written += save_netcdf(table, out / "posterior")
    print(f"wrote {len(written)} files to {out}/")


# ----------------------------------------------------------------------------- superposition
def _superposition_data(args: argparse.Namespace):
    from bayesstruct.datasets import load_csv, ranking_data

    if args.data is not None:
        if not args.x_cols or not args.y_col:
            raise InvalidArgumentError("--data needs --x COLUMN[,COLUMN...] and --y COLUMN")
        columns = parse_names(args.x_cols, "--x")
        x, y = load_csv(args.data, columns, args.y_col)
        return x, y, columns, f"{args.data} ({', '.join(columns)} → {args.y_col})"
    if args.x_cols or args.y_col:
        raise InvalidArgumentError("--x and --y name columns of a --data CSV file")
    x, y = ranking_data(args.n, noise=args.noise, seed=0)
    return x, y, ["tf", "idf"], f"ranking (n={args.n}, noise={args.noise}, seed 0; relevance = log(1 + tf)·idf)"


def run_compare_superposition(args: argparse.Namespace) -> int:
    from bayesstruct._validation import check_positive_int
    from bayesstruct.families.superposition import (MAX_ENUMERATED_TREES, NOT_FINITE_DETAIL, SuperpositionFamily,
                                                    SuperpositionGrammar, SuperpositionSamples, TreesLeftOutWarning,
                                                    _too_many_trees, sample_superpositions)

    check_output_paths(args, inputs={"--data": args.data}, out_files=SUPERPOSITION_OUT)
    _check_counts(args, "top")
    _mcmc_settings(args, args.inference)
    if args.inference == "mcmc" and args.all_trees:
        raise InvalidArgumentError("--all-trees applies to --inference enumerate (the sampler always moves over "
                                   "all trees); drop it")
    x, y, columns, data_label = _superposition_data(args)
    grammar = SuperpositionGrammar(x.shape[1], unary=parse_names(args.unary, "--unary", allow_empty=True),
                                   binary=parse_names(args.binary, "--binary", allow_empty=True),
                                   p_variable=args.p_variable, p_unary=args.p_unary,
                                   max_size=check_positive_int(args.max_size, "--max-size"))
    num_trees = grammar.count_trees()  # closed form, before any tree is built
    if args.inference == "enumerate" and num_trees > MAX_ENUMERATED_TREES:
        raise InvalidArgumentError(_too_many_trees(grammar, num_trees, MAX_ENUMERATED_TREES, "--max-size",
                                                   "bayesstruct.families.superposition.MAX_ENUMERATED_TREES",
                                                   "--inference mcmc"))
    noise = "known noise sd" if args.noise_scale is not None else "unknown noise (Normal-Gamma)"
    print(f"data: {data_label}; variables: " + ", ".join(f"x{i} = {c}" for i, c in enumerate(columns)))
    result: dict[str, Any]
    if args.inference == "enumerate":
        with warnings.catch_warnings():  # the left-out trees are reported below, on stdout and in the JSON
            warnings.simplefilter("ignore", TreesLeftOutWarning)
            family = SuperpositionFamily(grammar, distinct_on=None if args.all_trees else x,
                                         finite_on=x if args.all_trees else None, noise_scale=args.noise_scale,
                                         alpha=args.alpha, lam=args.lam, progress=not args.no_progress)
        left_out = {reason: len(trees) for reason, trees in family.left_out.items()}
        print(f"{len(family.structures())} {'trees' if args.all_trees else 'distinct models'} of at most "
              f"{grammar.max_size} vertices (of {num_trees} trees); {noise}")
        for reason, n in left_out.items():
            print(f"left out: {n} tree(s) {reason} ({NOT_FINITE_DETAIL}), e.g. {family.left_out[reason][0]}")
        table = _compare(family, x, y, args, methods="exact", structure_prior=family.structure_prior)
        print(table.to_string(max_rows=args.top))
        best, exact, chain, idata = table.best["tree"], table, None, None
        result = table.to_dict()
        result["left_out"] = left_out
    else:
        print(f"Metropolis-Hastings over trees of at most {grammar.max_size} vertices; {noise}: {args.chains} chain(s) "
              f"of {args.num_samples} draws after {args.warmup} warm-up moves, {args.temperatures} temperature(s)")
        runs = [sample_superpositions(x, y, grammar, num_samples=args.num_samples, warmup_steps=args.warmup,
                                      noise_scale=args.noise_scale, alpha=args.alpha, lam=args.lam, seed=args.seed + c,
                                      temperatures=args.temperatures, progress=not args.no_progress)
                for c in range(args.chains)]
        chain = SuperpositionSamples.concat(runs)
        ranked = chain.posterior()
        result, idata = _report_chains(runs, chain, "superposition", ("log_evidence", "size"), args,
                                       lambda c: str(c.map_tree))
        print(f"pooled: {len(chain.trees)} draws, {len(chain.log_evidence) + len(chain.not_finite)} trees proposed")
        for reason, n in chain.left_out.items():
            print(f"left out: {n} proposed tree(s) {reason} ({NOT_FINITE_DETAIL}; rejected), e.g. {chain.not_finite[0]}")
        for tree, p in list(ranked.items())[: args.top]:
            print(f"  {tree:32s} p ≈ {p:.3f}  log evidence {chain.log_evidence[tree]:9.3f}")
        best, exact = next(iter(ranked)), None
        result["posterior"] = [{"structure": {"tree": t}, "probability": p, "log_evidence": chain.log_evidence[t]}
                               for t, p in ranked.items()]
        result["left_out"] = chain.left_out
    result["variables"] = {f"x{i}": c for i, c in enumerate(columns)}
    print(f"most probable: {best}")
    write_results(result, args)
    if args.out is not None:
        _headless()
        from bayesstruct.plots import plot_superposition, plot_superposition_posterior

        written = [args.out / "results.json"]
        _save(plot_superposition(best, title=f"most probable superposition\n{best}"), args.out / "map_tree.png", written)
        _save(plot_superposition_posterior(exact, chain, top=args.top), args.out / "posterior.png", written)
        if idata is not None:
            _write_trace(idata, ("log_evidence", "size"), args.out, written)
        print(f"wrote {len(written)} files to {args.out}/")
    return 0


# ----------------------------------------------------------------------------- Bayesian networks
def _bayes_net_data(args: argparse.Namespace):
    import torch

    if args.data is not None:
        from bayesstruct.datasets import load_csv

        if not args.x_cols:
            raise InvalidArgumentError("--data needs --x COLUMN,COLUMN[,...] (the variables)")
        columns = parse_names(args.x_cols, "--x")
        if args.n is not None:
            raise InvalidArgumentError("--n sets the size of the embedded data set; with --data every row is used")
        x, _ = load_csv(args.data, columns)
        label = f"{args.data} ({len(columns)} variables, {x.shape[0]} rows)"
        true_dag = None
    else:
        from bayesstruct._validation import check_positive_int
        from bayesstruct.families.bayes_net import DAG, simulate_linear_gaussian

        if args.x_cols:
            raise InvalidArgumentError("--x names columns of a --data CSV file")
        true_dag = DAG(COLLIDER["dag"], num_variables=4)
        w = torch.zeros(4, 4, dtype=torch.float64)
        for (i, j), v in COLLIDER["weights"].items():
            w[i, j] = v
        n = 500 if args.n is None else check_positive_int(args.n, "--n")
        x = simulate_linear_gaussian(true_dag, n, weights=w, intercepts=list(COLLIDER["intercepts"]), noise_scale=1.0,
                                     seed=0)
        columns = [f"x{i}" for i in range(4)]
        label = f"collider (n={n}, seed 0; true DAG {true_dag})"
    if args.standardize:
        if x.shape[0] < 2:
            raise InvalidArgumentError(f"--standardize needs at least 2 rows to estimate a standard deviation; "
                                       f"got {x.shape[0]}")
        sd = x.std(0)
        if bool((sd == 0).any()):
            bad = [c for c, s in zip(columns, sd.tolist()) if s == 0]
            raise InvalidArgumentError(f"--standardize: column(s) {bad} are constant")
        x = (x - x.mean(0)) / sd
    return x, columns, label, true_dag


def _named(dag, columns: Sequence[str]) -> str:
    edges = sorted(dag.edges)
    return ", ".join(f"{columns[i]}->{columns[j]}" for i, j in edges) if edges else "empty"


def run_compare_bayes_net(args: argparse.Namespace) -> int:
    from bayesstruct.families.bayes_net import (
        MAX_ENUMERATED_VARIABLES,
        BayesianNetworkFamily,
        DAGSamples,
        StructureMCMC,
        dag_prior,
        edge_posterior,
    )

    check_output_paths(args, inputs={"--data": args.data}, out_files=BAYES_NET_OUT)
    _check_counts(args, "top")
    x, columns, data_label, true_dag = _bayes_net_data(args)
    d = x.shape[1]
    if d < 2:
        raise InvalidArgumentError(f"--x must name at least 2 variables for a network; got {columns}")
    inference = args.inference or ("enumerate" if d <= MAX_ENUMERATED_VARIABLES else "mcmc")
    _mcmc_settings(args, inference)
    if inference == "enumerate" and d > MAX_ENUMERATED_VARIABLES:
        raise InvalidArgumentError(f"--inference enumerate lists every DAG, which stops at {MAX_ENUMERATED_VARIABLES} "
                                   f"variables; there are {d}: use --inference mcmc")
    family = BayesianNetworkFamily(d, alpha=args.alpha, noise_scale=args.noise_scale, noise=args.noise,
                                   max_parents=args.max_parents)
    if args.rho is not None and args.prior != "sparsity":
        raise InvalidArgumentError(f"--rho is the edge parameter of --prior sparsity; the prior is {args.prior!r}")
    rho = 0.2 if args.rho is None else args.rho
    prior = dag_prior(args.prior, rho=rho)
    print(f"data: {data_label}; variables: " + ", ".join(f"{i} = {c}" for i, c in enumerate(columns)))
    print(f"{family}; prior over DAGs: {args.prior}" + (f" (rho = {rho})" if args.prior == "sparsity" else ""))
    result: dict[str, Any]
    if inference == "enumerate":
        table = _compare(family, x, None, args, methods="exact", structure_prior=prior)
        print(table.to_string(max_rows=args.top))
        ranked = [(r.structure["dag"], r.posterior_probability) for r in table.rows]
        P, graphs, result, idata = edge_posterior(table), table, table.to_dict(), None
    else:
        print(f"structure MCMC: {args.chains} chain(s) of {args.num_samples} draws after {args.warmup} warm-up steps, "
              f"{args.temperatures} temperature(s)")
        runs = [StructureMCMC(family, x, prior=prior, seed=args.seed + c, temperatures=args.temperatures).run(
            args.num_samples, warmup=args.warmup, progress=not args.no_progress) for c in range(args.chains)]
        samples = DAGSamples.concat(runs)
        ranked = list(samples.posterior_probabilities().items())
        P, graphs = edge_posterior(samples), samples
        result, idata = _report_chains(runs, samples, family.name, ("log_score", "num_edges"), args,
                                       lambda c: _named(next(iter(c.posterior_probabilities())), columns))
        print(f"pooled: {len(samples.dags)} draws, {len(ranked)} distinct DAGs visited")
        result["posterior"] = [{"structure": {"dag": str(g)}, "probability": p} for g, p in ranked]
        if len(samples.dags) >= 40:
            result["edge_posterior_stderr"] = samples.edge_posterior_stderr().tolist()
    print("most probable DAGs:")
    for k, (g, p) in enumerate(ranked[: args.top]):
        mark = "  <- true" if true_dag is not None and g == true_dag else ""
        print(f"  #{k + 1}  p = {p:.3f}  {_named(g, columns)}{mark}")
    width = max(len(c) for c in columns)
    print("p(i -> j | D), rows = parent i, columns = child j:")
    print("  " + " " * width + "  " + "  ".join(c.rjust(6) for c in columns))
    for i, c in enumerate(columns):
        cells = ["     -" if i == j else f"{float(P[i, j]):6.3f}" for j in range(d)]
        print(f"  {c.rjust(width)}  " + "  ".join(cells))
    result["variables"] = list(columns)
    result["edge_posterior"] = P.tolist()
    write_results(result, args)
    if args.out is not None:
        _headless()
        from bayesstruct.plots import plot_edge_posterior, plot_top_dags

        written = [args.out / "results.json"]
        _save(plot_edge_posterior(P, true_dag=true_dag, variable_names=columns), args.out / "edge_posterior.png",
              written)
        _save(plot_top_dags(graphs, min(4, len(ranked)), true_dag=true_dag, variable_names=columns),
              args.out / "top_dags.png", written)
        if idata is not None:
            _write_trace(idata, ("log_score", "num_edges"), args.out, written)
        print(f"wrote {len(written)} files to {args.out}/")
    return 0

