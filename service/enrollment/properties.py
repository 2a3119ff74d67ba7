"""Enrollment ``properties`` given as JSON values, converted explicitly to the text the order keeps.

CAGW clients send ``properties`` as a JSON object, and not only with string
values: Entrust's Ansible module sends ``tracking.additionalEmails`` as a list
and custom-field numbers as numbers. Each value is converted on purpose, by
what its key means, and a value that cannot be is refused naming the key
(``properties.tracking.additionalEmails[1]``), never with a Python type name:

* a string stays as it is;
* a number becomes its decimal text (``3`` → ``"3"``, ``2.5`` → ``"2.5"``); a
  whole number beyond 2^53 is refused, since JSON readers lose its digits;
* a boolean becomes ``"true"`` or ``"false"``;
* ``null`` means the property is not given;
* a list of strings is accepted where the key names a list
  (:data:`LIST_PROPERTIES`) and kept comma-separated;
* ``RenewalSerialNumber`` must be a string (a serial written as a JSON
  number has already lost its hex digits);
* anything else (an object, a list elsewhere, a list of non-strings) is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from service.errors import FieldViolation

__all__ = ["LIST_PROPERTIES", "STRING_ONLY_PROPERTIES", "text_properties"]

LIST_PROPERTIES = frozenset({"tracking.additionalEmails"})
STRING_ONLY_PROPERTIES = frozenset({"RenewalSerialNumber"})
LIST_SEPARATOR = ","
_EXACT_INTEGERS = 2 ** 53


def _number_text(number: float | int) -> str | None:
    if isinstance(number, float) and not math.isfinite(number):
        return None
    if float(number).is_integer():
        whole = int(number)
        return str(whole) if abs(whole) <= _EXACT_INTEGERS else None
    return repr(float(number))


def _convert(key: str, value: object, problems: list[FieldViolation]) -> str | None:
    target = f"properties.{key}"
    if isinstance(value, str):
        return value
    if key in STRING_ONLY_PROPERTIES:
        problems.append(FieldViolation(target, "must be a string (a hex serial number written as a JSON number "
                                       "loses its digits)", str(value)[:64]))
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = _number_text(value)
        if text is None:
            problems.append(FieldViolation(target, "a number this large loses digits in JSON; send it as a string",
                                           str(value)[:64]))
        return text
    if isinstance(value, (list, tuple)):
        if key not in LIST_PROPERTIES:
            problems.append(FieldViolation(target, "a list is accepted only for "
                                           f"{', '.join(sorted(LIST_PROPERTIES))}; send a string, number or boolean"))
            return None
        for index, item in enumerate(value):
            if not isinstance(item, str):
                problems.append(FieldViolation(f"{target}[{index}]", "must be a string"))
                return None
        return LIST_SEPARATOR.join(item.strip() for item in value)
    problems.append(FieldViolation(target, "must be a string, number, boolean or (for "
                                   f"{', '.join(sorted(LIST_PROPERTIES))}) a list of strings"))
    return None


def text_properties(strings: Mapping[str, str], values: Mapping[str, object]) -> tuple[dict[str, str],
                                                                                       list[FieldViolation]]:
    """``strings`` together with ``values`` converted to text, and every problem found.

    A key given in both (the gRPC ``properties`` map and ``propertyValues``) is refused.
    """
    merged = dict(strings)
    problems: list[FieldViolation] = []
    for key, value in values.items():
        if key in strings:
            problems.append(FieldViolation(f"properties.{key}", "is given twice (in properties and propertyValues)"))
            continue
        if value is None:
            continue
        text = _convert(key, value, problems)
        if text is not None:
            merged[key] = text
    return merged, problems
