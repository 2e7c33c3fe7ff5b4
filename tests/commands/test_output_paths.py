"""Every command refuses an unusable --json / --out before it starts any work (bayesstruct.commands.check_output_paths)."""

import json

import pytest

from bayesstruct.cli import main

COMMANDS = {
    "compare": ["compare", "polynomial", "--degrees", "1", "--methods", "exact", "--workers", "1", "--no-progress"],
    "prune": ["prune", "--method", "magnitude", "--amount", "0.5", "--smoke", "--no-progress"],
    "dbn": ["dbn", "--dataset", "digits", "--num-images", "20", "--num-samples", "2", "--warmup", "0", "--no-progress"],
    "fit network": ["fit", "network", "--dataset", "digits", "--smoke", "--no-progress"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("flags, needle", [
    (lambda tmp: ["--json", str(tmp / "missing" / "r.json")], "--json: directory"),
    (lambda tmp: ["--json", str(tmp)], "is a directory"),
    (lambda tmp: ["--out", str(tmp / "a-file")], "exists and is not a directory"),
], ids=["json-in-missing-dir", "json-is-a-dir", "out-is-a-file"])
def test_bad_output_path_exits_2_before_any_work(command, flags, needle, tmp_path, capsys):
    (tmp_path / "a-file").write_text("precious\n")
    with pytest.raises(SystemExit) as exc:
        main([*COMMANDS[command], *flags(tmp_path)])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert needle in err and out == ""  # nothing was computed, nothing printed
    assert (tmp_path / "a-file").read_text() == "precious\n" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


POLY = COMMANDS["compare"]


def _exit_code(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr()


def test_an_existing_json_is_kept_unless_overwrite(tmp_path, capsys):
    path = tmp_path / "mine.json"
    path.write_text("precious\n")
    code, (out, err) = _exit_code([*POLY, "--json", str(path)], capsys)
    assert code == 2 and "already exists; pass --overwrite" in err and out == ""
    assert path.read_text() == "precious\n"
    assert main([*POLY, "--json", str(path), "--overwrite"]) == 0
    assert json.loads(path.read_text())["family"]


def test_an_out_directory_of_an_earlier_run_is_kept_unless_overwrite(tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert main([*POLY, "--out", str(out_dir)]) == 0
    first = json.loads((out_dir / "results.json").read_text())
    (out_dir / "results.json").write_text("edited by the user\n")
    code, (_, err) = _exit_code([*POLY, "--out", str(out_dir)], capsys)
    assert code == 2 and "already holds results.json" in err
    assert (out_dir / "results.json").read_text() == "edited by the user\n"
    assert main([*POLY, "--out", str(out_dir), "--overwrite"]) == 0
    assert json.loads((out_dir / "results.json").read_text())["family"] == first["family"]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_an_output_is_never_the_input_data(tmp_path, capsys, overwrite):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n0,1\n0.5,0\n1,-1\n")
    argv = ["compare", "polynomial", "--data", str(data), "--x", "a", "--y", "b", "--degrees", "0:1",
            "--methods", "exact", "--no-progress"]
    code, (_, err) = _exit_code([*argv, "--json", str(data), *overwrite], capsys)
    assert code == 2 and "which is the --data file this command reads" in err
    data.rename(tmp_path / "results.json")
    code, (_, err) = _exit_code([*argv[:2], "--data", str(tmp_path / "results.json"), *argv[4:],
                                 "--out", str(tmp_path), *overwrite], capsys)
    assert code == 2 and "which is the --data file" in err
    assert (tmp_path / "results.json").read_text() == "a,b\n0,1\n0.5,0\n1,-1\n"


def test_decompress_save_never_replaces_the_compressed_file(tmp_path, capsys):
    assert main(["prune", "--method", "deep-compression", "--amount", "0.9", "--bits", "4", "--smoke", "--epochs", "1",
                 "--no-progress", "--out", str(tmp_path / "dc")]) == 0
    bsc = tmp_path / "dc" / "model.bsc"
    original = bsc.read_bytes()
    code, (_, err) = _exit_code(["decompress", str(bsc), "--save", str(bsc), "--overwrite"], capsys)
    assert code == 2 and "is FILE itself" in err and bsc.read_bytes() == original
    saved = tmp_path / "model.pt"
    saved.write_text("precious\n")
    code, (_, err) = _exit_code(["decompress", str(bsc), "--save", str(saved)], capsys)
    assert code == 2 and "already exists; pass --overwrite" in err and saved.read_text() == "precious\n"
    assert main(["decompress", str(bsc), "--save", str(saved), "--overwrite"]) == 0
    assert saved.read_bytes() != b"precious\n"
    code, (_, err) = _exit_code(["decompress", str(tmp_path / "dc")], capsys)
    assert code == 2 and "is a directory; give the .bsc file" in err
    (tmp_path / "short.bsc").write_bytes(original[:10])
    code, (_, err) = _exit_code(["decompress", str(tmp_path / "short.bsc")], capsys)
    assert code == 2 and "truncated Deep Compression file" in err and "magic" not in err


def test_a_malformed_scheduler_address_exits_2(capsys):
    code, (_, err) = _exit_code([*POLY[:-3], "--no-progress", "--scheduler", "foo"], capsys)
    assert code == 2 and "--scheduler: cannot connect to 'foo'" in err and "tcp://HOST:PORT" in err
