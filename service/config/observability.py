"""The sections about watching the gateway run: ``log``, ``tracing`` and a CA's ``gateway.circuit-breaker``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from service.config.reader import Reader, parse_bool, parse_int, positive_duration
from service.config.settings import CircuitBreakerSettings, LogFormat, LogLevel, LogSettings, TracingSettings

__all__ = ["parse_circuit_breaker", "parse_log", "parse_tracing"]

_LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
_LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")


def parse_log(r: Reader, section: Mapping[str, Any]) -> LogSettings:
    r.reject_unknown(section, {"format", "level"})
    defaults = LogSettings()
    written_format = (r.text(section, "format") or defaults.format).strip().lower()
    written_level = (r.text(section, "level") or defaults.level).strip().lower()
    log_format = next((f for f in _LOG_FORMATS if f == written_format), None)
    level = next((lvl for lvl in _LOG_LEVELS if lvl == written_level), None)
    if log_format is None:
        r.problem(f"{written_format!r} must be one of {', '.join(_LOG_FORMATS)}", "format")
    if level is None:
        r.problem(f"{written_level!r} must be one of {', '.join(_LOG_LEVELS)}", "level")
    return LogSettings(format=log_format or defaults.format, level=level or defaults.level)


def _sample_ratio(text: str) -> float:
    try:
        ratio = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number between 0 and 1") from None
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{text!r} is not a number between 0 and 1")
    return ratio


def _endpoint(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http:// or https:// URL (for example http://127.0.0.1:4317)")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials in the URL")
    return text.strip()


def parse_tracing(r: Reader, section: Mapping[str, Any]) -> TracingSettings:
    r.reject_unknown(section, {"otlp-endpoint", "service-name", "sample-ratio"})
    defaults = TracingSettings()
    service_name = (r.text(section, "service-name") or defaults.service_name).strip()
    if not service_name:
        r.problem("must not be empty", "service-name")
    return TracingSettings(
        otlp_endpoint=r.convert(section, "otlp-endpoint", _endpoint, None),
        service_name=service_name or defaults.service_name,
        sample_ratio=r.convert(section, "sample-ratio", _sample_ratio, defaults.sample_ratio),
    )


def parse_circuit_breaker(r: Reader, section: Mapping[str, Any]) -> CircuitBreakerSettings:
    r.reject_unknown(section, {"enabled", "failure-threshold", "window", "open-for"})
    defaults = CircuitBreakerSettings()
    return CircuitBreakerSettings(
        enabled=r.convert(section, "enabled", parse_bool, defaults.enabled),
        failure_threshold=r.convert(section, "failure-threshold", lambda t: parse_int(t, low=1, high=1000),
                                    defaults.failure_threshold),
        window=r.convert(section, "window", positive_duration, defaults.window),
        open_for=r.convert(section, "open-for", positive_duration, defaults.open_for),
    )
