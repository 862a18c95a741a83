"""Every curl and Python example in README.md runs against the app, with the shipped models, and
gets an answer that is not an error: the README cannot drift from the server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

README = Path(__file__).resolve().parent.parent / "README.md"
SERVER = "http://127.0.0.1:8000"
BLOCK = re.compile(r"```(bash|sh|python)\n(.*?)```", re.S)


def examples() -> list[tuple[str, str]]:
    """(language, code) of each README block that talks to the server."""
    return [(lang, code) for lang, code in BLOCK.findall(README.read_text()) if SERVER in code]


def _ids():
    return [f"{lang}-{i}" for i, (lang, _) in enumerate(examples())]


@pytest.fixture(scope="module")
def base(shared_app):
    return shared_app[0]


def test_the_readme_has_an_example_per_capability():
    text = "\n".join(code for _, code in examples())
    for route in ("/synthesize", "/predict", "/relax", "/memory"):
        assert f"{SERVER}{route}" in text, f"README has no example for {route}"


@pytest.mark.parametrize("lang,code", examples(), ids=_ids())
def test_readme_example_runs(base, lang, code):
    code = code.replace(SERVER, base)
    if lang == "python":
        cmd = [sys.executable, "-c", code]
    else:  # a failing HTTP status must fail the example, not print an error body
        cmd = ["bash", "-euo", "pipefail", "-c", re.sub(r"\bcurl ", "curl --fail-with-body ", code)]
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, f"{code}\n--- stdout\n{r.stdout[-2000:]}\n--- stderr\n{r.stderr[-2000:]}"
    assert '"detail"' not in r.stdout, r.stdout[-2000:]  # the API's error shape
