r"""``bayesstruct dbn``: learn the structure of a deep belief net on images by MCMC, resumably.

Runs :class:`~bayesstruct.families.belief_net.BeliefNetSampler` (a nonlinear Gaussian
belief net with a cascading-IBP prior on its structure; Adams, Wallach & Ghahramani 2010)
on scikit-learn's 8x8 digits or an MNIST subset, and reports the posterior over the depth,
the width of each hidden layer, the number of edges and the CIBP parameters α, β.

Every sweep's statistics are recorded. With ``--checkpoint FILE`` the sampler state (RNG
included) and the statistics so far are written to ``FILE`` every ``--checkpoint-every``
sweeps and at the end, atomically (:mod:`bayesstruct.families.checkpoint`); ``--resume``
continues from ``FILE``, so a chain killed at any moment (even by SIGKILL) and resumed
ends in the same state, with the same statistics, as an uninterrupted chain with the same
seed. A missing or corrupt checkpoint, or one written with other settings, stops the run
with exit code 2 before anything is written; a checkpoint is never overwritten by a run
that did not resume from it.

``--chains C`` runs C independent chains (seeds ``SEED .. SEED+C-1``, swept in turn and
checkpointed together), so that ArviZ's R-hat is defined. The ``--json`` file holds
:func:`~bayesstruct.families.belief_net_report.posterior_summary`: keys ``depth``,
``width_per_layer`` (one entry per hidden layer), ``num_edges``, ``alpha``, ``beta``, each
with ``mean``, ``sd``, ``samples`` (all chains, one after the other), ``num_chains``,
``r_hat`` (null for one chain), ``ess_bulk`` and ``ess_tail``.

Examples
--------
::

    bayesstruct dbn --dataset digits --num-images 300 --num-samples 200 --warmup 100 \
        --checkpoint dbn.ckpt --json dbn.json --out dbn_out
    bayesstruct dbn --dataset digits --num-images 300 --num-samples 200 --warmup 100 \
        --checkpoint dbn.ckpt --resume --json dbn.json        # after an interruption
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from bayesstruct.commands import add_output_arguments, check_output_paths, check_writable
from bayesstruct.exceptions import InvalidArgumentError

__all__ = ["add_parser", "run_dbn"]

#: settings that define the chain: a resumed run must use the checkpoint's values
_CHAIN_FLAGS = {  # meta key -> (flag, default of a fresh run)
    "dataset": ("--dataset", "digits"),
    "num_images": ("--num-images", None),
    "seed": ("--seed", 0),
    "chains": ("--chains", 1),
    "alpha": ("--alpha", 1.0),
    "beta": ("--beta", 1.0),
    "fix_alpha_beta": ("--fix-alpha-beta", False),
    "max_depth": ("--max-depth", 32),
    "max_width": ("--max-width", 256),
}
_OUT_FILES = ("results.json", "posterior.nc", "trace.png", "structure_posterior.png", "fantasies.png",
              "structure.png")  # what --out DIR gets
_SMOKE = {"num_images": 100, "num_samples": 20, "warmup": 10}
_DEFAULTS = {"num_samples": 200, "warmup": 100}
_STATS = ("depth", "num_edges", "alpha", "beta", "log_joint")
_KIND = "bayesstruct dbn"
_PRINT_LAYERS = 6


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "dbn", help="learn a deep belief net's structure (cascading IBP) by MCMC on digits or MNIST",
        description="MCMC over the structure, weights and activations of a nonlinear Gaussian belief net with a "
                    "cascading-IBP prior (Adams, Wallach & Ghahramani 2010), with resumable checkpoints.")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default=None,
                      help="'digits' (scikit-learn's 8x8 digits, default) or 'mnist:PATH' (directory of the MNIST "
                           "IDX .gz files; never downloads)")
    data.add_argument("--num-images", type=int, default=None,
                      help="use a random subset of this many images (drawn with seed 0; default all)")
    model = p.add_argument_group("model")
    model.add_argument("--alpha", type=float, default=None, help="initial CIBP width parameter α > 0 (default 1)")
    model.add_argument("--beta", type=float, default=None, help="initial CIBP sparsity parameter β > 0 (default 1)")
    model.add_argument("--fix-alpha-beta", action="store_const", const=True, default=None,
                       help="keep α, β fixed at --alpha/--beta instead of sampling them")
    model.add_argument("--max-depth", type=int, default=None, help="at most this many hidden layers (default 32)")
    model.add_argument("--max-width", type=int, default=None, help="at most this many units per layer (default 256)")
    inf = p.add_argument_group("inference")
    inf.add_argument("--num-samples", type=int, default=None, help="recorded sweeps after warm-up (default 200)")
    inf.add_argument("--warmup", type=int, default=None, help="warm-up sweeps, not reported (default 100)")
    inf.add_argument("--thin", type=int, default=1, help="record every THIN-th sweep after warm-up (default 1)")
    inf.add_argument("--seed", type=int, default=None, help="random seed of the (first) chain (default 0)")
    inf.add_argument("--chains", type=int, default=None,
                     help="independent chains, seeds SEED, SEED+1, ... (default 1; >= 2 gives R-hat)")
    inf.add_argument("--smoke", action="store_true",
                     help=f"quick check: defaults --num-images {_SMOKE['num_images']} --num-samples "
                          f"{_SMOKE['num_samples']} --warmup {_SMOKE['warmup']} (with --resume, --num-images comes "
                          "from the checkpoint)")
    ck = p.add_argument_group("checkpointing")
    ck.add_argument("--checkpoint", type=Path, default=None, help="checkpoint file (written atomically)")
    ck.add_argument("--checkpoint-every", type=int, default=10, help="sweeps between checkpoints (default 10)")
    ck.add_argument("--resume", action="store_true", help="continue the chain saved in --checkpoint")
    add_output_arguments(p, "directory for results.json, posterior.nc and the figures (trace, structure posterior, "
                            "fantasies, structure)", json_help="write the posterior summary as JSON to this path")
    p.set_defaults(run=run_dbn)
    return p


# -- argument checks ----------------------------------------------------------------------------
def _check_int(value: int | None, flag: str, minimum: int) -> None:
    if value is not None and value < minimum:
        raise InvalidArgumentError(f"{flag} must be an integer >= {minimum}; got {value}")


def _check_args(args: argparse.Namespace) -> None:
    _check_int(args.num_samples, "--num-samples", 1)
    _check_int(args.warmup, "--warmup", 0)
    _check_int(args.thin, "--thin", 1)
    _check_int(args.num_images, "--num-images", 1)
    _check_int(args.checkpoint_every, "--checkpoint-every", 1)
    _check_int(args.max_depth, "--max-depth", 1)
    _check_int(args.max_width, "--max-width", 1)
    _check_int(args.chains, "--chains", 1)
    _check_int(args.seed, "--seed", 0)
    for flag, v in (("--alpha", args.alpha), ("--beta", args.beta)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise InvalidArgumentError(f"{flag} must be a finite number > 0; got {v}")
    if args.resume and args.checkpoint is None:
        raise InvalidArgumentError("--resume needs --checkpoint FILE (the checkpoint to continue)")
    if args.checkpoint is not None:
        if args.checkpoint.is_dir():
            raise InvalidArgumentError(f"--checkpoint {str(args.checkpoint)!r} is a directory; give a file name")
        if not args.checkpoint.parent.is_dir():
            raise InvalidArgumentError(f"--checkpoint: directory {str(args.checkpoint.parent)!r} does not exist")
        if not args.resume and args.checkpoint.exists():
            raise InvalidArgumentError(
                f"--checkpoint {str(args.checkpoint)!r} already exists; pass --resume to continue that chain, or "
                "remove the file / choose another path to start a new one (it is never overwritten silently)")
        if args.resume and not args.checkpoint.is_file():
            raise InvalidArgumentError(f"--resume: checkpoint {str(args.checkpoint)!r} does not exist")
    check_output_paths(args, inputs={"--checkpoint": args.checkpoint}, out_files=_OUT_FILES)
    if args.checkpoint is not None:
        check_writable("--checkpoint", args.checkpoint.parent)


def _chain_settings(args: argparse.Namespace, meta: dict | None) -> dict[str, Any]:
    """The chain-defining settings: flags, else the checkpoint's values (resume), else defaults."""
    out = {}
    for key, (flag, default) in _CHAIN_FLAGS.items():
        given = getattr(args, key)
        if meta is None:
            out[key] = default if given is None else given
            continue
        saved = meta.get(key)
        if given is not None and given != saved:
            raise InvalidArgumentError(
                f"{flag} {given!r} differs from the value {saved!r} the checkpoint {str(args.checkpoint)!r} was "
                f"started with; drop {flag} (resume uses the checkpoint's) or start a new chain")
        out[key] = saved
    return out


# -- the run ------------------------------------------------------------------------------------
def _load_images(dataset: str, num_images: int | None):
    import torch

    from bayesstruct.datasets import load_dataset

    try:
        images, _ = load_dataset(dataset, num_samples=num_images, seed=0)
    except InvalidArgumentError as exc:  # name the flag, not load_dataset's argument
        raise InvalidArgumentError(str(exc).replace("`num_samples`", "--num-images")) from None
    images = images.reshape(images.shape[0], -1).to(torch.float64)  # load_dataset scales to [0, 1]
    return images


def _empty_history() -> dict[str, list]:
    return {**{k: [] for k in _STATS}, "widths": []}


def _history_to_store(h: dict[str, list]) -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {k: np.asarray(h[k], dtype=np.int64 if k in ("depth", "num_edges") else np.float64)
                           for k in _STATS}
    out["widths"] = [list(w) for w in h["widths"]]
    return out


def _history_from_store(h: Any, path: Path) -> dict[str, list]:
    try:
        out = {k: [v.item() for v in h[k]] for k in _STATS}
        out["widths"] = [[int(k) for k in w] for w in h["widths"]]
    except (KeyError, TypeError, AttributeError, ValueError):
        raise InvalidArgumentError(f"--checkpoint {str(path)!r} is corrupt: its history of sweeps is unreadable") \
            from None
    if len({len(v) for v in out.values()}) != 1:
        raise InvalidArgumentError(f"--checkpoint {str(path)!r} is corrupt: its history columns differ in length")
    return out


def _save(path: Path, samplers: list, histories: list[dict[str, list]], meta: dict) -> None:
    from bayesstruct.families.checkpoint import save_checkpoint

    save_checkpoint(path, {"chains": [s.state_dict() for s in samplers]}, [_history_to_store(h) for h in histories],
                    meta)


def _start(args: argparse.Namespace):
    """(samplers, histories, settings, images) of new chains or of the ones in --checkpoint.

    Chain c uses seed ``seed + c``.
    """
    from bayesstruct.families.belief_net import BeliefNetSampler

    if not args.resume:
        settings = _chain_settings(args, None)
        images = _load_images(settings["dataset"], settings["num_images"])
        samplers = [BeliefNetSampler(images, alpha=settings["alpha"], beta=settings["beta"],
                                     learn_alpha_beta=not settings["fix_alpha_beta"], seed=settings["seed"] + c,
                                     max_depth=settings["max_depth"], max_width=settings["max_width"])
                    for c in range(settings["chains"])]
        return samplers, [_empty_history() for _ in samplers], settings, images
    from bayesstruct.families.checkpoint import load_checkpoint

    path = args.checkpoint
    ck = load_checkpoint(path)  # CheckpointError (exit 2) names the file
    if not isinstance(ck.meta, dict) or ck.meta.get("kind") != _KIND:
        raise InvalidArgumentError(f"--checkpoint {str(path)!r} was not written by `{_KIND}`")
    settings = _chain_settings(args, ck.meta)
    states = ck.sampler_state.get("chains") if isinstance(ck.sampler_state, dict) else None
    if not isinstance(states, list) or not isinstance(ck.history, list) \
            or not len(states) == len(ck.history) == settings["chains"]:
        raise InvalidArgumentError(f"--checkpoint {str(path)!r} is corrupt: it should hold {settings['chains']} "
                                   "chain state(s) and as many histories")
    histories = [_history_from_store(h, path) for h in ck.history]
    images = _load_images(settings["dataset"], settings["num_images"])
    samplers = []
    for c, (state, history) in enumerate(zip(states, histories)):
        try:
            sampler = BeliefNetSampler.from_state_dict(images, state)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"--checkpoint {str(path)!r} cannot be resumed (chain {c}): {exc}") from None
        if sampler.num_sweeps != len(history["depth"]) or len(history["depth"]) != len(histories[0]["depth"]):
            raise InvalidArgumentError(f"--checkpoint {str(path)!r} is corrupt: chain {c} made {sampler.num_sweeps} "
                                       f"sweeps but {len(history['depth'])} are recorded")
        samplers.append(sampler)
    return samplers, histories, settings, images


def _kept(history: dict[str, list], warmup: int, thin: int, num_samples: int) -> dict[str, Any]:
    """Columns of the recorded sweeps (after warm-up, every ``thin``-th)."""
    idx = slice(warmup + thin - 1, warmup + num_samples * thin, thin)
    return {k: v[idx] for k, v in history.items()}


def run_dbn(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from bayesstruct.families.belief_net_report import posterior_summary, to_inference_data

    if args.smoke:
        for k, v in _SMOKE.items():
            # on --resume the chain-defining settings (--num-images) come from the checkpoint, not from --smoke
            if getattr(args, k) is None and not (args.resume and k in _CHAIN_FLAGS):
                setattr(args, k, v)
    for k, v in _DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    _check_args(args)
    samplers, histories, settings, images = _start(args)
    meta = {"kind": _KIND, **settings}
    total = args.warmup + args.num_samples * args.thin
    done = len(histories[0]["depth"])
    if args.resume:
        print(f"resumed {args.checkpoint} after {done} sweeps")
        if done > total:
            print(f"note: the checkpoint holds {done} sweeps, more than the {total} asked for; the first {total} "
                  "are reported")
    t0 = time.perf_counter()
    C = len(samplers)
    with tqdm(total=total * C, initial=min(done, total) * C, desc=f"belief-net MCMC ({C} chain{'s' * (C > 1)})",
              unit="sweep", disable=args.no_progress) as bar:
        for sweep in range(done, total):
            for sampler, history in zip(samplers, histories):
                sampler.sweep()
                st = sampler.stats()
                for k in _STATS:
                    history[k].append(st[k])
                history["widths"].append(list(st["widths"]))
                bar.update()
            bar.set_postfix(depth=st["depth"], edges=st["num_edges"], refresh=False)
            if args.checkpoint is not None and ((sweep + 1) % args.checkpoint_every == 0 or sweep + 1 == total):
                _save(args.checkpoint, samplers, histories, meta)
    seconds = time.perf_counter() - t0
    idata = to_inference_data([_kept(h, args.warmup, args.thin, args.num_samples) for h in histories])
    summary = posterior_summary(idata)
    # every file is written before anything is printed: a reader that goes away early
    # (``bayesstruct dbn ... | head -1``) must not cost the --json/--out files
    if args.json is not None:
        from bayesstruct.io import json_text, write_atomic

        write_atomic(args.json, json_text(summary).encode("utf-8"))
    written = [] if args.out is None else _write_outputs(args.out, summary, idata, samplers[0], images, settings)
    _print_summary(summary, samplers, settings, images, seconds, (total - min(done, total)) * C)
    if args.checkpoint is not None:
        print(f"checkpoint: {args.checkpoint} ({len(histories[0]['depth'])} sweeps per chain)")
    if args.json is not None:
        print(f"wrote {args.json}")
    if args.out is not None:
        print(f"wrote {len(written)} files to {args.out}/")
    return 0


def _print_summary(summary: dict, samplers: list, settings: dict, images, seconds: float, sweeps: int) -> None:
    def fmt(s: dict | None) -> str:
        if s is None:
            return "-"
        extra = f", R-hat {s['r_hat']:.3f}" if s.get("r_hat") is not None else ""
        extra += f", ESS {s['ess_bulk']:.0f}" if s.get("ess_bulk") is not None else ""
        return f"{s['mean']:.3g} ± {s['sd']:.3g}{extra}"

    n, d = images.shape
    seeds = f"seed {settings['seed']}" if len(samplers) == 1 else \
        f"{len(samplers)} chains, seeds {settings['seed']}..{settings['seed'] + len(samplers) - 1}"
    print(f"data: {settings['dataset']} ({n} images of {d} pixels); {seeds}")
    rate = f" ({sweeps / seconds:.2f} sweeps/s)" if sweeps and seconds > 0 else ""
    print(f"{sweeps} sweeps in {seconds:.1f} s{rate}")
    print(f"depth      {fmt(summary['depth'])}")
    layers = summary["width_per_layer"]
    for w in layers[:_PRINT_LAYERS]:
        print(f"width {w['layer']:<4d} {fmt(w)}")
    if len(layers) > _PRINT_LAYERS:
        print(f"(widths of layers {_PRINT_LAYERS + 1}..{len(layers)} in the JSON output)")
    for k in ("num_edges", "alpha", "beta"):
        print(f"{k:<10s} {fmt(summary[k])}")
    for c, sampler in enumerate(samplers):
        acc = ", ".join(f"{k} {v:.2f}" for k, v in sampler.acceptance.items() if v == v)
        print(f"acceptance{f' (chain {c})' if len(samplers) > 1 else ''}: {acc}")


def _write_outputs(out: Path, summary: dict, idata, sampler, images, settings: dict) -> list[Path]:
    """Write :data:`_OUT_FILES` into ``out`` (created when missing); the paths written. Prints nothing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesstruct.io import _quiet_arviz, json_text, write_atomic
    from bayesstruct.plots.dbn import plot_dbn_trace, plot_fantasies, plot_structure, plot_structure_posterior

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json"]
    write_atomic(written[0], json_text(summary).encode("utf-8"))
    with _quiet_arviz():
        idata.to_netcdf(str(out / "posterior.nc"))
    written.append(out / "posterior.nc")
    figures = {
        "trace.png": plot_dbn_trace(idata),
        "structure_posterior.png": plot_structure_posterior(idata),
        "fantasies.png": plot_fantasies(sampler.fantasies(40, seed=settings["seed"]), images[:40]),
        "structure.png": plot_structure(sampler.structure).figure,
    }
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        written.append(out / name)
    plt.close("all")
    return written
