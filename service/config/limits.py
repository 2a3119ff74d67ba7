"""The listeners' limits: how long a connection may idle or trickle, how many there may be, how many
watch streams may be open. Each has a safe default, so a gateway without these keys is protected.

::

    rest:  {limits: {header-timeout: 10s, body-timeout: 30s, idle-timeout: 15s, max-connections: 1000}}
    ops:   {limits: {...the same keys...}}
    grpc:  {limits: {max-concurrent-streams: 100, max-concurrent-rpcs: 1000, keepalive-min-interval: 60s,
                     max-connection-idle: 5m}}
    streams: {max-per-caller: 16, max-total: 512, max-event-watches-per-client: 4}
    lookups: {unknown-serial-ttl: 60s, ca-status-ttl: 10s, ca-lookups-per-second: 1, ca-lookup-burst: 10}
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GrpcLimits", "HttpLimits", "LookupLimits", "StreamLimits"]


@dataclass(frozen=True)
class HttpLimits:
    """An HTTP listener (REST, ops): a connection that sends no complete request head within
    ``header_timeout``, no complete body within ``body_timeout`` of its head, or nothing for
    ``idle_timeout`` between requests is closed; beyond ``max_connections`` open connections a
    new one is answered 503 and closed."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 15.0
    max_connections: int = 1000


@dataclass(frozen=True)
class GrpcLimits:
    """The gRPC listener: concurrent streams per HTTP/2 connection, concurrent RPCs in all (more
    wait for a slot), the shortest interval between a client's keep-alive pings (more often is
    answered with GOAWAY), and how long a connection without any call stays open."""

    max_concurrent_streams: int = 100
    max_concurrent_rpcs: int = 1000
    keepalive_min_interval: float = 60.0
    max_connection_idle: float = 300.0


@dataclass(frozen=True)
class StreamLimits:
    """Watch streams open at once (gRPC and NDJSON together): per caller identity and in all; and
    of them, ``WatchCertificateEvents`` streams (which never end by themselves) per client (its
    ``clients`` name, else its identity), unless the client's own ``limits.event-watches`` says."""

    max_per_caller: int = 16
    max_total: int = 512
    max_event_watches_per_client: int = 4


@dataclass(frozen=True)
class LookupLimits:
    """Look-ups that reach the CA (a serial the ledger does not know, the CA's status): how long
    an unknown serial and a status answer are remembered, and each caller's budget of CA look-ups."""

    unknown_serial_ttl: float = 60.0
    ca_status_ttl: float = 10.0
    ca_lookups_per_second: float = 1.0
    ca_lookup_burst: int = 10
