"""The crucible's training problems stay apart from every evaluation set: no training problem's
description within MiniLM cosine 0.9 of an evaluation request (dev, validation and test intents,
MBPP's validation split), and the written problems load with every reference passing."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from emergence.crucible import load_problems, parse_problem
from emergence.crucible.overlap import too_close
from emergence.crucible.sources import (WRITTEN, WRITTEN_DEV, evaluation_requests, exclude_close, load_written,
                                        training_problems)


class Words:
    """A stand-in encoder (hashed bag of words), to test the guard without MiniLM."""

    def encode(self, texts):
        out = np.zeros((len(texts), 256))
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, zlib.crc32(w.encode()) % 256] += 1
        return out


class Memo:
    """An encoder that encodes each distinct text once."""

    def __init__(self, encoder):
        self.encoder, self.seen = encoder, {}

    def encode(self, texts):
        new = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if new:
            self.seen.update(zip(new, self.encoder.encode(new)))
        return np.stack([self.seen[t] for t in texts])


def problem(pid, description):
    return parse_problem({"id": pid, "title": pid, "description": description, "difficulty": 1,
                          "test_cases": [[1]], "expected_outputs": [1]})


def test_the_guard_finds_near_copies_and_only_them():
    train = ["sum the even numbers", "reverse each word", "count vowels in a string"]
    hits = too_close(train, ["Sum the even numbers", "list the prime factors"], encoder=Words())
    assert [(t, e) for t, e, _ in hits] == [("sum the even numbers", "Sum the even numbers")]
    assert hits[0][2] == pytest.approx(1.0)
    assert too_close([], ["x"]) == [] and too_close(["x"], []) == []
    kept, dropped = exclude_close([problem("a", "sum the even numbers"), problem("b", "reverse each word")],
                                  ["Sum the even numbers"], encoder=Words())
    assert [p.id for p in kept] == ["b"] and [d[:2] for d in dropped] == [("a", "Sum the even numbers")]


@pytest.mark.slow
def test_no_training_problem_reads_like_an_evaluation_request():
    """The training set as the crucible builds it, against every evaluation request here, with MiniLM."""
    from emergence.synthesis.encoder import make_encoder

    minilm = Memo(make_encoder("minilm"))  # each text encoded once for both passes
    # corpus problems from pipelines of up to 2 steps: the same wordings, without the 10-20 s it takes
    # to enumerate every 3-step pipeline
    train, skipped = training_problems(check=False, encoder=minilm, max_len=2)
    evaluation = evaluation_requests()
    if not train or not evaluation:
        pytest.skip("no training problems or no evaluation requests here")
    hits = too_close([p.description for p in train], evaluation, encoder=minilm)
    assert not hits, "training problems too close to evaluation requests:\n" + "\n".join(
        f"  {c:.3f}  {t!r}  ~  {e!r}" for t, e, c in hits[:20])
    assert all(p.provenance.get("split") != "validation" for p in train)


def test_the_written_problems_load_and_are_labelled():
    problems = load_written()  # every reference runs on its own tests
    assert len(problems) >= 250 and all(p.id.startswith(("w_", "wa_", "wb_")) and p.reference for p in problems)
    assert all(p.provenance.get("source") == "written" and p.provenance.get("writer") for p in problems)
    assert {p.difficulty for p in problems} == {1, 2, 3}
    assert len({p.provenance["writer"] for p in problems}) == len(WRITTEN)  # one writer a file


def test_the_written_dev_set_is_another_writers_and_an_evaluation_set():
    dev = load_problems(WRITTEN_DEV)
    assert len(dev) >= 50 and all(p.id.startswith("wc_") for p in dev)
    writers = {p.provenance["writer"] for p in load_written()}
    assert not writers & {p.provenance["writer"] for p in dev}
    assert {p.description for p in dev} <= set(evaluation_requests())  # so training never comes near it


def test_an_id_in_two_written_files_is_refused(tmp_path):
    line = (WRITTEN[0].read_text().splitlines()[0])
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text(line + "\n")
    with pytest.raises(ValueError, match="more than one place"):
        load_written([tmp_path / "a.jsonl", tmp_path / "b.jsonl"])


def test_corpus_problems_are_reproducible_solvable_and_graded():
    from emergence.crucible.generated import corpus_problems
    from emergence.crucible.problems import reference_failures

    a, b = corpus_problems(24, seed=1, max_len=2), corpus_problems(24, seed=1, max_len=2)
    assert [p.to_json() for p in a] == [p.to_json() for p in b] and len(a) == 24
    assert [p.id for p in corpus_problems(24, seed=2, max_len=2)] != [p.id for p in a]
    assert len({p.id for p in a}) == 24 and reference_failures(a) == {}
    assert {p.difficulty for p in a} >= {1, 2}
    for p in a:
        assert p.provenance["source"] == "corpus" and len(p.tests) == 6
        assert len({json.dumps(o, sort_keys=True) for o in p.expected_outputs}) >= 2  # something to tell apart
    with pytest.raises(ValueError, match="tests >= 2"):
        corpus_problems(3, tests=1)
