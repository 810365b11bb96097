"""Synthetic rows in the exact AmazonTitles-1.3MM schema, with the real corpus's quirks.

``uid`` (10 characters: an ISBN-10-like number for books, ``B0...`` otherwise), ``title``,
``content``, ``target_ind`` (sorted label ids) and ``target_rel`` (1.0 per label). About a third
of the contents are empty, about a fifth carry HTML entities (``&#39;``, ``&#x2019;``,
``&amp;`` ...), some are junk ("Book by", "VHS Tape", "Text: English, Spanish"), some end with
Amazon's "--This text refers to thePaperbackedition." note or hold double spaces; about 2 % of
titles repeat an earlier one; content lengths run from a few words to ~30,000 characters.
Each product's content states facts of its own (author, year, pages, material, size ...), so
a model can be asked about them. Rows are a pure function of ``(seed, row index)`` chunk by
chunk, so any process count gives the same file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable, Iterator

import synthetic_words as W

#: Rows generated from one random stream (and the unit of parallel work).
CHUNK_ROWS = 10_000
#: Number of labels in the AmazonTitles-1.3MM label space.
LABEL_SPACE = 1_305_265
#: The full training corpus's row count.
FULL_CORPUS_ROWS = 2_248_619

EMPTY_CONTENT_SHARE = 0.33
JUNK_SHARE = 0.02
DUPLICATE_TITLE_SHARE = 0.02
ENTITY_SHARE = 0.3
DOUBLE_SPACE_SHARE = 0.12
VERY_LONG_SHARE = 0.002


def _name(rng: random.Random) -> str:
    return f"{rng.choice(W.FIRST_NAMES)} {rng.choice(W.LAST_NAMES)}"


def _weighted(rng: random.Random, *options: tuple[float, Callable[[], str]]) -> str:
    """Build one of ``options`` (``(probability, builder)`` pairs), drawn by probability."""
    roll = rng.random()
    for probability, build in options:
        roll -= probability
        if roll < 0:
            return build()
    return options[-1][1]()


def _novel(rng: random.Random) -> tuple[str, str]:
    adjective, noun, place = rng.choice(W.ADJECTIVES), rng.choice(W.NOUNS), rng.choice(W.PLACES)
    kind = rng.choice(("Mystery", "Novel", "Romance", "Story"))
    title = _weighted(
        rng,
        (0.3, lambda: f"The {adjective} {noun} of {place.removeprefix('the ')}"),
        (0.3, lambda: f"{_name(rng)} and the {adjective} {noun}"),
        (0.25, lambda: f"{rng.choice(W.FIRST_NAMES)}'s {noun}: A {place.removeprefix('the ')} {kind}"),
        (0.15, lambda: f"The {adjective} {noun}"),
    )
    if rng.random() < 0.3:
        title += f" ({rng.choice(W.ADJECTIVES)} {rng.choice(W.NOUNS)} Book {rng.randint(1, 9)})"
    author, hero, rival = _name(rng), rng.choice(W.FIRST_NAMES), rng.choice(W.FIRST_NAMES)
    sentences = [
        f"{title} is a {rng.choice(W.GENRES)} by {author}, first published by {rng.choice(W.PUBLISHERS)} "
        f"in {rng.randint(1950, 2014)}.",
        f"Set in {place}, it follows {hero}, who must find the {rng.choice(W.ADJECTIVES).lower()} "
        f"{rng.choice(W.NOUNS).lower()} before {rival} does.",
        f"{rng.randint(96, 720)} pages.",
    ]
    for _ in range(rng.choice((0, 1, 2, 3, 5, 9))):
        sentences.append(
            rng.choice(
                (
                    f"When {hero} returns to the {rng.choice(W.NOUNS).lower()} after {rng.randint(2, 40)} years, "
                    f"nothing is as {rng.choice(W.ADJECTIVES).lower()} as it seemed.",
                    f"{rival} keeps a {rng.choice(W.NOUNS).lower()} that nobody in {place} has seen since {rng.randint(1800, 1990)}.",
                    f"Told in {rng.randint(12, 60)} short chapters, it moves between {place} and {rng.choice(W.PLACES)}.",
                    f"{author.split()[1]} wrote it over {rng.randint(2, 11)} winters in {rng.choice(W.PLACES)}.",
                )
            )
        )
    return title, " ".join(sentences) + _book_extras(rng, author)


def _handbook(rng: random.Random) -> tuple[str, str]:
    topic, place = rng.choice(W.TOPICS), rng.choice(W.PLACES)
    subtitle = rng.choice(W.SUBTITLE_PATTERNS).format(n=rng.randint(12, 101), place=place)
    title = _weighted(
        rng,
        (0.1, lambda: f"{topic}: {subtitle}"),
        (0.5, lambda: f"{topic} with {_name(rng)}: {subtitle}"),
        (0.4, lambda: f"The {place.removeprefix('the ')} Book of {topic}: {subtitle}"),
    )
    if rng.random() < 0.2:
        title += f" ({rng.choice(('2nd', '3rd', '4th'))} Edition)"
    author = _name(rng)
    content = (
        f"{author} covers {topic.lower()} in {rng.randint(6, 24)} chapters, from first steps to "
        f"{rng.choice(('advanced technique', 'teaching others', 'competition', 'restoration work'))}, with "
        f"{rng.randint(20, 300)} colour photographs and a glossary. {author.split()[1]} has taught "
        f"{topic.lower()} in {place} for {rng.randint(5, 40)} years."
    )
    for _ in range(rng.choice((0, 1, 2, 4))):
        content += rng.choice(
            (
                f" Chapter {rng.randint(2, 12)} explains the {rng.choice(W.ADJECTIVES).lower()} {rng.choice(W.NOUNS).lower()} method step by step.",
                f" Includes {rng.randint(3, 40)} worked examples and a {rng.randint(2, 30)}-page index.",
                f" This edition adds a section on {rng.choice(W.TOPICS).lower()} written with {_name(rng)}.",
            )
        )
    return title, content + _book_extras(rng, author)


def _book_extras(rng: random.Random, author: str) -> str:
    extras = []
    for _ in range(rng.choice((0, 1, 2, 3, 6, 10))):
        extras.append(f" '{rng.choice(W.PRAISE)}.' {rng.choice(W.NEWSPAPERS)}")
    if rng.random() < 0.4:
        extras.append(
            f" {author} was born in {rng.choice(W.PLACES)} in {rng.randint(1930, 1990)} and worked as a "
            f"{rng.choice(('teacher', 'journalist', 'nurse', 'engineer', 'librarian'))} before writing. "
            f"{author.split()[0]} now lives in {rng.choice(W.PLACES)} with {rng.randint(1, 4)} dogs."
        )
    if rng.random() < 0.15:
        extras.append(rng.choice(W.EDITION_NOTES))
    return "".join(extras)


def _clothing(rng: random.Random) -> tuple[str, str]:
    brand, item, color = rng.choice(W.BRANDS), rng.choice(W.CLOTHING), rng.choice(W.COLORS)
    title = f"{rng.choice(W.WEARERS)} {item} {color}"
    if rng.random() < 0.8:
        title = f"{brand} {rng.choice(W.NOUNS)} {title}, Style {rng.randint(100, 9999)}"
    low, high = sorted(rng.sample(range(2, 16), 2))
    content = (
        f"{brand}'s {item.lower()} in {color.lower()}, made of {rng.choice(W.MATERIALS)}. "
        f"{rng.choice(W.FEATURES).capitalize()}; {rng.choice(W.FEATURES)}. Sizes {low} to {high}, "
        f"{rng.randint(8, 40)} inches long."
    )
    return title, content + _features(rng)


def _features(rng: random.Random) -> str:
    """A few more product-specific sentences (care, fit, packaging, reviews)."""
    extras = []
    for _ in range(rng.choice((0, 1, 2, 3, 5, 8))):
        extras.append(
            rng.choice(
                (
                    f" {rng.choice(W.FEATURES).capitalize()}, and {rng.choice(W.FEATURES)}.",
                    f" Tested by {rng.randint(3, 200)} families in {rng.choice(W.PLACES)} over {rng.randint(2, 18)} months.",
                    f" Ships in a recycled box of {rng.randint(10, 80)} by {rng.randint(10, 80)} centimetres.",
                    f" The {rng.choice(W.COLORS).lower()} trim matches the {rng.choice(W.ADJECTIVES).lower()} {rng.choice(W.NOUNS).lower()} range.",
                    f" '{rng.choice(W.PRAISE)}.' {_name(rng)}, verified buyer",
                )
            )
        )
    return "".join(extras)


def _goods(rng: random.Random) -> tuple[str, str]:
    kind = rng.random()
    names = W.HOME if kind < 0.45 else W.TOYS if kind < 0.75 else W.GADGETS
    brand, item, size = rng.choice(W.BRANDS), rng.choice(names), rng.randint(3, 60)
    title = f"{brand} {rng.choice(W.NOUNS)} Series {item}, {size}-{rng.choice(('Inch', 'Piece', 'Pack'))}"
    if rng.random() < 0.5:
        title += f", {rng.choice(W.COLORS)}"
    content = (
        f"The {brand} {item.lower()} is made of {rng.choice(W.MATERIALS)} and weighs "
        f"{rng.randint(50, 4000)} grams. {rng.choice(W.FEATURES).capitalize()}, "
        f"{rng.choice(W.FEATURES)}. Designed in {rng.choice(W.PLACES)}; "
        f"{rng.randint(1, 10)}-year guarantee."
    )
    return title, content + _features(rng)


def _film(rng: random.Random) -> tuple[str, str]:
    title = (
        f"The {rng.choice(W.ADJECTIVES)} {rng.choice(W.NOUNS)} ({rng.randint(1940, 2013)}) "
        f"{rng.choice(('[VHS]', '(DVD)', '[Blu-ray]'))}"
    )
    content = (
        f"Starring {_name(rng)} and {_name(rng)}, directed by {_name(rng)}. Filmed in "
        f"{rng.choice(W.PLACES)} in {rng.randint(1940, 2013)}; running time {rng.randint(70, 190)} minutes."
    )
    return title, content


def _album(rng: random.Random) -> tuple[str, str]:
    style = rng.choice(W.MUSIC_STYLES)
    title = f"{rng.choice(W.ADJECTIVES)} {rng.choice(W.NOUNS)}: {style.title()} Songs"
    title += rng.choice((f" by {_name(rng)}", f" Live in {rng.choice(W.PLACES).removeprefix('the ')}", f" ({rng.randint(1955, 2013)})"))
    content = (
        f"{rng.randint(8, 24)} {style} tracks performed by {_name(rng)} on the "
        f"{rng.choice(W.INSTRUMENTS)}, recorded live in {rng.choice(W.PLACES)} in {rng.randint(1955, 2013)}."
    )
    return title, content


PRODUCT_MAKERS: tuple[tuple[Callable[[random.Random], tuple[str, str]], float], ...] = (
    (_novel, 0.38),
    (_handbook, 0.22),
    (_clothing, 0.12),
    (_goods, 0.14),
    (_film, 0.08),
    (_album, 0.06),
)
_MAKERS = [maker for maker, _ in PRODUCT_MAKERS]
_WEIGHTS = [weight for _, weight in PRODUCT_MAKERS]


def _with_entities(rng: random.Random, text: str) -> str:
    for plain, spellings in W.ENTITY_SPELLINGS.items():
        if plain in text and rng.random() < 0.7:
            text = text.replace(plain, rng.choice(spellings), 1 if plain == " " else -1)
    return text


def _very_long(rng: random.Random, content: str) -> str:
    parts = [content]
    for chapter in range(1, rng.randint(8, 90)):
        parts.append(
            f" Chapter {chapter}: The {rng.choice(W.ADJECTIVES)} {rng.choice(W.NOUNS)}. "
            f"{rng.choice(W.FIRST_NAMES)} travels to {rng.choice(W.PLACES)} and meets "
            f"{_name(rng)}, who keeps a {rng.choice(W.NOUNS).lower()} of {rng.randint(2, 500)} letters."
            f" '{rng.choice(W.PRAISE)}.' {rng.choice(W.NEWSPAPERS)}"
        )
    return "".join(parts)


def _uid(index: int, book: bool) -> str:
    code = (index * 7_654_321_019) % 10**10  # a bijection on 10-digit numbers: ids never repeat
    if book:
        return f"{code:010d}"
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    text = ""
    for _ in range(8):
        code, rest = divmod(code, 36)
        text = digits[rest] + text
    return "B0" + text


def _labels(rng: random.Random) -> tuple[list[int], list[float]]:
    count = min(int(rng.expovariate(1 / 28)) + 1, 400)
    labels = sorted(rng.sample(range(LABEL_SPACE), count))
    return labels, [1.0] * count


def generate_chunk(seed: int, chunk: int, rows: int = CHUNK_ROWS) -> list[dict[str, Any]]:
    """The rows of one chunk: ``rows`` rows starting at index ``chunk * CHUNK_ROWS``."""
    rng = random.Random(f"finetunekit-synthetic:{seed}:{chunk}")
    recent: list[tuple[str, str]] = []
    out = []
    for offset in range(rows):
        maker = rng.choices(_MAKERS, _WEIGHTS)[0]
        if recent and rng.random() < DUPLICATE_TITLE_SHARE:
            title, content = rng.choice(recent)
            content = content if rng.random() < 0.5 else ""
        else:
            title, content = maker(rng)
            if rng.random() < VERY_LONG_SHARE:
                content = _very_long(rng, content)
            if rng.random() < DOUBLE_SPACE_SHARE:
                content = content.replace(". ", ".  ")
            if rng.random() < ENTITY_SHARE:
                content = _with_entities(rng, content)
            if rng.random() < 0.01:
                title = title.replace("&", "&amp;").replace("'", "&#39;")
            recent = (recent + [(title, content)])[-256:]
            roll = rng.random()
            if roll < EMPTY_CONTENT_SHARE:
                content = ""
            elif roll < EMPTY_CONTENT_SHARE + JUNK_SHARE:
                content = rng.choice(W.JUNK_CONTENTS)
        target_ind, target_rel = _labels(rng)
        out.append(
            {
                "uid": _uid(chunk * CHUNK_ROWS + offset, maker in (_novel, _handbook)),
                "title": title,
                "content": content,
                "target_ind": target_ind,
                "target_rel": target_rel,
            }
        )
    return out


def generate_rows(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """The first ``n`` synthetic rows for ``seed`` (the same rows whatever ``n`` is)."""
    for chunk in range(-(-n // CHUNK_ROWS)):
        size = min(CHUNK_ROWS, n - chunk * CHUNK_ROWS)
        yield from generate_chunk(seed, chunk, size)


def _chunk_lines(job: tuple[int, int, int]) -> bytes:
    seed, chunk, size = job
    return "".join(json.dumps(row) + "\n" for row in generate_chunk(seed, chunk, size)).encode("utf-8")


def write_jsonl_gz(
    path: str | Path,
    n: int,
    seed: int = 0,
    *,
    processes: int = 1,
    smallest: bool = False,
    progress: bool | None = None,
) -> Path:
    """Write ``n`` synthetic rows to ``path`` as gzip JSON Lines, atomically; return the path.

    ``processes`` > 1 generates chunks in parallel (the file is the same either way);
    ``smallest`` compresses hardest (zlib level 9) instead of fastest (ISA-L when installed).
    """
    from tqdm import tqdm

    from finetunekit.atomic import atomic_open

    path = Path(path)
    jobs = [(seed, chunk, min(CHUNK_ROWS, n - chunk * CHUNK_ROWS)) for chunk in range(-(-n // CHUNK_ROWS))]
    compress = _gzip_writer(smallest)
    with atomic_open(path, "wb") as raw, compress(raw) as out, tqdm(
        total=n, unit="rows", desc=f"writing {path.name}", disable=None if progress is None else not progress
    ) as bar:
        if processes > 1:
            import multiprocessing

            with multiprocessing.get_context("spawn").Pool(processes) as pool:
                for (_, _, size), data in zip(jobs, pool.imap(_chunk_lines, jobs)):
                    out.write(data)
                    bar.update(size)
        else:
            for job in jobs:
                out.write(_chunk_lines(job))
                bar.update(job[2])
    return path


def _gzip_writer(smallest: bool) -> Callable[[Any], Any]:
    """A gzip writer over a binary file object: ISA-L (fast) when installed, else zlib."""
    import gzip

    if smallest:
        return lambda raw: gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=9, mtime=0)
    try:
        from isal import igzip

        return lambda raw: igzip.IGzipFile(filename="", fileobj=raw, mode="wb", compresslevel=2, mtime=0)
    except ImportError:  # pragma: no cover - depends on the environment
        return lambda raw: gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0)
