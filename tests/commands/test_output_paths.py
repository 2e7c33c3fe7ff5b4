"""Every command refuses an unusable --json / --out before it starts any work (bayesstruct.commands.check_output_paths)."""

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
