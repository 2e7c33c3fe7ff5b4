import json
import subprocess
import sys

import pytest

from bayesstruct.cli import main, parse_degrees


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_parse_degrees():
    assert parse_degrees("0:3") == [0, 1, 2, 3]
    assert parse_degrees("2,5") == [2, 5]


@pytest.mark.parametrize("bad", ["a", "-1:2", "5:3", "1.5", ""])
def test_bad_degrees_exit_with_message(capsys, bad):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "polynomial", "--degrees", bad, "--workers", "1"])
    assert exc.value.code == 2
    assert "--degrees" in capsys.readouterr().err


def test_json_output(tmp_path, capsys):
    path = tmp_path / "res.json"
    code, out, _ = run(capsys, "compare", "polynomial", "--degrees", "1:4", "--methods", "exact,laplace",
                       "--workers", "1", "--no-progress", "--json", str(path), "--no-loo")
    assert code == 0
    assert "degree=4" in out
    d = json.loads(path.read_text())
    assert d["best"] == {"degree": 4}
    s = d["structures"][0]
    assert s["structure"] == {"degree": 4}
    assert set(s["estimates"]) == {"exact", "laplace"}
    assert abs(s["estimates"]["exact"]["log_evidence"] - s["estimates"]["laplace"]["log_evidence"]) < 1e-6
    assert s["estimates"]["exact"]["stderr"] is None
    assert isinstance(s["estimates"]["exact"]["seconds"], float)
    assert s["log_bayes_factor_vs_best"] == 0.0
    assert 0 < s["posterior_probability"] <= 1


def test_csv_data_and_missing_column(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n" + "\n".join(f"{i / 10},{(i / 10) ** 2}" for i in range(10)) + "\n")
    code, out, _ = run(capsys, "compare", "polynomial", "--data", str(csv), "--x", "a", "--y", "b", "--degrees", "0:2",
                       "--methods", "exact", "--workers", "1", "--no-progress", "--beta", "1e4")
    assert code == 0 and "degree=2" in out.splitlines()[4]  # a quadratic wins (first row under the header)
    with pytest.raises(SystemExit) as exc:
        main(["compare", "polynomial", "--data", str(csv), "--x", "a", "--y", "nope", "--workers", "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "['a', 'b']" in err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--methods", "exact,bogus"], "bogus"),
        (["--alpha", "0"], "alpha"),
        (["--beta", "-1"], "beta"),
        (["--methods", "exact", "--data", "missing.csv", "--x", "a", "--y", "b"], "missing.csv"),
        (["--num-steps", "0", "--methods", "elbo"], "--num-steps"),
    ],
)
def test_bad_options_exit_2(capsys, argv, needle):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "polynomial", "--degrees", "1", "--workers", "1", "--no-progress", *argv])
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("argv, flag", [
    (["polynomial", "--n", "0"], "`--n` must be an integer >= 1"),
    (["polynomial", "--workers", "0"], "`--workers` must be a positive integer"),
    (["polynomial", "--data", "missing.csv", "--x", "a", "--y", "b"], "`--data`: no such file"),
    (["bayes-net", "--max-parents", "-1"], "`--max-parents` must be an integer >= 0"),
    (["bayes-net", "--noise-scale", "-1"], "`--noise-scale` must be a finite number > 0"),
    (["superposition", "--unary", "foo,sqrt"], "`--unary` names an unknown elementary function 'foo'; known of arity 1: log1p"),
    (["superposition", "--binary", "sqrt"], "`--binary` must list functions of arity 2"),
])
def test_errors_name_the_flag_not_the_python_argument(capsys, argv, flag):
    with pytest.raises(SystemExit) as exc:
        main(["compare", *argv, "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "add," not in err.split("arity 1")[-1][:60]


def test_flag_message_rewrites_only_this_commands_flags():
    from bayesstruct.cli import build_parser, flag_message

    parser = build_parser()
    args = parser.parse_args(["compare", "polynomial", "--n", "3"])
    assert flag_message("`n` and `num_steps` bad; `weights` and `y[0]`", args, parser) == \
        "`--n` and `--num-steps` bad; `weights` and `y[0]`"  # `weights` is no flag of compare polynomial


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "bayesstruct.cli", "compare", "polynomial", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--degrees" in out.stdout and "--scheduler" in out.stdout


def test_out_directory_has_figures_netcdf_and_json(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "compare", "polynomial", "--degrees", "1,3", "--methods", "exact,laplace,smc",
                          "--smoke", "--workers", "1", "--no-progress", "--out", str(out))
    assert code == 0
    assert "LOO" in stdout  # printed beside the evidence
    for name in ("evidence.png", "predictive.png", "posterior_probabilities.png", "weights_forest.png", "results.json"):
        assert (out / name).stat().st_size > 0, name
    assert len(list((out / "posterior").glob("*.nc"))) == 2
    assert json.loads((out / "results.json").read_text())["best"] == {"degree": 3}


def test_decompress_restores_and_rejects_corrupt_files(tmp_path, capsys):
    import torch

    from bayesstruct.prune import compress, prune, share_weights

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).float()
    prune(model, "magnitude", amount=0.5)
    shared = share_weights(model, bits=3)
    path = tmp_path / "m.bsdc"
    compress(model, shared, path, index_bits=3)
    code, out, _ = run(capsys, "decompress", str(path), "--save", str(tmp_path / "m.pt"))
    assert code == 0 and "non-zero" in out and (tmp_path / "m.pt").is_file()
    from bayesstruct.prune import decompress

    restored, direct = torch.load(tmp_path / "m.pt", weights_only=False), decompress(path)
    x = torch.randn(4, 6, dtype=next(direct.parameters()).dtype)
    assert torch.equal(restored(x), direct(x))  # the saved file is the whole restored model
    with pytest.raises(SystemExit) as exc:  # --save into a missing directory: refused before any work
        main(["decompress", str(path), "--save", str(tmp_path / "missing" / "m.pt")])
    assert exc.value.code == 2 and "--save" in capsys.readouterr().err
    path.write_bytes(path.read_bytes()[:-7])  # truncated
    with pytest.raises(SystemExit) as exc:
        main(["decompress", str(path)])
    assert exc.value.code == 2 and "bayesstruct: error" in capsys.readouterr().err


def test_a_reader_that_stops_early_gets_no_traceback(monkeypatch):
    """``bayesstruct ... | head -1``: when the pipe's reader has gone, the command stops quietly with
    128 + SIGPIPE, as Unix tools do, instead of a BrokenPipeError traceback."""
    import io
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    stdout = io.TextIOWrapper(os.fdopen(write_end, "wb", buffering=0), write_through=True)
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        assert main(["compare", "bayes-net", "--n", "50", "--no-progress"]) == 141
    finally:
        monkeypatch.undo()
        stdout.close()
