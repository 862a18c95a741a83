"""The crucible's training problems, gathered from their sources and kept apart from evaluation.

Sources: the written problems shipped in `emergence/crucible/data/` (`WRITTEN`: three writers),
MBPP's train split, and problems generated from the corpus in held-out wordings (`generated.py`).
Never any evaluation set: the dev intents, the validation and test intents of `benchmarks/tasks/`,
MBPP's validation split, and the written problems kept for choices (`WRITTEN_DEV`, a fourth
writer's). A training problem within MiniLM cosine 0.9 of any evaluation request is left out, and
counted.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .generated import corpus_problems
from .mbpp import load_mbpp
from .overlap import THRESHOLD, too_close
from .problems import Problem, load_problems

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "emergence" / "crucible" / "data"
WRITTEN = (DATA / "written.jsonl", DATA / "written-a.jsonl", DATA / "written-b.jsonl")  # trained on
WRITTEN_DEV = DATA / "written-dev.jsonl"  # another writer's, for choices: never trained on
MBPP = ROOT.parent / "shared" / "datasets" / "mbpp" / "mbpp_train_validation.jsonl"
EVALUATION_INTENTS = (ROOT.parent / "shared" / "benchmarks" / "intents_dev.jsonl",
                      ROOT / "benchmarks" / "tasks" / "intents_val.jsonl",
                      ROOT / "benchmarks" / "tasks" / "intents_test.jsonl")


def evaluation_requests(mbpp: Path = MBPP) -> list[str]:
    """Every evaluation request there is here: the intent sets, MBPP's validation split and the
    written problems kept for choices."""
    texts = []
    for path in EVALUATION_INTENTS:
        if path.exists():
            texts += [json.loads(line)["intent"] for line in path.read_text().splitlines() if line.strip()]
    if Path(mbpp).exists():
        texts += [p.description for p in load_mbpp(mbpp, "validation", check=False)[0]]
    if WRITTEN_DEV.exists():
        texts += [p.description for p in load_problems(WRITTEN_DEV)]
    return texts


def exclude_close(problems: list[Problem], evaluation: list[str], encoder=None,
                  threshold: float = THRESHOLD) -> tuple[list[Problem], list[tuple]]:
    """(problems kept, [(problem id, evaluation request, cosine)] left out)."""
    hits = too_close([p.description for p in problems], evaluation, encoder, threshold)
    by_text = {}
    for text, request, cos in hits:
        by_text.setdefault(text, (request, cos))
    kept = [p for p in problems if p.description not in by_text]
    return kept, [(p.id, *by_text[p.description]) for p in problems if p.description in by_text]


def load_written(paths=WRITTEN) -> list[Problem]:
    """The written training problems of every file that exists; an id twice is an error."""
    problems: list[Problem] = []
    for path in paths:
        if Path(path).exists():
            problems += load_problems(path)
    seen = Counter(p.id for p in problems)
    twice = sorted(i for i, n in seen.items() if n > 1)
    if twice:
        raise ValueError(f"written problems: ids in more than one place: {', '.join(twice[:10])}")
    return problems


def training_problems(written=WRITTEN, mbpp: Path = MBPP, check: bool = True, corpus: int = 200,
                      seed: int = 0, encoder=None, max_len: int = 3) -> tuple[list[Problem], Counter]:
    """All training problems (`corpus` of them generated from the corpus's pipelines of up to
    `max_len` steps), and a count of those left out by reason."""
    problems, skipped = corpus_problems(corpus, seed=seed, max_len=max_len), Counter()
    problems += load_written(written)
    if Path(mbpp).exists():
        mbpp_problems, mbpp_skipped = load_mbpp(mbpp, "train", check=check)
        problems += mbpp_problems
        skipped.update({f"mbpp: {k}": v for k, v in mbpp_skipped.items()})
    kept, dropped = exclude_close(problems, evaluation_requests(mbpp), encoder)
    if dropped:
        skipped[f"within cosine {THRESHOLD} of an evaluation request"] = len(dropped)
    return kept, skipped


def main(argv=None) -> dict:
    import argparse

    from .problems import save_problems

    ap = argparse.ArgumentParser(prog="python -m emergence.crucible.sources",
                                 description="Gather the crucible's training problems; print the counts.")
    ap.add_argument("--out", help="write them here (JSONL)")
    ap.add_argument("--no-check", action="store_true", help="don't run MBPP's references in the sandbox")
    ap.add_argument("--corpus", type=int, default=200, help="problems generated from the corpus (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the generated problems")
    args = ap.parse_args(argv)
    if args.corpus < 0:
        ap.error("--corpus must be >= 0")
    problems, skipped = training_problems(check=not args.no_check, corpus=args.corpus, seed=args.seed)
    if args.out:
        save_problems(problems, args.out)
    summary = {"problems": len(problems),
               "by_source": dict(Counter(p.provenance.get("source", "?") for p in problems)),
               "by_difficulty": dict(sorted(Counter(p.difficulty for p in problems).items())),
               "left_out": dict(skipped.most_common()), "out": args.out}
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
