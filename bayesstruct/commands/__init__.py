"""Sub-commands of the ``bayesstruct`` command line, one module each (see :data:`bayesstruct.cli.COMMAND_MODULES`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from bayesstruct.exceptions import InvalidArgumentError


def check_ranges(*checks: tuple[str, Any, float, bool]) -> None:
    """Each ``(flag, value, bound, strict)``: ``value`` must be finite and ``> bound`` (``strict``) or ``>= bound``.

    A ``None`` value (an optional flag left out) passes. The error names the flag and says
    "an integer" for an ``int`` value, "a finite number" otherwise.
    """
    for flag, value, bound, strict in checks:
        if value is None or (math.isfinite(value) and (value > bound if strict else value >= bound)):
            continue
        kind = "an integer" if isinstance(value, int) else "a finite number"
        raise InvalidArgumentError(f"{flag} must be {kind} {'>' if strict else '>='} {bound:g}; got {value}")


def check_applies(method: str, *checks: tuple[str, Any, Any, tuple[str, ...]]) -> None:
    """Each ``(flag, value, default, methods)``: a flag set away from its default needs one of ``methods``.

    So an option the chosen ``--method`` would ignore is refused instead of silently dropped.
    """
    for flag, value, default, methods in checks:
        if value != default and method not in methods:
            raise InvalidArgumentError(f"{flag} applies to --method {' or '.join(methods)}; the method is {method}")


def _same_path(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one file: the same resolved path (files that do not exist yet count
    too, e.g. a fresh run's checkpoint), or, where both exist, one file (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def check_writable(flag: str, directory: Path) -> None:
    """``directory`` must accept a new file: a probe file is created in it and removed.

    ``os.access`` is not enough: root passes it on a read-only file system's directories."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".bayesstruct-probe-"):
            pass
    except OSError as exc:
        raise InvalidArgumentError(f"{flag}: cannot write in directory {str(directory)!r} ({exc.strerror or exc}); "
                                   "choose another place (nothing was written)") from None


def check_output_paths(args: argparse.Namespace, *, inputs: dict[str, Path | None] | None = None,
                       out_files: tuple[str, ...] = ("results.json",)) -> None:
    """Refuse unusable or destructive ``--json PATH`` / ``--out DIR`` before any work starts.

    Refused: ``--json`` in a missing directory or naming a directory; ``--out`` naming an
    existing file; an output that *is* one of the command's ``inputs`` (``{flag: path}``,
    e.g. ``{"--data": args.data}``), always; and, unless ``--overwrite`` is given, an
    existing ``--json`` file or an ``--out`` directory that already holds one of
    ``out_files`` (the files and folders the command writes there); outputs that would
    overwrite one another (``--json`` naming ``--out`` or one of its files); and an output
    directory that cannot take a new file (for a missing ``--out``, its nearest existing
    parent; the command creates it when it writes). Paths are compared resolved, so an input
    that does not exist yet (a fresh run's ``--checkpoint``) is protected too. So a long run
    never fails at the end for want of a place to write, and nothing a user saved is replaced
    without being asked.
    """
    json_path, out = getattr(args, "json", None), getattr(args, "out", None)
    overwrite = bool(getattr(args, "overwrite", False))
    if json_path is not None and json_path.is_dir():
        raise InvalidArgumentError(f"--json {str(json_path)!r} is a directory; give a file name")
    if json_path is not None and not json_path.parent.is_dir():
        raise InvalidArgumentError(f"--json: directory {str(json_path.parent)!r} does not exist")
    if out is not None and out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"--out {str(out)!r} exists and is not a directory")
    in_out = [("--out", out), *(("--out", out / name) for name in out_files)] if out is not None else []
    outputs = ([("--json", json_path)] if json_path is not None else []) + in_out
    for flag, path in outputs:
        for in_flag, source in (inputs or {}).items():
            if source is not None and _same_path(path, Path(source)):
                raise InvalidArgumentError(
                    f"{flag} would write {str(path)!r}, which is the {in_flag} file this command reads (the same "
                    f"path); choose another {'path' if flag == '--json' else 'directory'} (nothing was written)")
    for _, path in in_out if json_path is not None else ():
        if _same_path(json_path, path):
            raise InvalidArgumentError(
                f"--json {str(json_path)!r} and --out {str(out)!r} write the same path ({str(path)!r}), so one would "
                "overwrite the other; give --json and --out different paths (nothing was written)")
    if not overwrite and json_path is not None and json_path.exists():
        raise InvalidArgumentError(f"--json {str(json_path)!r} already exists; pass --overwrite to replace it, "
                                   "or choose another path (nothing was written)")
    held = [name for name in out_files if out is not None and (out / name).exists()]
    if not overwrite and held:
        raise InvalidArgumentError(f"--out {str(out)!r} already holds {', '.join(held)} from an earlier run; pass "
                                   "--overwrite to replace its files, or choose another directory (nothing was written)")
    if json_path is not None:
        check_writable("--json", json_path.parent)
    if out is not None:
        existing = next(p for p in (out, *out.parents) if p.exists())  # where a missing --out will be created
        if not existing.is_dir():
            raise InvalidArgumentError(f"--out {str(out)!r}: {str(existing)!r} is a file, not a directory")
        check_writable("--out", existing)


def add_output_arguments(p: argparse.ArgumentParser, out_help: str, json_help: str = "write the result as JSON to this path",
                         progress_help: str = "hide the progress bar") -> argparse._ArgumentGroup:
    """The ``output`` group every sub-command shares: ``--out DIR``, ``--json PATH``, ``--overwrite``, ``--no-progress``."""
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=None, help=out_help)
    out.add_argument("--json", type=Path, default=None, help=json_help)
    out.add_argument("--overwrite", action="store_true",
                     help="replace an existing --json file or the files of an earlier run in --out "
                          "(without it, the command refuses them before any work)")
    out.add_argument("--no-progress", action="store_true", help=progress_help)
    return out


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save(obj, path)`` through :func:`~bayesstruct.io.write_atomic`: an existing file is
    replaced only by a complete one."""
    import io

    import torch

    from bayesstruct.io import write_atomic

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_atomic(path, buf.getvalue())


def write_results(result: Any, args: argparse.Namespace) -> None:
    """``result`` as indented JSON to ``--json PATH`` and to ``--out DIR/results.json``, each atomically.

    ``--out`` is created when missing; the caller writes its other files there.
    """
    from bayesstruct.io import json_text, write_atomic

    text = json_text(result).encode("utf-8")
    if args.json is not None:
        write_atomic(args.json, text)
        print(f"wrote {args.json}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out / "results.json", text)
