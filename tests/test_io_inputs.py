"""io writers: bad paths and data are named; a failed write keeps the old file."""

import os

import pytest

from bayesstruct import PolynomialFamily, compare
from bayesstruct.datasets import sinusoid
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.io import to_inference_data, write_atomic, write_json


@pytest.mark.parametrize("path", [None, 3, ""])
def test_paths(tmp_path, path):
    with pytest.raises(InvalidArgumentError, match="path"):
        write_atomic(path, b"x")


def test_write_atomic_needs_bytes_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("OLD")
    with pytest.raises(InvalidArgumentError, match="data"):
        write_atomic(target, "text")
    assert target.read_text() == "OLD" and os.listdir(tmp_path) == ["a.txt"]


def test_write_json_unencodable_keeps_the_old_file(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("OLD")

    class Bad:
        def to_dict(self):
            return {"a": object()}

    with pytest.raises(InvalidArgumentError, match="table"):
        write_json(Bad(), target)
    assert target.read_text() == "OLD" and os.listdir(tmp_path) == ["t.json"]


@pytest.mark.parametrize("kwargs, match", [(dict(dims=3), "dims"), (dict(coords=3), "coords")])
def test_to_inference_data_mappings(kwargs, match):
    x, y = sinusoid(8)
    t = compare(PolynomialFamily([1]), x, y, methods="laplace", workers=1, progress=False)
    with pytest.raises(InvalidArgumentError, match=match):
        to_inference_data(t.rows[0].estimates["laplace"], **kwargs)
