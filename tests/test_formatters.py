"""ResponseFormatter and resolve_formatter."""

from __future__ import annotations

import pytest

from finetunekit import hookimpl
from finetunekit.errors import TemplateError
from finetunekit.builtin.amazon import AMAZON_RESPONSE
from finetunekit.examples.formatters import ResponseFormatter, resolve_formatter
from finetunekit.examples.prompts import ROW_ID_FIELD
from finetunekit.registry import UnknownComponentError, registry_for

ROW = {ROW_ID_FIELD: "B1", "title": "Tutu", "content": "Pink & {fluffy}"}


def test_template_formats_the_amazon_answer():
    formatter = ResponseFormatter(AMAZON_RESPONSE)
    assert formatter.format(ROW) == "This is what I know about Tutu from Amazon: Pink & {fluffy}"
    assert formatter.prefix(ROW) == "This is what I know about Tutu from Amazon:"
    assert formatter.fields == ("title", "content")


def test_missing_field_names_the_row():
    with pytest.raises(TemplateError, match=r"row 'B2'.*'content'"):
        ResponseFormatter(AMAZON_RESPONSE).format({ROW_ID_FIELD: "B2", "title": "x"})


@pytest.mark.parametrize("bad", ["{content.__class__}", "{0}", "{content!r}", "{content:>9}"])
def test_unsafe_templates_are_rejected(bad):
    with pytest.raises(TemplateError):
        ResponseFormatter(bad)


def test_resolve_by_instance_class_name_and_template(pm):
    mine = ResponseFormatter("{title}", name="mine")
    assert resolve_formatter(mine, plugins=pm) is mine
    assert resolve_formatter("amazon-product", plugins=pm).format(ROW) == ResponseFormatter(AMAZON_RESPONSE).format(ROW)
    assert resolve_formatter("Answer: {content}", plugins=pm).format(ROW) == "Answer: Pink & {fluffy}"


def test_unknown_name_lists_registered_formatters(pm):
    with pytest.raises(UnknownComponentError, match="'amazon-product'"):
        resolve_formatter("no-such-formatter", plugins=pm)


def test_non_string_spec_is_a_type_error(pm):
    with pytest.raises(TypeError, match="registered name or a template string"):
        resolve_formatter(3, plugins=pm)  # type: ignore[arg-type]


def test_a_registered_subclass_is_instantiated(pm):
    class Shouting(ResponseFormatter):
        name = "shouting"

        def __init__(self):
            super().__init__(AMAZON_RESPONSE)

        def format(self, row):
            return super().format(row).upper()

    class Plugin:
        @hookimpl
        def register_response_formatters(self, register):
            register(Shouting)

    pm.register(Plugin(), name="shouting-plugin")
    assert registry_for("register_response_formatters", pm).plugin_of("shouting") == "shouting-plugin"
    assert resolve_formatter("shouting", plugins=pm).format(ROW).startswith("THIS IS WHAT I KNOW ABOUT TUTU")


def test_a_subclass_overriding_only_format_has_no_prefix_so_format_is_not_measured():
    class Plain(ResponseFormatter):
        name = "plain"

        def format(self, row):
            return f"{row['title']} is {row['content']}"

    formatter = Plain()
    assert formatter.prefix(ROW) is None  # not the template's: the format metric leaves it out
    assert formatter.format(ROW) == "Tutu is Pink & {fluffy}"


def test_a_formatter_without_a_template_asks_for_one():
    with pytest.raises(TypeError, match="override format"):
        ResponseFormatter().format(ROW)
