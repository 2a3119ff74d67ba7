"""StreamLimiter in a real pipeline over the contract's descriptors: per caller, in all, released."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cagw.v1 import enrollments_pb2 as pb
from service.api.pipeline import CallContext, ServicePipeline, methods_of
from service.api.streams import StreamLimiter
from service.config import StreamLimits
from service.errors import LimitExceeded

WATCH = "/cagw.v1.EnrollmentService/WatchEnrollment"


class Servicer:
    """Streams that stay open until released; unary methods answer at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def Enroll(self, request: Any, call: CallContext) -> pb.EnrollResponse:
        return pb.EnrollResponse()

    async def GetEnrollment(self, request: Any, call: CallContext) -> pb.GetEnrollmentResponse:
        return pb.GetEnrollmentResponse()

    async def CheckEnrollment(self, request: Any, call: CallContext) -> pb.CheckEnrollmentResponse:
        return pb.CheckEnrollmentResponse()

    async def WatchEnrollment(self, request: Any, call: CallContext) -> AsyncIterator[pb.WatchEnrollmentResponse]:
        yield pb.WatchEnrollmentResponse()
        await self.release.wait()

    async def EnrollAndWatch(self, request: Any, call: CallContext) -> AsyncIterator[pb.EnrollAndWatchResponse]:
        yield pb.EnrollAndWatchResponse()
        await self.release.wait()


def _pipeline(limiter: StreamLimiter, servicer: Servicer) -> ServicePipeline:
    return ServicePipeline(methods_of(servicer, pb.DESCRIPTOR.services_by_name["EnrollmentService"]), [limiter])


async def _open(pipeline: ServicePipeline, caller: str) -> AsyncIterator[Any]:
    spec = pipeline.method(WATCH)
    assert spec is not None
    stream = pipeline.call_stream(spec, pb.WatchEnrollmentRequest(), CallContext(method=WATCH, transport="internal",
                                                                                 caller=caller))
    await stream.__anext__()
    return stream


async def test_limits_per_caller_then_in_all_and_unary_calls_are_not_counted() -> None:
    limiter, servicer = StreamLimiter(StreamLimits(max_per_caller=2, max_total=3)), Servicer()
    pipeline = _pipeline(limiter, servicer)
    held = [await _open(pipeline, "CN=a"), await _open(pipeline, "CN=a")]
    with pytest.raises(LimitExceeded, match="streams.max-per-caller") as caught:
        await _open(pipeline, "CN=a")
    assert caught.value.reason == "TOO_MANY_STREAMS" and caught.value.retry_after > 0
    held.append(await _open(pipeline, "CN=b"))
    with pytest.raises(LimitExceeded, match="streams.max-total"):
        await _open(pipeline, "CN=c")
    spec = pipeline.method("/cagw.v1.EnrollmentService/GetEnrollment")
    assert spec is not None
    await pipeline.call_unary(spec, pb.GetEnrollmentRequest(), CallContext(method=spec.full_name,
                                                                           transport="internal", caller="CN=c"))
    assert (limiter.open, limiter.open_for("CN=a"), limiter.open_for("CN=b")) == (3, 2, 1)
    for stream in held:
        await stream.aclose()  # type: ignore[attr-defined]
    assert (limiter.open, limiter.callers) == (0, 0)
    await _open(pipeline, "CN=c")
