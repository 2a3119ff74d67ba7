"""``Violations``: every problem found in one request, gathered so the caller hears of all at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from service.errors import FieldViolation, InvalidRequest

__all__ = ["Violations"]

P = ParamSpec("P")
T = TypeVar("T")


class Violations:
    """Every problem found so far in one request, reported together."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, field_name: str, description: str, value: str = "") -> None:
        self.items.append(FieldViolation(field_name, description, value))

    def absorb(self, exc: InvalidRequest) -> None:
        self.items.extend(exc.violations or [FieldViolation("", exc.message)])

    def attempt(self, check: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T | None:
        """``check(...)``, or None with its violations kept when it raises InvalidRequest."""
        try:
            return check(*args, **kwargs)
        except InvalidRequest as exc:
            self.absorb(exc)
            return None
