"""benchmarks/search.py: the ground truth it ranks against, and its smoke run."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from bayesstruct.families import cell_graph
from bayesstruct.search import prepare_data

SCRIPT = Path(__file__).resolve().parent.parent.parent / "benchmarks" / "search.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("search_benchmark", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_ground_truth_scores_every_structure_and_cut_inputs_are_at_chance(bench):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(120, 64, generator=gen), torch.randint(0, 10, (120,), generator=gen)
    graph = cell_graph(64, 10, hidden=4)
    data = prepare_data(graph, x, y)
    truth = bench.ground_truth(graph, data, (x[:30], y[:30]), seed=0, steps=3)
    assert len(truth) == 32
    # zero on both edges out of the input: vertex 1 is 0, so identity and zero on 1 -> 2 are the same network
    assert truth[("zero", "zero", "identity")] == truth[("zero", "zero", "zero")]
    assert all(0.0 <= v[1] <= 1.0 and 0.0 <= v[2] <= 1.0 for v in truth.values())


def test_smoke_run_prints_the_table_and_writes_json(bench, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert bench.main(["--smoke", "--seeds", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| DARTS, first order |" in text and "| oracle (best validation loss) | 1 |" in text
    d = json.loads(out.read_text())
    # the smoke settings (2 controller updates, 2 random samples), not the full run's 25 x 4 and 16
    assert set(d["rows"]) == {"DARTS, first order", "DARTS, second order", "FBNet, lambda2 = 0.6", "FBNet, lambda2 = 4",
                              "RL controller, 2 x 4", "random search, 4", "random search, 2"}
    assert "| RL controller, 2 x 4 |" in text and "| random search, 2 |" in text
    assert "25 x 4" not in text and "random search, 16" not in text
    assert [r["trained"] for r in d["rows"]["random search, 2"]] == [2]
    assert d["machine"]["command"].endswith(f"--smoke --seeds 1 --json {out}") and d["seeds"] == 1
    assert [g["seed"] for g in d["ground_truth"]] == [0] and len(d["ground_truth"][0]["structures"]) == 32
    for rows in d["rows"].values():
        assert all(1 <= r["rank"] <= 32 and r["regret"] >= 0 for r in rows)


def test_structures_with_equal_validation_loss_share_their_best_rank(bench):
    # (val loss, val accuracy, test accuracy) per structure; b and c compute the same function
    truth = {("a",): (0.1, 0, 0), ("b",): (0.3, 0, 0), ("c",): (0.3, 0, 0), ("d",): (0.2, 0, 0)}
    assert [bench.rank_of(truth, (k,)) for k in "abcd"] == [1, 3, 3, 2]  # not 3 and 4 by listing order
