"""What the benchmark scripts' command lines share: argparse types, the ``--json`` output, run info.

Every benchmark writes every number it prints to ``--json PATH`` (``--out PATH`` is a deprecated
alias where a script had it), together with :func:`machine_info` (the command line, the date, the
machine, Python, torch and Pyro). The path is checked before any work by
:func:`check_json_path` -- the same check as the ``bayesstruct`` command line's
(:func:`bayesstruct.commands.check_output_paths`): an existing file is refused unless
``--overwrite``, a missing directory always; exit status 2 and a message naming the flag.

The scripts import this module by path (``sys.path`` gets ``benchmarks/``), also when a test
loads a script with ``importlib``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from bayesstruct.cli import parse_degrees as _cli_parse_degrees
from bayesstruct.commands import check_output_paths
from bayesstruct.exceptions import InvalidArgumentError

# ----------------------------------------------------------------------------- argparse types


def _integer(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (counts: seeds, repeats, steps, sizes, threads)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (>= 1); got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """An argparse type: an integer >= 0 (a seed, a number of warm-up sweeps)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer (>= 0); got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (a tolerance)."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text!r}")
    return value


def positive_int_list(text: str) -> list[int]:
    """An argparse type: comma-separated positive integers, ``"500,1797"``."""
    parts = [t.strip() for t in str(text).split(",") if t.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, e.g. 500,1797; got {text!r}")
    try:
        return [positive_int(t) for t in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, e.g. 500,1797; "
                                         f"got {text!r}") from None


def parse_degrees(text: str) -> list[int]:
    """An argparse type: polynomial degrees, a range ``"0:9"`` (inclusive) or a list ``"0,3,6"``
    (the ``bayesstruct`` command line's parser). argparse names the flag in its error."""
    try:
        return _cli_parse_degrees(text)
    except InvalidArgumentError:
        raise argparse.ArgumentTypeError(f"expected non-negative integer degrees, a range like 0:9 (inclusive, "
                                         f"start <= stop) or a list like 0,3,6; got {text!r}") from None


# ----------------------------------------------------------------------------- --json


class _JsonPath(argparse.Action):
    """Stores the path in ``json`` and remembers which of the option's names was given."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.json_flag = option_string or "--json"
        if namespace.json_flag != "--json":
            print(f"note: {namespace.json_flag} is a deprecated alias of --json", file=sys.stderr)


def add_json_argument(p: argparse.ArgumentParser, *, deprecated_out: bool = False,
                      help: str = "write every number printed, with the command line, date and machine, "
                                  "as JSON to this path") -> None:
    """``--json PATH`` (and ``--out PATH``, its deprecated alias, where a script had it) and ``--overwrite``."""
    names = ("--json", "--out") if deprecated_out else ("--json",)
    p.add_argument(*names, dest="json", default=None, metavar="PATH.json", action=_JsonPath,
                   help=help + ("; --out is a deprecated alias" if deprecated_out else ""))
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file (without it, the "
                                                            "script refuses it before any work)")


def check_json_path(p: argparse.ArgumentParser, args: argparse.Namespace,
                    inputs: dict[str, str | os.PathLike | None] | None = None) -> None:
    """Refuse an unusable ``--json`` path before any work: ``p.error`` (exit status 2) naming the flag.

    ``inputs`` (``{flag: path}``): files the run reads, which ``--json`` must not replace, even with ``--overwrite``.
    """
    if args.json is None:
        return
    flag = getattr(args, "json_flag", "--json")
    try:
        check_output_paths(argparse.Namespace(json=Path(args.json), out=None,
                                              overwrite=bool(getattr(args, "overwrite", False))),
                           inputs={k: None if v is None else Path(v) for k, v in (inputs or {}).items()})
    except InvalidArgumentError as exc:
        message = str(exc)
        if flag != "--json":
            message = message.replace("--json", flag)
        p.error(message)


def machine_info(argv: list[str] | None = None) -> dict[str, Any]:
    """The command line (``argv``: what ``main`` was given, else ``sys.argv``), the date and the machine."""
    import pyro

    args = argv if argv is not None else sys.argv[1:]
    return {
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *args]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": list(os.getloadavg()),
    }


def json_default(obj: Any) -> Any:
    """``json.dump``'s ``default``: tensors and NumPy values as numbers, tuples of them as lists, the rest as text."""
    if torch.is_tensor(obj):
        return obj.tolist()
    if hasattr(obj, "tolist") and type(obj).__module__ == "numpy":
        return obj.tolist()
    return str(obj)


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """``payload`` as indented JSON to ``path``, atomically (the directory was checked before the run)."""
    from bayesstruct.io import write_atomic

    write_atomic(Path(path), (json.dumps(payload, indent=1, default=json_default) + "\n").encode("utf-8"))
    print(f"wrote {path}")
