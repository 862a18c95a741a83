"""The synthesis DSL: every operation type-checks, compiles to standalone Python and agrees with
the interpreter; ill-typed programs are refused before any code exists; nothing a program holds
can escape into the generated source."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading

import pytest

from emergence.synthesis import OPS, EffectsRefused, Program, TypeCheckError, build_callable, check, compile_program, trace
from emergence.synthesis.runtime import _import
from emergence.synthesis.types import show

TEXT = "Hello, World! Visit https://ray.io/docs or mail ana@x.org #ray @bo 42 and -3.5. Level two?"
PAGE = ('<html><head><title> Repo list </title></head><body><h1>Projects</h1><a href="https://github.com/a">a</a>'
        '<a href="/local">b</a><img src="i.png"><h2>More</h2><p>text here</p></body></html>')
CSV = "name,age,city\nana,31,Lisbon\nbo,25,Oslo\n"
JSON = '{"a": {"b": [1, 2, 3]}, "n": 7}'
# a parameter of the op's input type, and steps that turn it into that type
SOURCES = {
    "list[int]": ("list[int]", [], [3, -1, 4, 0, 4, 7]),
    "list[num]": ("list[num]", [], [2.5, -1, 4, 0, 4]),
    "list[str]": ("list[str]", [], ["apple", "  Kiwi ", "https://a.io/x", "e", "banana"]),
    "list[bool]": ("list[bool]", [], [True, False, True]),
    "list[T]": ("list[int]", [], [3, 1, 3, 2]),
    "str": ("str", [], TEXT),
    "html": ("str", [{"op": "PARSE_HTML.page"}], PAGE),
    "json": ("str", [{"op": "PARSE_JSON.document"}], JSON),
    "list[dict]": ("str", [{"op": "PARSE_CSV.rows"}], CSV),
    "num": ("list[num]", [{"op": "REDUCE.max"}], [2, 9, 4]),
}
CONSTS = {"n": 2, "k": 3, "sep": " ", "sub": "o", "prefix": "h", "old": "o", "new": "0", "pattern": r"\w+",
          "path": "a.b.1", "name": "city", "other": 4, "body": "x", "path_file": "out.txt"}


# inputs an operation needs to have something to work on
INPUT_FOR = {"MAP.to_number": ["3", " 4.5", "-2"], "TRANSFORM.domain": "https://Ray.io:443/docs", "PARSE_JSON.document": JSON, "PARSE_CSV.rows": CSV,
             "PARSE_HTML.page": PAGE}


def program_for(op_name: str) -> tuple[dict, list]:
    op = OPS[op_name]
    ptype, pre, value = SOURCES[show(op.inp)]
    value = INPUT_FOR.get(op_name, value)
    args = {a: {"const": CONSTS[a]} for a, _ in op.args}
    steps = pre + [{"op": op_name, **({"args": args} if args else {})}]
    if op_name == "TRANSFORM.as_number":
        steps = [{"op": "PARSE_JSON.document"}, {"op": "EXTRACT_ELEMENTS.field", "args": {"path": {"const": "n"}}}, steps[-1]]
    if op_name == "TRANSFORM.as_list":
        steps = [{"op": "PARSE_JSON.document"}, {"op": "EXTRACT_ELEMENTS.field", "args": {"path": {"const": "a.b"}}}, steps[-1]]
    return {"name": "tool", "intent": op.doc, "params": [{"name": "value", "type": ptype}], "steps": steps}, [value]


PURE = sorted(n for n, op in OPS.items() if not op.effects)


@pytest.mark.parametrize("op_name", PURE)
def test_every_operation_compiles_and_agrees_with_the_interpreter(op_name):
    prog, args = program_for(op_name)
    code, fn = build_callable(prog)
    assert f"def tool(" in code and '"""' in code
    steps = trace(prog, args)
    result = fn(*args)
    assert result == steps[-1][1]
    assert result not in (None, "", [], {}) or op_name in NOTHING_EXPECTED, f"{op_name} did nothing on {args}"


NOTHING_EXPECTED = {"REDUCE.all"}  # [True, False, True] is not all true


def test_effect_operations_compile_but_run_only_outside(tmp_path):
    for name in (n for n, op in OPS.items() if op.effects):
        prog, _ = program_for(name) if OPS[name].args == () or name != "FILE_WRITE.text" else program_for(name)
        tool = compile_program(Program.from_dict(prog))
        assert "import urllib.request" in tool.code or "open(" in tool.code
        with pytest.raises(EffectsRefused):
            build_callable(prog)


def test_http_get_is_real_urllib(tmp_path):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<title>served</title>"
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    prog = {"name": "page_title", "intent": "title of the page at a URL", "params": [{"name": "url", "type": "str"}],
            "steps": [{"op": "HTTP_GET.text"}, {"op": "PARSE_HTML.page"}, {"op": "EXTRACT_ELEMENTS.title"}]}
    tool = compile_program(Program.from_dict(prog))
    ns: dict = {}
    exec(tool.code, ns)  # the test's own process: this is the tool as a user would run it
    assert ns["page_title"](f"http://127.0.0.1:{server.server_port}/") == "served"
    server.shutdown()


def test_compiled_tool_is_standalone_and_readable():
    prog = {"name": "external_domains", "intent": "the sites an HTML page links to",
            "params": [{"name": "page", "type": "str"}],
            "steps": [{"op": "PARSE_HTML.page"}, {"op": "EXTRACT_ELEMENTS.links"}, {"op": "FILTER.absolute_url"},
                      {"op": "MAP.domain"}, {"op": "SORT.unique"}]}
    tool = compile_program(Program.from_dict(prog))
    assert tool.signature == "external_domains(page: str) -> list"
    assert tool.docstring.startswith("The sites an HTML page links to.")
    body = tool.code.split("def external_domains")[1]
    assert "links = " in body and "domains = [_domain(x) for x in absolute]" in body
    run = f"{tool.code}\nprint(external_domains({PAGE!r}))"
    out = subprocess.run([sys.executable, "-I", "-S", "-c", run], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['github.com']"


def test_branching_with_store_and_retrieve():
    prog = {"name": "spread", "intent": "largest minus smallest", "params": [{"name": "xs", "type": "list[num]"}],
            "steps": [{"op": "REDUCE.max"}, {"op": "STORE", "as": "hi"}, {"op": "RETRIEVE", "from": "xs"},
                      {"op": "REDUCE.min"}, {"op": "STORE", "as": "lo"}, {"op": "RETRIEVE", "from": "hi"},
                      {"op": "REDUCE.minus", "args": {"other": {"ref": "lo"}}}]}
    _, fn = build_callable(prog)
    assert fn([3, 9, -1]) == 10


@pytest.mark.parametrize("op_name, text, expected", [
    # a hyphen after a digit is no minus sign (dates, ranges); any other minus is
    ("EXTRACT.integers", "on 2020-01-05 it was -3, then 7 (x-5, pages 3-4)", [2020, 1, 5, -3, 7, -5, 3, 4]),
    ("EXTRACT.numbers", "pH 3.5 and -2.25 by 2020-01-05", [3.5, -2.25, 2020, 1, 5]),
    # the @ of an e-mail address is no mention
    ("EXTRACT.mentions", "hi @ann, mail bob@example.com or @bo_b.", ["@ann", "@bo_b"]),
    # a sentence ends at . ! ? before white space or the end: a decimal point inside stays
    ("TRANSFORM.sentences", "Pi is 3.14. Really?  Yes!\nNo end", ["Pi is 3.14.", "Really?", "Yes!", "No end"]),
    ("TRANSFORM.sentences", "   ", []),
])
def test_text_operations_read_text_as_people_write_it(op_name, text, expected):
    prog = {"name": "tool", "intent": OPS[op_name].doc, "params": [{"name": "text", "type": "str"}],
            "steps": [{"op": op_name}]}
    _, fn = build_callable(prog)
    assert fn(text) == expected
    assert trace(Program.from_dict(prog), [text])[-1][1] == expected


@pytest.mark.parametrize("op_name, k, expected", [
    ("FILTER.at_least", 400, [400, 404, 500]),  # the bound itself is kept: "400 or higher"
    ("FILTER.at_most", 400, [200, 301, 400]),
    ("FILTER.greater", 400, [404, 500]),
    ("FILTER.less", 400, [200, 301]),
])
def test_comparisons_with_and_without_the_bound(op_name, k, expected):
    prog = {"name": "tool", "intent": OPS[op_name].doc, "params": [{"name": "codes", "type": "list[int]"}],
            "steps": [{"op": op_name, "args": {"k": {"const": k}}}]}
    _, fn = build_callable(prog)
    assert fn([200, 404, 301, 500, 400]) == sorted(expected, key=[200, 404, 301, 500, 400].index)


def test_parameters_as_arguments():
    prog = {"name": "count_above", "intent": "how many numbers exceed k",
            "params": [{"name": "xs", "type": "list[num]"}, {"name": "k", "type": "num"}],
            "steps": [{"op": "FILTER.greater", "args": {"k": {"ref": "k"}}}, {"op": "REDUCE.count"}]}
    code, fn = build_callable(prog)
    assert "def count_above(xs: list, k: int | float) -> int:" in code
    assert fn([3, 1, 4, 1, 5], 2) == 3


@pytest.mark.parametrize("steps, params, message", [
    ([{"op": "FILTER.even"}], [("text", "str")], "step 1 (FILTER.even): needs list[int], gets str"),
    ([{"op": "REDUCE.sum"}, {"op": "REDUCE.sum"}], [("xs", "list[num]")], "step 2 (REDUCE.sum): needs list[num], gets num"),
    ([{"op": "NOPE.x"}], [("xs", "list[num]")], "unknown operation"),
    ([{"op": "LIMIT.first"}], [("xs", "list[num]")], "takes arguments ['n'], got none"),
    ([{"op": "LIMIT.first", "args": {"n": {"const": "two"}}}], [("xs", "list[num]")], "argument n needs int, gets str"),
    ([{"op": "LIMIT.first", "args": {"n": {"ref": "zz"}}}], [("xs", "list[num]")], "unknown 'zz'"),
    ([{"op": "RETRIEVE", "from": "zz"}], [("xs", "list[num]")], "nothing named 'zz'"),
    ([{"op": "REDUCE.sum"}], [("import", "list[num]")], "not a usable Python name"),
    ([{"op": "REDUCE.sum"}], [("x; import os", "list[num]")], "not a usable Python name"),
    ([{"op": "REDUCE.sum"}], [("xs", "list[num]"), ("xs", "int")], "appears twice"),
    ([{"op": "REDUCE.sum"}], [("sorted", "list[num]")], "not a usable Python name"),
    ([{"op": "REDUCE.sum"}], [("_domain", "list[num]")], "not a usable Python name"),
    ([{"op": "STORE", "as": "xs"}], [("xs", "list[num]")], "already a name"),
    ([], [("xs", "list[num]")], "1..32 steps"),
    ([{"op": "REDUCE.sum"}], [("xs", "matrix")], "unknown type"),
])
def test_ill_typed_programs_are_refused_naming_the_step(steps, params, message):
    prog = {"name": "t", "params": [{"name": n, "type": t} for n, t in params], "steps": steps}
    with pytest.raises(TypeCheckError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        check(Program.from_dict(prog))


def test_nothing_in_a_program_escapes_into_the_source():
    evil = 'x"""; import os; os.system("echo pwned") #\n'
    prog = {"name": "safe", "intent": evil, "params": [{"name": "text", "type": "str"}],
            "steps": [{"op": "TRANSFORM.replace", "args": {"old": {"const": evil}, "new": {"const": "\\'\"\n"}}}]}
    code, fn = build_callable(prog)
    compile(code, "<check>", "exec")
    assert "import os" not in code.split('"""')[2]  # the function body holds no statement from the text
    assert fn(f"a{evil}b") == "a\\'\"\nb"
    with pytest.raises(ImportError):
        _import("os")
