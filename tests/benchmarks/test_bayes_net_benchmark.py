"""benchmarks/bayes_net.py: its smoke run prints the three tables and writes the rows it printed."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent.parent / "benchmarks" / "bayes_net.py"


def test_smoke_run(tmp_path):
    out = tmp_path / "rows.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [(r["d"], r["dags"], r["workers"]) for r in rows["enumeration"]] == [(3, 25, 1), (3, 25, 2)]
    mcmc, larger = rows["mcmc"], rows["larger"]
    assert {r["sampler"] for r in mcmc} == {"single, S steps", "single, 4S steps", "tempered (4), S steps"}
    assert all(0.0 <= r["tv"] <= 1.0 and 0.0 <= r["edge_error"] <= 1.0 for r in mcmc)
    assert all((r["swap_rate"] is None) == r["sampler"].startswith("single") for r in mcmc + larger)
    assert [r["steps"] for r in larger] == [1200, 300]
    for r in larger:  # every row of the last table is printed
        assert f"| 6 | 500 | 0 | {r['sampler']} | {r['r_hat']:.3f} | {r['edge_spread']:.3f} |" in run.stdout
    assert "| 3 | 25 | 1 |" in run.stdout and "| 200 | tempered (4), S steps |" in run.stdout
