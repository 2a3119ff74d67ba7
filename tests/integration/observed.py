"""Helpers of the observability tests: scrape a live gateway's /metrics, capture its log lines as written."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from service.config import LogSettings
from service.observability.logs import configure_logging
from tests.integration.stack import Stack


@dataclass(frozen=True)
class Scrape:
    families: dict[str, Metric]
    content_type: str

    def value(self, name: str, **labels: str) -> float:
        """The one sample called ``name`` whose labels include ``labels``."""
        found = [sample.value for family in self.families.values() for sample in family.samples
                 if sample.name == name and labels.items() <= sample.labels.items()]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    def total(self, name: str, **labels: str) -> float:
        """The sum of every sample called ``name`` whose labels include ``labels`` (0 when none)."""
        return sum(sample.value for family in self.families.values() for sample in family.samples
                   if sample.name == name and labels.items() <= sample.labels.items())

    def label_values(self) -> set[str]:
        return {value for family in self.families.values() for sample in family.samples
                for value in sample.labels.values()}


async def scrape(stack: Stack) -> Scrape:
    ops = stack.gateway.ops
    assert ops is not None and ops.port
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{ops.port}/metrics") as response:
            assert response.status == 200
            text = await response.text()
            content_type = response.headers["Content-Type"]
    return Scrape({family.name: family for family in text_string_to_metric_families(text)}, content_type)


@dataclass
class Lines:
    stream: io.StringIO

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def text(self) -> str:
        return self.stream.getvalue()


@contextlib.contextmanager
def json_log_lines(level: str = "debug") -> Iterator[Lines]:
    """The gateway's log output as ``cagw serve`` writes it with ``log: {format: json}``."""
    stream = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    handler = configure_logging(LogSettings(format="json", level="debug"), level=level, stream=stream)
    for old in before[0]:
        root.addHandler(old)  # pytest's capture goes on too
    try:
        yield Lines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(before[1])
