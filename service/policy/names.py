"""Name matching of grants: DNS names, e-mail addresses, IP addresses and URIs.

A grant's ``names`` hold ``host.example.com`` (that name exactly) or
``*.example.com`` (any name with at least one more label that ends in
``.example.com``, at any depth; ``example.com`` itself is not matched).
Comparison is case-insensitive on names without a trailing dot. E-mail
patterns are ``user@domain`` or ``*@domain``, where the domain follows the DNS
rules; IP patterns are networks; URI patterns are exact or a prefix ending in ``*``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["dns_allowed", "email_allowed", "ip_allowed", "normalise_dns", "uri_allowed"]


def normalise_dns(name: str) -> str:
    """The form names are compared in: lower case, outer whitespace dropped."""
    return name.strip().lower()


def _dns_match(name: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.com"
        head = name[: -len(suffix)] if name.endswith(suffix) else ""
        return bool(head) and all(head.split("."))  # one more label at least, none of them empty
    return name == pattern


def dns_allowed(name: str, patterns: Sequence[str]) -> bool:
    """True when ``name`` is allowed by one of the (validated, lower-case) ``patterns``."""
    wanted = normalise_dns(name)
    if not wanted or wanted.endswith("."):
        return False
    return any(_dns_match(wanted, pattern) for pattern in patterns)


def email_allowed(address: str, patterns: Sequence[str]) -> bool:
    local, at, domain = address.strip().lower().rpartition("@")
    if not at or not local:
        return False
    for pattern in patterns:
        p_local, _, p_domain = pattern.rpartition("@")
        if (p_local == "*" or p_local == local) and _dns_match(domain, p_domain):
            return True
    return False


def ip_allowed(address: str, networks: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    for text in networks:
        network = ipaddress.ip_network(text)
        if ip.version == network.version and ip in network:
            return True
    return False


def uri_allowed(uri: str, patterns: Sequence[str]) -> bool:
    # Scheme and host are case-insensitive, the path is not: compare the lower-cased scheme and
    # authority, and the rest as written.
    wanted = _uri_key(uri.strip())
    for pattern in patterns:
        if pattern.endswith("*"):
            if wanted.startswith(_uri_key(pattern[:-1])):
                return True
        elif wanted == _uri_key(pattern):
            return True
    return False


def _uri_key(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri.lower()
    authority, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{authority.lower()}{slash}{path}"
