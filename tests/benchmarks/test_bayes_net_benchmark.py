"""benchmarks/bayes_net.py: its smoke run prints the three tables and writes the rows it printed."""


def test_smoke_run(smoke_run):
    stdout, rows = smoke_run("bayes_net.py")
    assert [(r["d"], r["dags"], r["workers"]) for r in rows["enumeration"]] == [(3, 25, 1), (3, 25, 2)]
    mcmc, larger = rows["mcmc"], rows["larger"]
    assert {r["sampler"] for r in mcmc} == {"single, S steps", "single, 4S steps", "tempered (4), S steps"}
    assert all(0.0 <= r["tv"] <= 1.0 and 0.0 <= r["edge_error"] <= 1.0 for r in mcmc)
    assert all((r["swap_rate"] is None) == r["sampler"].startswith("single") for r in mcmc + larger)
    assert [r["steps"] for r in larger] == [1200, 300]
    for r in larger:  # every row of the last table is printed
        assert f"| 6 | 500 | 0 | {r['sampler']} | {r['r_hat']:.3f} | {r['edge_spread']:.3f} |" in stdout
    assert "| 3 | 25 | 1 |" in stdout and "| 200 | tempered (4), S steps |" in stdout
    assert rows["seeds"] == 1 and rows["smoke"] and "--smoke" in rows["machine"]["command"]
