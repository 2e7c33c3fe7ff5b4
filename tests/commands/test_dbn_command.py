"""``bayesstruct dbn``: SIGKILL + resume equals an uninterrupted chain; checkpoints are never clobbered.

(Named test_dbn_command.py: tests/families/test_dbn.py already owns the module name test_dbn.)
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bayesstruct.cli import main
from bayesstruct.families.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]
# small but real: 20 digits, 6 warm-up + 24 recorded sweeps (~1 s), a checkpoint every 3 sweeps
CHAIN = ["--dataset", "digits", "--num-images", "20", "--warmup", "6", "--num-samples", "24", "--seed", "5",
         "--chains", "2", "--checkpoint-every", "3", "--no-progress"]
TOTAL = 30



def _assert_same_state(a, b):
    """Two sampler state dicts are identical (arrays bit for bit, RNG state, counters)."""
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, list) and x and isinstance(x[0], np.ndarray):
            assert len(x) == len(y) and all(np.array_equal(u, v) for u, v in zip(x, y)), k
        else:
            assert x == y, k


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """One short completed run of one chain: its checkpoint and JSON (shared by the cheap tests)."""
    d = tmp_path_factory.mktemp("dbn")
    code = main(["dbn", "--dataset", "digits", "--num-images", "20", "--warmup", "0", "--num-samples", "6",
                 "--checkpoint", str(d / "c.ckpt"), "--json", str(d / "s.json"), "--no-progress"])
    assert code == 0
    return d


def test_sigkill_then_resume_equals_uninterrupted_chain(tmp_path, capsys, run_dbn):
    ck_killed, ck_full = tmp_path / "killed.ckpt", tmp_path / "full.ckpt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "bayesstruct.cli", "dbn", *CHAIN, "--checkpoint", str(ck_killed)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not ck_killed.exists():
            assert proc.poll() is None, f"the chain exited before its first checkpoint: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        assert proc.poll() is None  # still sweeping: the kill interrupts the chain
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    at_kill = load_checkpoint(ck_killed)
    done = len(at_kill.history[0]["depth"])
    assert 0 < done < TOTAL and done % 3 == 0

    code, out, err = run_dbn(*CHAIN, "--checkpoint", ck_killed, "--resume", "--json", tmp_path / "resumed.json")
    assert code == 0, err
    assert f"resumed {ck_killed} after {done} sweeps" in out
    code, _, err = run_dbn(*CHAIN, "--checkpoint", ck_full, "--json", tmp_path / "full.json")
    assert code == 0, err

    assert json.loads((tmp_path / "resumed.json").read_text()) == json.loads((tmp_path / "full.json").read_text())
    a, b = load_checkpoint(ck_killed), load_checkpoint(ck_full)
    assert len(a.sampler_state["chains"]) == len(b.sampler_state["chains"]) == 2
    for c in range(2):
        _assert_same_state(a.sampler_state["chains"][c], b.sampler_state["chains"][c])
        assert a.sampler_state["chains"][c]["num_sweeps"] == TOTAL
        ha, hb = a.history[c], b.history[c]
        assert ha["widths"] == hb["widths"]
        for k in ("depth", "num_edges", "alpha", "beta", "log_joint"):
            assert np.array_equal(ha[k], hb[k]), k
    # the two chains (seeds 5 and 6) are different chains
    assert not np.array_equal(a.history[0]["log_joint"], a.history[1]["log_joint"])


def test_json_keys_and_types(short_run):
    d = json.loads((short_run / "s.json").read_text())
    assert list(d) == ["depth", "width_per_layer", "num_edges", "alpha", "beta"]
    for key in ("depth", "num_edges", "alpha", "beta"):
        s = d[key]
        assert {"mean", "sd", "samples", "r_hat", "ess_bulk"} <= set(s)
        assert isinstance(s["mean"], float) and isinstance(s["sd"], float) and len(s["samples"]) == 6
        assert s["mean"] == pytest.approx(np.mean(s["samples"]))  # the summary is of the listed draws
    assert all(isinstance(v, int) for v in d["depth"]["samples"] + d["num_edges"]["samples"])
    assert all(a > 0 for a in d["alpha"]["samples"] + d["beta"]["samples"])
    widths = d["width_per_layer"]
    assert [w["layer"] for w in widths] == list(range(1, len(widths) + 1))
    assert len(widths) == max(max(d["depth"]["samples"]), 1)
    # a draw of depth L has K_m >= 1 exactly for m <= L
    for s, depth in enumerate(d["depth"]["samples"]):
        assert [w["samples"][s] > 0 for w in widths] == [m < depth for m in range(len(widths))]
    assert d["depth"]["r_hat"] is None and d["alpha"]["num_chains"] == 1  # one chain: ArviZ's R-hat needs two
    assert isinstance(d["alpha"]["ess_bulk"], float)


def test_several_chains_give_r_hat(tmp_path, capsys, run_dbn):
    code, out, err = run_dbn("--num-images", "20", "--warmup", "0", "--num-samples", "5", "--chains", "3",
                          "--json", tmp_path / "s.json", "--no-progress")
    assert code == 0, err
    assert "3 chains, seeds 0..2" in out
    d = json.loads((tmp_path / "s.json").read_text())
    assert d["alpha"]["num_chains"] == 3 and len(d["alpha"]["samples"]) == 15
    assert isinstance(d["alpha"]["r_hat"], float) and d["alpha"]["r_hat"] > 0


def test_corrupt_checkpoint_exits_2_and_is_not_overwritten(short_run, tmp_path, capsys, run_dbn):
    raw = (short_run / "c.ckpt").read_bytes()
    for name, content in (("truncated.ckpt", raw[: len(raw) // 2]), ("garbage.ckpt", b"not a checkpoint\n" * 10)):
        path = tmp_path / name
        path.write_bytes(content)
        code, _, err = run_dbn("--dataset", "digits", "--num-images", "20", "--num-samples", "6",
                            "--checkpoint", path, "--resume", "--no-progress")
        assert code == 2 and name in err
        assert path.read_bytes() == content


def test_existing_checkpoint_needs_resume(short_run, tmp_path, capsys, run_dbn):
    path = tmp_path / "c.ckpt"
    shutil.copy(short_run / "c.ckpt", path)
    before = path.read_bytes()
    code, _, err = run_dbn("--dataset", "digits", "--num-images", "20", "--checkpoint", path, "--no-progress")
    assert code == 2 and "already exists" in err and "--resume" in err
    assert path.read_bytes() == before


def test_resume_with_other_settings_is_refused(short_run, tmp_path, capsys, run_dbn):
    path = tmp_path / "c.ckpt"
    shutil.copy(short_run / "c.ckpt", path)
    before = path.read_bytes()
    code, _, err = run_dbn("--num-samples", "6", "--seed", "9", "--checkpoint", path, "--resume")
    assert code == 2 and "--seed 9" in err and "c.ckpt" in err
    assert path.read_bytes() == before
    # settings not given on the command line come from the checkpoint: nothing left to do, same draws
    code, out, err = run_dbn("--num-samples", "6", "--warmup", "0", "--checkpoint", path, "--resume",
                          "--json", tmp_path / "again.json", "--no-progress")
    assert code == 0, err
    assert "0 sweeps" in out
    assert json.loads((tmp_path / "again.json").read_text()) == json.loads((short_run / "s.json").read_text())


@pytest.mark.parametrize("argv, flag", [
    (["--num-samples", "0"], "--num-samples"),
    (["--warmup", "-1"], "--warmup"),
    (["--alpha", "-1"], "--alpha"),
    (["--beta", "nan"], "--beta"),
    (["--checkpoint-every", "0"], "--checkpoint-every"),
    (["--chains", "0"], "--chains"),
    (["--seed", "-1"], "--seed"),
    (["--resume"], "--resume"),
    (["--dataset", "bogus"], "bogus"),
    (["--dataset", "mnist:/nonexistent/dir"], "/nonexistent/dir"),
    (["--resume", "--checkpoint", "missing.ckpt"], "missing.ckpt"),
])
def test_bad_flags_exit_2_naming_them(capsys, argv, flag, run_dbn):
    code, _, err = run_dbn(*argv, "--no-progress")
    assert code == 2 and flag in err


MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"


@pytest.mark.slow  # reads all 60,000 training images (~10 s) to draw the subset
@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"MNIST IDX files not available at {MNIST_DIR}")
def test_mnist_subset_runs(tmp_path, capsys, run_dbn):
    code, out, err = run_dbn("--dataset", f"mnist:{MNIST_DIR}", "--num-images", "10", "--warmup", "0",
                          "--num-samples", "2", "--json", tmp_path / "s.json", "--no-progress")
    assert code == 0, err
    assert "(10 images of 784 pixels)" in out
    assert len(json.loads((tmp_path / "s.json").read_text())["depth"]["samples"]) == 2
