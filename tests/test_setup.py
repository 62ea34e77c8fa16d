"""The Makefile's set-up heals itself: a first `make run` or `make test` cut short during its
install leaves a half-made .venv, and the next run starts it over instead of failing.

The recipe runs for real (GNU make, the repository's own Makefile) with a stand-in Python
whose `-m venv` and `-m pip` only write down what they were asked: no network, no minutes
of installing. The stand-in's pip can be told to fail, as an interrupted install does.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_runner import ROOT

STANDIN = r"""#!/bin/sh
# A stand-in python: `-m venv DIR` makes DIR/bin/python (this script); `-m pip ...` is
# logged, and fails while $FAIL_PIP names an existing file.
echo "$*" >> "$CALLS"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  if [ "$3" = "install" ] && [ -e "$FAIL_PIP" ]; then exit 1; fi
  exit 0
fi
exit 0
"""


def make(project: Path, python: Path, fail_pip: bool) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "CALLS": str(project / "calls.log"),
        "FAIL_PIP": str(project / "fail") if fail_pip else "/nonexistent",
    }
    return subprocess.run(
        ["make", "--no-print-directory", f"PYTHON={python}", ".venv/.installed"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_an_install_cut_short_is_started_over_by_the_next_run(tmp_path: Path) -> None:
    project = tmp_path / "clone"
    project.mkdir()
    shutil.copy(ROOT / "Makefile", project)
    shutil.copy(ROOT / "pyproject.toml", project)
    python = tmp_path / "python3"
    python.write_text(STANDIN)
    python.chmod(0o755)

    (project / "fail").touch()
    first = make(project, python, fail_pip=True)  # the install dies half-way
    assert first.returncode != 0
    assert (project / ".venv/.installing").exists()
    assert not (project / ".venv/.installed").exists()
    (project / ".venv/leftover").touch()  # whatever the cut-short install left behind

    second = make(project, python, fail_pip=False)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "was cut short: starting it over" in second.stdout
    assert not (project / ".venv/leftover").exists()  # a fresh .venv, not the half one
    assert not (project / ".venv/.installing").exists()
    assert (project / ".venv/.installed").exists()

    third = make(project, python, fail_pip=False)  # a finished set-up is left alone
    assert third.returncode == 0 and "starting it over" not in third.stdout
