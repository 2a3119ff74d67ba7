"""Callers, their clients and the decisions of the ``clients`` section.

:class:`CallerPolicy` turns the verified :class:`PeerIdentity` of a call into
a :class:`Caller` (or refuses it: deny by default). A :class:`Caller` answers
the questions the core asks before it writes or pays anything: may it do this
operation on this CA and profile, are these names its to ask for, does it own
this order. Each answer is a :class:`Decision` that names the grant that
allowed it, or the reason and what was missing.

Without a ``clients`` section the policy is *open*: every caller may do
everything (the gateway then listens on loopback only, see the configuration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from service.config.settings import ClientSettings, GrantSettings, Operation
from service.errors import CallerDenied
from service.policy.identity import PeerIdentity
from service.policy.names import dns_allowed, email_allowed, ip_allowed, uri_allowed

__all__ = ["Caller", "CallerPolicy", "CertificateName", "Decision"]

# ErrorInfo reasons of a refusal.
UNKNOWN_CLIENT = "CALLER_UNKNOWN"
NO_CERTIFICATE = "CALLER_UNAUTHENTICATED"
CA_NOT_GRANTED = "CA_NOT_GRANTED"
OPERATION_NOT_GRANTED = "OPERATION_NOT_GRANTED"
PROFILE_NOT_GRANTED = "PROFILE_NOT_GRANTED"
NAMES_NOT_GRANTED = "NAMES_NOT_GRANTED"
NOT_OWNER = "NOT_OWNER"
ADMIN_ONLY = "ADMIN_ONLY"

_SAN_KINDS = {"dNSName": "dns", "rfc822Name": "email", "iPAddress": "ip", "uniformResourceIdentifier": "uri"}
_MAX_LISTED = 20  # refused names named in one message (all are in the metadata count)


@dataclass(frozen=True)
class CertificateName:
    """One name a certificate would carry: ``source`` says where it came from (``csr CN``,
    ``subjectAltNames``, ``csr SAN``), ``type`` is CAGW's SAN type (``dNSName`` for a CN)."""

    type: str
    value: str
    source: str

    def __str__(self) -> str:
        return f"{self.type}:{self.value} ({self.source})"


@dataclass(frozen=True)
class Decision:
    """Allowed (``grant`` says by what) or refused (``reason`` and ``message`` say why)."""

    allowed: bool
    grant: str = ""  # "team-a.grants[0]", "admin", "open"
    reason: str = ""
    message: str = ""
    refused_names: tuple[CertificateName, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    def error(self) -> CallerDenied:
        return CallerDenied(self.message, reason=self.reason, metadata=self.metadata)

    def check(self) -> Decision:
        """Raise the refusal; return self when allowed."""
        if not self.allowed:
            raise self.error()
        return self


@dataclass(frozen=True)
class Caller:
    """Who is calling and what it may do. ``client`` is None only under the open policy."""

    identity: PeerIdentity
    client: ClientSettings | None = None
    enforced: bool = False

    @classmethod
    def unrestricted(cls, identity: PeerIdentity | None = None) -> Caller:
        """The caller of an open gateway (no ``clients`` section), or an internal call."""
        return cls(identity=identity or PeerIdentity())

    @property
    def name(self) -> str:
        """The client's name ("" under the open policy): what orders and audit entries record."""
        return self.client.name if self.client is not None else ""

    @property
    def actor(self) -> str:
        return self.identity.text

    @property
    def admin(self) -> bool:
        return not self.enforced or (self.client is not None and self.client.admin)

    def _free(self) -> Decision | None:
        if not self.enforced:
            return Decision(True, grant="open")
        if self.admin:
            return Decision(True, grant=f"{self.name} (admin)")
        return None

    def _denied(self, reason: str, message: str, **metadata: str) -> Decision:
        return Decision(False, reason=reason, message=message, metadata={"client": self.name, **metadata})

    def _grants(self) -> Sequence[tuple[int, GrantSettings]]:
        assert self.client is not None
        return list(enumerate(self.client.grants))

    def may(self, operation: Operation, ca_id: str, profile_id: str | None = None) -> Decision:
        """May the caller do ``operation`` on ``ca_id`` (and ``profile_id``, when given)?"""
        free = self._free()
        if free is not None:
            return free
        on_ca = [(i, g) for i, g in self._grants() if "*" in g.cas or ca_id in g.cas]
        if not on_ca:
            return self._denied(CA_NOT_GRANTED, f"client {self.name} has no grant on CA {ca_id}", ca_id=ca_id,
                                operation=operation)
        with_op = [(i, g) for i, g in on_ca if operation in g.operations]
        if not with_op:
            granted = sorted({op for _, g in on_ca for op in g.operations})
            return self._denied(OPERATION_NOT_GRANTED,
                                f"client {self.name} may not {operation} on CA {ca_id} "
                                f"(granted there: {', '.join(granted) or 'nothing'})", ca_id=ca_id,
                                operation=operation)
        if profile_id is not None:
            with_op = [(i, g) for i, g in with_op if g.profiles is None or profile_id in g.profiles]
            if not with_op:
                return self._denied(PROFILE_NOT_GRANTED,
                                    f"client {self.name} may not {operation} with profile {profile_id[:64]!r} "
                                    f"on CA {ca_id}", ca_id=ca_id, operation=operation, profile_id=profile_id[:64])
        index, _ = with_op[0]
        return Decision(True, grant=f"{self.name}.grants[{index}]")

    def may_see(self, ca_id: str) -> Decision:
        """May the caller see the CA at all (its description, status, profiles): any grant on it."""
        free = self._free()
        if free is not None:
            return free
        for index, grant in self._grants():
            if "*" in grant.cas or ca_id in grant.cas:
                return Decision(True, grant=f"{self.name}.grants[{index}]")
        return self._denied(CA_NOT_GRANTED, f"client {self.name} has no grant on CA {ca_id[:64]}", ca_id=ca_id[:64])

    def may_order(self, operation: Operation, ca_id: str, profile_id: str,
                  names: Sequence[CertificateName]) -> Decision:
        """``may`` plus every name of the certificate: one grant must allow the operation, CA,
        profile and all names. Refused, the message lists each name no such grant allows."""
        decision = self.may(operation, ca_id, profile_id)
        if not decision.allowed or self._free() is not None:
            return decision
        candidates = [(i, g) for i, g in self._grants()
                      if ("*" in g.cas or ca_id in g.cas) and operation in g.operations
                      and (g.profiles is None or profile_id in g.profiles)]
        best: tuple[CertificateName, ...] | None = None
        for index, grant in candidates:
            refused = tuple(name for name in names if not _name_allowed(name, grant))
            if not refused:
                return Decision(True, grant=f"{self.name}.grants[{index}]")
            if best is None or len(refused) < len(best):
                best = refused
        refused = best or ()
        listed = ", ".join(str(name) for name in refused[:_MAX_LISTED])
        more = f" and {len(refused) - _MAX_LISTED} more" if len(refused) > _MAX_LISTED else ""
        return Decision(False, reason=NAMES_NOT_GRANTED, refused_names=refused,
                        message=f"client {self.name} may not {operation} certificates on CA {ca_id} for: "
                                f"{listed}{more}",
                        metadata={"client": self.name, "ca_id": ca_id, "operation": operation,
                                  "refused_names": str(len(refused))})

    def owns(self, owner: str | None, *, operation: Operation, ca_id: str, target: str) -> Decision:
        """May the caller act on something ordered by client ``owner`` (None: not ordered here)?"""
        free = self._free()
        if free is not None:
            return free
        if owner is not None and owner == self.name:
            return Decision(True, grant=f"{self.name} (owner)")
        whose = "was not issued through this gateway" if owner is None else "was ordered by another client"
        return self._denied(NOT_OWNER, f"client {self.name} may not {operation} {target[:128]} on CA {ca_id}: it "
                            f"{whose}; only an admin client may", ca_id=ca_id, operation=operation)

    def admin_only(self, what: str, *, ca_id: str) -> Decision:
        if self.admin:
            return Decision(True, grant="open" if not self.enforced else f"{self.name} (admin)")
        return self._denied(ADMIN_ONLY, f"client {self.name} may not {what} on CA {ca_id}: only an admin client may",
                            ca_id=ca_id)


def _name_allowed(name: CertificateName, grant: GrantSettings) -> bool:
    kind = _SAN_KINDS.get(name.type)
    if kind == "dns":
        return dns_allowed(name.value, grant.names)
    if kind == "email":
        return email_allowed(name.value, grant.emails)
    if kind == "ip":
        return ip_allowed(name.value, grant.ips)
    if kind == "uri":
        return uri_allowed(name.value, grant.uris)
    return False  # directoryName, registeredID, otherName: no grant key allows them


class CallerPolicy:
    """The ``clients`` section as a lookup: identity → :class:`Caller`, deny by default."""

    def __init__(self, clients: Sequence[ClientSettings] | None) -> None:
        self._clients = tuple(clients) if clients is not None else None

    @property
    def enforced(self) -> bool:
        return self._clients is not None

    def client(self, name: str) -> ClientSettings | None:
        return next((c for c in self._clients or () if c.name == name), None)

    def resolve(self, identity: PeerIdentity | None) -> Caller:
        """The caller of a call; raises :class:`CallerDenied` (unauthenticated without a verified
        certificate, permission denied when no client matches it) under an enforced policy."""
        identity = identity or PeerIdentity()
        if self._clients is None:
            return Caller.unrestricted(identity)
        if not (identity.subject or identity.sha256):
            raise CallerDenied("a client certificate is required: this gateway authorizes callers by the "
                               "certificate they present", authenticated=False, reason=NO_CERTIFICATE)
        for client in self._clients:
            if _matches(client, identity):
                return Caller(identity=identity, client=client, enforced=True)
        raise CallerDenied(f"no client of this gateway matches the certificate {identity.text[:200]!r} "
                           f"(sha256 {identity.sha256})", reason=UNKNOWN_CLIENT)


def _matches(client: ClientSettings, identity: PeerIdentity) -> bool:
    match = client.match
    return ((bool(identity.normalized_subject) and identity.normalized_subject in match.subjects)
            or any(uri in match.uri_sans for uri in identity.uri_sans)
            or (bool(identity.sha256) and identity.sha256 in match.sha256))
