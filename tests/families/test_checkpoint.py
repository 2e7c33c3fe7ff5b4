"""Checkpoints: exact round trip, refusal of foreign/truncated/corrupt files, atomic replacement."""

import json
import re
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families.checkpoint import MAGIC, CheckpointError, load_checkpoint, save_checkpoint


def _state(seed=0):
    rng = np.random.default_rng(seed)
    rng.random(5)
    return {
        "rng": rng.bit_generator.state,  # PCG64: 128-bit ints inside
        "layers": [np.eye(3, dtype=np.int8), np.zeros((3, 0), dtype=np.int8)],
        "weights": torch.randn(4, 2, dtype=torch.float64),
        "alpha": 1.2345678901234567,
        "scalar": np.float32(0.1),
        "count": np.int64(7),
        "shape": (3, 4),
        "specials": [float("nan"), float("inf"), -0.0, None, True, "text", b"\x00\xff"],
        "int_keys": {1: "a", (2, 3): "b"},
    }


def test_round_trip_is_exact(tmp_path):
    path = tmp_path / "c.ckpt"
    state = _state()
    history = {"depth": np.array([1, 2, 2]), "widths": [[3], [3, 1], [2, 1]]}
    save_checkpoint(path, state, history, {"seed": 3, "dataset": "digits"})
    ck = load_checkpoint(path)
    s = ck.sampler_state
    assert ck.format_version == 1 and ck.meta == {"seed": 3, "dataset": "digits"}
    assert s["rng"] == state["rng"]
    for a, b in zip(s["layers"], state["layers"]):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert torch.is_tensor(s["weights"]) and s["weights"].dtype == torch.float64
    assert torch.equal(s["weights"], state["weights"])
    assert s["alpha"] == state["alpha"]  # bit-exact float
    assert type(s["scalar"]) is np.float32 and s["scalar"] == np.float32(0.1)
    assert type(s["count"]) is np.int64 and s["count"] == 7
    assert s["shape"] == (3, 4) and isinstance(s["shape"], tuple)
    nan, inf, negzero, *rest = s["specials"]
    assert math.isnan(nan) and inf == math.inf and math.copysign(1.0, negzero) == -1.0
    assert rest == [None, True, "text", b"\x00\xff"]
    assert s["int_keys"] == {1: "a", (2, 3): "b"}
    assert np.array_equal(ck.history["depth"], [1, 2, 2]) and ck.history["widths"] == [[3], [3, 1], [2, 1]]


def test_restored_rng_continues_identically(tmp_path):
    rng = np.random.default_rng(11)
    rng.normal(size=10)
    save_checkpoint(tmp_path / "r.ckpt", {"rng": rng.bit_generator.state})
    restored = np.random.default_rng()
    restored.bit_generator.state = load_checkpoint(tmp_path / "r.ckpt").sampler_state["rng"]
    assert np.array_equal(restored.normal(size=100), rng.normal(size=100))


class Opaque:
    pass


@pytest.mark.parametrize("bad, where", [({"x": Opaque()}, "sampler_state['x']"),
                                        ({"o": np.array([1, "a"], dtype=object)}, "sampler_state['o']"),
                                        ([1, {2, 3}], "sampler_state[1]")])
def test_values_that_need_pickle_are_refused(tmp_path, bad, where):
    with pytest.raises(InvalidArgumentError, match=re.escape(where) + ".*pickle"):
        save_checkpoint(tmp_path / "x.ckpt", bad)
    assert not (tmp_path / "x.ckpt").exists()


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        save_checkpoint(tmp_path / "nope" / "c.ckpt", {})


def _good(tmp_path):
    path = tmp_path / "good.ckpt"
    save_checkpoint(path, _state(), [1, 2, 3], {"seed": 0})
    return path, path.read_bytes()


@pytest.mark.parametrize("cut", [5, len(MAGIC) + 10, -1, -100])
def test_truncated_file_is_refused_naming_it(tmp_path, cut):
    path, raw = _good(tmp_path)
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(raw[:cut])
    with pytest.raises(CheckpointError, match="truncated.ckpt.*(truncated|corrupt)"):
        load_checkpoint(bad)


def test_flipped_byte_fails_the_checksum(tmp_path):
    path, raw = _good(tmp_path)
    data = bytearray(raw)
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="good.ckpt.*checksum"):
        load_checkpoint(path)


def test_foreign_files_are_refused(tmp_path):
    js = tmp_path / "results.json"
    js.write_text(json.dumps({"depth": 1}))
    pt = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, pt)  # a zip of pickles: must not be unpickled
    for f in (js, pt):
        with pytest.raises(CheckpointError, match=f"{f.name}.*not a bayesstruct checkpoint"):
            load_checkpoint(f)
    with pytest.raises(CheckpointError, match="missing.ckpt.*does not exist"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_newer_format_version_is_refused(tmp_path):
    path, raw = _good(tmp_path)
    header_end = raw.index(b"\n", len(MAGIC))
    header = json.loads(raw[len(MAGIC):header_end])
    header["format_version"] = 99
    path.write_bytes(MAGIC + json.dumps(header).encode() + raw[header_end:])
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(path)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path, raw = _good(tmp_path)

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, {"new": 1}, [], {})
    assert path.read_bytes() == raw
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.ckpt"]  # the temporary file was removed


_WRITER = """
import sys, numpy as np
from bayesstruct.families.checkpoint import save_checkpoint
i = 0
while True:
    i += 1
    save_checkpoint(sys.argv[1], {"i": i, "x": np.full(300_000, float(i))}, list(range(i)), {"i": i})
    if i == 1:
        print("first", flush=True)
"""


@pytest.mark.slow  # three interpreter starts (~8 s each on the CI machine); tests/commands covers one SIGKILL
def test_sigkill_during_writes_never_leaves_a_broken_checkpoint(tmp_path):
    # A writer saves ~2.4 MB checkpoints in a loop; SIGKILL lands at arbitrary points of a write.
    # The file must always load and be internally consistent (one complete version).
    path = tmp_path / "loop.ckpt"
    for delay in (0.05, 0.13, 0.29):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "first"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ck = load_checkpoint(path)
        i = ck.sampler_state["i"]
        assert ck.meta == {"i": i} and ck.history == list(range(i))
        assert np.all(ck.sampler_state["x"] == float(i))
