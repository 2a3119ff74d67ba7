"""The sections about a certificate's life after issuance: a CA's ``gateway.renewal`` and ``webhooks``."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from service.config.reader import Reader, kind_of, parse_bool, parse_duration, parse_int, positive_duration
from service.config.settings import RenewalPolicy, RenewalSettings, Secret, SyncSettings, WebhookSettings

__all__ = ["WEBHOOK_EVENTS", "parse_renewal", "parse_sync", "parse_webhooks", "webhook_url"]

_SHARE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*")
_POLICY_KEYS = {"window", "jitter", "automatic"}


def parse_share(text: str) -> float:
    """``33%`` or ``0.33``: a share of a whole, between 0 and 1."""
    match = _SHARE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a share (examples: 33%, 0.33)")
    value = float(match.group(1)) / (100 if match.group(2) else 1)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text!r} is not between 0 and 100%")
    return value


def _policy(r: Reader, section: Mapping[str, Any], defaults: RenewalPolicy) -> RenewalPolicy:
    window = r.convert(section, "window", parse_share, defaults.window)
    jitter = r.convert(section, "jitter", parse_share, defaults.jitter)
    if not 0.0 < window < 1.0:
        r.problem("must be more than 0% and less than 100% of the lifetime", "window")
        window = defaults.window
    if jitter > 0.5:
        r.problem("must be at most 50% of the renewal period", "jitter")
        jitter = defaults.jitter
    return RenewalPolicy(window=window, jitter=jitter,
                         automatic=r.convert(section, "automatic", parse_bool, defaults.automatic))


MAX_THRESHOLDS = 10


def _notify_before(r: Reader, section: Mapping[str, Any]) -> tuple[float, ...]:
    """``notify-before: [30d, 7d, 1d]``: distinct durations above zero, at most ten; ``[]``: no
    ``expiring`` events. Kept largest first, the order a certificate enters them."""
    raw = section.get("notify-before")
    if raw is None:
        return RenewalSettings().notify_before
    if not isinstance(raw, list) or len(raw) > MAX_THRESHOLDS:
        r.problem(f"must be a list of at most {MAX_THRESHOLDS} durations (example: [30d, 7d, 1d])", "notify-before")
        return RenewalSettings().notify_before
    thresholds: set[float] = set()
    for index, item in enumerate(raw):
        try:
            thresholds.add(positive_duration(str(item)))
        except ValueError as exc:
            r.problem(str(exc), f"notify-before[{index}]")
    return tuple(sorted(thresholds, reverse=True))


def parse_renewal(r: Reader, section: Mapping[str, Any]) -> RenewalSettings:
    """``window``/``jitter``/``automatic`` for every profile of the CA, ``profiles: {id: {…}}`` for some,
    ``check-interval`` (how often automatic renewal and the expiry notices look at the certificates)
    and ``notify-before`` (the thresholds of the ``expiring`` events)."""
    r.reject_unknown(section, _POLICY_KEYS | {"profiles", "check-interval", "notify-before"})
    default = _policy(r, section, RenewalPolicy())
    check_interval = r.convert(section, "check-interval", positive_duration, RenewalSettings().check_interval)
    profiles: dict[str, RenewalPolicy] = {}
    for profile_id, raw in r.mapping(section.get("profiles"), "profiles").items():
        with r.at(f"profiles.{profile_id}"):
            entry = r.mapping(raw)
            r.reject_unknown(entry, _POLICY_KEYS)
            profiles[str(profile_id)] = _policy(r, entry, default)
    return RenewalSettings(default=default, profiles=profiles, check_interval=check_interval,
                           notify_before=_notify_before(r, section))


# The event types a webhook can ask for (see service.lifecycle.webhooks).
WEBHOOK_EVENTS = ("issued", "issued-outside", "renewed", "revoked", "failed", "expiring", "replaced")
_WEBHOOK_KEYS = {"name", "url", "secret", "tls-ca", "owner", "cas", "events", "timeout", "retry-delay"}
_WEBHOOK_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MIN_SECRET = 16
# Each webhook is a delivery loop, a connection and a cursor row, and every event is read once per
# webhook: bounded in all, and per owner so that one client cannot multiply the work.
MAX_WEBHOOKS = 32
MAX_WEBHOOKS_PER_OWNER = 4


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def webhook_url(text: str) -> str:
    """An https:// URL; http:// only to a loopback address (a receiver on the same host)."""
    parts = urlsplit(text.strip())
    if not parts.hostname or parts.scheme not in ("https", "http"):
        raise ValueError(f"{text!r} is not an https:// URL (for example https://hooks.example.com/cagw)")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValueError("must be https:// (http:// is accepted for a loopback receiver only): events carry "
                         "certificate data and their signature would travel in the clear")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials in the URL; the receiver checks the signature instead")
    return text.strip()


def _names(r: Reader, section: Mapping[str, Any], key: str, allowed: Sequence[str] | None = None
           ) -> frozenset[str] | None:
    raw = section.get(key)
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(item, str) and item for item in raw):
        r.problem("must be a non-empty list of names", key)
        return None
    unknown = sorted(set(raw) - set(allowed)) if allowed is not None else []
    if unknown:
        r.problem(f"unknown {', '.join(unknown)} (allowed: {', '.join(allowed or ())})", key)
    return frozenset(raw)


def _webhook(r: Reader, entry: Mapping[str, Any]) -> WebhookSettings | None:
    r.reject_unknown(entry, _WEBHOOK_KEYS)
    name = r.text(entry, "name", required=True)
    if name is not None and not _WEBHOOK_NAME.fullmatch(name):
        r.problem("must be 1-64 letters, digits, '.', '_' or '-' (it labels metrics and logs)", "name")
    url = r.convert(entry, "url", webhook_url, None)
    if url is None and entry.get("url") is None:
        r.problem("is required", "url")
    secret = r.secret(entry, "secret", required=True)
    if secret is not None and len(secret.reveal()) < MIN_SECRET:
        r.problem(f"must be at least {MIN_SECRET} characters (it keys the events' HMAC-SHA256 signature)", "secret")
    webhook = WebhookSettings(
        name=name or "", url=url or "", secret=secret or Secret(""), tls_ca=r.path(entry, "tls-ca"),
        owner=r.text(entry, "owner"), cas=_names(r, entry, "cas"),
        events=_names(r, entry, "events", WEBHOOK_EVENTS),
        timeout=r.convert(entry, "timeout", positive_duration, 10.0),
        retry_delay=r.convert(entry, "retry-delay", positive_duration, 1.0))
    return webhook if name and url and secret else None


def parse_webhooks(r: Reader, raw: Any, ca_ids: Sequence[str]) -> tuple[WebhookSettings, ...]:
    """The top-level ``webhooks:`` list; each CA id a webhook names must be configured."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.problem(f"must be a list, found {kind_of(raw)}")
        return ()
    if len(raw) > MAX_WEBHOOKS:
        r.problem(f"has {len(raw)} webhooks, at most {MAX_WEBHOOKS} are allowed (one webhook may take every "
                  "event of several CAs: leave out `cas` and `events`)")
        return ()
    webhooks: list[WebhookSettings] = []
    for index, item in enumerate(raw):
        with r.at(f"[{index}]"):
            webhook = _webhook(r, r.mapping(item))
            if webhook is None:
                continue
            if any(other.name == webhook.name for other in webhooks):
                r.problem(f"duplicate webhook name {webhook.name!r}", "name")
            for ca_id in sorted((webhook.cas or frozenset()) - set(ca_ids)):
                r.problem(f"names CA {ca_id!r}, which is not among managed-cas", "cas")
            same_owner = sum(other.owner == webhook.owner for other in webhooks if webhook.owner is not None)
            if same_owner >= MAX_WEBHOOKS_PER_OWNER:
                r.problem(f"is owner {webhook.owner!r}'s webhook number {same_owner + 1}, at most "
                          f"{MAX_WEBHOOKS_PER_OWNER} per owner are allowed", "owner")
            webhooks.append(webhook)
    return tuple(webhooks)


def parse_sync(r: Reader, section: Mapping[str, Any]) -> SyncSettings:
    """``interval`` (0 or absent: off; else at least a minute), ``max-pages``, ``page-size``."""
    r.reject_unknown(section, {"interval", "max-pages", "page-size"})
    defaults = SyncSettings()
    interval = r.convert(section, "interval", parse_duration, defaults.interval)
    if 0 < interval < 60:
        r.problem("must be 0 (off) or at least 1m: each pass lists the CA's certificates", "interval")
        interval = defaults.interval
    return SyncSettings(
        interval=interval,
        max_pages=r.convert(section, "max-pages", lambda t: parse_int(t, low=1, high=10_000), defaults.max_pages),
        page_size=r.convert(section, "page-size", lambda t: parse_int(t, low=1, high=200), defaults.page_size))
