"""The python-docs task's components: template sets, answer format and cleaning rules.

Rows are stdlib docstrings, ``{"title": "textwrap.dedent", "content": "Remove any common
leading whitespace ...", "module": "textwrap"}`` (``examples/python_docs/make_data.py``).
A run names these components (``examples/python_docs/python_docs.toml``)::

    prompts.train = "python-docs"          prompts.paraphrased = "python-docs-paraphrased"
    formatter = "python-docs"              dataset.clean.rules = ["python-docs"]

Only finetunekit's public API is used: ``finetunekit.hookimpl`` and the component classes.
"""

from __future__ import annotations

import re
from typing import Any

import finetunekit as ftk

#: The trained answer; the ``format`` metric checks its opening "The Python docs on {title}:".
PYTHON_DOCS_RESPONSE = "The Python docs on {title}: {content}"

PYTHON_DOCS = ftk.PromptTemplateSet(
    name="python-docs",
    description="Questions about a standard-library function or class, used for training.",
    templates=(
        "What does {title} do?",
        "Explain {title}.",
        "What is {title} for?",
        "Describe {title} from the Python standard library.",
        "What does the Python documentation say about {title}?",
    ),
)

PYTHON_DOCS_PARAPHRASED = ftk.PromptTemplateSet(
    name="python-docs-paraphrased",
    description="Other phrasings of the same questions, never used in training (tests generalisation).",
    templates=(
        "I'm reading code that calls {title}. What does it do?",
        "Could you tell me the purpose of {title} in Python?",
        "Summarise the docstring of {title}.",
        "How would you describe Python's {title}?",
        "In Python, what is {title} used for?",
        "Give me a short description of {title}.",
    ),
)

#: A signature (no nested parentheses) at the start of a docstring: "name(a, b=1)".
_SIGNATURE = r"[A-Za-z_][\w.]*\([^()]*\)"

PYTHON_DOCS_CLEANING = ftk.CleaningRules(
    name="python-docs",
    description="Docstrings of C functions that open with their signature, code samples, "
    "and lead-ins to a list or an example.",
    remove_patterns=(
        # the signature before a description: "partial(func, *args, **keywords) - new function ...",
        # "log(x, [base=math.e]) Return the ...", "getrandbits(k) -> x. Generates an int ..."
        re.compile(rf"^{_SIGNATURE}(?: - | -> (?:\w+\. )?| (?=[A-Z]))"),
        # a lead-in to an example that the first paragraph does not hold
        re.compile(r"\s*(?:For example|Example|Examples|Usage):$"),
    ),
    junk_contents=(
        # a signature and nothing else: "deque([iterable[, maxlen]]) --> deque object"
        re.compile(r"[A-Za-z_][\w.]*\(.*\)(?: -{1,2}> .*)?"),
        # a code sample: "csv_reader = reader(iterable [, dialect='excel'] ...) for row in ..."
        re.compile(r"\w+ = .*"),
        # a lead-in to a list the first paragraph does not hold: "... the following properties:"
        re.compile(r".*:"),
    ),
)


@ftk.hookimpl
def register_prompt_templates(register: Any) -> None:
    """The python-docs training and paraphrase template sets."""
    register(PYTHON_DOCS)
    register(PYTHON_DOCS_PARAPHRASED)


@ftk.hookimpl
def register_response_formatters(register: Any) -> None:
    """The python-docs answer: "The Python docs on {title}: {content}"."""
    register(ftk.ResponseFormatter(PYTHON_DOCS_RESPONSE, name="python-docs"))


@ftk.hookimpl
def register_cleaning_rules(register: Any) -> None:
    """Signatures, code samples and lead-ins in stdlib docstrings."""
    register(PYTHON_DOCS_CLEANING)
