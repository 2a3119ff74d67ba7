"""Enrollment properties with JSON values: explicit conversion by key, errors naming the key."""

from __future__ import annotations

import pytest

from service.enrollment.properties import text_properties


@pytest.mark.parametrize(("values", "expected"), [
    pytest.param({"tracking.requesterName": "Ann"}, {"tracking.requesterName": "Ann"}, id="ok-string"),
    pytest.param({"customField.Cost": 4711.0}, {"customField.Cost": "4711"}, id="ok-whole-number"),
    pytest.param({"customField.Ratio": 2.5}, {"customField.Ratio": "2.5"}, id="ok-decimal"),
    pytest.param({"customField.Flag": True, "other": False}, {"customField.Flag": "true", "other": "false"},
                 id="ok-booleans"),
    pytest.param({"tracking.additionalEmails": ["a@example.com", " b@example.com"]},
                 {"tracking.additionalEmails": "a@example.com,b@example.com"}, id="ok-list-of-emails"),
    pytest.param({"tracking.additionalEmails": []}, {"tracking.additionalEmails": ""}, id="ok-empty-list"),
    pytest.param({"tracking.trackingInfo": None}, {}, id="ok-null-is-not-given"),
])
def test_ok_json_values_become_text(values: dict[str, object], expected: dict[str, str]) -> None:
    merged, problems = text_properties({"kept": "x"}, values)
    assert not problems
    assert merged == {"kept": "x", **expected}


@pytest.mark.parametrize(("values", "target", "words"), [
    pytest.param({"tracking.additionalEmails": ["a@example.com", 3.0]}, "properties.tracking.additionalEmails[1]",
                 "must be a string", id="fail-list-of-non-strings"),
    pytest.param({"customField.Tags": ["a"]}, "properties.customField.Tags", "a list is accepted only for "
                 "tracking.additionalEmails", id="fail-list-where-no-list-is-meant"),
    pytest.param({"customField.Nested": {"a": "b"}}, "properties.customField.Nested", "must be a string, number",
                 id="fail-object"),
    pytest.param({"RenewalSerialNumber": 1234.0}, "properties.RenewalSerialNumber", "must be a string",
                 id="fail-serial-as-number"),
    pytest.param({"customField.Big": 2.0 ** 60}, "properties.customField.Big", "loses digits", id="fail-huge-number"),
    pytest.param({"kept": 1.0}, "properties.kept", "given twice", id="fail-key-in-both"),
])
def test_fail_names_the_key(values: dict[str, object], target: str, words: str) -> None:
    _, problems = text_properties({"kept": "x"}, values)
    assert [p.field for p in problems] == [target]
    assert words in problems[0].description
    assert "float" not in problems[0].description and "list" != problems[0].description
