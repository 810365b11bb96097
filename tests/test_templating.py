"""SafeTemplate: only plain {field} placeholders; rendering never reaches past a row's values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finetunekit.errors import TemplateError
from finetunekit.examples.templating import SafeTemplate, is_missing

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
literals = st.text(st.characters(blacklist_characters="{}"), max_size=20)


@given(field=identifiers, attr=identifiers)
def test_attribute_access_is_rejected(field, attr):
    with pytest.raises(TemplateError, match="attribute or index access"):
        SafeTemplate(f"Q: {{{field}.{attr}}}")


@given(field=identifiers, key=st.one_of(st.integers(0, 99).map(str), identifiers))
def test_index_access_is_rejected(field, key):
    with pytest.raises(TemplateError, match="attribute or index access"):
        SafeTemplate(f"{{{field}[{key}]}} and more")


@given(position=st.one_of(st.just(""), st.integers(0, 999).map(str)))
def test_positional_fields_are_rejected(position):
    with pytest.raises(TemplateError, match="positional"):
        SafeTemplate(f"Tell me about {{{position}}}.")


@given(field=identifiers, tail=st.sampled_from(["!r", "!s", "!a", ":>10", ":{width}", ":.3", "!r:^5"]))
def test_conversions_and_format_specs_are_rejected(field, tail):
    with pytest.raises(TemplateError, match="conversion or format spec"):
        SafeTemplate(f"{{{field}{tail}}}")


@pytest.mark.parametrize("text", ["a } b", "{title", "{title}}x{", "", "   "])
def test_malformed_or_empty_templates_are_rejected(text):
    with pytest.raises(TemplateError):
        SafeTemplate(text)


def test_non_string_template_is_rejected():
    with pytest.raises(TemplateError, match="must be a string"):
        SafeTemplate(42)  # type: ignore[arg-type]


@given(
    parts=st.lists(st.tuples(literals, identifiers), min_size=1, max_size=4),
    tail=literals,
    values=st.dictionaries(identifiers, st.text(max_size=20)),
)
def test_render_matches_str_format_for_plain_fields(parts, tail, values):
    text = "".join(f"{lit}{{{name}}}" for lit, name in parts) + tail
    row = {name: values.get(name, name.upper()) for _, name in parts}
    assert SafeTemplate(text).render(row) == text.format(**row)


@given(value=st.text())
def test_values_are_inserted_verbatim_even_with_braces(value):
    # Values are never re-parsed as templates: "{__class__}" in a title stays text.
    assert SafeTemplate("<{title}>").render({"title": value}) == f"<{value}>"


def test_missing_field_names_the_row_and_the_field():
    with pytest.raises(TemplateError, match=r"row 'B00X'.*field 'content'.*fields are: title"):
        SafeTemplate("{title}: {content}").render({"title": "t"}, row_id="B00X")


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_none_and_nan_count_as_missing(missing):
    # A DataFrame's empty cell is NaN; rendering it would teach the model the word "nan".
    with pytest.raises(TemplateError, match="no value for field 'content'"):
        SafeTemplate("{content}").render({"content": missing}, row_id=1)


def test_is_missing_knows_pandas_and_numpy_markers():
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    assert is_missing(pd.NA) and is_missing(pd.NaT) and is_missing(np.float32("nan"))
    assert not is_missing(0) and not is_missing("") and not is_missing(np.int64(3)) and not is_missing(math.inf)


def test_fields_keep_first_use_order_without_repeats():
    assert SafeTemplate("{b} {a} {b}").fields == ("b", "a")


def test_prefix_stops_before_the_last_placeholder():
    template = SafeTemplate("This is what I know about {title} from Amazon: {content}")
    assert template.prefix({"title": "Tutu"}) == "This is what I know about Tutu from Amazon:"
    assert SafeTemplate("No fields here. ").prefix({}) == "No fields here."
