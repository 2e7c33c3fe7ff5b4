"""Every tutorial runs end to end in smoke mode (BAYESSTRUCT_SMOKE=1), as Pyro's CI does."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parent.parent / "tutorials").glob("[0-9]*.py"))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_tutorial_runs_in_smoke_mode(path, tmp_path):
    env = dict(os.environ, BAYESSTRUCT_SMOKE="1", MPLBACKEND="Agg")
    out = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "figures written to" in out.stdout
