"""Random inputs of each parameter type, for execution traces and for telling programs apart.

Texts, pages, JSON documents and CSV tables are built from small word lists so they look like
what tools meet (sentences with punctuation, links to real-looking hosts, nested JSON, a header
row); numbers include negatives, zeros and repeats.
"""

from __future__ import annotations

import json
import random

WORDS = ("river stone cloud paper signal garden market engine window orbit lantern copper meadow vector "
         "harbor pixel thunder violet canyon ember falcon quartz saddle timber walnut zephyr beacon "
         "circuit dune glacier").split()
HOSTS = ("example.com", "docs.ray.io", "github.com", "pypi.org", "news.example.org", "api.data.net")
CITIES = ("Lisbon", "Oslo", "Quito", "Hanoi", "Accra", "Lima")


def sentence(rng: random.Random) -> str:
    n = rng.randint(3, 9)
    words = [rng.choice(WORDS) for _ in range(n)]
    if rng.random() < 0.5:
        words[0] = words[0].capitalize()
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), str(rng.randint(-20, 99)))
    return " ".join(words) + rng.choice(".!?.")


def text(rng: random.Random) -> str:
    parts = [sentence(rng) for _ in range(rng.randint(1, 4))]
    extra = rng.random()
    if extra < 0.25:
        parts.insert(rng.randrange(len(parts) + 1), f"mail {rng.choice(WORDS)}@{rng.choice(HOSTS)} today.")
    elif extra < 0.45:
        parts.insert(rng.randrange(len(parts) + 1), f"#{rng.choice(WORDS)} and #{rng.choice(WORDS)} @{rng.choice(WORDS)}")
    elif extra < 0.6:
        parts.insert(rng.randrange(len(parts) + 1), f"see https://{rng.choice(HOSTS)}/{rng.choice(WORDS)}")
    return " ".join(parts)


def html_page(rng: random.Random) -> str:
    links = []
    for _ in range(rng.randint(1, 5)):
        href = (f"https://{rng.choice(HOSTS)}/{rng.choice(WORDS)}" if rng.random() < 0.7 else f"/{rng.choice(WORDS)}")
        links.append(f'<a href="{href}">{rng.choice(WORDS)}</a>')
    imgs = [f'<img src="{rng.choice(WORDS)}.png">' for _ in range(rng.randint(0, 3))]
    heads = [f"<h{n}>{rng.choice(WORDS).title()}</h{n}>" for n in (rng.randint(1, 3) for _ in range(rng.randint(1, 3)))]
    body = "".join(rng.sample(links + imgs + heads + [f"<p>{sentence(rng)}</p>"], k=len(links + imgs + heads) + 1))
    return f"<html><head><title>{rng.choice(WORDS).title()} {rng.choice(WORDS)}</title></head><body>{body}</body></html>"


def json_doc(rng: random.Random) -> str:
    doc = {"id": rng.randint(1, 999), "name": rng.choice(WORDS),
           "owner": {"name": rng.choice(WORDS), "tags": rng.sample(WORDS, rng.randint(0, 4))},
           "scores": [rng.randint(0, 100) for _ in range(rng.randint(1, 5))]}
    return json.dumps(doc)


def csv_table(rng: random.Random) -> str:
    rows = ["name,age,city,score"]
    for _ in range(rng.randint(1, 6)):
        rows.append(f"{rng.choice(WORDS)},{rng.randint(18, 80)},{rng.choice(CITIES)},{rng.randint(0, 100)}")
    return "\n".join(rows) + "\n"


def url(rng: random.Random) -> str:
    return f"https://{rng.choice(HOSTS)}/{rng.choice(WORDS)}/{rng.choice(WORDS)}"


def value_of(type_name: str, rng: random.Random, hint: str = ""):
    """A random value of a parameter type ("list[int]", "str", ...); `hint` says what a str holds
    (text, html, json, csv, url) or, as "urls", that a list[str] holds links."""
    if type_name == "list[int]":
        return [rng.randint(-9, 20) for _ in range(rng.randint(1, 9))]
    if type_name == "list[num]":
        return [rng.choice([rng.randint(-9, 20), round(rng.uniform(-5, 20), 1)]) for _ in range(rng.randint(1, 9))]
    if type_name == "list[str]":
        if hint == "urls":  # absolute and site-relative links, repeats included
            return [url(rng) if rng.random() < 0.75 else f"/{rng.choice(WORDS)}" for _ in range(rng.randint(1, 6))]
        return [rng.choice(WORDS) for _ in range(rng.randint(1, 7))]
    if type_name in ("int", "num"):
        return rng.randint(0, 6)
    if type_name == "str":
        return {"html": html_page, "json": json_doc, "csv": csv_table, "url": url}.get(hint, text)(rng)
    raise ValueError(f"no generator for {type_name}")
