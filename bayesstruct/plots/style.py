"""What every bayesstruct figure shares: a colour-blind-safe palette, markers, and saving.

The palette is Okabe & Ito's (2008, "Color Universal Design"), the eight colours told apart
under the common colour-vision deficiencies; figures that compare methods or primitives also
vary the marker or line style, so that they read in greyscale.

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import matplotlib.pyplot as plt
>>> fig, ax = plt.subplots()
>>> _ = ax.plot([0, 1], [0, 1], color=color(0), marker=marker(0))
>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     paths = save_figure(fig, pathlib.Path(d) / "line.png", formats=("png", "pdf"))
...     [p.suffix for p in paths]
['.png', '.pdf']
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from bayesstruct.exceptions import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["OKABE_ITO", "MARKERS", "LINESTYLES", "color", "marker", "linestyle", "primitive_style", "save_figure"]

#: Okabe-Ito colours, black last (it is kept for exact values and references)
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
#: filled markers that differ in shape, in the order the colours are used
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def color(i: int) -> str:
    """The ``i``-th colour of the palette (cycling)."""
    return OKABE_ITO[i % (len(OKABE_ITO) - 1)]


def marker(i: int) -> str:
    """The ``i``-th marker (cycling)."""
    return MARKERS[i % len(MARKERS)]


def linestyle(i: int) -> str:
    """The ``i``-th line style (cycling)."""
    return LINESTYLES[i % len(LINESTYLES)]


#: the primitives of :func:`bayesstruct.families.cell_graph` and their palette index: the same
#: primitive has the same colour, marker and line style in every panel and every figure
_PRIMITIVE_INDEX = {"linear_relu": 0, "linear_tanh": 1, "linear_sigmoid": 2, "zero": 3, "identity": 4,
                    "linear": 5, "conv": 6}


def primitive_style(name: str) -> dict[str, str]:
    """``color``, ``linestyle`` and ``marker`` of a primitive, keyed by its name (not its position).

    Known primitives have fixed entries; any other name gets a stable entry derived from the
    name itself, so it too is the same in every panel.
    """
    i = _PRIMITIVE_INDEX.get(str(name))
    if i is None:
        i = len(_PRIMITIVE_INDEX) + zlib.crc32(str(name).encode()) % 16
    return {"color": color(i), "linestyle": linestyle(i), "marker": marker(i)}


def save_figure(fig: "Figure", path: str | os.PathLike, *, dpi: int = 150,
                formats: Sequence[str] | None = None) -> list[Path]:
    """Save ``fig`` tightly cropped at ``dpi``, in each of ``formats`` (default: the suffix of ``path``).

    ``formats=("png", "pdf")`` writes ``figure.png`` and a vector ``figure.pdf`` for print.
    Returns the paths written.
    """
    path = Path(path)
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 10:
        raise InvalidArgumentError(f"`dpi` must be an int >= 10; got {dpi!r}")
    formats = [path.suffix.lstrip(".") or "png"] if formats is None else [str(f).lstrip(".") for f in formats]
    if not formats:
        raise InvalidArgumentError("`formats` is empty; give at least one, e.g. ('png',)")
    if not path.parent.is_dir():
        raise InvalidArgumentError(f"`path` {str(path)!r}: the directory {str(path.parent)!r} does not exist")
    written = []
    for fmt in formats:
        target = path.with_suffix("." + fmt)
        fig.savefig(target, dpi=dpi, bbox_inches="tight", format=fmt)
        written.append(target)
    return written
