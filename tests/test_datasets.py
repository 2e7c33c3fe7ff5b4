"""Embedded and CSV data sets."""

import math

import pytest
import torch

from bayesstruct.datasets import load_csv, sinusoid
from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError


def test_sinusoid_shape_dtype_and_grid():
    x, y = sinusoid(n=20, noise=0.3, seed=0)
    assert x.shape == y.shape == (20,)
    assert x.dtype == y.dtype == torch.float64
    torch.testing.assert_close(x, torch.linspace(0.0, 1.0, 20, dtype=torch.float64))
    # residuals around sin(2πx) are noise of the requested scale (loose: 20 draws)
    residual = y - torch.sin(2 * math.pi * x)
    assert 0.1 < float(residual.std()) < 0.6


def test_sinusoid_is_deterministic_per_seed():
    x1, y1 = sinusoid(n=20, noise=0.3, seed=0)
    torch.rand(10)  # the global RNG must not matter
    x2, y2 = sinusoid(n=20, noise=0.3, seed=0)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    _, y3 = sinusoid(n=20, noise=0.3, seed=1)
    assert not torch.equal(y1, y3)


@pytest.mark.parametrize("kwargs,argument", [({"n": 0}, "n"), ({"n": 2.5}, "n"), ({"noise": 0.0}, "noise"),
                                             ({"noise": -1.0}, "noise")])
def test_sinusoid_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(InvalidArgumentError, match=f"`{argument}`"):
        sinusoid(**kwargs)


def test_load_csv_reads_named_columns(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("id,time,value\n1,0.0,1.5\n2,0.5,-2.0\n3,1.0,3.25\n")
    x, y = load_csv(path, x="time", y="value")
    assert x.dtype == y.dtype == torch.float64
    assert x.tolist() == [0.0, 0.5, 1.0]
    assert y.tolist() == [1.5, -2.0, 3.25]
    x2, _ = load_csv(str(path), x="id", y="value")  # str paths too
    assert x2.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("columns,missing", [({"x": "temp", "y": "value"}, "temp"),
                                             ({"x": "time", "y": "val"}, "val")])
def test_load_csv_missing_column_is_named(tmp_path, columns, missing):
    path = tmp_path / "data.csv"
    path.write_text("time,value\n0.0,1.5\n")
    with pytest.raises(UnknownNameError, match=f"'{missing}'") as info:
        load_csv(path, **columns)
    assert "time" in str(info.value) and "value" in str(info.value)  # lists the columns there are


def test_load_csv_rejects_non_numbers_and_missing_files(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x,y\n0.0,1.5\n1.0,abc\n")
    with pytest.raises(InvalidArgumentError, match=":3"):
        load_csv(path, x="x", y="y")
    with pytest.raises(InvalidArgumentError, match="no such file"):
        load_csv(tmp_path / "absent.csv", x="x", y="y")


def test_load_csv_reads_several_columns_in_the_order_given(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n")
    x, y = load_csv(path, x=["c", "a"], y="b")
    assert x.shape == (2, 2) and x.tolist() == [[3.0, 1.0], [6.0, 4.0]]
    assert y.tolist() == [2.0, 5.0]
    x1, none = load_csv(path, x=["b"])  # a one-element list keeps the column axis; no target
    assert x1.shape == (2, 1) and none is None
    with pytest.raises(UnknownNameError, match="'d'"):
        load_csv(path, x=["a", "d"])
    with pytest.raises(InvalidArgumentError, match="twice"):
        load_csv(path, x=["a", "a"])
    with pytest.raises(InvalidArgumentError, match="`y` column 'a'"):
        load_csv(path, x=["a", "b"], y="a")
    with pytest.raises(InvalidArgumentError, match="`x`"):
        load_csv(path, x=[])
    path.write_text("a,b,c\n1,2,3\n4,nan,6\n")
    with pytest.raises(InvalidArgumentError, match=":3.*finite"):
        load_csv(path, x=["a", "b"])
