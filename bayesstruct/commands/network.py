"""``bayesstruct fit network``: the posterior over the structure of a network family.

    bayesstruct fit network [--family one-layer|conv] [--primitives linear,linear_sigmoid] [--hidden H]
                            [--dataset digits | --dataset mnist:PATH | --data F.csv --target COL]
                            [--task classification|regression] [--num-samples N]
                            [--prior dirichlet|gumbel-softmax] [--temperature T]
                            [--restriction simplex_interior|simplex_vertices|cube_interior|cube_vertices]
                            [--weight-precision A|learn|gamma:a,b] [--num-steps N] [--lr LR] [--jit]
                            [--elbo trace|meanfield] [--pack-weights]
                            [--refit-steps N] [--seed S]
                            [--smoke] [--no-progress] [--out DIR] [--json PATH]

Interior restrictions (``simplex_interior``, ``cube_interior``) fit weights and the relaxed
structure :math:`\\Gamma` jointly by SVI (:func:`~bayesstruct.families.network.fit_structure_posterior`);
``"elbo"`` in the JSON is the final ELBO, a lower bound of the family's log evidence.

``simplex_vertices`` makes :math:`\\Gamma` discrete (one primitive per edge, uniform prior):
SVI does not apply, so every discrete structure's log evidence is computed
(``--evidence-method``, Laplace by default) and the posterior over structures is
:math:`p(s \\mid D) \\propto p(D \\mid s)`; ``"elbo"`` is then the family's log evidence
:math:`\\log \\frac{1}{S}\\sum_s p(D \\mid s)` (an estimate, not a bound) and
``posterior_mean_gamma`` is :math:`\\sum_s p(s \\mid D)\\, \\gamma_s`. ``cube_vertices`` (any
subset of the primitives switched on) is refused with an explanation: such a structure
is not one primitive per edge, so it has no discrete network of its own here.

JSON (``--json PATH``, and ``DIR/results.json`` with ``--out DIR``)::

    {"elbo": float,
     "edges": [{"edge": [j, k], "primitives": [...], "posterior_mean_gamma": [...]}, ...],
     "discrete_structure": {"choice": {"0->1": name, ...}, "edges_in_use": [[j, k], ...],
                            "train_accuracy" | "train_rmse": float},
     "criteria": {"num_params": int, "num_vertices": int, "num_edges": int, "flops": int, "latency_ms": float},
     ...}
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any

from bayesstruct.commands import add_output_arguments, check_output_paths, check_ranges, save_torch, write_results
from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError

__all__ = ["add_parser", "add_data_arguments", "check_data_args", "run_fit_network"]

FAMILIES = ("one-layer", "conv")
DEFAULT_PRIMITIVES = {"one-layer": "linear,linear_sigmoid", "conv": "conv3x3,avgpool3x3"}
RESTRICTIONS = ("simplex_interior", "simplex_vertices", "cube_interior", "cube_vertices")
PRIORS = ("gumbel-softmax", "dirichlet")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``fit`` (a parent command, shared with other ``fit`` targets) and ``fit network``."""
    fit = subparsers.choices.get("fit")
    if fit is None:
        fit = subparsers.add_parser("fit", help="fit a structure family's posterior")
        fit._bayesstruct_targets = fit.add_subparsers(dest="target", required=True, metavar="TARGET")
    p = fit._bayesstruct_targets.add_parser(
        "network", help="SVI posterior over the primitives on a network's edges (the lecture's examples)",
        description="Fit the posterior over the structure Γ of a network family (weights and Γ as Pyro latents).")
    fam = p.add_argument_group("family")
    fam.add_argument("--family", default="one-layer", choices=FAMILIES,
                     help="one-layer: f = softmax(w^T <γ, g>(x)); conv: convolution vs pooling, then a "
                          "generalised-linear output (default one-layer)")
    fam.add_argument("--primitives", default=None,
                     help="comma-separated primitives on edge 0->1 (default: linear,linear_sigmoid for one-layer, "
                          "conv3x3,avgpool3x3 for conv)")
    fam.add_argument("--hidden", type=int, default=32, help="width of the one-layer hidden vertex (default 32)")
    fam.add_argument("--channels", type=int, default=None, help="channels of the conv feature map (default: input channels)")
    fam.add_argument("--image-shape", default=None,
                     help="C,H,W of the images for --family conv with --data (digits: 1,8,8; MNIST: 1,28,28)")
    add_data_arguments(p)
    prior = p.add_argument_group("structure prior")
    prior.add_argument("--prior", default="gumbel-softmax", choices=PRIORS,
                       help="relaxed family of the interior restrictions (default gumbel-softmax)")
    prior.add_argument("--temperature", type=float, default=1.0, help="λ_temp > 0 of the relaxed prior (default 1)")
    prior.add_argument("--restriction", default="simplex_interior", choices=RESTRICTIONS,
                       help="where Γ lives (default simplex_interior); simplex_vertices compares the discrete "
                            "structures by evidence")
    prior.add_argument("--weight-precision", default="1.0",
                       help="α of the weight prior N(0, 1/α): a number, 'learn' (type-II ML) or 'gamma:a,b' "
                            "(a Gamma(a, b) prior) (default 1.0)")
    inf = p.add_argument_group("inference")
    inf.add_argument("--num-steps", type=int, default=1000, help="SVI steps (default 1000)")
    inf.add_argument("--lr", type=float, default=0.02, help="Adam learning rate (default 0.02)")
    inf.add_argument("--refit-steps", type=int, default=200,
                     help="Adam steps of a MAP refit of the discrete structure's weights, started from the "
                          "posterior means (the relaxed fit trains the primitives as a mixture); 0: none (default 200)")
    inf.add_argument("--jit", action="store_true",
                     help="compile the ELBO with pyro.infer.JitTrace_ELBO (about 2x faster steps for small networks)")
    inf.add_argument("--elbo", default="trace", choices=["trace", "meanfield"],
                     help="ELBO estimator: trace (Monte Carlo) or meanfield (the weights' KL in closed form, "
                          "less variance; default trace)")
    inf.add_argument("--pack-weights", action="store_true",
                     help="all weights in one Pyro sample site 'weights' (the same model; fewer operations per "
                          "SVI step, faster for small networks)")
    inf.add_argument("--evidence-method", default="laplace",
                     help="estimator of each discrete structure's evidence for simplex_vertices (default laplace)")
    inf.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    inf.add_argument("--smoke", action="store_true",
                     help="a quick check: it caps --num-samples at 200, --num-steps at 30 and --refit-steps at 20")
    add_output_arguments(p, "directory for results.json and network.pt")
    p.set_defaults(run=run_fit_network)
    return p


def add_data_arguments(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The data flags shared by ``fit network`` and ``search`` (read by :func:`_load`)."""
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default=None,
                      help='"digits" (scikit-learn 8x8, default) or "mnist:PATH" (directory of the IDX .gz files)')
    data.add_argument("--data", type=Path, default=None, help="CSV file with a header row (instead of --dataset)")
    data.add_argument("--target", default=None, help="CSV column of the target (the other columns are the features)")
    data.add_argument("--task", default="classification", choices=["classification", "regression"],
                      help="likelihood: softmax classification or Gaussian regression (default classification)")
    data.add_argument("--num-samples", type=int, default=None,
                      help="random subset of the data set (default: all of digits, 2000 MNIST images)")
    data.add_argument("--noise-scale", type=float, default=1.0, help="σ of the regression likelihood (default 1)")
    return data


# --------------------------------------------------------------------------------------
# argument checks (each error names its flag)
# --------------------------------------------------------------------------------------


def check_primitives(args: argparse.Namespace) -> None:
    """``--primitives``, when given, names at least one primitive and none twice."""
    if args.primitives is None:
        return
    names = [n.strip() for n in args.primitives.split(",")]
    if not any(names) or not all(names):
        raise InvalidArgumentError(f"--primitives must be comma-separated primitive names, e.g. "
                                   f"{DEFAULT_PRIMITIVES['one-layer']}; got {args.primitives!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidArgumentError(f"--primitives names {repeated} more than once; each primitive is one option of the "
                                   "edge (a repeat would be a mixture of identical functions)")


def check_data_args(args: argparse.Namespace) -> None:
    """The data flags of :func:`add_data_arguments` fit together (each error names its flag)."""
    check_ranges(("--noise-scale", args.noise_scale, 0, True), ("--num-samples", args.num_samples, 1, False))
    if args.data is not None and args.dataset is not None:
        raise InvalidArgumentError("give either --dataset or --data, not both")
    if args.data is None and args.target is not None:
        raise InvalidArgumentError("--target applies to --data PATH.csv only")
    if args.data is not None and not args.target:
        raise InvalidArgumentError("--data needs --target COLUMN (the other columns are the features)")
    if args.data is None and args.task == "regression":
        raise InvalidArgumentError("--task regression needs --data PATH.csv with a numeric --target; "
                                   "the image data sets are classification")


def _check_args(args: argparse.Namespace) -> None:
    check_ranges(("--temperature", args.temperature, 0, True), ("--lr", args.lr, 0, True),
                 ("--num-steps", args.num_steps, 1, False), ("--refit-steps", args.refit_steps, 0, False),
                 ("--hidden", args.hidden, 1, False), ("--channels", args.channels, 1, False))
    check_primitives(args)
    check_data_args(args)
    check_output_paths(args, inputs={"--data": args.data}, out_files=("results.json", "network.pt"))
    if args.restriction == "cube_vertices":
        raise InvalidArgumentError(
            "--restriction cube_vertices switches any subset of an edge's primitives on; such a γ is not one "
            "primitive per edge, so it has no discrete structure to compare here. Use cube_interior (SVI over "
            "the relaxed cube) or simplex_vertices (evidence of every one-primitive-per-edge structure)")


def _parse_weight_precision(text: str):
    import pyro.distributions as dist

    t = str(text).strip().lower()
    if t == "learn":
        return "learn"
    if t.startswith("gamma:"):
        try:
            a, b = (float(v) for v in t[len("gamma:"):].split(","))
        except ValueError:
            raise InvalidArgumentError(f"--weight-precision gamma:a,b needs two numbers; got {text!r}") from None
        if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
            raise InvalidArgumentError(f"--weight-precision gamma:a,b needs a, b > 0; got {text!r}")
        return dist.Gamma(a, b)
    try:
        v = float(t)
    except ValueError:
        raise InvalidArgumentError(
            f"--weight-precision must be a number > 0, 'learn' or 'gamma:a,b'; got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise InvalidArgumentError(f"--weight-precision must be > 0; got {text!r}")
    return v


def _parse_image_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or any(s < 1 for s in shape):
        raise InvalidArgumentError(f"--image-shape must be C,H,W (three positive integers); got {text!r}")
    return shape


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


def _read_csv(path: Path, target: str, task: str):
    import torch

    if not path.is_file():
        raise InvalidArgumentError(f"--data: no such file {str(path)!r}")
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise InvalidArgumentError(f"--data: {str(path)!r} is empty; it needs a header row")
        header = [h.strip() for h in header]
        if target not in header:
            raise UnknownNameError(f"--target column {target!r} is not in {str(path)!r}; its columns are {header}")
        if len(header) < 2:
            raise InvalidArgumentError(f"--data: {str(path)!r} needs feature columns besides --target {target!r}")
        t = header.index(target)
        rows = []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                values = [float(v) for v in row]
            except ValueError:
                raise InvalidArgumentError(f"--data: {path}:{lineno} holds a non-number: {row}") from None
            if len(values) != len(header):
                raise InvalidArgumentError(f"--data: {path}:{lineno} has {len(values)} fields; the header has {len(header)}")
            rows.append(values)
    if not rows:
        raise InvalidArgumentError(f"--data: {str(path)!r} has no data rows")
    table = torch.tensor(rows, dtype=torch.get_default_dtype())
    if not torch.isfinite(table).all():
        raise InvalidArgumentError(f"--data: {str(path)!r} contains NaN or infinite values; remove or impute them")
    y = table[:, t]
    x = torch.cat([table[:, :t], table[:, t + 1:]], 1)
    if task == "classification":
        if not torch.equal(y, y.round()) or (y < 0).any():
            raise InvalidArgumentError(
                f"--target {target!r} must hold class labels 0..C-1 for --task classification; "
                "use --task regression for a real-valued target")
        y = y.long()
    return x, y, f"{path} (target {target!r})"


def _load(args: argparse.Namespace):
    from bayesstruct._validation import check_seed
    from bayesstruct.datasets import load_dataset

    if args.data is not None:
        return _read_csv(args.data, args.target, args.task)
    spec = args.dataset or "digits"
    num = args.num_samples
    if num is None and spec.strip().lower().startswith("mnist"):
        num = 2000
    if args.smoke:
        num = min(num or 10**9, 200)
    seed = check_seed(args.seed)  # its own flag's error, not one prefixed by --dataset
    try:
        x, y = load_dataset(spec, num_samples=num, seed=seed)
    except (InvalidArgumentError, UnknownNameError) as exc:
        raise type(exc)(f"--dataset: {exc}") from None
    return x, y, f"{spec} ({x.shape[0]} samples)"


def _graph(args: argparse.Namespace, x, y):
    from bayesstruct.families.examples import conv_graph, one_layer_graph

    primitives = args.primitives or DEFAULT_PRIMITIVES[args.family]
    num_out = int(y.max()) + 1 if args.task == "classification" else 1
    if args.task == "classification" and args.dataset is None and args.data is None:
        num_out = 10
    try:
        if args.family == "one-layer":
            return one_layer_graph(x[0].numel(), num_out, hidden=args.hidden, primitives=primitives)
        shape = _parse_image_shape(args.image_shape)
        if shape is None:
            side = math.isqrt(x.shape[1])
            if args.data is not None or side * side != x.shape[1]:
                raise InvalidArgumentError("--family conv with --data needs --image-shape C,H,W")
            shape = (1, side, side)
        if math.prod(shape) != x.shape[1]:
            raise InvalidArgumentError(f"--image-shape {shape} has {math.prod(shape)} pixels; the data has {x.shape[1]} features")
        return conv_graph(shape, num_out, channels=args.channels, primitives=primitives)
    except UnknownNameError as exc:
        raise UnknownNameError(f"--primitives: {exc}") from None
    except InvalidArgumentError as exc:
        if str(exc).startswith("--"):
            raise
        raise InvalidArgumentError(f"--primitives/--family: {exc}") from None


# --------------------------------------------------------------------------------------
# the two fits
# --------------------------------------------------------------------------------------


def _edge_str(e) -> str:
    return f"{e[0]}->{e[1]}"


def _svi(args, graph, x, y, weight_precision):
    from bayesstruct.families.network import fit_structure_posterior

    steps = min(args.num_steps, 30) if args.smoke else args.num_steps
    post = fit_structure_posterior(
        graph, x, y, num_steps=steps, lr=args.lr, temperature=args.temperature, seed=args.seed,
        progress=not args.no_progress, restriction=args.restriction, prior_kind=args.prior,
        weight_precision=weight_precision, task=args.task, noise_scale=args.noise_scale,
        num_elbo_particles=16 if args.smoke else 64, num_gamma_samples=200 if args.smoke else 1000, jit=args.jit,
        elbo=args.elbo, pack_weights=args.pack_weights)
    extra = {"method": "svi", "elbo_estimator": args.elbo, "pack_weights": args.pack_weights, "num_steps": steps,
             "weight_precision": post.weight_precision,
             "weight_precision_mode": post.weight_precision_mode}
    net = post.discretize(refit=(x, y), refit_steps=_refit_steps(args), lr=args.lr, progress=not args.no_progress)
    return post.elbo, post.posterior_mean_gamma, net, extra


def _vertices(args, graph, x, y, weight_precision):
    import numpy as np
    import torch

    from bayesstruct.compare import compare
    from bayesstruct.exceptions import BayesStructError
    from bayesstruct.families.network import NetworkFamily, refit_discrete
    from bayesstruct.nn import StructureNetwork

    family = NetworkFamily(graph, weight_precision=weight_precision, task=args.task, noise_scale=args.noise_scale,
                           pack_weights=args.pack_weights)
    try:
        table = compare(family, x.reshape(x.shape[0], -1), y, methods=[args.evidence_method], workers=1,
                        seed=args.seed, progress=not args.no_progress)
    except UnknownNameError as exc:
        raise UnknownNameError(f"--evidence-method: {exc}") from None
    except BayesStructError as exc:
        raise InvalidArgumentError(
            f"--evidence-method {args.evidence_method}: {exc}. Neural-network posteriors are often far from "
            "Gaussian: try --evidence-method elbo, a smaller --hidden, or an interior --restriction (SVI)") from None
    method = table.reference_method
    log_z = np.array([r.estimates[method].log_evidence for r in table.rows])
    family_log_z = float(np.logaddexp.reduce(log_z) - math.log(len(log_z)))
    mean_gamma = {e: torch.zeros(graph.num_primitives(e)) for e in graph.edge_list}
    for r in table.rows:
        for e, g in family.gamma(r.structure).items():
            mean_gamma[e] = mean_gamma[e] + r.posterior_probability * g
    best = table.rows[0].structure
    # the best structure's network, its weights fitted by MAP (``--refit-steps``) from PyTorch's initialisation
    net = StructureNetwork(graph)
    extra = {"method": f"evidence ({method}) of each discrete structure",
             "family_log_evidence": family_log_z,
             "structures": [{"choice": {k: v for k, v in r.structure.items()},
                             "log_evidence": r.estimates[method].log_evidence,
                             "posterior_probability": r.posterior_probability} for r in table.rows]}
    extra["weight_precision"] = (table.rows[0].hyperparameters.get("weight_precision")
                                 if family.weight_precision_mode != "prior" else None)
    net = net.discretize(family.gamma(best)).to(x.dtype)
    alpha = extra["weight_precision"]
    if not isinstance(alpha, float):  # Gamma prior: its prior mean
        alpha = float(weight_precision.mean) if hasattr(weight_precision, "mean") else 1.0
    refit_discrete(net, x, y, num_steps=_refit_steps(args), lr=args.lr, task=args.task, noise_scale=args.noise_scale,
                   weight_precision=alpha, progress=not args.no_progress)
    return family_log_z, mean_gamma, net, extra


def _refit_steps(args: argparse.Namespace) -> int:
    return min(args.refit_steps, 20) if args.smoke else args.refit_steps


def run_fit_network(args: argparse.Namespace) -> int:
    import torch

    from bayesstruct.nn import operational_criteria

    _check_args(args)
    weight_precision = _parse_weight_precision(args.weight_precision)
    torch.manual_seed(args.seed)
    x, y, label = _load(args)
    graph = _graph(args, x, y)
    if args.family == "conv" and x.dim() == 2:
        x = x.reshape((x.shape[0],) + graph.input_shape)
    if args.restriction == "simplex_vertices":
        elbo, mean_gamma, net, extra = _vertices(args, graph, x, y, weight_precision)
    else:
        elbo, mean_gamma, net, extra = _svi(args, graph, x, y, weight_precision)
    net = net.to(x.dtype)
    with torch.no_grad():
        out = net(x)
    fit_stat = ({"train_accuracy": float((out.argmax(-1) == y).double().mean())} if args.task == "classification"
                else {"train_rmse": float((out[..., 0] - y).pow(2).mean().sqrt())})
    criteria = operational_criteria(net, graph.input_shape)
    result: dict[str, Any] = {
        "elbo": float(elbo),
        "edges": [{"edge": [int(e[0]), int(e[1])], "primitives": list(graph.edges[e]),
                   "posterior_mean_gamma": [float(v) for v in mean_gamma[e].tolist()]} for e in graph.edge_list],
        "discrete_structure": {"choice": {_edge_str(e): n for e, n in net.choice.items()},
                               "edges_in_use": [[int(j), int(k)] for j, k in net.edges_in_use()],
                               "refit_steps": _refit_steps(args),
                               **fit_stat},
        "criteria": {"num_params": int(criteria.num_params), "num_vertices": int(criteria.num_vertices),
                     "num_edges": int(criteria.num_edges), "flops": int(criteria.flops),
                     "latency_ms": float(criteria.latency_ms)},
        "family": args.family, "data": label, "task": args.task, "restriction": args.restriction,
        "prior": args.prior, "temperature": args.temperature, "seed": args.seed, **extra,
    }
    print(f"data: {label}; family: {args.family}; restriction: {args.restriction}")
    for item in result["edges"]:
        gam = ", ".join(f"{n}={v:.3f}" for n, v in zip(item["primitives"], item["posterior_mean_gamma"]))
        print(f"  edge {item['edge'][0]}->{item['edge'][1]}: E[γ] = [{gam}]")
    print(f"{'ELBO' if args.restriction != 'simplex_vertices' else 'family log evidence'}: {result['elbo']:.3f}")
    print("discrete structure:", ", ".join(f"{k}: {v}" for k, v in result["discrete_structure"]["choice"].items()),
          "; " + ", ".join(f"{k} {v:.3f}" for k, v in fit_stat.items()))
    print("criteria:", criteria)
    write_results(result, args)
    if args.out is not None:
        save_torch(net, args.out / "network.pt")
        print(f"wrote 2 files to {args.out}/")
    return 0
