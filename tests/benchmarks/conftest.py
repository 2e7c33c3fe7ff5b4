"""The benchmarks are scripts, not modules of the package: their tests run them from their paths."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent.parent / "benchmarks"


@pytest.fixture
def smoke_run(tmp_path):
    """``smoke_run("name.py")`` runs ``benchmarks/name.py --smoke --json ROWS`` and returns its
    standard output and the rows it wrote."""

    def run(script: str, timeout: int = 300) -> tuple[str, dict]:
        out = tmp_path / "rows.json"
        done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--smoke", "--json", str(out)],
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout, json.loads(out.read_text())

    return run
