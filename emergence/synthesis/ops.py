"""The action primitives, refined into concrete operations.

Each operation is one step of a pipeline: it takes the value flowing through (typed `inp`),
maybe some arguments (typed, each a constant or a named value), and yields a new value (typed
`out`). Its meaning is one Python expression, `expr`, over `{v}` (the input) and `{arg}`s --
the same text is what the compiler writes into a tool and what the interpreter evaluates, so a
compiled tool and a traced run cannot disagree.

Names are PRIMITIVE.refinement, the primitive being one of the seed's: HTTP_GET, HTTP_POST,
PARSE_HTML, PARSE_JSON, PARSE_CSV, EXTRACT_ELEMENTS, EXTRACT (regular expressions), TRANSFORM,
FILTER, MAP, REDUCE, LIMIT, SORT, STORE, RETRIEVE, FILE_READ, FILE_WRITE, RETURN. LLM_QUERY is left
out on purpose: a tool that asks a language model at run time is neither verifiable by tests
nor standalone.
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import parse

PRIMITIVES = ("HTTP_GET", "HTTP_POST", "PARSE_HTML", "PARSE_JSON", "PARSE_CSV", "EXTRACT_ELEMENTS", "EXTRACT",
              "TRANSFORM", "FILTER", "MAP", "REDUCE", "LIMIT", "SORT", "STORE", "RETRIEVE", "FILE_READ",
              "FILE_WRITE", "RETURN")


@dataclass(frozen=True)
class Op:
    name: str
    inp: object  # parsed type pattern of the flowing value
    out: object
    expr: str  # Python expression over {v} and the args
    var: str  # what the generated code calls the result
    args: tuple = ()  # ((name, type), ...)
    helpers: tuple = ()
    imports: tuple = ()
    doc: str = ""  # one line, used in docstrings and capability lists
    effects: bool = False  # touches the network or the file system

    @property
    def primitive(self) -> str:
        return self.name.split(".")[0]


OPS: dict[str, Op] = {}


def _op(name, inp, out, expr, var, doc, args=(), helpers=(), imports=(), effects=False):
    assert name.split(".")[0] in PRIMITIVES, name
    OPS[name] = Op(name, parse(inp), parse(out), expr, var, tuple((a, parse(t)) for a, t in args),
                   tuple(helpers), tuple(imports), doc, effects)


# -- reductions: a list to one value ---------------------------------------------------------
_op("REDUCE.sum", "list[num]", "num", "sum({v})", "total", "add the numbers up")
_op("REDUCE.product", "list[num]", "num", "math.prod({v})", "product", "multiply the numbers together", imports=["math"])
_op("REDUCE.max", "list[num]", "num", "max({v})", "largest", "the largest number")
_op("REDUCE.min", "list[num]", "num", "min({v})", "smallest", "the smallest number")
_op("REDUCE.mean", "list[num]", "float", "sum({v}) / len({v})", "mean", "the arithmetic mean")
_op("REDUCE.median", "list[num]", "num", "_median({v})", "median", "the median", helpers=["_median"])
_op("REDUCE.span", "list[num]", "num", "max({v}) - min({v})", "span", "largest minus smallest")
_op("REDUCE.count", "list[T]", "int", "len({v})", "count", "how many items")
_op("REDUCE.first", "list[T]", "T", "{v}[0]", "first", "the first item")
_op("REDUCE.last", "list[T]", "T", "{v}[-1]", "last", "the last item")
_op("REDUCE.most_common", "list[T]", "T", "_most_common({v})", "most_common", "the most frequent item",
    helpers=["_most_common"])
_op("REDUCE.frequencies", "list[T]", "dict", "_frequencies({v})", "counts", "how often each item occurs",
    helpers=["_frequencies"])
_op("REDUCE.longest", "list[str]", "str", "max({v}, key=len)", "longest", "the longest string (first of equals)")
_op("REDUCE.shortest", "list[str]", "str", "min({v}, key=len)", "shortest", "the shortest string (first of equals)")
_op("REDUCE.join", "list[str]", "str", "{sep}.join({v})", "joined", "join the strings with a separator",
    args=[("sep", "str")])
_op("REDUCE.all", "list[bool]", "bool", "all({v})", "every", "whether every item is true")
_op("REDUCE.any", "list[bool]", "bool", "any({v})", "some", "whether any item is true")

# -- ordering and selection --------------------------------------------------------------------
_op("SORT.asc", "list[T]", "list[T]", "sorted({v})", "ordered", "sort ascending")
_op("SORT.desc", "list[T]", "list[T]", "sorted({v}, reverse=True)", "ordered", "sort descending")
_op("SORT.by_length", "list[str]", "list[str]", "sorted({v}, key=len)", "by_length", "sort strings by length")
_op("SORT.reverse", "list[T]", "list[T]", "list(reversed({v}))", "reversed_items", "reverse the order")
_op("SORT.unique", "list[T]", "list[T]", "list(dict.fromkeys({v}))", "distinct", "drop repeats, keep first order")
_op("SORT.unique_sorted", "list[T]", "list[T]", "sorted(set({v}))", "distinct", "distinct items, sorted")
_op("LIMIT.first", "list[T]", "list[T]", "{v}[:{n}]", "head", "the first n items", args=[("n", "int")])
_op("LIMIT.last", "list[T]", "list[T]", "{v}[max(len({v}) - {n}, 0):]", "tail", "the last n items", args=[("n", "int")])
_op("LIMIT.top_frequent", "list[T]", "list[T]", "_top_frequent({v}, {n})", "most_frequent",
    "the n most frequent items", args=[("n", "int")], helpers=["_top_frequent"])

# -- filters -----------------------------------------------------------------------------------
_op("FILTER.even", "list[int]", "list[int]", "[x for x in {v} if x % 2 == 0]", "evens", "keep even numbers")
_op("FILTER.odd", "list[int]", "list[int]", "[x for x in {v} if x % 2 != 0]", "odds", "keep odd numbers")
_op("FILTER.positive", "list[num]", "list[num]", "[x for x in {v} if x > 0]", "positives", "keep numbers above zero")
_op("FILTER.negative", "list[num]", "list[num]", "[x for x in {v} if x < 0]", "negatives", "keep numbers below zero")
_op("FILTER.nonzero", "list[num]", "list[num]", "[x for x in {v} if x != 0]", "nonzero", "drop zeros")
_op("FILTER.greater", "list[num]", "list[num]", "[x for x in {v} if x > {k}]", "above", "keep numbers above k",
    args=[("k", "num")])
_op("FILTER.less", "list[num]", "list[num]", "[x for x in {v} if x < {k}]", "below", "keep numbers below k",
    args=[("k", "num")])
_op("FILTER.at_least", "list[num]", "list[num]", "[x for x in {v} if x >= {k}]", "at_least", "keep numbers k or above",
    args=[("k", "num")])
_op("FILTER.at_most", "list[num]", "list[num]", "[x for x in {v} if x <= {k}]", "at_most", "keep numbers k or below",
    args=[("k", "num")])
_op("FILTER.longer", "list[str]", "list[str]", "[x for x in {v} if len(x) > {n}]", "long_ones",
    "keep strings longer than n", args=[("n", "int")])
_op("FILTER.contains", "list[str]", "list[str]", "[x for x in {v} if {sub} in x]", "matching",
    "keep strings containing a substring", args=[("sub", "str")])
_op("FILTER.startswith", "list[str]", "list[str]", "[x for x in {v} if x.startswith({prefix})]", "matching",
    "keep strings with a prefix", args=[("prefix", "str")])
_op("FILTER.absolute_url", "list[str]", "list[str]", '[x for x in {v} if x.startswith(("http://", "https://"))]',
    "absolute", "keep absolute http(s) URLs")
_op("FILTER.vowels", "list[str]", "list[str]", '[x for x in {v} if x.lower() in "aeiou"]', "vowels",
    "keep vowels (single characters)")
_op("FILTER.alpha", "list[str]", "list[str]", "[x for x in {v} if x.isalpha()]", "letters", "keep alphabetic strings")
_op("FILTER.nonempty", "list[str]", "list[str]", "[x for x in {v} if x.strip()]", "nonempty", "drop blank strings")

# -- element-wise ------------------------------------------------------------------------------
_op("MAP.square", "list[num]", "list[num]", "[x * x for x in {v}]", "squares", "square each number")
_op("MAP.double", "list[num]", "list[num]", "[x * 2 for x in {v}]", "doubled", "double each number")
_op("MAP.abs", "list[num]", "list[num]", "[abs(x) for x in {v}]", "magnitudes", "absolute value of each")
_op("MAP.negate", "list[num]", "list[num]", "[-x for x in {v}]", "negated", "negate each number")
_op("MAP.add", "list[num]", "list[num]", "[x + {k} for x in {v}]", "shifted", "add k to each number",
    args=[("k", "num")])
_op("MAP.multiply", "list[num]", "list[num]", "[x * {k} for x in {v}]", "scaled", "multiply each number by k",
    args=[("k", "num")])
_op("MAP.cumulative_sum", "list[num]", "list[num]", "list(itertools.accumulate({v}))", "running_totals",
    "running totals", imports=["itertools"])
_op("MAP.upper", "list[str]", "list[str]", "[x.upper() for x in {v}]", "upper_items", "upper-case each string")
_op("MAP.lower", "list[str]", "list[str]", "[x.lower() for x in {v}]", "lower_items", "lower-case each string")
_op("MAP.capitalize", "list[str]", "list[str]", "[x[:1].upper() + x[1:] for x in {v}]", "capitalized",
    "capitalize each string")
_op("MAP.strip", "list[str]", "list[str]", "[x.strip() for x in {v}]", "stripped", "trim each string")
_op("MAP.length", "list[str]", "list[int]", "[len(x) for x in {v}]", "lengths", "length of each string")
_op("MAP.first_char", "list[str]", "list[str]", "[x[:1] for x in {v}]", "initials", "first character of each")
_op("MAP.domain", "list[str]", "list[str]", "[_domain(x) for x in {v}]", "domains", "host name of each URL",
    helpers=["_domain"])
_op("MAP.to_number", "list[str]", "list[num]", "[_number(x) for x in {v}]", "numbers", "read each string as a number",
    helpers=["_number"])
_op("MAP.reverse", "list[str]", "list[str]", "[x[::-1] for x in {v}]", "reversed_items", "reverse each string")

# -- text --------------------------------------------------------------------------------------
_op("TRANSFORM.lower", "str", "str", "{v}.lower()", "lowered", "lower-case the text")
_op("TRANSFORM.upper", "str", "str", "{v}.upper()", "uppered", "upper-case the text")
_op("TRANSFORM.title", "str", "str", '" ".join(w[:1].upper() + w[1:] for w in {v}.split(" "))', "titled",
    "capitalize every word")
_op("TRANSFORM.strip", "str", "str", "{v}.strip()", "trimmed", "trim surrounding whitespace")
_op("TRANSFORM.reverse", "str", "str", "{v}[::-1]", "reversed_text", "reverse the text")
_op("TRANSFORM.remove_punctuation", "str", "str", '{v}.translate(str.maketrans("", "", string.punctuation))',
    "cleaned", "remove punctuation", imports=["string"])
_op("TRANSFORM.replace", "str", "str", "{v}.replace({old}, {new})", "replaced", "replace a substring",
    args=[("old", "str"), ("new", "str")])
_op("TRANSFORM.domain", "str", "str", "_domain({v})", "domain", "host name of a URL", helpers=["_domain"])
_op("TRANSFORM.length", "str", "int", "len({v})", "length", "number of characters")
_op("TRANSFORM.count_substring", "str", "int", "{v}.count({sub})", "occurrences", "occurrences of a substring",
    args=[("sub", "str")])
_op("TRANSFORM.is_palindrome", "str", "bool", '(lambda s: s == s[::-1])("".join(c.lower() for c in {v} if c.isalnum()))',
    "palindrome", "reads the same backwards (letters and digits, any case)")
_op("TRANSFORM.words", "str", "list[str]", "{v}.split()", "words", "split into whitespace-separated words")
_op("TRANSFORM.word_tokens", "str", "list[str]", "re.findall(r\"[A-Za-z0-9']+\", {v})", "words",
    "words without punctuation", imports=["re"])
_op("TRANSFORM.chars", "str", "list[str]", "list({v})", "chars", "the characters")
_op("TRANSFORM.lines", "str", "list[str]", "{v}.splitlines()", "lines", "the lines")
# a sentence ends at . ! or ? followed by white space (or the end), so "3.5" and "e.g." inside stay whole
_op("TRANSFORM.sentences", "str", "list[str]", '[s for s in re.split(r"(?<=[.!?])\\s+", {v}.strip()) if s]',
    "sentences", "split into sentences", imports=["re"])
_op("TRANSFORM.split", "str", "list[str]", "{v}.split({sep})", "parts", "split on a separator", args=[("sep", "str")])

# -- regular-expression extraction -------------------------------------------------------------
# a hyphen right after a digit separates, it is no minus: "2020-01-05" is 2020, 1, 5 and "3-5" is 3, 5
# (not 2020, -1, -5); "c-3" and "x -3" still hold -3
_op("EXTRACT.integers", "str", "list[int]", '[int(n) for n in re.findall(r"(?:(?<!\\d)-)?\\d+", {v})]', "numbers",
    "integers in the text", imports=["re"])
_op("EXTRACT.numbers", "str", "list[num]", '[_number(n) for n in re.findall(r"(?:(?<!\\d)-)?\\d+(?:\\.\\d+)?", {v})]', "numbers",
    "numbers (integers and decimals) in the text", imports=["re"], helpers=["_number"])
_op("EXTRACT.emails", "str", "list[str]", 're.findall(r"[\\w.+-]+@[\\w-]+(?:\\.[\\w-]+)+", {v})', "emails",
    "e-mail addresses in the text", imports=["re"])
_op("EXTRACT.hashtags", "str", "list[str]", 're.findall(r"#\\w+", {v})', "hashtags", "hashtags in the text",
    imports=["re"])
# an @ inside an e-mail address (bob@example.com) is not a mention
_op("EXTRACT.mentions", "str", "list[str]", 're.findall(r"(?<![\\w.+-])@\\w+", {v})', "mentions", "@mentions in the text",
    imports=["re"])
_op("EXTRACT.urls", "str", "list[str]", "re.findall(r\"https?://[^\\s\\\"'<>]+\", {v})", "urls", "URLs in the text",
    imports=["re"])
_op("EXTRACT.pattern", "str", "list[str]", "re.findall({pattern}, {v})", "matches", "matches of a regular expression",
    args=[("pattern", "str")], imports=["re"])

# -- documents ---------------------------------------------------------------------------------
_op("PARSE_HTML.page", "str", "html", "_html_collect({v})", "page", "parse an HTML page", helpers=["_html_collect"])
_op("EXTRACT_ELEMENTS.links", "html", "list[str]", '{v}["links"]', "links", "href of every link")
_op("EXTRACT_ELEMENTS.images", "html", "list[str]", '{v}["images"]', "images", "src of every image")
_op("EXTRACT_ELEMENTS.headings", "html", "list[str]", '{v}["headings"]', "headings", "text of every heading")
_op("EXTRACT_ELEMENTS.title", "html", "str", '{v}["title"]', "title", "the page title")
_op("EXTRACT_ELEMENTS.text", "html", "str", '" ".join({v}["text"])', "text", "the visible text")
_op("PARSE_JSON.document", "str", "json", "json.loads({v})", "document", "parse JSON text", imports=["json"])
_op("EXTRACT_ELEMENTS.field", "json", "json", "_json_path({v}, {path})", "field", "a field by dotted path",
    args=[("path", "str")], helpers=["_json_path"])
_op("TRANSFORM.as_number", "json", "num", "{v}", "number", "use a JSON value as a number")
_op("TRANSFORM.as_text", "json", "str", "str({v})", "text", "a JSON value as text")
_op("TRANSFORM.as_list", "json", "list[any]", "list({v})", "items", "a JSON array as a list")
_op("PARSE_CSV.rows", "str", "list[dict]", "_csv_rows({v})", "rows", "parse CSV with a header line",
    helpers=["_csv_rows"])
_op("EXTRACT_ELEMENTS.column", "list[dict]", "list[str]", "[row[{name}] for row in {v}]", "column",
    "one CSV column", args=[("name", "str")])

# -- effects (network and files); run only in a sandbox ----------------------------------------
_op("HTTP_GET.text", "str", "str", "_http_get({v})", "response", "fetch a URL", helpers=["_http_get"], effects=True)
_op("HTTP_POST.text", "str", "str", "_http_post({v}, {body})", "response", "POST a body to a URL",
    args=[("body", "str")], helpers=["_http_post"], effects=True)
_op("FILE_READ.text", "str", "str", "_file_read({v})", "content", "read a text file", helpers=["_file_read"],
    effects=True)
_op("FILE_WRITE.text", "str", "str", "_file_write({v}, {path})", "written_path", "write the text to a file",
    args=[("path", "str")], helpers=["_file_write"], effects=True)

# -- naming values: STORE keeps the flowing value under a name, RETRIEVE continues from a named
#    value (a parameter or something stored), so pipelines can branch and combine -------------
STORE, RETRIEVE, RETURN = "STORE", "RETRIEVE", "RETURN"
_op("REDUCE.minus", "num", "num", "{v} - {other}", "difference", "subtract another value", args=[("other", "num")])
_op("REDUCE.plus", "num", "num", "{v} + {other}", "sum_of_both", "add another value", args=[("other", "num")])
_op("REDUCE.ratio", "num", "float", "{v} / {other}", "ratio", "divide by another value", args=[("other", "num")])
