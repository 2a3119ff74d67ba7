"""The sections about a certificate's life after issuance: a CA's ``gateway.renewal``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from service.config.reader import Reader
from service.config.settings import RenewalPolicy, RenewalSettings

__all__ = ["parse_renewal"]

_SHARE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*")
_POLICY_KEYS = {"window", "jitter"}


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
    return RenewalPolicy(window=window, jitter=jitter)


def parse_renewal(r: Reader, section: Mapping[str, Any]) -> RenewalSettings:
    """``window``/``jitter`` for every profile of the CA, and ``profiles: {id: {window, jitter}}``."""
    r.reject_unknown(section, _POLICY_KEYS | {"profiles"})
    default = _policy(r, section, RenewalPolicy())
    profiles: dict[str, RenewalPolicy] = {}
    for profile_id, raw in r.mapping(section.get("profiles"), "profiles").items():
        with r.at(f"profiles.{profile_id}"):
            entry = r.mapping(raw)
            r.reject_unknown(entry, _POLICY_KEYS)
            profiles[str(profile_id)] = _policy(r, entry, default)
    return RenewalSettings(default=default, profiles=profiles)
