"""The shipped models: present, matching their cards, cards generated from the benchmark JSONs;
a missing or corrupt model is named plainly. Pure library: no Ray."""

from __future__ import annotations

import json
import shutil

import pytest

from emergence.models import SHIPPED, ModelFileError, check, checked, digest, read_card


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_matches_its_card(name):
    path = checked(name)
    card = read_card(path)
    assert card["sha256"] == digest(path) and card["model"] == name
    assert card["trained"]["command"].startswith("python -m ")
    assert card["benchmarks"], f"no benchmark report measured the shipped {name} model"


def test_cards_are_what_the_model_files_and_benchmark_reports_give():
    from benchmarks import model_cards

    assert model_cards.main(["--check"]) == 0


def test_card_figures_are_the_reports_figures():
    from benchmarks import model_cards

    card = read_card(SHIPPED["engine"])
    reports = model_cards.reports_for(card["sha256"])
    assert set(reports) == set(card["benchmarks"])
    for f, report in reports.items():
        for k, t in report["targets"].items():
            assert card["benchmarks"][f]["targets"][k]["value"] == pytest.approx(t["value"], abs=1e-4)
            assert card["benchmarks"][f]["targets"][k]["met"] == t["met"]


def _copy(name, tmp_path):
    src = SHIPPED[name]
    if src.is_dir():
        dst = tmp_path / "nvp"
        shutil.copytree(src, dst)
        return dst, dst / "params.msgpack"
    (tmp_path / "engine").mkdir()
    dst = tmp_path / "engine" / "model.pt"
    shutil.copy(src, dst)
    shutil.copy(src.parent / "README.md", dst.parent / "README.md")
    return dst, dst


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_corrupt_model_is_named_with_both_checksums(name, tmp_path):
    path, data = _copy(name, tmp_path)
    assert check(path)["sha256"] == digest(path)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="does not match its model card") as exc:
        check(path)
    assert digest(path) in str(exc.value) and read_card(path)["sha256"] in str(exc.value)


def test_a_git_lfs_pointer_in_place_of_the_model_is_refused(tmp_path):
    path, _ = _copy("engine", tmp_path)
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n")
    with pytest.raises(ModelFileError, match="corrupt or was replaced"):
        check(path)


def test_a_missing_model_is_named(tmp_path):
    with pytest.raises(ModelFileError, match="missing"):
        check(tmp_path / "none.pt")
    (tmp_path / "nvp").mkdir()
    (tmp_path / "nvp" / "config.json").write_text("{}")
    with pytest.raises(ModelFileError, match="params.msgpack"):
        check(tmp_path / "nvp")


def test_a_model_without_a_card_loads_unchecked_and_a_bad_card_is_named(tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    assert check(model) is None
    (tmp_path / "README.md").write_text("# an ordinary README, no front matter\n")
    assert check(model) is None
    (tmp_path / "README.md").write_text("---\npath: x/other.pt\nsha256: '00'\n---\n")
    assert check(model) is None  # the card of another file in the folder
    (tmp_path / "README.md").write_text("---\nmodel: engine\n---\n")
    with pytest.raises(ModelFileError, match="names no sha256"):
        check(model)


def test_unknown_shipped_name_is_refused():
    with pytest.raises(ValueError, match="engine"):
        checked("gpt")


def test_benchmarks_record_the_model_checksum(tmp_path):
    from benchmarks.model_cards import measured_sha, reports_for

    (tmp_path / "a.json").write_text(json.dumps({"figures": {"model": {"sha256": "abc"}}, "targets": {}}))
    (tmp_path / "b.json").write_text(json.dumps({"figures": {"training": {"sha256": "def"}}, "targets": {}}))
    (tmp_path / "c.json").write_text(json.dumps({"figures": {"model": "path only"}, "targets": {}}))
    assert list(reports_for("abc", str(tmp_path))) == ["a.json"]
    assert measured_sha(json.loads((tmp_path / "c.json").read_text())) is None
