"""How widely to draw when examples will choose: the described program among the candidates.

    python -m benchmarks.synthesis_sampling [--model runs/emergence/model.pt] [--quick] [--json PATH]

With examples, `SynthesisService` runs up to `max_verified` (32) ranked candidates on them and
answers with the first that passes, so what matters is whether the right program is among those
32 at all, and what drawing them costs. This measures that on the corpus's held-out programs
described in held-out wordings (`calibration.jsonl` beside the model), taking the records after
those the ranking and confidence fits used (`calibrate._order`), so nothing here was fitted on.
A candidate is the described program when its operations are the record's (arguments are read
from the words either way). The service's settings were chosen on records like these, so their
row is in-sample for that choice; the task sets' benchmark (`benchmarks.synthesis`) is the check
on requests worded by people.

Rows: the service's settings (draws, readings kept per draw, slot temperature) against the
settings it had before (64 draws, 3 readings, temperature 1) and single changes between the two,
all in the same process on the same records; seconds per request are the engine's own (encode,
sample, read, rank; no sandbox).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from benchmarks.common import print_targets, target, write_report
from emergence.models import SHIPPED, ModelFileError, check, digest
from benchmarks.synthesis import PREVIOUS_DRAWS

MODEL = str(SHIPPED["engine"])  # the shipped engine; --model for one trained under runs/


def recall(engine, records, draws: int, keep: int, temperature: float, k: int) -> dict:
    hits, secs = [], []
    for rec in records:
        t0 = time.perf_counter()
        syn = engine.synthesize(rec.description, rec.arity, n_candidates=k, n_samples=draws, keep=keep,
                                sample_slots=True, slot_temperature=temperature)
        secs.append(time.perf_counter() - t0)
        hits.append(any(list(c.ops) == list(rec.ops) for c in syn.candidates[:k]))
    return {"draws": draws, "keep": keep, "temperature": temperature, "records": len(records),
            "recall": sum(hits) / len(hits), "seconds_mean": statistics.fmean(secs),
            "seconds_p50": statistics.median(secs)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=MODEL, help="trained engine (default: the shipped one, emergence/models/engine)")
    ap.add_argument("--records", type=int, help="held-out descriptions to synthesize from (default 300)")
    ap.add_argument("--quick", action="store_true", help="100 records, the two settings only")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args(argv)
    n = args.records if args.records is not None else 100 if args.quick else 300
    if n < 1:
        ap.error(f"--records must be a positive integer, got {n}")

    import torch

    torch.set_num_threads(1)
    from emergence.synthesis import corpus
    from emergence.synthesis.calibrate import _order
    from emergence.synthesis.engine import Engine
    from emergence.synthesis.pipeline import SynthesisService
    from training.emergence import corpus_dir

    try:
        check(args.model)  # missing, or not the model its card describes
        state = torch.load(args.model, map_location="cpu", weights_only=False)
        calib = os.path.join(corpus_dir(args.model, state, "calibration.jsonl"), "calibration.jsonl")
    except (ModelFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    records = corpus.load(calib)
    order = _order(len(records), 0)
    # the ranking fit took the first `limit` of this order and the confidence fit the next `limit`
    fitted = 2 * ((state.get("figures") or {}).get("ranking") or {}).get("records", 400)
    held_out = len(order) > fitted
    if not held_out:
        print(f"note: all {len(order)} calibration records were fitted on; measuring on them anyway", flush=True)
    records = [records[i] for i in (order[fitted:] if held_out else order)[:n]]
    engine = Engine.load(args.model)
    engine.encoder.encode(["warm up"])

    defaults = SynthesisService.__dataclass_fields__
    service = (defaults["example_samples"].default, defaults["example_keep"].default,
               defaults["example_temperature"].default)
    k = defaults["max_verified"].default
    settings = {"service": service, "previous": PREVIOUS_DRAWS}
    if not args.quick:  # one change at a time from the previous settings
        settings |= {"previous, service draws": (service[0], *PREVIOUS_DRAWS[1:]),
                     "previous, service readings": (PREVIOUS_DRAWS[0], service[1], PREVIOUS_DRAWS[2]),
                     "previous, service temperature": (*PREVIOUS_DRAWS[:2], service[2]),
                     "service, temperature 1": (*service[:2], 1.0)}
    rows = {}
    for name, (draws, keep, temp) in settings.items():
        rows[name] = recall(engine, records, draws, keep, temp, k)
        r = rows[name]
        print(f"{name:<32} draws {draws:>3} keep {keep} T {temp:<4} among first {k}: {r['recall']:.3f}  "
              f"{r['seconds_mean'] * 1000:.0f} ms a request", flush=True)
    figures = {"model": {"path": args.model, "sha256": digest(args.model)}, "records": len(records), "records_never_fitted_on": held_out,
               "candidates_tried": k, "settings": rows,
               "recall_ratio_service_over_previous": rows["service"]["recall"] / max(rows["previous"]["recall"], 1e-9),
               "time_ratio_service_over_previous": rows["service"]["seconds_mean"] / rows["previous"]["seconds_mean"]}
    targets = {"described program among the first candidates: service settings >= previous settings":
               target(rows["service"]["recall"], rows["previous"]["recall"], ">="),
               "engine seconds per request with examples (service settings, before any sandbox run)":
               target(rows["service"]["seconds_mean"], 0.5, "<")}
    print_targets(targets)
    write_report(args.json, "synthesis_sampling", figures, targets, sys.argv[1:] if argv is None else argv)
    return {"figures": figures, "targets": targets}


if __name__ == "__main__":
    main()
