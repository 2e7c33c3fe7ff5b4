"""Sub-commands of the ``bayesstruct`` command line, one module each (see :data:`bayesstruct.cli.COMMAND_MODULES`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bayesstruct.exceptions import InvalidArgumentError


def check_output_paths(json: Path | None = None, out: Path | None = None) -> None:
    """Refuse ``--json PATH`` in a missing directory and ``--out DIR`` naming an existing file.

    Called before any work starts, so that a long run never fails at the end for want of a
    place to write its results (``--out`` itself is created when missing).
    """
    if json is not None and json.is_dir():
        raise InvalidArgumentError(f"--json {str(json)!r} is a directory; give a file name")
    if json is not None and not json.parent.is_dir():
        raise InvalidArgumentError(f"--json: directory {str(json.parent)!r} does not exist")
    if out is not None and out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"--out {str(out)!r} exists and is not a directory")


def add_output_arguments(p: argparse.ArgumentParser, out_help: str, json_help: str = "write the result as JSON to this path",
                         progress_help: str = "hide the progress bar") -> argparse._ArgumentGroup:
    """The ``output`` group every sub-command shares: ``--out DIR``, ``--json PATH``, ``--no-progress``."""
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=None, help=out_help)
    out.add_argument("--json", type=Path, default=None, help=json_help)
    out.add_argument("--no-progress", action="store_true", help=progress_help)
    return out


def write_results(result: Any, args: argparse.Namespace) -> None:
    """``result`` as indented JSON to ``--json PATH`` and to ``--out DIR/results.json``, each atomically.

    ``--out`` is created when missing; the caller writes its other files there.
    """
    from bayesstruct.io import write_atomic

    text = (json.dumps(result, indent=2) + "\n").encode("utf-8")
    if args.json is not None:
        write_atomic(args.json, text)
        print(f"wrote {args.json}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out / "results.json", text)
