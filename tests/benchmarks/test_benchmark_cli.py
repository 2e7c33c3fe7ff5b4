"""The benchmark scripts' command lines: one ``--json PATH`` (``--out`` a deprecated alias where a
script had it) checked before the run, positive counts, one ``--degrees`` parser, no tracebacks on
bad input. Argument errors are instant: every check runs before any work."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent.parent / "benchmarks"
SCRIPTS = ("bayes_net", "dbn", "evidence", "obd_diagnosis", "prior_hyperparameters", "pruning", "search",
           "structure", "superposition")
_loaded = {}


def bench(name: str):
    """``benchmarks/<name>.py`` loaded from its path (once)."""
    if name not in _loaded:
        spec = importlib.util.spec_from_file_location(f"{name}_cli_benchmark", BENCHMARKS / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up there
        spec.loader.exec_module(mod)
        _loaded[name] = mod
    return _loaded[name]


def argparse_error(name: str, argv: list[str], capsys) -> str:
    """Runs ``main(argv)``, which must exit with status 2 (argparse's) before any work; returns stderr."""
    with pytest.raises(SystemExit) as exc:
        bench(name).main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------------ counts: positive integers

COUNTS = [
    ("bayes_net", "--seeds"),
    ("search", "--seeds"), ("search", "--hidden"), ("search", "--num-samples"), ("search", "--num-test"),
    ("search", "--threads"),
    ("superposition", "--seeds"),
    ("dbn", "--num-sweeps"), ("dbn", "--sizes"),
    ("structure", "--seeds"), ("structure", "--repeats"), ("structure", "--digits-steps"),
    ("structure", "--digits-window"), ("structure", "--threads"),
    ("evidence", "--seeds"), ("evidence", "--baseline-steps"),
    ("pruning", "--threads"), ("obd_diagnosis", "--threads"),
]


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
@pytest.mark.parametrize(("name", "flag"), COUNTS)
def test_counts_must_be_positive_integers(name, flag, value, capsys):
    err = argparse_error(name, [flag, value], capsys)
    assert f"argument {flag}:" in err and ("positive" in err or "integer" in err)


@pytest.mark.parametrize(("name", "flag"), [("dbn", "--warmup"), ("dbn", "--seed"), ("evidence", "--baseline-seed"),
                                            ("prior_hyperparameters", "--seed")])
def test_seeds_and_warmup_must_be_non_negative_integers(name, flag, capsys):
    assert f"argument {flag}:" in argparse_error(name, [flag, "-1"], capsys)
    assert f"argument {flag}:" in argparse_error(name, [flag, "x"], capsys)


def test_digits_tol_must_be_a_positive_number(capsys):
    for value in ("0", "-0.1", "nan", "x"):
        assert "argument --digits-tol:" in argparse_error("structure", ["--digits-tol", value], capsys)


@pytest.mark.parametrize("value", ["", "500,x", ",", "100,0", "-5"])
def test_dbn_sizes_are_comma_separated_positive_integers(value, capsys):
    err = argparse_error("dbn", ["--sizes", value], capsys)
    assert "argument --sizes:" in err and "500,1797" in err


def test_one_positive_int_type_is_shared():
    common = bench("bayes_net").positive_int
    for name in SCRIPTS:
        mod = bench(name)
        if hasattr(mod, "positive_int"):
            assert mod.positive_int is common, name


# ------------------------------------------------------------------ --degrees


@pytest.mark.parametrize("name", ["evidence", "prior_hyperparameters"])
@pytest.mark.parametrize("value", ["foo", "5:2", "0:x", "-1,2", ","])
def test_degrees_is_one_parser_naming_the_flag_and_the_forms(name, value, capsys):
    err = argparse_error(name, [f"--degrees={value}"], capsys)
    assert "argument --degrees:" in err and "0:9" in err and "0,3,6" in err


def test_the_two_scripts_share_the_degrees_parser():
    assert bench("evidence").parse_degrees is bench("prior_hyperparameters").parse_degrees
    assert bench("evidence").parse_degrees("0:3") == [0, 1, 2, 3]
    assert bench("evidence").parse_degrees("0,3,6") == [0, 3, 6]


def test_baseline_degrees_error_names_its_own_flag(capsys):
    err = argparse_error("evidence", ["--baseline-degrees", "foo"], capsys)
    assert "argument --baseline-degrees:" in err and "0:9" in err


# ------------------------------------------------------------------ --json PATH, checked before the run

#: (script, the flags of its JSON output)
JSON_FLAGS = [(name, "--json") for name in SCRIPTS] + [("evidence", "--out"), ("pruning", "--out")]


@pytest.mark.parametrize(("name", "flag"), JSON_FLAGS)
def test_an_existing_json_file_is_refused_without_overwrite(name, flag, tmp_path, capsys):
    out = tmp_path / "saved.json"
    out.write_text('{"kept": true}')
    err = argparse_error(name, [flag, str(out)], capsys)
    assert flag in err and "already exists" in err and "--overwrite" in err
    assert out.read_text() == '{"kept": true}'


@pytest.mark.parametrize(("name", "flag"), JSON_FLAGS)
def test_a_json_path_in_a_missing_directory_is_refused(name, flag, tmp_path, capsys):
    err = argparse_error(name, [flag, str(tmp_path / "no" / "such" / "rows.json")], capsys)
    assert flag in err and "does not exist" in err


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_json_path_that_is_a_directory_is_refused(name, tmp_path, capsys):
    assert "is a directory" in argparse_error(name, ["--json", str(tmp_path), "--overwrite"], capsys)


def test_evidence_json_may_not_replace_the_baseline_it_reads(tmp_path, capsys):
    saved = tmp_path / "evidence.json"
    saved.write_text("{}")
    err = argparse_error("evidence", ["--baseline-from", str(saved), "--json", str(saved), "--overwrite"], capsys)
    assert "--baseline-from" in err and saved.read_text() == "{}"


@pytest.mark.parametrize("content", [None, "not json", '{"results": {}}'])
def test_evidence_unreadable_baseline_from_is_an_argparse_error(content, tmp_path, capsys):
    path = tmp_path / "earlier.json"
    if content is not None:
        path.write_text(content)
    err = argparse_error("evidence", ["--baseline-from", str(path), "--skip-cli"], capsys)
    assert "--baseline-from" in err


@pytest.mark.parametrize(("flag", "value"), [("--cases", "known,unknown"), ("--cases", ","),
                                             ("--baseline-guides", "svi-mvn,svi-full")])
def test_evidence_unknown_cases_and_guides_are_argparse_errors(flag, value, capsys):
    err = argparse_error("evidence", [flag, value], capsys)
    assert flag in err and value in err


def test_search_missing_mnist_is_an_argparse_error(tmp_path, capsys):
    err = argparse_error("search", ["--dataset", f"mnist:{tmp_path / 'absent'}"], capsys)
    assert "--dataset" in err and "does not exist" in err


MNIST = BENCHMARKS.parent.parent / "shared" / "data" / "mnist"


@pytest.mark.skipif(not (MNIST / "t10k-labels-idx1-ubyte.gz").is_file(), reason="no MNIST files here")
@pytest.mark.parametrize(("flag", "value"), [("--num-samples", "60001"), ("--num-test", "10001")])
def test_search_more_mnist_rows_than_the_split_holds_is_an_argparse_error(flag, value, capsys):
    err = argparse_error("search", ["--dataset", f"mnist:{MNIST}", flag, value], capsys)
    assert flag in err and value in err


def test_evidence_baseline_degrees_must_be_among_the_degrees(capsys):
    err = argparse_error("evidence", ["--degrees", "0:3", "--baseline-degrees", "2,5"], capsys)
    assert "--baseline-degrees" in err and "[5]" in err


def test_pruning_figures_must_not_be_a_file(tmp_path, capsys):
    (tmp_path / "figs").write_text("")
    assert "--figures" in argparse_error("pruning", ["--quick", "--figures", str(tmp_path / "figs")], capsys)


def test_obd_diagnosis_figure_must_not_be_a_directory(tmp_path, capsys):
    assert "--figure" in argparse_error("obd_diagnosis", ["--quick", "--figure", str(tmp_path)], capsys)


# ------------------------------------------------------------------ what --json writes


def _machine(d: dict, *argv: str) -> None:
    m = d["machine"]
    assert all(a in m["command"] for a in argv)
    assert m["date"][:2] == "20" and m["torch"] and m["python"] and m["pyro"]


def test_dbn_smoke_writes_every_number_it_prints_and_overwrite_replaces(tmp_path, capsys):
    out = tmp_path / "dbn.json"
    out.write_text("old")
    assert bench("dbn").main(["--smoke", "--json", str(out), "--overwrite"]) == 0
    text = capsys.readouterr().out
    d = json.loads(out.read_text())
    _machine(d, "--smoke", "--json")
    assert (d["sizes"], d["warmup"], d["num_sweeps"]) == ([100], 5, 10)
    assert "warm-up 5, timed sweeps 10" in text  # the settings used, not the defaults
    (row,) = d["rows"]
    assert f"{row['N']:>5} {row['sweeps_per_s']:>9.2f} {row['s_per_sweep']:>8.3f}" in text
    assert set(row["share"]) == set(bench("dbn").MOVES)


def test_prior_hyperparameters_writes_its_table(tmp_path, capsys):
    out = tmp_path / "ph.json"
    assert bench("prior_hyperparameters").main(["--degrees", "0,1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    d = json.loads(out.read_text())
    _machine(d, "--degrees")
    assert d["degrees"] == [0, 1] and [r["degree"] for r in d["rows"]] == [0, 1]
    for r in d["rows"]:
        assert f"{r['degree']:>6}  {r['exact']:>18.4f}" in text
        assert set(r["error"]) == {"laplace", "elbo", "iwae", "smc"}
    assert set(d["max_abs_error"]) == set(d["cpu_seconds"]) == {"laplace", "elbo", "iwae", "smc"}


def test_evidence_out_is_a_working_alias_of_json(tmp_path, capsys):
    out = tmp_path / "ev.json"
    argv = ["--degrees", "0,1", "--methods", "laplace", "--skip-baseline", "--skip-cli", "--cases", "known",
            "--no-progress", "--out", str(out)]
    assert bench("evidence").main(argv) == 0
    d = json.loads(out.read_text())
    _machine(d, "--out")
    assert d["args"]["json"] == str(out) and "out" not in d["args"]
    assert set(d["results"]["known"]["runs"]) == {"exact", "laplace"}
    capsys.readouterr()
    assert "already exists" in argparse_error("evidence", argv, capsys)  # a second run is refused
    assert bench("evidence").main(argv + ["--overwrite"]) == 0


def test_structure_writes_json(tmp_path):
    out = tmp_path / "structure.json"
    assert bench("structure").main(["--skip-teacher", "--skip-speed", "--skip-digits", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    _machine(d, "--skip-teacher")
    assert d["args"]["repeats"] == 30 and "teacher" not in d


# ------------------------------------------------------------------ Markdown tables


def test_superposition_table_header_in_benchmarks_md_has_as_many_columns_as_its_rows():
    lines = (BENCHMARKS.parent / "BENCHMARKS.md").read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("| max vertices | N | distinct trees |"))

    def cells(line):
        return len(line.replace("\\|", "").strip().strip("|").split("|"))

    assert "p(teacher \\| D)" in lines[i]
    assert cells(lines[i]) == cells(lines[i + 1]) == cells(lines[i + 2]) == 6


def test_evidence_summary_max_signed_error_is_over_every_degree_and_seed():
    # degree 1: seeds give -0.05 (the largest |error|) and -0.01; the largest signed error is -0.01, not -0.05
    runs = [{"seed": s, "cpu": 0.1, "wall": 0.1,
             "degrees": {1: {"log_evidence": e, "stderr": 0.01, "cpu": 0.1, "warnings": [], "diagnostics": {}}}}
            for s, e in ((0, -1.05), (1, -1.01))]
    summary = bench("evidence").summarise({"exact": {1: -1.0}, "runs": {"elbo": runs}}, [1])["methods"]["elbo"]
    assert summary["worst_error"][1] == pytest.approx(-0.05)
    assert summary["max_signed_error"] == pytest.approx(-0.01)


def test_structure_benchmark_checks_its_goals():
    teacher = [dict(kind="edge", n=100, teacher="linear", seeds=5, gamma_hits=5, gamma_min=0.97, best_evidence=5),
               dict(kind="edge", n=100, teacher="linear_tanh", seeds=5, gamma_hits=4, gamma_min=0.6, best_evidence=5),
               dict(kind="hidden", n=200, teacher="linear", seeds=2, gamma_hits=0, gamma_min=0.1, best_evidence=0)]
    rows = bench("structure").goals({"teacher_summary": teacher,
                                     "speed": [{"name": "one-layer digits", "ratio_mf_pk": 1.9},
                                               {"name": "MNIST MLP", "ratio_mf_pk": 2.1}],
                                     "digits": {"total_s": 15.0, "steps": 1100}})
    status = {r["goal"]: r["status"] for r in rows}
    assert status["N=100, teacher linear: E[γ_teacher] >= 0.9 in every seed"] == "PASS"
    assert status["N=100, teacher linear_tanh: E[γ_teacher] >= 0.9 in every seed"] == "FAIL"  # 4 of 5
    assert not any("N=200" in g for g in status)  # the hidden-layer teacher has no goal
    assert status["one-layer digits: packed jit mean-field SVI step <= 2x forward + backward"] == "PASS"
    assert status["MNIST MLP: packed jit mean-field SVI step <= 2x forward + backward"] == "FAIL"
    assert status["digits fit <= 120 s"] == "PASS"
