"""The `emergence` command: thin wrappers over `python -m` modules.

Each subcommand runs exactly the module a user could run by hand or submit with
`ray job submit --working-dir . -- python -m MODULE ...`; extra arguments pass through.
This file imports nothing from Ray: the modules it starts do.
"""

from __future__ import annotations

import subprocess
import sys

import click

PASS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["-h", "--help"]}


def _run(module: str, args) -> None:
    cmd = [sys.executable, "-m", module, *args]
    raise SystemExit(subprocess.call(cmd))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="emergence")
def main():
    """Emergence on Ray: energy coordination, prediction, memory, sandboxes and synthesis."""


@main.command(context_settings=PASS)
@click.pass_context
def up(ctx):
    """Start the local Ray head (dashboard on 127.0.0.1:8265) and deploy the Serve app on :8000."""
    _run("cluster.local", ["start", *ctx.args])


@main.command(context_settings=PASS)
@click.pass_context
def down(ctx):
    """Shut down Serve and stop the local Ray head."""
    _run("cluster.local", ["stop", *ctx.args])


@main.command(context_settings=PASS)
@click.pass_context
def status(ctx):
    """Show the Ray head's status and whether Serve answers."""
    _run("cluster.local", ["status", *ctx.args])


@main.command(context_settings=PASS)
@click.pass_context
def relax(ctx):
    """Relax a problem spec on the cluster's energy coordinator (python -m actors.relax)."""
    _run("actors.relax", ctx.args)


@main.command(context_settings=PASS)
@click.pass_context
def partitioned(ctx):
    """Relax the dense ring across K actors (python -m actors.partitioned)."""
    _run("actors.partitioned", ctx.args)


@main.command(context_settings=PASS)
@click.pass_context
def sweep(ctx):
    """Tune sweep over coupling weights and gate costs (python -m tune.coupling)."""
    _run("tune.coupling", ctx.args)


@main.command(context_settings=PASS)
@click.argument("name", default="energy")
@click.pass_context
def bench(ctx, name):
    """Run a benchmark: python -m benchmarks.NAME [--quick] [--json PATH]."""
    _run(f"benchmarks.{name}", ctx.args)


@main.command(context_settings=PASS)
@click.pass_context
def experiment(ctx):
    """The seed's energy experiments: landau-sweep, sequence-redemption, connectivity, gated-expansion, all."""
    _run("emergence.energy.experiments", ctx.args)


if __name__ == "__main__":
    main()
