"""The README and docs stay true: short README, live links, generated benchmark tables, and
commands that the code accepts. Pure: no Ray session is started (modules are imported and their
argument parsers run, nothing else)."""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
LINKED = [README, *DOCS, ROOT / "benchmarks" / "README.md"]

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")


def _prose(text: str) -> str:
    """Markdown without fenced blocks and inline code (where brackets are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return "".join("-" if ch == " " else ch for ch in text if ch.isalnum() or ch in " -_")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = _slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


# -- (a) a short README whose first section sets everything up ----------------------------------


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail to docs/ (at most ~200)"


def test_readme_first_section_has_the_two_setup_commands():
    text = README.read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    assert len(sections) >= 3, "README.md should have a title, then sections"
    first = sections[0] + "## " + sections[1]  # the title and the first section under it
    for command in ("make run", "make test"):
        assert re.search(rf"^{command}\b", "\n".join(b for b in FENCE.findall(first)), re.M), \
            f"the README's first section has no `{command}` command"


# -- (b) every relative link points to something that exists -----------------------------------


def _links():
    for path in LINKED:
        if not path.is_file():
            continue
        for target in LINK.findall(_prose(path.read_text())):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            yield path, target


@pytest.mark.parametrize("path,target", list(_links()),
                         ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v)
def test_relative_link_exists(path, target):
    file, _, anchor = target.partition("#")
    dest = (path.parent / file).resolve() if file else path
    assert dest.exists(), f"{path.relative_to(ROOT)}: link to {target} points to nothing"
    if anchor and dest.suffix == ".md":
        assert anchor in _anchors(dest), \
            f"{path.relative_to(ROOT)}: link to {target}: {dest.relative_to(ROOT)} has no heading #{anchor}"


def test_docs_exist_and_are_linked_from_the_readme():
    text = README.read_text()
    for name in ("api", "energy", "nvp", "memory", "sandbox", "synthesis", "operations"):
        assert (ROOT / "docs" / f"{name}.md").is_file()
        assert f"(docs/{name}.md" in text, f"README.md does not link docs/{name}.md"
    assert "(benchmarks/README.md" in text


# -- (c) the benchmark page is exactly what the reports render -----------------------------------


def test_benchmarks_readme_is_generated_from_the_results():
    from benchmarks.readme_table import README as PAGE, render_all

    assert PAGE.is_file(), "no benchmarks/README.md: python -m benchmarks.readme_table --write"
    assert PAGE.read_text() == render_all(), \
        "benchmarks/README.md differs from benchmarks/results/*.json: python -m benchmarks.readme_table --write"


def test_every_result_has_a_section_and_a_renderer(tmp_path):
    import json

    from benchmarks.readme_table import NoRenderer, render_all, render_report

    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        assert render_report(json.loads(path.read_text()))  # raises NoRenderer when none
    (tmp_path / "new.json").write_text(json.dumps({"benchmark": "new", "command": "x", "when": "y",
                                                   "figures": {}, "targets": {}}))
    with pytest.raises(NoRenderer):
        render_all(tmp_path)


def test_readme_quotes_no_benchmark_figures():
    """Tables of figures live in benchmarks/README.md; the README links there."""
    assert not re.search(r"^\|.*\b0\.\d{3}\b.*\|$", README.read_text(), re.M)


# -- (d) the README's commands are ones the code accepts -----------------------------------------


def _readme_commands() -> list[str]:
    """Shell commands the README shows: lines of its bash blocks (continuations joined) and inline code."""
    text = README.read_text()
    commands = []
    for block in FENCE.findall(text):
        if not block.startswith(("```bash", "```sh", "```console")):
            continue
        body = "\n".join(block.splitlines()[1:-1]).replace("\\\n", " ")
        commands += [line.strip() for line in body.splitlines() if line.strip()]
    commands += CODE_SPAN.findall(FENCE.sub("", text))
    return commands


def _words(command: str) -> list[str]:
    """The command's words, comments and leading VAR=value assignments dropped; [] if unparsable."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return []
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]
    return words


def _python_modules() -> list[tuple[str, list[str], str]]:
    out = []
    for command in _readme_commands():
        words = _words(command)
        if words[:3] == ["ray", "job", "submit"]:
            if "--" not in words:  # a mention of the command, not one to run
                continue
            words = words[words.index("--") + 1:]
        if len(words) >= 3 and words[0] in ("python", "python3") and words[1] == "-m":
            out.append((words[2], words[3:], command))
    return out


def _make_targets() -> list[tuple[str, str]]:
    out = []
    for command in _readme_commands():
        words = _words(command)
        if words and words[0] == "make":
            out += [(w, command) for w in words[1:] if not w.startswith("-") and "=" not in w]
    return out


def test_readme_shows_the_jobs():
    modules = {m for m, _, _ in _python_modules()}
    for module in ("training.emergence", "training.nvp", "emergence.nvp.default", "tune.coupling", "tune.loss_weights"):
        assert module in modules, f"README.md shows no `python -m {module}` command"
    assert any(c.startswith(("ray job submit", "RAY_AUTH_MODE=token ray job submit")) for c in _readme_commands())


def test_make_targets_in_the_readme_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", makefile, re.M))
    found = _make_targets()
    assert {"run", "test", "stop"} <= {t for t, _ in found}, "README.md should show make run, make test and make stop"
    for target, command in found:
        assert target in targets, f"`{command}`: the Makefile has no target {target!r}"


@pytest.mark.parametrize("module,args,command", _python_modules(), ids=[" ".join([m, *a]) for m, a, _ in _python_modules()])
def test_readme_python_command_parses(module, args, command):
    mod = importlib.import_module(module)
    if hasattr(mod, "parse_args"):
        try:
            mod.parse_args(args)
        except SystemExit as exc:
            pytest.fail(f"`{command}`: {module}.parse_args refused {args} (exit {exc.code})")
        return
    # no parser to call: its --help must list every flag the README passes
    r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"`python -m {module} --help` failed:\n{r.stderr[-2000:]}"
    for flag in (a.split("=", 1)[0] for a in args if a.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", r.stdout), \
            f"`{command}`: {flag} is not an option of `python -m {module}`"
