"""LocalCA's own settings: its ``properties`` keys (none of them shared with any other connector) and parser."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.config import BackoffSettings
from service.config.reader import Reader, parse_int, positive_duration
from service.connectors.registry import ParsedProperties
from service.x509 import SAN_TYPES

PROPERTY_KEYS = {"ca-name", "issue-after-collects", "revocation-comment-limit", "san-types", "collect-wait",
                 "collect-attempts"}


@dataclass(frozen=True)
class LocalCAProperties:
    ca_name: str  # common name of the in-memory issuing CA
    issue_after_collects: int  # collects answered "pending" before the certificate is issued
    comment_limit: int  # the CommentLimit capability
    san_types: frozenset[str]  # the SubjectAltNameTypes capability


def parse_properties(r: Reader, props: Mapping[str, Any]) -> ParsedProperties | None:
    r.reject_unknown(props, PROPERTY_KEYS)
    ca_name = r.text(props, "ca-name", required=True)
    issue_after = r.convert(props, "issue-after-collects", lambda t: parse_int(t, low=0, high=100), 0)
    comment_limit = r.convert(props, "revocation-comment-limit", lambda t: parse_int(t, low=1, high=10_000), 64)
    san_types = r.convert(props, "san-types", _san_types, frozenset({"dNSName"}))
    wait = r.convert(props, "collect-wait", positive_duration, 0.05)
    attempts = r.convert(props, "collect-attempts", lambda t: parse_int(t, low=1, high=50), 3)
    if not ca_name:
        return None
    settings = LocalCAProperties(ca_name=ca_name, issue_after_collects=issue_after, comment_limit=comment_limit,
                                 san_types=san_types)
    # The core's collect schedule, from this connector's own keys: a flat wait between attempts.
    return ParsedProperties(settings=settings, backoff=BackoffSettings(back_off_timer=wait, max_back_off_timer=wait,
                                                                       max_attempts=attempts))


def _san_types(text: str) -> frozenset[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SAN_TYPES]
    if unknown or not names:
        raise ValueError(f"{text!r} must list SAN types among {', '.join(SAN_TYPES)}")
    return frozenset(names)
