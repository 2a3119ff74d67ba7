"""The ``clients`` section: who may call the gateway (by verified client certificate) and what each may do.

Every value is validated here, with its YAML path, so the policy
(:mod:`service.policy`) only compares: subjects are normalised DNs, name
patterns are lower-cased and checked for shape, networks are parsed, and a
grant naming a CA that is not managed is an error rather than a silent no-op.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from typing import Any

from service.config.reader import Reader, kind_of, parse_bool, parse_int
from service.config.settings import OPERATIONS, ClientLimits, ClientMatch, ClientSettings, GrantSettings, Operation
from service.errors import InvalidRequest
from service.x509 import normalize_dn

__all__ = ["parse_clients", "valid_dns_pattern"]

_CLIENT_KEYS = {"name", "match", "grants", "limits", "admin"}
_MATCH_KEYS = {"subject", "uri-san", "sha256"}
_GRANT_KEYS = {"cas", "profiles", "operations", "names", "emails", "ips", "uris"}
_LIMIT_KEYS = {"max-pending", "orders-per-hour", "event-watches"}
# A client's name goes into audit entries, logs, metrics and the scoped idempotency key
# ("<client>/<key>"): no "/" so that key stays unambiguous.
_CLIENT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_URI = re.compile(r"^[a-z][a-z0-9+.-]*:\S+$", re.I)


def valid_dns_pattern(text: str) -> bool:
    """``host.example.com`` or ``*.example.com`` (the wildcard only as the whole first label)."""
    name = text[2:] if text.startswith("*.") else text
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 1 and all(_LABEL.match(label) for label in labels)


def _strings(r: Reader, raw: Any, key: str) -> tuple[str, ...] | None:
    """A list of non-empty strings (a single string counts as a list of one); None when absent."""
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    values: list[str] = []
    for index, item in enumerate(items):
        where = f"{key}[{index}]" if isinstance(raw, list) else key
        if item is None or isinstance(item, (dict, list)):
            r.problem(f"must be a text, found {kind_of(item) if item is not None else 'nothing'}", where)
        elif not str(item).strip():
            r.problem("must not be empty", where)
        else:
            values.append(str(item).strip())
    return tuple(values)


def _match(r: Reader, raw: Any) -> ClientMatch:
    section = r.mapping(raw, "match")
    with r.at("match"):
        r.reject_unknown(section, _MATCH_KEYS)
        subjects: list[str] = []
        for text in _strings(r, section.get("subject"), "subject") or ():
            try:
                subjects.append(normalize_dn(text))
            except InvalidRequest as exc:
                r.problem(f"{text[:100]!r} is not an RFC 4514 DN: {exc.message}", "subject")
        uris = _strings(r, section.get("uri-san"), "uri-san") or ()
        for uri in uris:
            if not _URI.match(uri):
                r.problem(f"{uri[:100]!r} is not a URI (example: spiffe://example.org/ns/team-a/sa/deployer)",
                          "uri-san")
        digests: list[str] = []
        for text in _strings(r, section.get("sha256"), "sha256") or ():
            digest = text.replace(":", "").lower()
            if not _SHA256.match(digest):
                r.problem("must be a SHA-256 fingerprint: 64 hexadecimal digits, colons optional", "sha256")
            digests.append(digest)
    if raw is not None and not (subjects or uris or digests) and not r.problems:
        r.problem("needs at least one of subject, uri-san, sha256", "match")
    return ClientMatch(subjects=tuple(subjects), uri_sans=tuple(uris), sha256=tuple(digests))


def _operations(r: Reader, raw: Any) -> frozenset[Operation]:
    found: set[Operation] = set()
    for text in _strings(r, raw, "operations") or ():
        operation = next((op for op in OPERATIONS if op == text.lower()), None)
        if operation is None:
            r.problem(f"unknown operation {text[:40]!r} (allowed: {', '.join(OPERATIONS)})", "operations")
        else:
            found.add(operation)
    if raw is None:
        r.problem(f"is required: list some of {', '.join(OPERATIONS)}", "operations")
    return frozenset(found)


def _patterns(r: Reader, section: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = tuple(v.lower() for v in _strings(r, section.get(key), key) or ())
    for value in values:
        if not _valid_pattern(key, value):
            r.problem(f"{value[:100]!r} is not a valid pattern: {_PATTERN_HELP[key]}", key)
    if key == "ips":
        return tuple(str(ipaddress.ip_network(v, strict=False)) for v in values if _valid_pattern(key, v))
    return values


_PATTERN_HELP = {
    "names": "a DNS name (team-a.example.com) or *.suffix (*.team-a.example.com)",
    "emails": "user@domain or *@domain (the domain may be *.suffix)",
    "ips": "an address or network (10.20.0.0/16, 2001:db8::/32)",
    "uris": "a URI, or a URI prefix ending in * (spiffe://example.org/ns/team-a/*)",
}


def _valid_pattern(key: str, value: str) -> bool:
    if key == "names":
        return valid_dns_pattern(value)
    if key == "emails":
        local, at, domain = value.rpartition("@")
        return bool(at and local and " " not in local and valid_dns_pattern(domain))
    if key == "ips":
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError:
            return False
        return True
    return bool(_URI.match(value)) and "*" not in value[:-1]


def _grant(r: Reader, raw: Any, known_cas: Collection[str]) -> GrantSettings:
    section = r.mapping(raw)
    r.reject_unknown(section, _GRANT_KEYS)
    cas = _strings(r, section.get("cas"), "cas")
    if not cas:
        r.problem('is required: list CA ids, or "*" for every CA', "cas")
    for ca_id in cas or ():
        if ca_id != "*" and ca_id not in known_cas:
            r.problem(f"{ca_id[:64]!r} is not the id of a CA in managed-cas", "cas")
    profiles = _strings(r, section.get("profiles"), "profiles")
    if profiles is not None and not profiles:
        r.problem("is empty: leave it out to grant every profile", "profiles")
    return GrantSettings(cas=cas or (), operations=_operations(r, section.get("operations")),
                         profiles=profiles or None, names=_patterns(r, section, "names"),
                         emails=_patterns(r, section, "emails"), ips=_patterns(r, section, "ips"),
                         uris=_patterns(r, section, "uris"))


def _limits(r: Reader, raw: Any) -> ClientLimits:
    section = r.mapping(raw, "limits")
    with r.at("limits"):
        r.reject_unknown(section, _LIMIT_KEYS)
        return ClientLimits(
            max_pending=r.convert(section, "max-pending", lambda t: parse_int(t, low=1), None),
            orders_per_hour=r.convert(section, "orders-per-hour", lambda t: parse_int(t, low=1), None),
            event_watches=r.convert(section, "event-watches", lambda t: parse_int(t, low=1, high=1_000_000), None))


def _client(r: Reader, entry: Mapping[str, Any], known_cas: Collection[str]) -> ClientSettings | None:
    r.reject_unknown(entry, _CLIENT_KEYS)
    name = r.text(entry, "name", required=True)
    if name and not _CLIENT_NAME.match(name):
        r.problem(f"{name[:64]!r} must be 1-64 characters of letters, digits, '.', '_' or '-'", "name")
    if "match" not in entry:
        r.problem("is required: a subject, uri-san or sha256 of the client's certificate", "match")
    match = _match(r, entry.get("match"))
    admin = r.convert(entry, "admin", parse_bool, False)
    raw_grants = entry.get("grants")
    grants: list[GrantSettings] = []
    if raw_grants is None:
        if not admin:
            r.problem("is required unless admin: true (a client without grants could do nothing)", "grants")
    elif not isinstance(raw_grants, list):
        r.problem(f"must be a list, found {kind_of(raw_grants)}", "grants")
    else:
        for index, raw in enumerate(raw_grants):
            with r.at(f"grants[{index}]"):
                grants.append(_grant(r, raw, known_cas))
    limits = _limits(r, entry.get("limits"))
    if not name:
        return None
    return ClientSettings(name=name, match=match, grants=tuple(grants), limits=limits, admin=admin)


def parse_clients(r: Reader, raw: Any, *, known_cas: Collection[str]) -> tuple[ClientSettings, ...] | None:
    """The ``clients`` list (None when the section is absent). An empty list is an error: it would
    read as "nobody" and is almost always a mistake."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        r.problem(f"must be a list, found {kind_of(raw)}", "clients")
        return ()
    if not raw:
        r.problem("is empty: list at least one client, or leave the section out (loopback only)", "clients")
    clients: list[ClientSettings] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        label = f"[{index}]"
        if isinstance(entry, dict) and entry.get("name") is not None:
            label += f" (name {str(entry['name'])[:64]})"
        with r.at("clients"), r.at(label):
            client = _client(r, r.mapping(entry), known_cas)
        if client is not None:
            if client.name in seen:
                r.problem(f"duplicate client name {client.name!r}", f"clients{label}")
            seen.add(client.name)
            clients.append(client)
    return tuple(clients)
