"""Every command refuses an unusable --json / --out before it starts any work (bayesstruct.commands.check_output_paths)."""

import json
from pathlib import Path

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


def _regression_csv(path):
    rows = [f"{a / 10},{(a % 7) / 10},{(a % 5) / 5}" for a in range(40)]
    path.write_text("a,b,t\n" + "\n".join(rows) + "\n")
    return path


SEARCH_CSV = ["search", "--family", "one-layer", "--primitives", "linear,linear_tanh", "--hidden", "2", "--target", "t",
              "--task", "regression", "--noise-scale", "0.1", "--smoke", "--no-progress"]
NETWORK_CSV = ["fit", "network", "--target", "t", "--task", "regression", "--smoke", "--no-progress"]


@pytest.mark.parametrize("command", [SEARCH_CSV, NETWORK_CSV], ids=["search", "fit network"])
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_search_and_fit_network_never_write_over_their_data(command, overwrite, tmp_path, capsys):
    data = _regression_csv(tmp_path / "data.csv")
    original = data.read_text()
    code, (_, err) = _exit_code([*command, "--data", str(data), "--json", str(data), *overwrite], capsys)
    assert code == 2 and "which is the --data file this command reads" in err
    assert data.read_text() == original


def test_search_out_keeps_a_network_pt_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "network.pt").write_text("USER MODEL\n")
    code, (_, err) = _exit_code(["search", "--smoke", "--no-progress", "--out", str(out)], capsys)
    assert code == 2 and "already holds network.pt" in err
    assert (out / "network.pt").read_text() == "USER MODEL\n"


def test_an_unwritable_output_directory_exits_2_before_any_work(tmp_path, capsys, monkeypatch):
    """Root writes through chmod 555, so the probe is made to fail as it does on a read-only file system."""
    import errno
    import tempfile

    locked = tmp_path / "locked"
    locked.mkdir()
    real = tempfile.TemporaryFile

    def probe(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == locked:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", probe)
    for flags, needle in ((["--json", str(locked / "r.json")], "--json: cannot write in directory"),
                          (["--out", str(locked)], "--out: cannot write in directory")):
        code, (out, err) = _exit_code([*POLY, *flags], capsys)
        assert code == 2 and needle in err and "Read-only file system" in err and out == ""
    code, (out, err) = _exit_code(["dbn", "--dataset", "digits", "--num-images", "20", "--num-samples", "2",
                                   "--checkpoint", str(locked / "c.ckpt"), "--no-progress"], capsys)
    assert code == 2 and "--checkpoint: cannot write in directory" in err and out == ""


def test_a_write_that_fails_after_the_work_is_an_error_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    import errno

    import bayesstruct.io as bio

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(bio, "write_atomic", full)
    code, (_, err) = _exit_code([*POLY, "--json", str(tmp_path / "r.json")], capsys)
    assert code == 1 and "No space left on device" in err and "r.json" in err and "Traceback" not in err
