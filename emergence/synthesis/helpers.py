"""Stdlib-only helper functions that generated tools may need. Each is emitted into a tool's
source only when one of its steps uses it, so every tool stays standalone."""

HELPERS = {
    "_html_collect": '''
def _html_collect(page: str) -> dict:
    """Links, images, headings, title and text of an HTML page (stdlib html.parser)."""
    from html.parser import HTMLParser

    found = {"links": [], "images": [], "headings": [], "title": "", "text": []}

    class Collector(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack = []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "a" and attrs.get("href"):
                found["links"].append(attrs["href"])
            if tag == "img" and attrs.get("src"):
                found["images"].append(attrs["src"])
            self.stack.append(tag)

        def handle_endtag(self, tag):
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass

        def handle_data(self, data):
            current = self.stack[-1] if self.stack else ""
            if current == "title":
                found["title"] += data
            elif current in ("h1", "h2", "h3", "h4", "h5", "h6") and data.strip():
                found["headings"].append(data.strip())
            if data.strip() and current not in ("script", "style", "title"):
                found["text"].append(data.strip())

    Collector().feed(page)
    found["title"] = found["title"].strip()
    return found
''',
    "_domain": '''
def _domain(url: str) -> str:
    """The host of a URL, without port or credentials."""
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "").lower()
''',
    "_json_path": '''
def _json_path(value, path: str):
    """value["a"]["b"][0] for path "a.b.0"."""
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value
''',
    "_csv_rows": '''
def _csv_rows(text: str) -> list:
    """The rows of a CSV text with a header line, as dicts."""
    import csv
    import io

    return list(csv.DictReader(io.StringIO(text)))
''',
    "_number": '''
def _number(text):
    """An int when the text is one, else a float."""
    text = str(text).strip()
    try:
        return int(text)
    except ValueError:
        return float(text)
''',
    "_median": '''
def _median(values: list):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
''',
    "_most_common": '''
def _most_common(values: list):
    """The most frequent item; ties go to the one seen first."""
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return max(counts, key=lambda v: counts[v])
''',
    "_frequencies": '''
def _frequencies(values: list) -> dict:
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts
''',
    "_top_frequent": '''
def _top_frequent(values: list, n: int) -> list:
    """The n most frequent items, most frequent first; ties in order of first appearance."""
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return sorted(counts, key=lambda v: -counts[v])[:n]
''',
    "_http_get": '''
def _http_get(url: str, timeout: float = 10.0) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode(resp.headers.get_content_charset() or "utf-8", "replace")
''',
    "_http_post": '''
def _http_post(url: str, body: str, timeout: float = 10.0) -> str:
    import urllib.request

    req = urllib.request.Request(url, data=body.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read().decode(resp.headers.get_content_charset() or "utf-8", "replace")
''',
    "_file_read": '''
def _file_read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()
''',
    "_file_write": '''
def _file_write(text: str, path: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path
''',
}
