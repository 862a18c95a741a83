"""Render the benchmark reports in benchmarks/results/ as markdown: one table, or benchmarks/README.md.

    python -m benchmarks.readme_table benchmarks/results/energy.json   # print one report's table
    python -m benchmarks.readme_table --write                          # (re)write benchmarks/README.md
    python -m benchmarks.readme_table --check                          # exit 1 if benchmarks/README.md is stale
    python -m benchmarks.readme_table                                  # print what --write would write

Every figure in benchmarks/README.md comes from a JSON report (`benchmarks.common.write_report`),
so the page cannot drift from the results: tests/test_docs.py checks that it equals what this module
renders now. Each report file needs an entry in SECTIONS (its heading) and its `benchmark` a renderer
in TABLES; a report without one fails loudly, so every new benchmark gets one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"


class NoRenderer(ValueError):
    """A report in benchmarks/results/ that this module does not know how to render."""


def targets_table(report: dict) -> list[str]:
    rows = ["| target | value | goal | met |", "|---|---:|---|---|"]
    for k, t in report["targets"].items():
        rows.append(f"| {k} | {t['value']:.3g} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return rows


def energy_table(report: dict) -> str:
    rows = ["| n | steps to gap ≤ 1e-6 | ours (s, median) | L-BFGS-B to same gap (s, median) | ratio | ΔF90 | self-stopping run: s / gap |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["figures"]["sizes"]:
        rows.append(f"| {s['n']:.0e} | {s['ours_steps']} | {s['ours_s']:.3f} | {s['lbfgsb_s_to_gap']:.3f} | "
                    f"{s['ratio_ours_over_lbfgsb']:.2f} | {s['ours_delta_f90']} | {s['ours_selfstop_s']:.3f} / {s['ours_selfstop_gap']:.1e} |")
    p = report["figures"]["partitioned"]
    rows += ["", f"Partitioned across {p['k']} actors at n = {p['n']:.0e}: {p['steps']} steps, {p['relax_s']:.1f} s relaxation "
                 f"(+{p['build_s']:.1f} s building the blocks inside the actors), gap {abs(p['gap_to_reference_optimum']):.1e} to the "
                 f"periodic L-BFGS-B optimum and {abs(p['gap_to_single_process']):.1e} to the single-process run.", ""]
    rows.append("| target | value | goal | met |")
    rows.append("|---|---:|---|---|")
    for k, t in report["targets"].items():
        rows.append(f"| {k} | {t['value']:.3g} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(rows)


def nvp_table(report: dict) -> str:
    f = report["figures"]
    keys = ("skill", "change_fidelity", "gradient_alignment", "entropy_coherence", "entropy_violation_rate", "coverage95")
    rows = ["| domain | method | skill | change fidelity | grad. alignment | entropy coherence | entropy violations | 95% coverage | rollout skill @10 / @50 |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in f["evaluation"]:
        name = r["domain"] + ("" if r["known"] else " (held out)")
        for method in ("model", "model_enforced", "linear", "persistence"):
            m = r["one_step"].get(method)
            if m is None:
                continue
            cells = " | ".join(f"{m[k]:.3f}" if k in m else "–" for k in keys)
            roll = r["rollout"].get(method.replace("_enforced", ""), {}) if method != "model_enforced" else {}
            rs = " / ".join(f"{roll[k]:.3f}" for k in ("skill@10", "skill@50") if k in roll) or "–"
            rows.append(f"| {name} | {method} | {cells} | {rs} |")
    rows += ["", "| size | model, batch 1, 1 thread (ms) | one FD step (ms) | FD advance of one dt (ms) |", "|---|---:|---:|---:|"]
    for s, l in f["latency_ms"].items():
        rows.append(f"| {s}×{s} | {l['model_ms']:.2f} | {l['fd_step_ms']:.3f} | {l['fd_advance_dt_ms']:.3f} ({l['fd_substeps_per_dt']} substeps) |")
    if "throughput" in f:
        t = f["throughput"]
        rows += ["", f"Ray Train throughput: {t['1']['samples_per_s']:.0f} samples/s with 1 worker, "
                     f"{t['2']['samples_per_s']:.0f} with 2 (×{t['speedup_2_over_1']:.2f})."]
    rows += ["", "| target | value | goal | met |", "|---|---:|---|---|"]
    for k, t in report["targets"].items():
        rows.append(f"| {k} | {t['value']:.3g} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(rows)


SANDBOX_PATHS = (("bare_subprocess", "bare `python3 -I -S -B -c` subprocess (the floor)"),
                 ("process_cold", "process backend, cold (new supervisor per run)"),
                 ("bubblewrap_cold", "bubblewrap, cold (new sandbox per run)"),
                 ("process_warm", "process backend, warm"),
                 ("bubblewrap_warm", "**bubblewrap, warm** (the default)"))


def sandbox_table(report: dict) -> str:
    w = report["figures"]["workloads"]
    names = list(w)
    rows = ["| path | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    cell = lambda d: f"{d['p50_ms']:.1f} / {d['p99_ms']:.1f}"  # noqa: E731
    for key, label in SANDBOX_PATHS:
        rows.append(f"| {label} | " + " | ".join(cell(w[n][key]) for n in names) + " |")
    if all("ray_pool" in w[n] for n in names):
        c = w[names[0]]["ray_pool"]["concurrency"]
        rows.append(f"| Ray `SandboxPool`, 2 workers, {c} concurrent callers (queueing included) | "
                    + " | ".join(cell(w[n]["ray_pool"]) for n in names) + " |")
    rates = "; ".join(
        f"{n}: bubblewrap warm {w[n]['bubblewrap_warm_execs_per_s_2_workers']:.0f}, bare subprocess "
        f"{w[n]['bare_subprocess_execs_per_s_2_workers']:.0f}"
        + (f", Ray pool {w[n]['ray_pool']['execs_per_s']:.0f}" if "ray_pool" in w[n] else "") for n in names)
    cold = ", ".join(f"{n} ×{w[n]['overhead_cold_over_bare_p50']:.1f}" for n in names)
    rows += ["", f"Executions per second, 2 workers on 2 cores — {rates}. Cold bubblewrap over the bare subprocess "
                 f"(p50): {cold}.", "", "| target | value | goal | met |", "|---|---:|---|---|"]
    for k, t in report["targets"].items():
        rows.append(f"| {k} | {t['value']:.3g} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(rows)


def _knob(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "exact"


def _recovered(restart: dict) -> str:
    return ", ".join(f"{'snapshot lsn %d' % x['snapshot_lsn'] if x['snapshot_lsn'] else 'no snapshot'} + {x['replayed']} log records"
                     for x in restart["recovery"])


def memory_table(report: dict) -> str:
    f = report["figures"]
    d = f["dataset"]
    rows = [f"Fashion-MNIST, {d['train']:,} vectors × {d['dim']}, {d['queries']:,} queries, k = {f['k']}; "
            f"{f['cores']} cores: the in-process index uses {f['threads']['in_process']} threads, each shard "
            f"cores ÷ shards. Batched: all queries in one call (median of {f['batched_repeats']}); single: "
            f"{f['single_query_n']} queries one call each.", "",
            "| index | path | recall@1 | recall@10 | batched q/s | batched s | single q/s | single p50 / p99 ms | "
            "fan-out overhead (batched) | of which Ray |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    row = lambda kind, label, r, over: (  # noqa: E731  over: "overhead | Ray share" cells
        f"| {kind} | {label} | {r['recall@1']:.4f} | {r['recall@10']:.4f} | {r['batched']['qps']:,.0f} | "
        f"{r['batched']['seconds']:.3f} | {r['single']['qps']:,.0f} | {r['single']['p50_ms']:.2f} / "
        f"{r['single']['p99_ms']:.2f} | {over} |")
    for kind, a in f["ann"].items():
        rows.append(row(kind, "one in-process FAISS index", a["single_index"], "1 | –"))
        for n, r in a["sharded"].items():
            rows.append(row(kind, f"router, {n} shard{'s' if n != '1' else ''}", r,
                            f"×{r['fanout_overhead_batched']:.2f} | ×{r['ray_overhead_batched']:.2f}"))
    if "hnsw" in f["ann"]:
        cells = []
        for n, r in f["ann"]["hnsw"]["sharded"].items():
            mr = r.get("matched_recall") or {}
            cells.append(f"{n} shard(s): efSearch {mr['ef_search']}, recall@10 {mr['recall@10']:.4f}, "
                         f"{mr['qps']:,.0f} q/s, ×{mr['fanout_overhead_batched']:.2f}" if mr.get("seconds") else
                         f"{n} shard(s): no efSearch up to {max(t['ef_search'] for t in mr.get('tried', [{'ef_search': 0}]))} "
                         "reached the one index's recall")
        rows += ["", "HNSW at equal recall (the smallest per-search efSearch whose recall@10 reaches the one index's "
                     f"{f['ann']['hnsw']['single_index']['recall@10']:.4f}): " + "; ".join(cells) + "."]
    rows += ["", "Fan-out overhead: the router's batched latency over the one index's. Of which Ray: over the same "
                 "split done in-process (one index per shard's part, searched in turn, merged) -- the rest is the "
                 "sharding itself (e.g. every HNSW shard is walked with the full efSearch)."]
    rows.append("Parameters: " + "; ".join(f"{kind} {_knob(a['params'])}" for kind, a in f["ann"].items()) + ".")
    if "flat" in f["ann"]:
        agree = ", ".join(f"{n} shard(s): {r['vs_single_flat']['identical_fraction']:.4f} identical, "
                          f"{r['vs_single_flat']['agree_up_to_ties_fraction']:.4f} up to exact ties"
                          for n, r in f["ann"]["flat"]["sharded"].items())
        ex = f["ann"]["flat"]["single_index_vs_exact"]
        rows.append(f"Sharded Flat against one IndexFlatL2, queries whose top-{f['k']} match — {agree}. (That IndexFlatL2 "
                    f"itself, in float32, against the exact integer distances: {ex['identical_fraction']:.4f} identical, "
                    f"{ex['queries_disagreeing']} queries with near-ties swapped by rounding.)")
    if "scale" in f:
        rows += ["", "| index (2 shards) | vectors | acknowledged adds/s | B/vector in memory | B/vector on disk: snapshot / whole directory | "
                     "recall@10 | restart to serving s (shards recovered s) | … half-way through the ingest | … right after a snapshot | "
                     "acknowledged writes lost |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for kind, s in f["scale"].items():
            b, k = s["bytes_per_vector"], s["kill_during_ingest"]
            snap = f"{b['snapshot']:.1f}" if b["snapshot"] else "no snapshot"
            rows.append(f"| {kind} | {s['n']:,} | {s['add_vectors_per_s']:,.0f} | {b['index_memory']:.1f} | "
                        f"{snap} / {b['directory']:.1f} | "
                        f"{s['recall@10']:.3f} | "
                        f"{s['restart']['serving_s']:.2f} ({s['restart']['shards_recovered_s']:.2f}) | "
                        f"{s['restart_half_way']['serving_s']:.2f} ({s['restart_half_way']['shards_recovered_s']:.2f}) | "
                        f"{s['restart_after_snapshot']['serving_s']:.2f} | "
                        f"{k['acknowledged_lost']} of {k['acknowledged_total']:,} ({k['kills_mid_ingest']} kills mid-ingest) |")
        rows += [""] + [f"What each shard recovered from ({kind}) — at the end: {_recovered(s['restart'])}; half-way: "
                        f"{_recovered(s['restart_half_way'])}; after a snapshot: {_recovered(s['restart_after_snapshot'])}."
                        for kind, s in f["scale"].items()]
    rows += ["", "| target | value | goal | met |", "|---|---:|---|---|"]
    for k, t in report["targets"].items():
        rows.append(f"| {k} | {t['value']:.3g} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(rows)


def synthesis_table(report: dict) -> str:
    f = report["figures"]
    rows = ["| method | answer passes (pass@1) | any of top 10 passes | with the first two tests as examples |",
            "|---|---:|---:|---:|"]
    e, ex = f["engine"], f["engine_with_two_examples"]
    wide = ex.get("wide_round")
    rounds = (f"; with examples {f['ablation_first_round_with_two_examples']['draws_keep_temperature'][0]} draws, "
              f"then {wide['samples']} more if no candidate passes" if wide else "")
    rows.append(f"| engine (diffusion, {f['samples_per_synthesis']} draws, ranked{rounds}) | {e['answer_pass']:.3f} | "
                f"{e['top10_pass']:.3f} | {ex['answer_pass']:.3f} |")
    for key, name in (("ablation_direct_decoding", "ablation: one direct prediction, no diffusion"),
                      ("ablation_no_scorer", "ablation: ranked without the coherence scorer"),
                      ("ablation_untuned_weights", "ablation: untuned ranking weights (scorer 1, alignment 10, votes 1)"),
                      ("ablation_no_main_clause", "ablation: never reading the request's main clause"),
                      ("ablation_no_request_cues", "ablation: no request cues (input named, how many, opposites)")):
        if key not in f:
            continue
        rows.append(f"| {name} | {f[key]['answer_pass']:.3f} | {f[key]['top10_pass']:.3f} | – |")
    examples_only = (  # rows with a figure only with examples: (key, its label from its figures)
        ("ablation_first_round_with_two_examples", lambda r: "ablation: with examples, the first round of draws alone "
         "({}, {} readings each, slots at temperature {:g})".format(*r["draws_keep_temperature"])),
        ("ablation_previous_draws_with_two_examples", lambda r: "ablation: the first round alone, with the previous "
         "draws ({}, {} readings each, slots at temperature {:g})".format(*r["draws_keep_temperature"])),
        ("engine_then_repair_with_two_examples", lambda r: f"engine, then one-edit repairs of its best candidates "
         f"for {r['repair_s']:g} s if no candidate of its two rounds passes"),
        ("engine_then_search_with_two_examples", lambda r: f"engine, then breadth-first search for {r['search_s']:.0f} s "
         "if no candidate of its two rounds passes"),
        ("engine_then_guided_search_with_two_examples", lambda r: "engine, then search guided by the engine's operation "
         f"prior for {r['search_s']:.0f} s"))
    for key, label in examples_only:
        if key in f:
            rows.append(f"| {label(f[key])} | – | – | {f[key]['answer_pass']:.3f} |")
    g = f.get("engine_then_guided_search_with_two_examples")
    for key, name in (("service", "the service as deployed: confident engine answer, else a confident composition "
                                  "of the intent's clauses, else refusal (a failure here)"),
                      ("service_no_composition", "the service without composition")):
        if key in f:
            rows.append(f"| {name} | {f[key]['answer_pass']:.3f} | – | {f[key + '_examples']['answer_pass']:.3f} |")
    if "service_coherence_gate" in f:
        rows.append(f"| ablation: the service gated by the answer's coherence instead of its fitted confidence | "
                    f"{f['service_coherence_gate']['answer_pass']:.3f} | – | – |")
    en = f["baseline_enumerative_same_budget"]
    rows.append(f"| baseline: enumerative search, examples only, same time budget | – | – | {en['answer_pass']:.3f} |")
    for enc in ("minilm", "hashing"):
        r = f.get(f"baseline_retrieval_{enc}")
        if r:
            rows.append(f"| baseline: nearest corpus description ({enc} encoder) | {r['answer_pass']:.3f} | "
                        f"{r['top10_pass']:.3f} | {r['with_two_examples']:.3f} |")
    rows += ["", f"Unbiased estimator over the raw draws (each rounded to one program): pass@1 "
                 f"{e['pass@1_unbiased']:.3f}, pass@10 {e['pass@10_unbiased']:.3f}. Latency per synthesis, no "
                 f"verification, one thread: p50 {f['latency_ms']['p50']:.1f} ms, p99 {f['latency_ms']['p99']:.1f} ms.", ""]
    then = [(name, fams) for name, fams in (
        ("then repairs", f.get("engine_then_repair_with_two_examples", {}).get("families")),
        ("then guided search", (g or {}).get("families"))) if fams]
    rows += ["| family | tasks | answer passes | top 10 | with two examples |"
             + "".join(f" with two examples, {name} |" for name, _ in then),
             "|---|---:|---:|---:|---:|" + "---:|" * len(then)]
    for fam, r in e["families"].items():
        rows.append(f"| {fam} | {r['tasks']} | {r['answer']:.3f} | {r['top10']:.3f} | "
                    f"{ex['families'][fam]['answer']:.3f} |" + "".join(f" {fams[fam]['answer']:.3f} |" for _, fams in then))
    rows += ["", "| target | value | goal | met |", "|---|---:|---|---|"]
    for k, t in report["targets"].items():
        rows.append(f"| {k} | {t['value']:.3g} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(rows)


def synthesis_sampling_table(report: dict) -> str:
    f = report["figures"]
    rows = [f"| settings | draws | readings kept | slot temperature | described program among the first "
            f"{f['candidates_tried']} | ms a request |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in f["settings"].items():
        rows.append(f"| {name} | {r['draws']} | {r['keep']} | {r['temperature']:g} | {r['recall']:.3f} | "
                    f"{r['seconds_mean'] * 1000:.0f} |")
    return "\n".join(rows)


def synthesis_http_table(report: dict) -> str:
    f = report["figures"]
    rows = ["| requests | served pass@1 | precision (right / answered) | answered | benchmark pass@1 |",
            "|---|---:|---:|---:|---:|"]
    for key, label in (("service", "without examples"), ("service_examples", "with two examples")):
        r, b = f[key], f["benchmark"][key]
        rows.append(f"| {label} | {r['answer_pass']:.3f} | {r['precision']:.3f} | {r['answered']} / {r['tasks']} | "
                    f"{b['answer_pass']:.3f} |")
    return "\n".join(rows + [""] + targets_table(report))


def dsl_coverage_table(report: dict) -> str:
    f = report["figures"]
    rows = [f"| MBPP {f['split']} tasks | a program passes the tests (naive) | expressible (agrees with the reference on "
            f"{f['agreement_inputs']} generated inputs) |", "|---:|---:|---:|",
            f"| {f['tasks']} | {f['passes_the_tests']} ({f['passes_the_tests_share']:.3f}) | {f['expressible']} "
            f"({f['expressible_share']:.3f}) |", "",
            "| difficulty | tasks | expressible |", "|---|---:|---:|"]
    rows += [f"| {lv} | {d['tasks']} | {d['expressible']} |" for lv, d in f["by_difficulty"].items()]
    rows += ["", "| not expressible, by reason | tasks |", "|---|---:|"]
    rows += [f"| {why} | {n} |" for why, n in f["not_expressible_by_reason"].items()]
    return "\n".join(rows + [""] + targets_table(report))


def _ci(c: dict) -> str:
    lo, hi = c["interval95"]
    return f"{c['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def crucible_table(report: dict) -> str:
    f = report["figures"]
    seeds = len(f["tuned"])
    rows = []
    for set_name, st in f["sets"].items():
        c = st["compare"]
        rows += [f"**{set_name}** ({st['tasks']} tasks; tuned: mean of {seeds} seed(s), paired 95 % interval over tasks)", "",
                 "| figure (no examples) | supervised | tuned | per seed | difference [95 % CI] |", "|---|---:|---:|---|---|"]
        names = {"answer": "answer pass@1", "top10": "top-10", "pass@1": "raw-draw pass@1", "pass@10": "raw-draw pass@10",
                 "service": "service pass@1 (refusals wrong)", "service_answered": "service: share answered",
                 "examples": "answer with two examples"}
        for k, label in names.items():
            if k in c:
                per = ", ".join(f"{v:.3f}" for v in c[k]["per_seed"])
                rows.append(f"| {label} | {c[k]['base']:.3f} | {c[k]['tuned']:.3f} | {per} | {_ci(c[k])} |")
        prec = [t["service_precision"] for t in st["tuned_per_seed"]]
        rows.append(f"| service precision when answering | {st['base']['service_precision']:.3f} | "
                    f"{sum(prec) / len(prec):.3f} | {', '.join(f'{v:.3f}' for v in prec)} | |")
        rows += ["", "| family | raw pass@1 supervised | tuned | answer supervised | tuned |", "|---|---:|---:|---:|---:|"]
        for fam, v in c["families_raw_pass@1"].items():
            a = c["families_answer"][fam]
            rows.append(f"| {fam} | {v['base']:.3f} | {v['tuned']:.3f} | {a['base']:.3f} | {a['tuned']:.3f} |")
        rows.append("")
    runs = f.get("runs") or []
    if runs:
        rows += ["| run | seed | iterations | programs | s / iteration (p50) | final level |", "|---|---:|---:|---:|---:|---:|"]
        rows += [f"| {r['run']} | {r['seed']} | {r['iterations']} | {r['programs']} | "
                 f"{r.get('iteration_s_p50', float('nan')):.1f} | {r['final_level']} |" for r in runs]
        rows.append("")
    return "\n".join(rows + targets_table(report))


def crucible_sweep_table(report: dict) -> str:
    f = report["figures"]
    metric = f["objective"]
    rows = [f"Objective: `{metric}` on the validation intents, after each trial's PPO run.", "",
            "| lr | entropy | kl_ref | partial_scale | objective | last success | last KL | iterations | trial s |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t in sorted(f["trials"], key=lambda t: -(t.get(metric) or -1)):
        num = lambda v, spec: "" if v is None else format(v, spec)  # noqa: E731
        rows.append(f"| {num(t['lr'], '.2g')} | {num(t['entropy'], '.4f')} | {num(t['kl_ref'], '.3f')} | "
                    f"{num(t['partial_scale'], '.2f')} | {num(t.get(metric), '.3f')} | {num(t.get('success'), '.3f')} | "
                    f"{num(t.get('last_kl'), '.2f')} | {t.get('iterations') or ''} | {num(t.get('trial_s'), '.0f')} |")
    return "\n".join(rows + [""] + targets_table(report))


TABLES = {"crucible_sweep": crucible_sweep_table, "crucible": crucible_table, "dsl_coverage": dsl_coverage_table, "synthesis_http": synthesis_http_table, "synthesis": synthesis_table, "synthesis_sampling": synthesis_sampling_table, "nvp": nvp_table, "sandbox": sandbox_table, "energy": energy_table, "memory": memory_table}


# -- figures beside the tables, for benchmarks/README.md ------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def nvp_more(report: dict) -> list[str]:
    f = report["figures"]
    t = f.get("training") or {}
    held = f.get("held_out")
    domains = ", ".join(f.get("train_domains") or []) or "?"
    if "epochs" in t:
        lines = [f"- Model: trained in the benchmark's process on {domains} ({t['epochs']} epochs, "
                 f"{t.get('sequences_per_domain', '?')} sequences per domain, {t.get('seconds', 0) / 60:.1f} min); "
                 f"held out: {held or 'none'}."]
    else:
        sha = f" (sha256 `{t['sha256'][:12]}…`)" if isinstance(t.get("sha256"), str) else ""
        lines = [f"- Model: `{t.get('checkpoint', '?')}`{sha}, trained on {domains}; held out: {held or 'none'}."]
    fs = f.get("held_out_few_shot")
    if fs:
        lines.append(f"- Held-out ({held}) 95% coverage with only the unknown domain's std scale refitted on "
                     f"{fs['calibration_sequences']} of its sequences, scored on the other {fs['scored_sequences']}: "
                     f"{fs['coverage95']:.3f} (beside the zero-shot target above, not a target).")
    return lines


def _found_by(r: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in (r.get("found_by") or {}).items()) or "–"


def synthesis_more(report: dict) -> list[str]:
    f = report["figures"]
    lines = []
    m = f.get("model")
    if isinstance(m, dict):
        c = m.get("corpus") or {}
        sha = f", sha256 `{m['sha256'][:12]}…`" if isinstance(m.get("sha256"), str) else ""
        lines.append(f"- Model: `{m.get('path', '?')}`{sha}: {c.get('programs', '?'):,} programs, "
                     f"{c.get('records', '?'):,} descriptions, seed {c.get('seed', '?')}; "
                     f"{f.get('tasks', '?')} tasks.")
    for key, label in (("service", "without examples"), ("service_examples", "with two examples")):
        r = f.get(key)
        if r and "answered_share" in r:
            lines.append(f"- The service {label}: answers {_pct(r['answered_share'])} of requests, right on "
                         f"{r['precision_when_answered']:.3f} of those; found by: {_found_by(r)}.")
    e = f.get("engine") or {}
    if "confidence_auc" in e:
        lines.append(f"- Telling the engine's right answers from wrong ones (ROC-AUC): its fitted confidence "
                     f"{e['confidence_auc']:.3f}, coherence alone {e['coherence_auc']:.3f}; the answer is confident "
                     f"on {_pct(e['confident_share'])} of tasks.")
    ex = f.get("engine_with_two_examples") or {}
    if "seconds_mean" in ex:
        lines.append(f"- With examples the engine spends {ex['seconds_mean']:.2f} s a task before and between sandbox "
                     f"runs; the second round ran on {ex.get('second_round_tasks', '?')} of {f.get('tasks', '?')} tasks.")
    rep = f.get("engine_then_repair_with_two_examples") or {}
    if "repaired_tasks" in rep:
        lines.append(f"- One-edit repairs answered {rep['repaired_tasks']} tasks.")
    d = f.get("denoising_mse_held_out")
    if d:
        by_t = ", ".join(f"t in {k}: {v:.4f}" for k, v in (d.get("by_t") or {}).items())
        lines.append(f"- Denoising MSE over {d['records']:,} held-out descriptions: {d['mean']:.4f} (sd {d['sd']:.4f} "
                     f"over {d['draws']} draws of t and noise)" + (f"; by t: {by_t}." if by_t else "."))
    ref = f.get("refinement_held_out")
    if ref:
        kinds = "; ".join(f"{k}: {r['solved_rate']:.2f} solved, {r['top3_rate']:.2f} in the top 3 ({r['cases']} cases)"
                          for k, r in ref.items() if k != "all")
        lines.append(f"- Refinement on held-out corpus programs, feedback in held-out wordings — {kinds}.")
    return lines


def sampling_more(report: dict) -> list[str]:
    f = report["figures"]
    m = f.get("model")
    path = m.get("path") if isinstance(m, dict) else m
    lines = [f"Model `{path}`; {f.get('records', '?')} held-out records"
             + (" that neither the ranking nor the confidence fit used." if f.get("records_never_fitted_on") else
                " (some of them used by the ranking or confidence fit)."), ""]
    if "recall_ratio_service_over_previous" in f:
        lines += [f"Service settings over the previous ones: recall ×{f['recall_ratio_service_over_previous']:.2f}, "
                  f"engine time ×{f['time_ratio_service_over_previous']:.2f}.", ""]
    return lines + targets_table(report)


MORE = {"nvp": nvp_more, "synthesis": synthesis_more, "synthesis_sampling": sampling_more}

# report file -> (heading, what it measures, where its set-up is explained). Order is the page's.
SECTIONS = {
    "energy.json": ("Energy coordination: dense gated ring against L-BFGS-B",
                    "Time to a relative gap of 1e-6 against scipy's L-BFGS-B on the same energy and gradient, and "
                    "a partitioned run across Ray actors.", "../docs/energy.md#benchmark"),
    "nvp.json": ("NVP: a model trained in the benchmark, against persistence and linear extrapolation",
                 "One-step and rollout skill on fresh sequences, one domain held out; latency beside a "
                 "finite-difference step; Ray Train throughput.", "../docs/nvp.md#benchmark"),
    "nvp-shipped.json": ("NVP: the shipped model (`emergence/models/nvp`)",
                         "The same evaluation of the model `make run` serves, loaded with `--checkpoint`.",
                         "../docs/nvp.md#benchmark"),
    "sandbox.json": ("Sandboxed execution against a bare subprocess",
                     "Latency per execution (p50 / p99 ms) and executions per second.", "../docs/sandbox.md#benchmark"),
    "memory.json": ("Sharded vector memory against one in-process FAISS index",
                    "Recall and throughput through the router, fan-out overhead, and durability at 1M vectors.",
                    "../docs/memory.md#benchmark"),
    "synthesis.json": ("Tool synthesis: the dev intents",
                       "pass@1 on intents the engine never saw, against enumerative search and retrieval.",
                       "../docs/synthesis.md#benchmarks"),
    "synthesis-val.json": ("Tool synthesis: our validation intents",
                           "The same benchmark on `benchmarks/tasks/intents_val.jsonl`, the set model choices "
                           "are made on.", "../docs/synthesis.md#benchmarks"),
    "synthesis-test.json": ("Tool synthesis: the second held-out set",
                            "The same benchmark on `benchmarks/tasks/intents_test.jsonl`, never tuned on.",
                            "../docs/synthesis.md#benchmarks"),
    "dsl-coverage.json": ("The DSL's reach: how much of MBPP's train split it can express",
                          "Programs found by search on each task's tests (no intent), counted only when they copy no "
                          "expected output and agree with the task's reference code on generated inputs, in the "
                          "sandbox.", "../docs/crucible.md#where-the-problems-come-from"),
    "crucible-val.json": ("Digital Crucible: PPO-tuned engines against the supervised one, validation intents",
                          "The supervised engine and crucible-tuned engines (one per training seed), same run, same "
                          "draws, on the validation intents, MBPP's validation split and the written problems kept "
                          "for choices (`written_dev`, a writer the crucible never trained on).",
                          "../docs/crucible.md#results"),
    "crucible-sweep.json": ("Digital Crucible: the Tune sweep over PPO's knobs",
                            "`python -m tune.crucible`: one PPO run per trial from the supervised engine, one trial at "
                            "a time, each scored by the raw-draw pass@1 of its tuned engine on the validation intents.",
                            "../docs/crucible.md#tuning-tunecruciblepy"),
    "crucible-test.json": ("Digital Crucible: the second held-out set",
                           "The same comparison on `benchmarks/tasks/intents_test.jsonl`, run once at the end.",
                           "../docs/crucible.md#results"),
    "synthesis-http-val.json": ("Tool synthesis through HTTP: the served engine on our validation intents",
                                "`make run`'s server, empty memory, asked each validation intent over HTTP; its pass "
                                "rates beside the benchmark's `service` rows for the same model file.",
                                "../docs/synthesis.md#benchmarks"),
    "synthesis-sampling.json": ("Tool synthesis: draw settings with examples",
                                "Whether the described program is among the candidates checked, for the service's "
                                "draw settings against the previous ones.", "../docs/synthesis.md#benchmarks"),
}

PREAMBLE = """# Benchmark results

<!-- Generated by `python -m benchmarks.readme_table --write` from benchmarks/results/*.json. Do not edit by hand:
     tests/test_docs.py fails when this page differs from what the reports render. -->

Every figure on this page is rendered from a JSON report in [`results/`](results/), written by the benchmark
itself (`--json PATH`); a target's `met` is computed by the benchmark, never typed. Each section names the
command and the time (UTC) of its run. Timings are from the machine named there and vary between runs on a
shared 2-core machine. How each benchmark is set up, and how to read it, is in the docs it links to.

Run them with `make bench` (or `python -m benchmarks.NAME --json benchmarks/results/NAME.json`, `--quick` for a
smaller run), then render this page again with `python -m benchmarks.readme_table --write`.
"""


def render_report(report: dict) -> str:
    """One report's table, as `python -m benchmarks.readme_table FILE` prints it."""
    name = report.get("benchmark")
    if name not in TABLES:
        raise NoRenderer(f"no table renderer for benchmark {name!r}; add one to TABLES in benchmarks/readme_table.py")
    return TABLES[name](report)


def section(file: str, report: dict) -> str:
    if file not in SECTIONS:
        raise NoRenderer(f"benchmarks/results/{file} has no section in benchmarks/readme_table.py: add it to "
                         f"SECTIONS (its heading and docs link), and its benchmark to TABLES if new")
    heading, what, doc = SECTIONS[file]
    m = report.get("machine") or {}
    machine = f" on {m['cpus']} CPUs (Python {m.get('python', '?')})" if "cpus" in m else ""
    lines = [f"## {heading}", "", what, "",
             f"- Report: [`benchmarks/results/{file}`](results/{file}), run {report['when']}{machine}.",
             f"- Command: `{report['command']}`",
             f"- Set-up and how to read it: [{doc.split('#')[0].removeprefix('../')}]({doc})", "",
             render_report(report)]
    more = MORE.get(report["benchmark"], lambda r: [])(report)
    if more:
        lines += [""] + more
    return "\n".join(lines)


def render_all(results: Path = RESULTS) -> str:
    """benchmarks/README.md: every report in `results`, in SECTIONS order."""
    files = sorted(p.name for p in Path(results).glob("*.json"))
    unknown = [f for f in files if f not in SECTIONS]
    if unknown:
        raise NoRenderer(f"no section for {', '.join('benchmarks/results/' + f for f in unknown)}: add each to "
                         "SECTIONS in benchmarks/readme_table.py (and its benchmark to TABLES if new)")
    present = [f for f in SECTIONS if f in files]
    reports = {f: json.loads((Path(results) / f).read_text()) for f in present}
    contents = [f"- [{SECTIONS[f][0]}](#{_slug(SECTIONS[f][0])})" for f in present]
    parts = [PREAMBLE.rstrip("\n"), "\n".join(contents)] + [section(f, reports[f]) for f in present]
    return "\n\n".join(parts) + "\n"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    out = []
    for ch in heading.strip().lower():
        if ch.isalnum() or ch in "-_":
            out.append(ch)
        elif ch == " ":
            out.append("-")
    return "".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Render benchmark reports as markdown tables (benchmarks/README.md).")
    ap.add_argument("file", nargs="?", help="print this one report's table")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="write benchmarks/README.md from every report in benchmarks/results/")
    group.add_argument("--check", action="store_true", help="exit 1 when benchmarks/README.md differs from what the reports render")
    args = ap.parse_args(argv)
    try:
        if args.file:
            if args.write or args.check:
                ap.error("give a FILE or --write/--check, not both")
            print(render_report(json.loads(Path(args.file).read_text())))
            return 0
        page = render_all()
    except NoRenderer as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.write:
        README.write_text(page)
        print(f"wrote {README.relative_to(HERE.parent)}")
    elif args.check:
        if not README.is_file() or README.read_text() != page:
            print(f"{README.relative_to(HERE.parent)} is out of date: python -m benchmarks.readme_table --write",
                  file=sys.stderr)
            return 1
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
