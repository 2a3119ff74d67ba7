"""The ``limits`` blocks of the listeners and the ``streams`` section, parsed (see :mod:`service.config.limits`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from service.config.limits import GrpcLimits, HttpLimits, LookupLimits, StreamLimits
from service.config.reader import Reader, parse_duration, parse_int, positive_duration

__all__ = ["parse_grpc_limits", "parse_http_limits", "parse_lookup_limits", "parse_stream_limits"]


def _count(low: int, high: int) -> Callable[[str], int]:
    return lambda text: parse_int(text, low=low, high=high)


def parse_http_limits(r: Reader, section: Mapping[str, Any], *, default_connections: int = 1000) -> HttpLimits:
    limits = r.mapping(section.get("limits"), "limits")
    with r.at("limits"):
        r.reject_unknown(limits, {"header-timeout", "body-timeout", "idle-timeout", "max-connections"})
        return HttpLimits(
            header_timeout=r.convert(limits, "header-timeout", positive_duration, HttpLimits.header_timeout),
            body_timeout=r.convert(limits, "body-timeout", positive_duration, HttpLimits.body_timeout),
            idle_timeout=r.convert(limits, "idle-timeout", positive_duration, HttpLimits.idle_timeout),
            max_connections=r.convert(limits, "max-connections", _count(1, 1_000_000), default_connections),
        )


def parse_grpc_limits(r: Reader, section: Mapping[str, Any]) -> GrpcLimits:
    limits = r.mapping(section.get("limits"), "limits")
    with r.at("limits"):
        r.reject_unknown(limits, {"max-concurrent-streams", "max-concurrent-rpcs", "keepalive-min-interval",
                                  "max-connection-idle"})
        return GrpcLimits(
            max_concurrent_streams=r.convert(limits, "max-concurrent-streams", _count(1, 100_000),
                                             GrpcLimits.max_concurrent_streams),
            max_concurrent_rpcs=r.convert(limits, "max-concurrent-rpcs", _count(1, 1_000_000),
                                          GrpcLimits.max_concurrent_rpcs),
            keepalive_min_interval=r.convert(limits, "keepalive-min-interval", positive_duration,
                                             GrpcLimits.keepalive_min_interval),
            max_connection_idle=r.convert(limits, "max-connection-idle", positive_duration,
                                          GrpcLimits.max_connection_idle),
        )


def parse_stream_limits(r: Reader, section: Mapping[str, Any]) -> StreamLimits:
    r.reject_unknown(section, {"max-per-caller", "max-total", "max-event-watches-per-client"})
    limits = StreamLimits(
        max_per_caller=r.convert(section, "max-per-caller", _count(1, 1_000_000), StreamLimits.max_per_caller),
        max_total=r.convert(section, "max-total", _count(1, 1_000_000), StreamLimits.max_total),
        max_event_watches_per_client=r.convert(section, "max-event-watches-per-client", _count(1, 1_000_000),
                                               StreamLimits.max_event_watches_per_client),
    )
    if limits.max_per_caller > limits.max_total:
        r.problem(f"max-per-caller ({limits.max_per_caller}) is larger than max-total ({limits.max_total})",
                  "max-per-caller")
    return limits


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1_000_000:
        raise ValueError(f"{text!r} must be a number of look-ups per second above 0 (e.g. 0.5, 1, 20)")
    return value


def parse_lookup_limits(r: Reader, section: Mapping[str, Any]) -> LookupLimits:
    r.reject_unknown(section, {"unknown-serial-ttl", "ca-status-ttl", "ca-lookups-per-second", "ca-lookup-burst"})
    return LookupLimits(
        unknown_serial_ttl=r.convert(section, "unknown-serial-ttl", parse_duration, LookupLimits.unknown_serial_ttl),
        ca_status_ttl=r.convert(section, "ca-status-ttl", parse_duration, LookupLimits.ca_status_ttl),
        ca_lookups_per_second=r.convert(section, "ca-lookups-per-second", _rate, LookupLimits.ca_lookups_per_second),
        ca_lookup_burst=r.convert(section, "ca-lookup-burst", _count(1, 1_000_000), LookupLimits.ca_lookup_burst),
    )
