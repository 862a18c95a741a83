"""The `emergence` command: thin wrappers over `python -m` modules.

Each subcommand runs exactly the module a user could run by hand or submit with
`ray job submit --working-dir . -- python -m MODULE ...`; extra arguments pass through.
This file imports nothing from Ray: the modules it starts do.
"""

from __future__ import annotations

import subprocess
import sys

import click

# --help goes through to the module, whose argparse help is the real reference
PASS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _run(module: str, args) -> None:
    cmd = [sys.executable, "-m", module, *args]
    raise SystemExit(subprocess.call(cmd))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="emergence")
def main():
    """Emergence on Ray: energy coordination, prediction, memory, sandboxes and synthesis."""


# name -> (module, leading arguments, help)
COMMANDS = {
    "up": ("cluster.local", ["start"], "Start the local Ray head (dashboard on 127.0.0.1:8265) and deploy the Serve app on :8000."),
    "down": ("cluster.local", ["stop"], "Shut down Serve and stop the local Ray head."),
    "status": ("cluster.local", ["status"], "Show the Ray head's status and whether Serve answers."),
    "relax": ("actors.relax", [], "Relax a problem spec on the cluster's energy coordinator (python -m actors.relax)."),
    "partitioned": ("actors.partitioned", [], "Relax the dense ring across K actors (python -m actors.partitioned)."),
    "sweep": ("tune.coupling", [], "Tune sweep over coupling weights and gate costs (python -m tune.coupling)."),
    "train-nvp": ("training.nvp", [], "Data-parallel NVP training with Ray Train's JaxTrainer (python -m training.nvp)."),
    "train-engine": ("training.emergence", [],
                     "Train the Emergence Engine's networks with Ray Train's TorchTrainer (python -m training.emergence)."),
    "synthesize": ("emergence.synthesis", [],
                   "Turn an intent into a Python tool with the trained engine (python -m emergence.synthesis)."),
    "sweep-nvp": ("tune.loss_weights", [],
                  "ASHA sweep over the NVP loss weights and learning rate (python -m tune.loss_weights)."),
    "synth-atlas": ("emergence.nvp.synthetic", [], "Write a synthetic energy-field atlas (python -m emergence.nvp.synthetic)."),
    "sandbox": ("emergence.sandbox", [],
                "Run code against test cases in a sandbox: --code PATH --entry NAME --tests PATH (python -m emergence.sandbox)."),
    "memory": ("actors.memory_shard", [],
               "Sharded vector memory on the cluster: create|add|search|stats (python -m actors.memory_shard)."),
    "memory-grpc": ("serving.memory_grpc.server", [],
                    "Serve the vector memory over gRPC (python -m serving.memory_grpc.server --port 50051)."),
    "experiment": ("emergence.energy.experiments", [],
                   "The seed's energy experiments: landau-sweep, sequence-redemption, connectivity, gated-expansion, all."),
}


def _passthrough(module: str, lead: list[str]):
    @click.pass_context
    def command(ctx):
        _run(module, [*lead, *ctx.args])

    return command


for _name, (_module, _lead, _help) in COMMANDS.items():
    main.command(name=_name, help=_help, context_settings=PASS)(_passthrough(_module, _lead))


@main.command(context_settings=PASS)
@click.pass_context
def bench(ctx):
    """Run a benchmark: emergence bench [NAME] [--quick] [--json PATH] (NAME defaults to energy)."""
    args = list(ctx.args)
    name = args.pop(0) if args and not args[0].startswith("-") else "energy"
    _run(f"benchmarks.{name}", args)


if __name__ == "__main__":
    main()
