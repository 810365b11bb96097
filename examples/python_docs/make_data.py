"""Make ``python_docs.jsonl``: the Python standard library's docstrings as FAQ rows.

Each row is one public function or class of a fixed list of stdlib modules::

    {"title": "textwrap.dedent", "content": "Remove any common leading whitespace from ...",
     "module": "textwrap"}

``content`` is the first paragraph of the object's own docstring (``__doc__``, not one
inherited from a base class), with runs of whitespace collapsed, kept when it is 40-400
characters long. Rows are sorted by (module, title), and a content already taken by an
earlier row (an alias such as ``os.path.join`` / ``posixpath.join``) is skipped, so every
answer is distinct. Nothing else is filtered here: the docstrings that open with a
signature ("partial(func, *args, **keywords) - new function ...") are left as they are for
the plugin's cleaning rules ("python-docs") to fix or drop. The output depends on the interpreter's docstrings, so the generated
file is committed next to this script (made with CPython 3.11)::

    python examples/python_docs/make_data.py            # writes examples/python_docs/python_docs.jsonl
    python examples/python_docs/make_data.py --check    # exit 1 if the committed file differs
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

MODULES = (
    "textwrap",
    "itertools",
    "functools",
    "os.path",
    "json",
    "shutil",
    "string",
    "collections",
    "statistics",
    "pathlib",
    "heapq",
    "bisect",
    "difflib",
    "fnmatch",
    "glob",
    "base64",
    "hashlib",
    "random",
    "math",
    "operator",
    "copy",
    "csv",
    "datetime",
    "calendar",
    "fractions",
    "zlib",
    "gzip",
    "tempfile",
    "urllib.parse",
    "html",
    "uuid",
)
MIN_CHARS = 40
MAX_CHARS = 400
OUTPUT = Path(__file__).resolve().with_name("python_docs.jsonl")


def first_paragraph(doc: str) -> str:
    """The first paragraph of a docstring (up to the first blank line), whitespace collapsed."""
    lines = inspect.cleandoc(doc).splitlines()
    paragraph: list[str] = []
    for line in lines:
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    return re.sub(r"\s+", " ", " ".join(paragraph)).strip()


def public_names(module: Any) -> list[str]:
    """The module's ``__all__`` if it has one, else its public names defined in it."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, value in vars(module).items()
            if getattr(value, "__module__", None) == module.__name__
        ]
    return sorted(name for name in set(names) if not name.startswith("_"))


def rows_of(module_name: str) -> Iterator[dict[str, str]]:
    module = importlib.import_module(module_name)
    for name in public_names(module):
        value = getattr(module, name, None)
        if not (inspect.isroutine(value) or inspect.isclass(value)):
            continue
        doc = value.__doc__  # its own docstring; inspect.getdoc would inherit a base class's
        if not isinstance(doc, str) or not doc.strip():
            continue
        content = first_paragraph(doc)
        if not MIN_CHARS <= len(content) <= MAX_CHARS:
            continue
        yield {"title": f"{module_name}.{name}", "content": content, "module": module_name}


def make_rows() -> list[dict[str, str]]:
    rows = sorted((row for m in MODULES for row in rows_of(m)), key=lambda r: (r["module"], r["title"]))
    seen: set[str] = set()
    unique = []
    for row in rows:
        if row["content"] in seen:
            continue
        seen.add(row["content"])
        unique.append(row)
    return unique


def render(rows: list[dict[str, str]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with the existing file instead of writing")
    args = parser.parse_args(argv)
    text = render(make_rows())
    if args.check:
        same = args.output.is_file() and args.output.read_text(encoding="utf-8") == text
        print(f"{args.output}: {'up to date' if same else 'differs from what this interpreter makes'}")
        return 0 if same else 1
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10))} rows to {args.output} (Python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
