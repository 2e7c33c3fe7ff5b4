"""The shared figure style: palette, markers and save_figure."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from bayesstruct.exceptions import InvalidArgumentError  # noqa: E402
from bayesstruct.plots.style import MARKERS, OKABE_ITO, color, marker, save_figure  # noqa: E402


def _grey(c):
    r, g, b = to_rgb(c)
    return 0.299 * r + 0.587 * g + 0.114 * b


def test_palette_is_distinct_and_cycles_without_black():
    colors = [color(i) for i in range(7)]
    assert len(set(colors)) == 7 and "#000000" not in colors
    assert color(7) == color(0) and marker(len(MARKERS)) == marker(0)
    assert len(set(MARKERS)) == len(MARKERS) == len(OKABE_ITO)
    # the first four (methods of a comparison) differ in grey level too, so they read in greyscale
    greys = sorted(_grey(color(i)) for i in range(4))
    assert min(b - a for a, b in zip(greys, greys[1:])) > 0.03


def test_save_figure_writes_every_format_cropped(tmp_path):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [1, 0])
    paths = save_figure(fig, tmp_path / "f.png", dpi=100, formats=("png", "pdf", "svg"))
    assert [p.name for p in paths] == ["f.png", "f.pdf", "f.svg"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert paths[1].read_bytes()[:4] == b"%PDF"
    width, height = plt.imread(paths[0]).shape[1::-1]
    assert width < 300 and height < 200  # bbox_inches="tight" crops the 300 x 200 px canvas
    plt.close(fig)


def test_save_figure_names_bad_arguments(tmp_path):
    fig, _ = plt.subplots()
    with pytest.raises(InvalidArgumentError, match="`dpi`"):
        save_figure(fig, tmp_path / "f.png", dpi=0)
    with pytest.raises(InvalidArgumentError, match="`formats` is empty"):
        save_figure(fig, tmp_path / "f.png", formats=())
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        save_figure(fig, tmp_path / "missing" / "f.png")
    plt.close(fig)
