from __future__ import annotations

import io
import subprocess
import sys

import tamale
from tamale.cli import main
from tamale.cli._progress import TerminalProgress
from tamale.progress import ProgressEvent


def test_version_through_the_installed_entry_point():
    out = subprocess.run(["tamale", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"tamale {tamale.__version__}"


def test_python_dash_m_and_help_list_the_commands():
    out = subprocess.run(
        [sys.executable, "-m", "tamale.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in out.stdout


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: tamale" in capsys.readouterr().out


def test_terminal_progress_writes_one_line_per_stage_when_not_a_tty():
    stream = io.StringIO()
    bar = TerminalProgress(stream=stream, width=10, interval=1e9)
    for i in range(1, 5):
        bar(ProgressEvent("slices", i, 4))
    bar(ProgressEvent("write", 1, None, message="chunk 1"))
    lines = stream.getvalue().splitlines()
    assert lines[0].strip().startswith("slices [##--------] 1/4")
    assert lines[1].strip().startswith("slices [##########] 4/4")
    assert lines[2].strip() == "write 1  chunk 1"
