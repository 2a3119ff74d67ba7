"""Several real gateways (each its own gRPC/REST servers, tracker and connection pool) on one
PostgreSQL schema and one simulator, in this process: the first comes from ``running_stack``, the
others are more ``Gateway`` instances of the same configuration on their own free ports."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from service.app import Gateway
from service.simulator import Simulator, SimulatorSettings
from tests.integration.stack import running_stack
from tests.unit.ledger_backends import POSTGRES_URL, postgres_reason, postgres_schema

__all__ = ["Replica", "needs_postgres", "running_replicas"]


@dataclass
class Replica:
    gateway: Gateway
    channel: grpc.aio.Channel

    @property
    def rest_base(self) -> str:
        assert self.gateway.rest is not None
        return f"http://127.0.0.1:{self.gateway.rest.port}/cagw"


def needs_postgres() -> None:
    reason = postgres_reason()
    if reason is not None:
        pytest.skip(reason)


@contextlib.asynccontextmanager
async def running_replicas(tmp: Path, count: int, *, simulator: SimulatorSettings, lease_time: str = "10s",
                           heartbeat: str = "500ms", url: str = POSTGRES_URL, ledger_options: dict[str, str] | None = None,
                           **options: Any) -> AsyncIterator[tuple[Simulator, list[Replica]]]:
    """``url``: where the replicas reach the database (a relay in front of it, say); the schema is
    made and dropped on the server itself."""
    async with postgres_schema() as schema:
        ledger = {"ledger": {"url": url, "schema": schema, "lease-time": lease_time,
                             "lease-heartbeat": heartbeat, "pool-size": "5", **(ledger_options or {})}}
        async with running_stack(tmp, simulator=simulator, extra_top=ledger, **options) as first, \
                contextlib.AsyncExitStack() as stack:
            replicas = [Replica(first.gateway, first.channel)]
            for _ in range(count - 1):
                gateway = Gateway(first.config)
                stack.push_async_callback(gateway.stop)
                await gateway.start()
                assert gateway.grpc is not None and gateway.grpc.port
                channel = await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc.port}"))
                replicas.append(Replica(gateway, channel))
            yield first.simulator, replicas
