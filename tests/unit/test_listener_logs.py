"""Repeated errors are logged a few times a period (out of file descriptors: one line per accept)."""

from __future__ import annotations

import asyncio
import errno
import logging

import pytest

from service.listeners import RateLimitedLog, limit_loop_error_logs


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_ok_a_burst_then_silence_then_a_count_of_what_was_left_out(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limited = RateLimitedLog(logging.getLogger("t"), burst=3, period=60.0, clock=clock)
    logged = [limited.warning("accept", "out of fds") for _ in range(1000)]
    assert logged.count(True) == 3 and len(caplog.records) == 3
    assert limited.warning("other", "another kind") is True  # kinds are counted apart
    clock.now = 61.0
    assert limited.warning("accept", "out of fds") is True
    assert caplog.records[-1].getMessage() == "out of fds (997 more like it were not logged)"


async def test_ok_the_loop_logs_repeated_accept_failures_a_few_times(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    clock = Clock()
    try:
        limit_loop_error_logs(loop, burst=5, clock=clock)
        failure = OSError(errno.EMFILE, "Too many open files")
        for _ in range(10_000):  # what asyncio reports for each failed accept() of a listener
            loop.call_exception_handler({"message": "socket.accept() out of system resource", "exception": failure})
    finally:
        loop.set_exception_handler(previous)
    lines = [r for r in caplog.records if r.name == "service.loop"]
    assert len(lines) == 5
    assert lines[0].getMessage() == "socket.accept() out of system resource" and lines[0].exc_info is not None
