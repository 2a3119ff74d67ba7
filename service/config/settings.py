"""The typed, frozen settings the configuration file turns into (listeners, CAs, ledger)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from service.config.limits import GrpcLimits, HttpLimits, LookupLimits, StreamLimits

if TYPE_CHECKING:  # for the annotation only: the ledger package imports the connector types, which name config
    from service.ledger.registry import LedgerTarget


class Secret:
    """A secret string that never shows itself in a repr, str or log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class TLSListenSettings:
    cert: Path
    key: Path
    client_ca: Path | None = None


@dataclass(frozen=True)
class ListenSettings:
    host: str
    port: int
    tls: TLSListenSettings | None = None
    insecure: bool = False  # the operator's explicit consent to a non-loopback listener without mutual TLS
    http_limits: HttpLimits = HttpLimits()  # the REST and ops listeners'
    grpc_limits: GrpcLimits = GrpcLimits()  # the gRPC listener's

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RestSettings:
    listen: ListenSettings
    context_path: str = "/cagw"
    max_body_bytes: int = 1024 * 1024
    # "documented": the connector documentation's 200/202/404 on enrollment; "standard": the grpc-gateway table.
    enrollment_status: Literal["documented", "standard"] = "documented"


@dataclass(frozen=True)
class BackoffSettings:
    """The collect schedule of a CA (the connector documentation's enrollment settings): wait
    ``min(back_off_timer ^ attempt, max_back_off_timer)`` before each of ``max_attempts`` collects."""

    back_off_timer: float = 2.0
    max_back_off_timer: float = 32.0
    max_attempts: int = 5


@dataclass(frozen=True)
class StaticProfile:
    id: str
    name: str
    cert_type: str
    term: int | None = None
    description: str = ""


@dataclass(frozen=True)
class ProfileOptions:
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    external_requester: str = ""


@dataclass(frozen=True)
class CircuitBreakerSettings:
    """When a CA counts as down (the ``gateway.circuit-breaker`` block): ``failure_threshold``
    calls in a row failed as unavailable (5xx, timeout, reset) within ``window`` seconds open the
    circuit for ``open_for`` seconds; then one probe call decides whether it closes again."""

    enabled: bool = True
    failure_threshold: int = 5
    window: float = 60.0
    open_for: float = 30.0


@dataclass(frozen=True)
class RenewalPolicy:
    """``window``: the share of a certificate's lifetime, at its end, in which it should be renewed
    (1/3: a 90-day certificate is renewed in its last 30 days). ``jitter``: the share of that renewal
    period over which the start of each certificate's window is spread. ``automatic``: the gateway
    renews the certificates of the profile itself once their window has started."""

    window: float = 1 / 3
    jitter: float = 0.1
    automatic: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.window < 1.0:
            raise ValueError(f"renewal window {self.window} must be between 0 and 1 (a share of the lifetime)")
        if not 0.0 <= self.jitter <= 0.5:
            raise ValueError(f"renewal jitter {self.jitter} must be between 0 and 0.5 (a share of the window)")


@dataclass(frozen=True)
class RenewalSettings:
    """A CA's ``gateway.renewal`` block: the policy of its profiles, some of them overridden."""

    default: RenewalPolicy = RenewalPolicy()
    profiles: Mapping[str, RenewalPolicy] = field(default_factory=dict)
    check_interval: float = 3600.0  # how often automatic renewal looks for certificates that are due
    # ``expiring`` events: the thresholds (seconds before ``not_after``, largest first) a certificate is
    # told about once each as it enters them; empty: none.
    notify_before: tuple[float, ...] = (30 * 86400.0, 7 * 86400.0, 86400.0)

    def for_profile(self, profile_id: str) -> RenewalPolicy:
        return self.profiles.get(profile_id, self.default)


@dataclass(frozen=True)
class SyncSettings:
    """A CA's ``gateway.sync`` block: how often the gateway compares its ledger with what the CA issued."""

    interval: float = 0.0  # seconds between passes; 0: never
    max_pages: int = 20  # pages of each listing read in one pass (the rest waits for the next pass)
    page_size: int = 200


@dataclass(frozen=True)
class CollectBudgetSettings:
    """A CA's ``gateway.background-collects`` block: the token bucket of its background collects."""

    rate: float = 10.0  # collect calls per second, at most, once an order's foreground attempts are used up
    burst: int = 10  # calls that may go at once after a quiet spell
    listing: bool = True  # list the CA's pending orders instead of collecting each when that is cheaper
    verify_after: float = 3600.0  # with the listing: a real collect of each background order at least this often

    def __post_init__(self) -> None:
        if not self.rate > 0 or self.burst < 1 or not self.verify_after > 0:
            raise ValueError(f"a collect budget needs a rate above 0, a burst of at least 1 and a verify-after "
                             f"above 0, got {self.rate}/s, {self.burst} and {self.verify_after}s")


@dataclass(frozen=True)
class GatewaySettings:
    """What the gateway adds per CA (the ``gateway:`` block)."""

    request_timeout: float = 30.0
    connect_timeout: float = 10.0
    max_concurrent_requests: int = 8
    give_up_after: float = 7 * 24 * 3600.0
    profile_cache_ttl: float = 300.0
    profile_sync: bool = True
    default_term: int | None = None
    subject_revoke_limit: int = 10
    max_pending_orders: int = 10_000  # unfinished orders of this CA, all clients together
    # Idempotent CA calls (collect, details, list, profiles) are tried this many times in all ...
    retry_attempts: int = 4
    # ... waiting about this long before the first retry, doubling after each.
    retry_base_delay: float = 0.5
    profile_options: Mapping[str, ProfileOptions] = field(default_factory=dict)
    circuit_breaker: CircuitBreakerSettings = CircuitBreakerSettings()
    renewal: RenewalSettings = RenewalSettings()
    sync: SyncSettings = SyncSettings()
    background_collects: CollectBudgetSettings = CollectBudgetSettings()
    # requiredFormat PKCS12: the gateway makes the key; off, such a request is refused.
    server_side_keys: bool = True
    # How long the encrypted key of such an order stays in the ledger.
    server_side_key_retention: float = 7 * 24 * 3600.0
    # The PKCS#12 answer's encryption: AES-256/SHA-256 ("modern") or 3DES/SHA-1 ("legacy").
    pkcs12_encryption: Literal["modern", "legacy"] = "modern"
    # A requested validity no term matches exactly: "exact" orders the longest term that does not
    # exceed it (and refuses when none fits); "up" orders the shortest term that covers it.
    validity_rounding: Literal["exact", "up"] = "exact"
    # The issuing CA's chain (DER, issuing CA first) read from gateway.ca-certificates; empty means
    # learned from the first chain the CA sends with an issued certificate.
    ca_certificates: tuple[bytes, ...] = ()


Operation = Literal["read", "enroll", "renew", "revoke"]
OPERATIONS: tuple[Operation, ...] = ("read", "enroll", "renew", "revoke")


@dataclass(frozen=True)
class ClientMatch:
    """Who a client is: a caller is the client when ANY of these equals its verified certificate's
    (normalised subject DN, a URI SAN, the lower-case hex SHA-256 of the DER without colons)."""

    subjects: tuple[str, ...] = ()  # normalised (service.x509.normalize_dn)
    uri_sans: tuple[str, ...] = ()
    sha256: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrantSettings:
    """What a client may do on some CAs. ``profiles`` None = every profile of those CAs; the name
    lists hold validated, lower-cased patterns (``name``, ``*.suffix``; ``*@domain``; CIDR; ``prefix*``)."""

    cas: tuple[str, ...]  # CA ids, or "*"
    operations: frozenset[Operation]
    profiles: tuple[str, ...] | None = None
    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()  # networks, as ipaddress.ip_network texts
    uris: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClientLimits:
    max_pending: int | None = None  # orders of the client not yet issued or failed
    orders_per_hour: int | None = None  # orders placed in the last hour, counted from the ledger
    event_watches: int | None = None  # WatchCertificateEvents streams open at once (None: streams.*)


@dataclass(frozen=True)
class ClientSettings:
    """One entry of the ``clients`` section."""

    name: str
    match: ClientMatch
    grants: tuple[GrantSettings, ...] = ()
    limits: ClientLimits = ClientLimits()
    admin: bool = False


@dataclass(frozen=True)
class CASettings:
    """One managed CA. ``properties`` are the connector's own frozen settings, made by its plug-in's
    parser and read only by that connector; ``backoff`` is the collect schedule every CA has (the
    plug-in reads it from ``properties`` too, in the keys of its own documentation)."""

    id: str
    name: str
    connector: str  # the plug-in's type name (service.connectors.registry)
    properties: object
    profiles: tuple[StaticProfile, ...] = ()
    gateway: GatewaySettings = GatewaySettings()
    backoff: BackoffSettings = BackoffSettings()


@dataclass(frozen=True)
class LedgerSettings:
    """The ``ledger:`` section: the backend the URL's scheme chose, with that backend's own
    settings (``service.ledger.registry`` parses them). Neither its repr nor ``url`` shows a
    credential."""

    target: LedgerTarget

    @property
    def url(self) -> str:
        """The ledger's URL with any password replaced by ``***``: safe in logs and errors."""
        return self.target.shown

    @property
    def path(self) -> Path | None:
        """The ledger's file when its backend keeps it in one (SQLite), else None."""
        return self.target.path


LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class LogSettings:
    """The ``log:`` section: one line per record, as text or as one JSON object."""

    format: LogFormat = "text"
    level: LogLevel = "info"


@dataclass(frozen=True)
class TracingSettings:
    """The ``tracing:`` section. Without an ``otlp_endpoint`` tracing is off (and costs nothing)."""

    otlp_endpoint: str | None = None  # OTLP over gRPC, e.g. http://127.0.0.1:4317
    service_name: str = "cagw"
    sample_ratio: float = 1.0  # of the traces this gateway starts; a caller's sampled flag is followed

    @property
    def enabled(self) -> bool:
        return self.otlp_endpoint is not None


@dataclass(frozen=True)
class WebhookSettings:
    """One receiver of certificate events (``webhooks:``): where, signed with what, which events."""

    name: str
    url: str
    secret: Secret
    tls_ca: Path | None = None  # PEM of the CA(s) the receiver's certificate chains to; None: the system's
    owner: str | None = None  # only certificates ordered by this client
    cas: frozenset[str] | None = None  # only these CAs; None: every CA
    events: frozenset[str] | None = None  # only these event types; None: all
    timeout: float = 10.0
    retry_delay: float = 1.0  # first wait after a failed delivery, doubled up to 5 min


@dataclass(frozen=True)
class Config:
    grpc: ListenSettings
    rest: RestSettings
    ops: ListenSettings
    ledger: LedgerSettings
    managed_cas: tuple[CASettings, ...]
    shutdown_grace: float = 10.0
    source: Path | None = None
    log: LogSettings = LogSettings()
    streams: StreamLimits = StreamLimits()
    lookups: LookupLimits = LookupLimits()
    tracing: TracingSettings = TracingSettings()
    admin: ListenSettings = ListenSettings("127.0.0.1", 50052)  # the operator's listener (loopback only)
    webhooks: tuple[WebhookSettings, ...] = ()
    # None: no ``clients`` section (every caller allowed; only on loopback listeners).
    clients: tuple[ClientSettings, ...] | None = None

    def ca(self, ca_id: str) -> CASettings | None:
        return next((ca for ca in self.managed_cas if ca.id == ca_id), None)
