"""Whole numbers and JSON from clients: bounded, or refused with a message."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.errors import InvalidInput
from server.domain.inputs import MAX_ID, MAX_SEQ, parse_json, whole_number


@pytest.mark.parametrize("value", ["0", "7", str(MAX_ID), 12, MAX_ID])
def test_a_whole_number_in_range_is_read(value: object) -> None:
    assert whole_number(value, "The id") == int(str(value))


@pytest.mark.parametrize(
    "value",
    [str(MAX_ID + 1), "9" * 20, "9" * 5000, "²", "١٢", "-1", "+1", " 1", "1.0", "", None, -1, True],
)
def test_anything_else_is_refused_naming_what_and_the_range(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"^The id must be a whole number from 0 to 2147483647"):
        whole_number(value, "The id")


def test_sequence_numbers_take_a_larger_bound() -> None:
    assert whole_number(str(MAX_SEQ), "The version", MAX_SEQ) == MAX_SEQ
    with pytest.raises(InvalidInput):
        whole_number(MAX_SEQ + 1, "The version", MAX_SEQ)


def test_json_up_to_the_depth_parses_and_deeper_is_refused_before_parsing() -> None:
    assert parse_json("[" * 5 + "]" * 5, max_depth=5) == [[[[[]]]]]
    with pytest.raises(InvalidInput, match="nested more than 5 levels"):
        parse_json("[" * 6 + "]" * 6, max_depth=5)
    with pytest.raises(InvalidInput, match="nested more than 100 levels"):
        parse_json(b'{"a": ' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"a": '[[[[{{{{ \\" [[[[', "b": ["]]]]"]})
    assert parse_json(text, max_depth=2) == json.loads(text)


def test_malformed_json_is_a_value_error_as_with_json_loads() -> None:
    with pytest.raises(ValueError):
        parse_json(b"{not json")
    with pytest.raises(ValueError):
        parse_json(b"\xff\xfe\xfa")


@given(st.recursive(st.none() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)))
def test_any_json_within_the_depth_reads_as_json_loads_reads_it(value: object) -> None:
    encoded = json.dumps(value)
    assert parse_json(encoded) == json.loads(encoded)
    assert parse_json(encoded.encode("utf-16")) == json.loads(encoded)
