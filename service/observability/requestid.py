"""The request id of the call being served: taken from the caller or made, carried in a context variable.

A caller may name its call with ``x-request-id`` (a REST header or gRPC
metadata). An id that is not 1-128 characters of letters, digits and
``. _ - : / + = @`` is not taken (it would end up in every log line of the
call): a fresh one is made instead. The transports return the id to the caller
(REST ``X-Request-Id`` header, gRPC initial metadata), the pipeline binds it for
the call (:func:`bound_request_id`), and every log line and error of the call
carries it. Tasks started during the call (an order's task) inherit it.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import uuid
from collections.abc import Iterator, Mapping

__all__ = [
    "REQUEST_ID_HEADER",
    "accept_request_id",
    "bound_request_id",
    "current_request_id",
    "new_request_id",
    "request_id_of",
]

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_LENGTH = 128
_VALID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,%d}" % MAX_REQUEST_ID_LENGTH)

_current: contextvars.ContextVar[str] = contextvars.ContextVar("cagw_request_id", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """``value`` when it is a well-formed request id, else a new one."""
    if value is not None and _VALID.fullmatch(value):
        return value
    return new_request_id()


def request_id_of(metadata: Mapping[str, str]) -> str:
    """The request id of a call with these (lower-case) metadata keys or headers."""
    return accept_request_id(metadata.get(REQUEST_ID_HEADER))


def current_request_id() -> str:
    """The request id of the call being served here, or ``""`` outside any call."""
    return _current.get()


@contextlib.contextmanager
def bound_request_id(request_id: str) -> Iterator[str]:
    """Make ``request_id`` the current one until the block ends."""
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        try:
            _current.reset(token)
        except ValueError:  # reset from another context (a generator closed elsewhere): leave it
            pass
