"""``bayesstruct dbn``: outputs never overwrite one another, a huge --alpha is refused up front,
a closed pipe does not cost the files, --smoke does not fight a resumed checkpoint.

(Beside test_dbn_command.py, which covers checkpoint/resume equality.)
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families.belief_net import BeliefNetSampler

REPO = Path(__file__).resolve().parents[2]
QUICK = ["--dataset", "digits", "--num-images", "20", "--warmup", "0", "--num-samples", "2", "--no-progress"]



def _files(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


# -- finding 1: colliding output paths ------------------------------------------------------------
@pytest.mark.parametrize("argv, flags", [
    (["--checkpoint", "run.ckpt", "--json", "run.ckpt"], ("--checkpoint", "--json")),
    (["--checkpoint", "o/trace.png", "--out", "o"], ("--checkpoint", "--out")),
    (["--checkpoint", "X", "--out", "X"], ("--checkpoint", "--out")),
    (["--json", "p/trace.png", "--out", "p"], ("--json", "--out")),
    (["--json", "q", "--out", "q"], ("--json", "--out")),
    (["--json", "r/results.json", "--out", "r"], ("--json", "--out")),
    (["--checkpoint", "s/../run.ckpt", "--json", "run.ckpt"], ("--checkpoint", "--json")),
])
def test_colliding_outputs_are_refused_before_any_work(tmp_path, capsys, monkeypatch, argv, flags, run_dbn):
    monkeypatch.chdir(tmp_path)
    for d in ("o", "p", "r", "s"):
        (tmp_path / d).mkdir()
    before = _files(tmp_path)
    t = time.perf_counter()
    code, out, err = run_dbn(*QUICK, *argv)
    assert code == 2, (out, err)
    assert all(f in err for f in flags) and "same path" in err and "nothing was written" in err
    assert _files(tmp_path) == before  # not a checkpoint, figure or JSON written
    assert time.perf_counter() - t < 20  # refused up front, not after the chain ran


def test_resume_with_the_same_checkpoint_and_fresh_outputs_still_works(tmp_path, capsys, run_dbn):
    ck = tmp_path / "c.ckpt"
    code, _, err = run_dbn(*QUICK, "--checkpoint", ck, "--out", tmp_path / "o1")
    assert code == 0, err
    code, out, err = run_dbn("--num-samples", "3", "--warmup", "0", "--no-progress", "--checkpoint", ck,
                          "--resume", "--json", tmp_path / "s.json", "--out", tmp_path / "o2")
    assert code == 0, err
    assert "resumed" in out and (tmp_path / "s.json").is_file() and (tmp_path / "o2" / "trace.png").is_file()


# -- finding 2: a huge --alpha ----------------------------------------------------------------------
@pytest.mark.parametrize("alpha", ["1e5", "1e8", "1e20"])
def test_huge_alpha_is_refused_up_front_naming_the_flag(tmp_path, capsys, alpha, run_dbn):
    t = time.perf_counter()
    code, out, err = run_dbn(*QUICK, "--alpha", alpha, "--checkpoint", tmp_path / "c.ckpt")
    assert code == 2, (out, err)
    assert "--alpha" in err and "--max-width" in err and "expected width" in err
    assert "Traceback" not in err and not (tmp_path / "c.ckpt").exists()
    assert time.perf_counter() - t < 20


def test_sampler_refuses_an_alpha_whose_first_layer_cannot_fit():
    x = np.random.default_rng(0).random((5, 64))
    for alpha in (1e3, 1e20):
        with pytest.raises(InvalidArgumentError, match=r"`alpha`=.* far too large for `max_width`=256"):
            BeliefNetSampler(x, alpha=alpha, seed=0)
    # the expected first-layer width is alpha * H_64 = 4.74 * alpha: alpha=100 is refused under the default
    # max_width=256 but tried under max_width=2000 (where it does not fail up front)
    with pytest.raises(InvalidArgumentError, match="far too large"):
        BeliefNetSampler(x, alpha=100.0, seed=0)
    assert BeliefNetSampler(x, alpha=1.0, seed=0, max_width=2000).depth >= 1


def test_normal_alpha_draws_are_unchanged_by_the_check():
    # values recorded with the code before the check was added: it uses no random numbers
    x = np.random.default_rng(1).random((8, 64))
    for alpha, init, (widths, edges, log_joint) in ((1.5, "prior", ((5, 1), 15, -1246.314295)),
                                                    (0.5, "auto", ((2, 1), 12, -1244.659413))):
        s = BeliefNetSampler(x, alpha=alpha, seed=3, init=init)
        s.sweep()
        s.sweep()
        st = s.stats()
        assert tuple(st["widths"]) == widths and st["num_edges"] == edges
        assert st["log_joint"] == pytest.approx(log_joint, abs=1e-5)


# -- finding 3: the files come before the summary -------------------------------------------------
def test_closed_pipe_does_not_drop_the_output_files(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "bayesstruct.cli", "dbn", *QUICK, "--json", "res.json", "--out", "outdir"]
    shell = " ".join(cmd) + " | head -1"
    proc = subprocess.run(["bash", "-c", shell], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.stdout.count("\n") == 1, proc.stderr
    assert (tmp_path / "res.json").is_file()
    assert {p.name for p in (tmp_path / "outdir").iterdir()} >= {"results.json", "posterior.nc", "trace.png",
                                                                "structure_posterior.png", "fantasies.png",
                                                                "structure.png"}


def test_summary_is_printed_after_the_files_are_written(tmp_path, capsys, run_dbn):
    code, out, err = run_dbn(*QUICK, "--json", tmp_path / "s.json", "--out", tmp_path / "o")
    assert code == 0, err
    assert "wrote 6 files to" in out and f"wrote {tmp_path / 's.json'}" in out and "depth" in out


# -- finding 4: --smoke --resume ---------------------------------------------------------------------
def test_smoke_resume_takes_num_images_from_the_checkpoint(tmp_path, capsys, run_dbn):
    ck = tmp_path / "f.ckpt"
    code, _, err = run_dbn("--num-images", "30", "--num-samples", "2", "--warmup", "0", "--no-progress",
                        "--checkpoint", ck)
    assert code == 0, err
    code, out, err = run_dbn("--smoke", "--num-samples", "3", "--warmup", "0", "--no-progress",
                          "--checkpoint", ck, "--resume")
    assert code == 0, err  # used to be: --num-images 100 differs from the value 30 ...
    assert "resumed" in out and "(30 images of 64 pixels)" in out
    # a --num-images the user does give is still checked against the checkpoint
    code, _, err = run_dbn("--smoke", "--num-images", "40", "--no-progress", "--checkpoint", ck, "--resume")
    assert code == 2 and "--num-images 40" in err


# -- finding 6: the tutorial's command line matches its run ---------------------------------------
def test_tutorial_cli_line_runs_as_many_chains_as_the_tutorial():
    text = (REPO / "tutorials" / "05_cascading_ibp.py").read_text()
    chains = int(re.search(r"NUM_CHAINS = \d+ if SMOKE else (\d+)", text).group(1))
    line = re.search(r"`bayesstruct dbn [^`]*`", text).group(0)
    assert f"--chains {chains}" in line
    assert "chain 0" in text
