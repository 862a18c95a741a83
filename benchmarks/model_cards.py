"""Write the shipped models' cards from the model files and the benchmark JSONs that measured them.

    python -m benchmarks.model_cards            # rewrite emergence/models/*/README.md
    python -m benchmarks.model_cards --check    # exit 1 when a card differs from what it would be

A card's figures are those of every report in benchmarks/results/ whose model sha256 (figures.model
or figures.training) is the shipped file's: a retrained model has no figures until it is
benchmarked, and a card can never describe another model than the one beside it. Nothing in a
card is typed by hand: how the model was trained comes from the model file itself.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import yaml

from emergence.models import SHIPPED, card_path, digest, size_bytes

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TITLES = {"engine": "Emergence Engine (the default model behind POST /synthesize)",
          "nvp": "NVP next-vector predictor (the default model behind POST /predict)"}
ABOUT = {
    "engine": "Intent encoder alignment, a diffusion denoiser over action latents and a coherence scorer, "
              "with fitted ranking weights and answer confidence (`emergence.synthesis`). It reads an intent "
              "in words and proposes typed DSL programs, compiled to Python and checked in the sandbox when "
              "examples are given.",
    "nvp": "A fully convolutional JAX/Flax network that predicts the next 2D energy field and its "
           "uncertainty from the last few (`emergence.nvp`), trained on the synthetic heat, advection and "
           "reaction domains at 64x64.",
}


LIMITS = {
    "engine": "Its reach is the DSL's operations: a request outside them should get `cannot_synthesize`. Pass rates "
              "on request sets written apart from this project's are lower than on the sets used for choices "
              "(each report above names its task file); with examples, answers are checked in the sandbox.",
    "nvp": "Trained on three synthetic periodic domains at one resolution; other physics get the unknown-domain "
           "embedding, and no figure here measures them. The uncertainty is calibrated on the training domains.",
}


def measured_sha(report: dict) -> str | None:
    figs = report.get("figures") or {}
    for key in ("model", "training"):
        part = figs.get(key)
        if isinstance(part, dict) and isinstance(part.get("sha256"), str):
            return part["sha256"]
    return None


def reports_for(sha: str, results: str = RESULTS) -> dict[str, dict]:
    out = {}
    for path in sorted(glob.glob(os.path.join(results, "*.json"))):
        with open(path) as f:
            report = json.load(f)
        if measured_sha(report) == sha:
            out[os.path.basename(path)] = report
    return out


def _round(v):
    return round(v, 4) if isinstance(v, float) else v


def training_of(name: str, path) -> tuple[dict, dict]:
    """(how it was trained, what on) from the model file itself."""
    if name == "engine":
        import torch

        state = torch.load(path, map_location="cpu", weights_only=False)
        data = {"corpus": state.get("corpus"), "encoder": state.get("encoder_name")}
        tuned = state.get("crucible")
        if tuned:  # fine-tuned after supervised training (training.crucible): how, from what, on what
            data["crucible"] = {k: tuned.get(k) for k in ("command", "base_sha256", "iterations", "programs", "seconds",
                                                           "seed", "finished", "problems_kept", "final_level")}
            data["crucible"]["problems"] = {k: tuned["problems"][k] for k in ("count", "sha256")}
        return state.get("trained") or {}, data
    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    return meta.get("trained") or {}, {"recipe": meta.get("recipe"), "domains": meta.get("trained_on"),
                                       "epochs": meta.get("epochs")}


def render(name: str, path=None, results: str = RESULTS) -> str:
    path = path or SHIPPED[name]
    sha = digest(path)
    trained, data = training_of(name, path)
    reports = reports_for(sha, results)
    meta = {
        "model": name, "path": os.path.relpath(path, REPO), "sha256": sha, "size_bytes": size_bytes(path),
        "trained": trained, "data": data, "license": "Apache-2.0",
        "benchmarks": {f: {"command": r["command"], "when": r["when"],
                           "targets": {k: {"value": _round(t["value"]), "goal": t["goal"], "met": t["met"]}
                                       for k, t in r["targets"].items()}}
                       for f, r in reports.items()},
    }
    lines = [f"# {TITLES[name]}", "", ABOUT[name], "",
             f"- File: `{meta['path']}`, {meta['size_bytes'] / 1e6:.1f} MB, sha256 `{sha}`.",
             f"- Trained by `{trained.get('command', 'unknown')}` (seed {trained.get('seed', '?')}), finished "
             f"{trained.get('finished', '?')}, {trained.get('seconds', 0) / 60:.0f} min on {trained.get('cpus', '?')} CPUs.",
             *([f"- Then fine-tuned by the Digital Crucible (RLlib PPO, rewards from sandbox-run tests): "
                f"`{data['crucible']['command']}`, {data['crucible']['iterations']} iterations, "
                f"{data['crucible']['programs']} programs judged, {data['crucible']['seconds'] / 60:.0f} min, from the "
                f"supervised engine sha256 `{data['crucible']['base_sha256']}` (see docs/crucible.md)."]
              if data.get("crucible") else []),
             "- Served by default by `make run`; a model you train replaces it only where you point at it "
             "(`EMERGENCE_ENGINE_MODEL` / `EMERGENCE_NVP_MODEL`).", ""]
    if not reports:
        lines += ["No benchmark report in `benchmarks/results/` measured this file: it has no figures yet.", ""]
    for f, r in meta["benchmarks"].items():
        lines += [f"## `benchmarks/results/{f}` ({r['when']})", "", f"`{r['command']}`", "",
                  "| target | value | goal | met |", "|---|---:|---|---|"]
        lines += [f"| {k} | {t['value']:.4g} | {t['goal']} | {'yes' if t['met'] else 'no'} |"
                  for k, t in r["targets"].items()]
        lines.append("")
    lines += ["## Limits", "", LIMITS[name], ""]
    head = yaml.safe_dump(meta, sort_keys=False, width=120)
    return f"---\n{head}---\n" + "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 where a card is out of date")
    args = ap.parse_args(argv)
    stale = []
    for name, path in SHIPPED.items():
        if not os.path.exists(path):
            print(f"{name}: no shipped model at {path}", file=sys.stderr)
            stale.append(name)
            continue
        card = render(name, path)
        target = card_path(path)
        current = target.read_text() if target.is_file() else None
        if current == card:
            print(f"{name}: {target} is up to date")
        elif args.check:
            print(f"{name}: {target} differs from the card its model and benchmark reports give", file=sys.stderr)
            stale.append(name)
        else:
            tmp = target.with_suffix(".tmp")
            tmp.write_text(card)
            os.replace(tmp, target)
            print(f"{name}: wrote {target}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
