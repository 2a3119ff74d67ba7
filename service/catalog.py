"""Profiles of a CA: the configuration's static profiles merged with the CA's own.

CAGW profile sync: with ``gateway.profile-sync`` on (the default) the CA's
profiles (e.g. its certificate types) are listed beside the static ones, with the
properties CAGW shows for them (``cert_type``, ``description``, ``key_type``,
``terms``, ``use-secondary-org-name``). CA answers are cached for
``gateway.profile-cache-ttl``; a static profile takes its terms and key types
from the CA profile it names when the CA lists it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from service.config import CASettings
from service.connectors.base import CAProfile, Connector
from service.errors import CAUnavailable, NotFound

__all__ = ["ProfileCatalog", "ResolvedProfile"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedProfile:
    """A gateway profile with everything enrollment needs."""

    id: str
    name: str
    ca_profile_id: str
    terms: tuple[int, ...] = ()
    default_term: int | None = None
    key_types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""
    use_secondary_org_name: bool = False
    static: bool = False

    def properties(self) -> dict[str, str]:
        props = {"cert_type": self.ca_profile_id}
        if self.description:
            props["description"] = self.description
        if self.key_types:
            props["key_type"] = json.dumps({k: list(v) for k, v in self.key_types.items()}, separators=(",", ":"))
        if self.terms:
            props["terms"] = "[" + ", ".join(str(t) for t in self.terms) + "]"
        props["use-secondary-org-name"] = "true" if self.use_secondary_org_name else "false"
        return props


class ProfileCatalog:
    """Static + synced profiles of one CA, with a TTL cache of the CA's answer."""

    def __init__(self, ca: CASettings, connector: Connector, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ca = ca
        self._connector = connector
        self._clock = clock
        self._cached: tuple[CAProfile, ...] | None = None
        self._cached_at = 0.0
        self._lock = asyncio.Lock()

    async def _ca_profiles(self) -> tuple[CAProfile, ...]:
        ttl = self._ca.gateway.profile_cache_ttl
        async with self._lock:  # one CA call refreshes the cache for every waiter
            if self._cached is None or self._clock() - self._cached_at >= ttl:
                try:
                    self._cached = await self._connector.profiles()
                except CAUnavailable:
                    # A CA that is briefly down must not stop enrollments with known profiles:
                    # serve the last answer, or the static profiles alone when there is none.
                    if self._cached is None and not self._ca.profiles:
                        raise
                    log.warning("CA %s: profiles unavailable, using %s", self._ca.id,
                                "the cached list" if self._cached is not None else "the static profiles")
                    return self._cached or ()
                self._cached_at = self._clock()
            return self._cached

    async def list(self) -> list[ResolvedProfile]:
        ca_profiles = {p.id: p for p in await self._ca_profiles()}
        default_term = self._ca.gateway.default_term
        resolved: list[ResolvedProfile] = []
        for static in self._ca.profiles:
            ca_profile = ca_profiles.get(static.cert_type)
            resolved.append(ResolvedProfile(
                id=static.id,
                name=static.name,
                ca_profile_id=static.cert_type,
                terms=ca_profile.terms if ca_profile else ((static.term,) if static.term else ()),
                default_term=static.term or default_term,
                key_types=ca_profile.key_types if ca_profile else {},
                description=static.description or (ca_profile.description if ca_profile else ""),
                use_secondary_org_name=ca_profile.use_secondary_org_name if ca_profile else False,
                static=True,
            ))
        if self._ca.gateway.profile_sync:
            taken = {p.id for p in resolved}
            for ca_profile in ca_profiles.values():
                if ca_profile.id in taken:
                    continue
                resolved.append(ResolvedProfile(
                    id=ca_profile.id, name=ca_profile.name, ca_profile_id=ca_profile.id,
                    terms=ca_profile.terms, default_term=default_term, key_types=ca_profile.key_types,
                    description=ca_profile.description, use_secondary_org_name=ca_profile.use_secondary_org_name,
                ))
        return resolved

    async def get(self, profile_id: str) -> ResolvedProfile:
        for profile in await self.list():
            if profile.id == profile_id:
                return profile
        raise NotFound(f"CA {self._ca.id} has no profile {profile_id!r}", reason="PROFILE_NOT_FOUND",
                       metadata={"ca_id": self._ca.id, "profile_id": profile_id})
