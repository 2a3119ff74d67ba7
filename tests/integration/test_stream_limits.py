"""Watch streams are bounded per caller and in all, across gRPC and REST NDJSON, and a closed
stream leaves nothing behind (its slot, its queue on the order's channel)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from cagw.v1 import enrollments_pb2 as pb
from cagw.v1 import enrollments_pb2_grpc as pb_grpc
from service.simulator import SimulatorSettings
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, make_csr, running_stack

WATCH = f"/v1/certificate-authorities/{CA_ID}/enrollments/{{id}}:watch"


async def _pending(stack: Stack) -> str:
    stub = pb_grpc.EnrollmentServiceStub(stack.channel)
    answer = await stub.Enroll(pb.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("w.example.com"),
                                                max_wait={"seconds": 0}))
    assert answer.enrollment.status == "PENDING"
    return answer.enrollment.id


async def _first_event(stream: grpc.aio.UnaryStreamCall) -> None:  # type: ignore[type-arg]
    await asyncio.wait_for(stream.read(), 5)


async def _until(condition: object, what: str) -> None:
    for _ in range(200):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what)


async def test_streams_beyond_the_limits_are_refused_and_closed_ones_are_released(tmp_path: Path) -> None:
    never_issued = SimulatorSettings(issue_after=3600.0)
    async with running_stack(tmp_path, simulator=never_issued, attempts=50, timer="1s", max_timer="1s",
                             sections={"streams": {"max-per-caller": 2, "max-total": 3}}) as stack, \
            aiohttp.ClientSession() as http:
        assert stack.gateway.streams is not None and stack.gateway.engine is not None
        limiter, engine = stack.gateway.streams, stack.gateway.engine
        enrollment = await _pending(stack)
        stub = pb_grpc.EnrollmentServiceStub(stack.channel)
        request = pb.WatchEnrollmentRequest(ca_id=CA_ID, enrollment_id=enrollment)
        streams = [stub.WatchEnrollment(request) for _ in range(2)]
        for stream in streams:
            await _first_event(stream)
        assert (limiter.open, limiter.open_for("anonymous")) == (2, 2)

        # The same caller's third stream: over gRPC RESOURCE_EXHAUSTED, over REST 429 with Retry-After.
        third = stub.WatchEnrollment(request)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await third.read()
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "streams.max-per-caller" in (caught.value.details() or "")
        async with http.get(stack.rest_base + WATCH.format(id=enrollment)) as response:
            body = json.loads(await response.text())
            assert (response.status, response.headers.get("Retry-After")) == (429, "5")
        assert body["error"]["code"] == "TOO_MANY_STREAMS"

        # Closing a stream gives its slot back at once, and its queue on the order's channel.
        streams.pop().cancel()
        await _until(lambda: limiter.open == 1, "the cancelled stream's slot was not released")
        async with http.get(stack.rest_base + WATCH.format(id=enrollment)) as response:
            assert response.status == 200
            line = await asyncio.wait_for(response.content.readline(), 5)
            assert "result" in json.loads(line)
            assert limiter.open == 2
        await _until(lambda: limiter.open == 1, "the NDJSON stream's slot was not released")
        streams.pop().cancel()
        await _until(lambda: limiter.open == 0, "a stream's slot was not released")
        await _until(lambda: engine.watchers == 0, "a closed stream still holds its queue")
        assert limiter.callers == 0  # nothing kept for a caller without streams


EVENTS_WATCH = f"/v1/certificate-authorities/{CA_ID}/certificate-events:watch"


async def test_certificate_event_streams_are_bounded_per_client_and_released(tmp_path: Path) -> None:
    from cagw.v1 import inventory_pb2, inventory_pb2_grpc

    clients = [{"name": "tests", "admin": "true", "limits": {"event-watches": 2}}]
    async with running_stack(tmp_path, client_name="tests", clients=clients,
                             sections={"streams": {"max-event-watches-per-client": 1}}) as stack, \
            aiohttp.ClientSession() as http:
        assert stack.gateway.streams is not None
        limiter = stack.gateway.streams
        stub = inventory_pb2_grpc.CertificateInventoryServiceStub(stack.channel)
        request = inventory_pb2.WatchCertificateEventsRequest(ca_id=CA_ID)
        streams = [stub.WatchCertificateEvents(request) for _ in range(2)]
        await _until(lambda: limiter.event_watches_for("client:tests") == 2, "the event streams did not open")

        # The client's own limit (2, over the gateway's 1): a third is refused, over gRPC and REST.
        third = stub.WatchCertificateEvents(request)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await third.read()
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "limits.event-watches" in (caught.value.details() or "")
        async with http.get(stack.rest_base + EVENTS_WATCH, ssl=stack.client_ssl) as response:
            body = json.loads(await response.text())
            assert (response.status, response.headers.get("Retry-After")) == (429, "5")
        assert body["error"]["code"] == "TOO_MANY_STREAMS"
        # An enrollment watch is not an event stream: the client still has those slots.
        assert limiter.open == 2

        streams.pop().cancel()
        await _until(lambda: limiter.event_watches_for("client:tests") == 1, "a closed event stream kept its slot")
        await pb_grpc.EnrollmentServiceStub(stack.channel).Enroll(pb.EnrollRequest(
            ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("told.example.com")))
        async with http.get(stack.rest_base + EVENTS_WATCH + "?after=0", ssl=stack.client_ssl) as response:
            assert response.status == 200  # its first event came: the stream is open
            line = await asyncio.wait_for(response.content.readline(), 5)
            assert json.loads(line)["result"]["event"]["type"] == "issued"
            assert limiter.event_watches_for("client:tests") == 2
        streams.pop().cancel()
        await _until(lambda: limiter.event_watches_for("client:tests") == 0 and limiter.open == 0,
                     "an event stream's slot was not released")
