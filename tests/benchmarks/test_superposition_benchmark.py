"""benchmarks/superposition.py: its smoke run prints both tables and writes the rows it printed."""


def test_smoke_run(smoke_run):
    stdout, rows = smoke_run("superposition.py")
    rec, mh = rows["recovery"], rows["mh"]
    assert [(r["max_size"], r["N"]) for r in rec] == [(4, 30)]
    assert 0 <= rec[0]["teacher_is_map"] <= rec[0]["seeds"] == 2
    assert all(0.0 <= r["tv"] <= 1.0 for r in mh) and len(mh) == 6
    assert sorted((r["sampler"], r["seed"]) for r in mh) == [("default", 0), ("default", 1), ("regenerate", 0),
                                                             ("regenerate", 1), ("tempered (4)", 0), ("tempered (4)", 1)]
    for r in mh:  # every row of the side-by-side table is printed
        assert f"| 4 (516) | 2,000 | {r['sampler']} |" in stdout
    assert f"| 4 | 30 | {rec[0]['distinct_trees']} | {rec[0]['teacher_is_map']}/2 |" in stdout
    # the header's "|" in p(teacher | D) is escaped, so the Markdown table has six columns, as its rows
    header = next(line for line in stdout.splitlines() if line.startswith("| max vertices | N |"))
    assert "p(teacher \\| D)" in header and len(header.replace("\\|", "").strip("| ").split("|")) == 6
    assert rows["seeds"] == 2 and rows["smoke"] and "--smoke" in rows["machine"]["command"]
