"""Fixtures shared by the command tests."""

import pytest

from bayesstruct.cli import main


@pytest.fixture
def run_dbn(capsys):
    """Run ``bayesstruct dbn ARGV`` in-process: ``(exit status, stdout, stderr)``."""
    def run(*argv):
        try:
            code = main(["dbn", *map(str, argv)])
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
