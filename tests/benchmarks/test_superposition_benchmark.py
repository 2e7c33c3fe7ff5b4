"""benchmarks/superposition.py: its smoke run prints both tables and writes the rows it printed."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent.parent / "benchmarks" / "superposition.py"


def test_smoke_run(tmp_path):
    out = tmp_path / "rows.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads(out.read_text())
    rec, mh = rows["recovery"], rows["mh"]
    assert [(r["max_size"], r["N"]) for r in rec] == [(4, 30)]
    assert 0 <= rec[0]["teacher_is_map"] <= rec[0]["seeds"] == 2
    assert all(0.0 <= r["tv"] <= 1.0 for r in mh) and len(mh) == 6
    assert sorted((r["sampler"], r["seed"]) for r in mh) == [("default", 0), ("default", 1), ("regenerate", 0),
                                                             ("regenerate", 1), ("tempered (4)", 0), ("tempered (4)", 1)]
    for r in mh:  # every row of the side-by-side table is printed
        assert f"| 4 (516) | 2,000 | {r['sampler']} |" in run.stdout
    assert f"| 4 | 30 | {rec[0]['distinct_trees']} | {rec[0]['teacher_is_map']}/2 |" in run.stdout
