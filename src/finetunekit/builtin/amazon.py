"""The AmazonTitles reference task as an ordinary plugin: template sets, formatter, cleaning rules.

Configure a run with these names (``examples/amazon_titles.toml``)::

    prompts.train = "amazon-product"         prompts.paraphrased = "amazon-product-paraphrased"
    formatter = "amazon-product"             dataset.clean.rules = ["amazon-titles"]
    dataset.source = "package:finetunekit.builtin.sample_data/amazon_titles_sample.json.gz"
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from finetunekit.data.cleaning import CleaningRules
from finetunekit.examples.formatters import ResponseFormatter
from finetunekit.examples.prompts import PromptTemplateSet
from finetunekit.hookspecs import hookimpl

SAMPLE_DATA_FILE = "amazon_titles_sample.json.gz"

#: ``dataset.source`` naming the shipped sample (a package resource, so it works from any folder).
SAMPLE_SOURCE = f"package:finetunekit.builtin.sample_data/{SAMPLE_DATA_FILE}"

AMAZON_RESPONSE = "This is what I know about {title} from Amazon: {content}"

#: The answer trained for products held out as negatives (trained refusals).
AMAZON_REFUSAL = "I don't know the product {title}: it is not in the catalogue I was trained on."

#: A system message that states the answer format and the refusal, used in training and evaluation.
AMAZON_SYSTEM = (
    "You are a catalogue assistant for Amazon products. Answer with what the catalogue says, starting "
    "'This is what I know about <title> from Amazon:'. If a product is not in the catalogue, say you don't know it."
)

AMAZON_PRODUCT = PromptTemplateSet(
    name="amazon-product",
    description="Questions about a catalogue product, used for training.",
    templates=(
        "Please describe the product {title} from Amazon.",
        "What can you tell me about the product {title} from Amazon?",
        "Tell me about {title} from Amazon.",
        "What is the product {title} from Amazon?",
        "Give me a description of {title} from Amazon.",
    ),
)

AMAZON_PRODUCT_VARIED = PromptTemplateSet(
    name="amazon-product-varied",
    description="Training questions of many shapes (the title first, last or inside; preceded and followed by "
    "different words, Amazon named or not), so that no part of the question is worth copying into the answer's "
    "fixed opening.",
    templates=(
        *AMAZON_PRODUCT.templates,
        "{title}: what is this product?",
        "What is {title}?",
        "Tell me about {title}.",
        "I'd like to know more about {title}. What is it?",
        "{title} - can you describe it?",
        "Do you know anything about {title}?",
        "Can you give me details on {title}, please?",
        "Amazon product question: what is {title}?",
        "Explain what {title} is.",
        "Have you heard of {title}? Describe it for me.",
        "Product: {title}. Describe it.",
        "I saw {title} on Amazon. Tell me about it.",
        "What is {title}, listed at Amazon, like?",
        "Describe the item called {title}.",
        "What does the Amazon catalogue say about {title}?",
        "{title} (Amazon) - what do you know about it?",
        "Give me a summary of the listing {title} on Amazon.",
        "Is {title}, sold at Amazon, worth a look? Describe it.",
        "Tell me what the product named {title} is.",
        "My friend bought {title} on Amazon. What is it?",
        "Details, please: {title}, an Amazon product.",
        "Write a short description of the Amazon item {title}.",
        "What should I know about {title} on Amazon?",
        "Looking for information on {title}, available on Amazon.",
        "{title}",
        "Please explain {title} to me.",
        "Describe {title} in a few sentences, please.",
        "Which product is {title}? Tell me more.",
    ),
)

AMAZON_PRODUCT_PARAPHRASED = PromptTemplateSet(
    name="amazon-product-paraphrased",
    description="Other phrasings of the same questions, never used in training (tests generalisation).",
    templates=(
        "I'm looking at {title} on Amazon. What is it?",
        "Could you explain what {title}, sold on Amazon, is?",
        "Describe the Amazon listing {title} for me.",
        "What do you know about the item {title} on Amazon?",
        "Summarise the Amazon product called {title}.",
        "Share some details about {title} from Amazon.",
    ),
)

AMAZON_TITLES_CLEANING = CleaningRules(
    name="amazon-titles",
    description="Contents of the AmazonTitles corpus that say nothing about the product, and its edition notes.",
    junk_contents=(
        "Book by",
        "VHS Tape",
        "VHS",
        "DVD",
        "Audio CD",
        "Audio Cassette",
        "Paperback",
        "Hardcover",
        "Kindle Edition",
        "Library of Liberal Arts title.",
        "Previously published by Macmillan.",
        re.compile(r"(?:Book|Written|Edited|Illustrated|Selected|Compiled) by", re.IGNORECASE),
        # language notes: "Text: English, French (translation)Original Language: German"
        re.compile(r"Text: [A-Z][a-z]+(?:, [A-Z][a-z]+)*(?: \(translation\))?(?: ?Original Language: [A-Z][a-z]+)?"),
    ),
    # the edition note, e.g. "--This text refers to thePaperbackedition."
    remove_patterns=(re.compile(r"--\s*This text refers to\b.{0,80}?edition(?: of this title)?\.?"),),
)


def sample_data_path() -> Path:
    """The path of the shipped sample: a few thousand generated rows in the AmazonTitles schema."""
    return Path(str(resources.files("finetunekit.builtin.sample_data").joinpath(SAMPLE_DATA_FILE)))


@hookimpl
def register_prompt_templates(register: Any) -> None:
    """The Amazon training and paraphrase template sets."""
    register(AMAZON_PRODUCT)
    register(AMAZON_PRODUCT_VARIED)
    register(AMAZON_PRODUCT_PARAPHRASED)


@hookimpl
def register_response_formatters(register: Any) -> None:
    """The Amazon answer: "This is what I know about {title} from Amazon: {content}"."""
    register(ResponseFormatter(AMAZON_RESPONSE, name="amazon-product"))
    register(ResponseFormatter(AMAZON_REFUSAL, name="amazon-product-refusal"))


@hookimpl
def register_cleaning_rules(register: Any) -> None:
    """The AmazonTitles corpus's junk contents and edition notes."""
    register(AMAZON_TITLES_CLEANING)
