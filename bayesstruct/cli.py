"""The ``bayesstruct`` command.

    bayesstruct compare polynomial|superposition|bayes-net ...   (bayesstruct.commands.compare)
    bayesstruct decompress FILE [--save PATH [--overwrite]]
    bayesstruct prune | dbn | fit network | search ...            (bayesstruct.commands.<name>)

``bayesstruct COMMAND --help`` lists each one's options.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path
from typing import Sequence

from bayesstruct.commands import check_writable, save_torch
from bayesstruct.commands.compare import parse_degrees
from bayesstruct.exceptions import BayesStructError, InvalidArgumentError

__all__ = ["main", "build_parser", "parse_degrees"]

#: the sub-commands: each ``bayesstruct.commands.<name>`` module has ``add_parser(subparsers)``, which adds its
#: sub-parser and sets ``run=<function(args) -> exit code>`` as its default (``decompress`` follows ``compare``)
COMMAND_MODULES: tuple[str, ...] = ("compare", "prune", "dbn", "network", "search")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayesstruct", description="Bayesian selection of model structure with Pyro.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"bayesstruct.commands.{name}").add_parser(sub)
        if name == "compare":
            dec = sub.add_parser("decompress", help="restore a model from a Deep Compression file")
            dec.add_argument("file", type=Path, help="file written by bayesstruct.prune.compress")
            dec.add_argument("--save", type=Path, default=None,
                             help="also save the restored nn.Module (torch.save of the whole module; read it back "
                                  "with torch.load(PATH, weights_only=False), for files you trust)")
            dec.add_argument("--overwrite", action="store_true", help="replace an existing --save file")
            dec.set_defaults(run=run_decompress)
    return parser


def run_decompress(args: argparse.Namespace) -> int:
    import torch

    from bayesstruct.prune.compression import decompress

    if args.file.is_dir():
        raise InvalidArgumentError(f"FILE {str(args.file)!r} is a directory; give the .bsc file written by "
                                   "`bayesstruct prune --method deep-compression --out DIR` (DIR/model.bsc)")
    if not args.file.is_file():
        raise InvalidArgumentError(f"FILE: no such file {str(args.file)!r}")
    if args.save is not None:
        if args.save.is_dir():
            raise InvalidArgumentError(f"--save {str(args.save)!r} is a directory; give a file name")
        if not args.save.parent.is_dir():
            raise InvalidArgumentError(f"--save: directory {str(args.save.parent)!r} does not exist")
        if args.save.exists() and args.save.samefile(args.file):
            raise InvalidArgumentError(f"--save {str(args.save)!r} is FILE itself: saving there would replace the "
                                       "compressed model; choose another path")
        if args.save.exists() and not args.overwrite:
            raise InvalidArgumentError(f"--save {str(args.save)!r} already exists; pass --overwrite to replace it, "
                                       "or choose another path (nothing was written)")
        check_writable("--save", args.save.parent)
    model = decompress(args.file)
    weights = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    total = sum(w.numel() for w in weights)
    nonzero = sum(int((w != 0).sum()) for w in weights)
    print(model)
    print(f"restored from {args.file} ({args.file.stat().st_size} bytes): {nonzero} of {total} weights non-zero")
    if args.save is not None:
        save_torch(model, args.save)
        print(f"wrote {args.save}")
    return 0


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--flag`` of ``parser`` and of its sub-parsers, recursively."""
    out: set[str] = set()
    for action in parser._actions:
        out.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out |= _option_strings(sub)
    return out


def flag_message(message: str, args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """``message`` with each `` `name` `` of a Python argument that came from a command-line
    flag of this command written as that flag, `` `--name` `` (the library's checks name
    their Python arguments; a command-line user knows the flags)."""
    flags = _option_strings(parser)

    def as_flag(match: re.Match) -> str:
        name = match.group(1)
        flag = "--" + name.replace("_", "-")
        return f"`{flag}`" if name in vars(args) and flag in flags else match.group(0)

    return re.sub(r"`([A-Za-z_][A-Za-z0-9_]*)`", as_flag, message)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except BayesStructError as exc:
        parser.exit(2, f"bayesstruct: error: {flag_message(str(exc), args, parser)}\n")
    except BrokenPipeError:  # the reader went away (``bayesstruct ... | head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush does not fail again
        return 141  # 128 + SIGPIPE
    except OSError as exc:  # e.g. a disk that filled up or went read-only while the results were written
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        parser.exit(1, f"bayesstruct: error:{where} {exc.strerror or exc}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
