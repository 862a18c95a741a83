"""The `emergence` CLI passes through to the `python -m` modules."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from emergence.cli import COMMANDS, main


def test_every_subcommand_is_listed():
    out = CliRunner().invoke(main, ["--help"]).output
    for name in [*COMMANDS, "bench"]:
        assert name in out


def test_help_reaches_the_module():
    r = subprocess.run([sys.executable, "-m", "emergence.cli", "relax", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    assert "--dense-ring" in r.stdout  # actors.relax's own argparse help


def test_module_errors_propagate_as_exit_codes():
    r = subprocess.run([sys.executable, "-m", "emergence.cli", "relax", "--dense-ring", "2"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "--dense-ring: needs N >= 3" in r.stderr


def test_bench_flags_are_not_taken_for_a_benchmark_name(monkeypatch):
    import emergence.cli as cli

    calls = []
    monkeypatch.setattr(cli, "_run", lambda module, args: calls.append((module, list(args))))
    CliRunner().invoke(main, ["bench", "--quick", "--json", "x.json"])
    CliRunner().invoke(main, ["bench", "energy", "--quick"])
    assert calls == [("benchmarks.energy", ["--quick", "--json", "x.json"]), ("benchmarks.energy", ["--quick"])]
