"""Data-set loaders: bad paths, files, seeds and options get errors naming them."""

import gzip

import numpy as np
import pytest

from bayesstruct.datasets import load_csv, load_dataset, load_digits, load_mnist, ranking_data, sinusoid
from bayesstruct.exceptions import InvalidArgumentError


@pytest.mark.parametrize("call", [lambda: sinusoid(5, seed="x"), lambda: sinusoid(5, seed=-1),
                                  lambda: ranking_data(5, seed=1.5), lambda: load_digits(num_samples=3, seed="x")])
def test_seeds(call):
    with pytest.raises(InvalidArgumentError, match="seed"):
        call()


@pytest.mark.parametrize("text, match", [("x,y\n1,2\nnan,3\n", ":3:.*finite"), ("x,y\n1,inf\n", ":2:.*finite")])
def test_csv_non_finite(tmp_path, text, match):
    (tmp_path / "a.csv").write_text(text)
    with pytest.raises(InvalidArgumentError, match=match):
        load_csv(tmp_path / "a.csv", "x", "y")


def test_csv_binary_and_path(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00x,y\n")
    with pytest.raises(InvalidArgumentError, match="data"):
        load_csv(tmp_path / "b.csv", "x", "y")
    with pytest.raises(InvalidArgumentError, match="data"):
        load_csv(None, "x", "y")


def _write(directory, rows=28, labels=(3, 1)):
    n = len(labels)
    header = np.array([0x803, n, rows, rows], dtype=">u4").tobytes()
    (directory / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(n * rows * rows)))
    lab = np.array([0x801, n], dtype=">u4").tobytes() + bytes(labels)
    (directory / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(lab))
    return directory


@pytest.mark.parametrize("kwargs, match", [
    (dict(rows=5), "path.*28x28"), (dict(labels=(3, 12)), "path.*label 12"),
])
def test_mnist_wrong_files(tmp_path, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        load_mnist(_write(tmp_path, **kwargs))


@pytest.mark.parametrize("kwargs, match", [(dict(split=["train"]), "split"), (dict(seed=-1), "seed")])
def test_mnist_arguments(tmp_path, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        load_mnist(_write(tmp_path), **kwargs)
    with pytest.raises(InvalidArgumentError, match="path"):
        load_mnist(None)


def test_load_dataset_unknown_option():
    with pytest.raises(InvalidArgumentError, match="foo"):
        load_dataset("digits", foo=1)


def test_csv_byte_order_mark_duplicate_header_directory_and_empty(tmp_path):
    (tmp_path / "bom.csv").write_bytes("x,y\n1,2\n3,4\n".encode("utf-8-sig"))  # Excel's "CSV UTF-8"
    x, y = load_csv(tmp_path / "bom.csv", "x", "y")
    assert x.tolist() == [1.0, 3.0] and y.tolist() == [2.0, 4.0]
    (tmp_path / "dup.csv").write_text("x,y,x\n1,2,3\n")
    with pytest.raises(InvalidArgumentError, match=r"names \['x'\] more than once"):
        load_csv(tmp_path / "dup.csv", "x", "y")
    with pytest.raises(InvalidArgumentError, match="is a directory; give a CSV file"):
        load_csv(tmp_path, "x", "y")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InvalidArgumentError, match="is empty; expected a header row"):
        load_csv(tmp_path / "empty.csv", "x", "y")


def test_mnist_spec_errors_name_the_spec(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"^data set 'mnist:.*missing': '.*missing' does not exist"):
        load_dataset(f"mnist:{tmp_path / 'missing'}", split="test")


def test_csv_errors_name_the_files_line_after_blank_lines(tmp_path):
    (tmp_path / "blank.csv").write_text("x,y\n1,2\n\n\n3,abc\n")
    with pytest.raises(InvalidArgumentError, match=r"blank.csv:5: columns"):
        load_csv(tmp_path / "blank.csv", "x", "y")


def test_csv_row_with_more_fields_than_the_header_is_refused(tmp_path):
    # decimal commas: "0,1,5" is x = 0, y = 1.5 to its writer; it used to load as y = 1, the 5 dropped
    (tmp_path / "comma.csv").write_text("x,y\n0,1,5\n0.5,2,5\n")
    with pytest.raises(InvalidArgumentError, match=r"comma.csv:2: 3 fields, but the header names 2.*1\.5, not 1,5"):
        load_csv(tmp_path / "comma.csv", "x", "y")
    (tmp_path / "quoted.csv").write_text('x,y,note\n0,1.5,"a, b"\n')
    x, y = load_csv(tmp_path / "quoted.csv", "x", "y")
    assert y.tolist() == [1.5]
