"""Reading YAML as strings and walking it: value converters and the problem collector with YAML paths."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

from service.config.settings import Secret

T = TypeVar("T")

class StringLoader(yaml.SafeLoader):
    """SafeLoader where every plain scalar stays a string (null aside) and a key given twice is an
    error (PyYAML would silently keep the last one, e.g. of two ``login-password`` lines)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: list[Any] = []
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.append(key)
        return super().construct_mapping(node, deep=deep)


StringLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|msec|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hour|hours|d|day|days)?\s*$", re.I)
_UNIT_SECONDS = {"ms": 0.001, "msec": 0.001, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60,
                 "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400,
                 "day": 86400, "days": 86400}


def parse_duration(text: str) -> float:
    """``2`` and ``2s`` and ``2 sec`` are two seconds; ``500ms``, ``1.5s``, ``5m``, ``1h``, ``7d`` work too."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration (examples: 2, 2s, 2 sec, 500ms, 1.5s, 5m)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is not a finite duration")
    return seconds


def positive_duration(text: str) -> float:
    """A duration longer than zero (a timer of zero would turn a wait loop into a busy loop)."""
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return seconds


_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib)?\s*$", re.I)


def parse_size(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 1048576, 512KiB, 1MiB)")
    unit = (match.group(2) or "b").lower()
    return int(match.group(1)) * {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}[unit]


def parse_int(text: str, *, low: int | None = None, high: int | None = None) -> int:
    if not re.fullmatch(r"\s*-?\d+\s*", text):
        raise ValueError(f"{text!r} is not a whole number")
    value = int(text)
    if low is not None and value < low:
        raise ValueError(f"{value} is below the minimum {low}")
    if high is not None and value > high:
        raise ValueError(f"{value} is above the maximum {high}")
    return value


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"{text!r} is not a boolean (true or false)")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[::1]:PORT``, or ``:PORT`` for 127.0.0.1."""
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\s]*):(\d+)", text.strip())
    if not match:
        raise ValueError(f"{text!r} is not HOST:PORT")
    host = match.group(1) or match.group(3) or "127.0.0.1"
    port = int(match.group(2) or match.group(4))
    if port > 65535:
        raise ValueError(f"port {port} is above 65535")
    return host, port


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Reader:
    """Walks the YAML tree, converting values and collecting problems with their paths."""

    def __init__(self, base_dir: Path, environ: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.environ = environ
        self.problems: list[str] = []
        self._path: list[str] = []

    @contextmanager
    def at(self, part: str) -> Iterator[None]:
        self._path.append(part)
        try:
            yield
        finally:
            self._path.pop()

    def where(self, key: str | None = None) -> str:
        parts = [*self._path, key] if key else list(self._path)
        text = ""
        for part in parts:
            text += part if part.startswith("[") or not text else f".{part}"
        return text or "(top level)"

    def problem(self, text: str, key: str | None = None) -> None:
        self.problems.append(f"{self.where(key)}: {text}")

    def mapping(self, value: Any, key: str | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(f"must be a mapping, found {kind_of(value)}", key)
            return {}
        return value

    def reject_unknown(self, section: Mapping[str, Any], allowed: set[str]) -> None:
        for key in section:
            if key not in allowed:
                self.problem(f"unknown key (allowed: {', '.join(sorted(allowed))})", str(key))

    def text(self, section: Mapping[str, Any], key: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = section.get(key)
        if value is None:
            if required:
                self.problem("is required", key)
            return default
        if isinstance(value, (dict, list)):
            self.problem(f"must be a single value, found {kind_of(value)}", key)
            return default
        before = len(self.problems)
        expanded = self._expand_env(str(value), key)
        if required and not expanded.strip() and len(self.problems) == before:
            self.problem("must not be empty", key)
        return expanded

    def secret(self, section: Mapping[str, Any], key: str, *, required: bool = False) -> Secret | None:
        raw = self.text(section, key, required=required)
        if raw is None:
            return None
        if raw.startswith("file:"):
            path = self.resolve_path(raw[len("file:"):])
            try:
                return Secret(path.read_text(encoding="utf-8").rstrip("\r\n"))
            except OSError as exc:
                self.problem(f"cannot read the secret file {path}: {exc.strerror or exc}", key)
                return None
            except ValueError:  # not UTF-8 or a NUL in the path; the decoder's text would quote secret bytes
                self.problem(f"cannot read the secret file {path}: not a UTF-8 text file", key)
                return None
        return Secret(raw)

    def convert(self, section: Mapping[str, Any], key: str, parse: Callable[[str], T], default: T) -> T:
        raw = self.text(section, key)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            self.problem(str(exc), key)
            return default

    def path(self, section: Mapping[str, Any], key: str, *, required: bool = False, must_exist: bool = True) -> Path | None:
        raw = self.text(section, key, required=required)
        if raw is None or not raw.strip():
            return None
        path = self.resolve_path(raw)
        if must_exist:
            if not path.exists():
                self.problem(f"file {path} does not exist", key)
            elif not os.access(path, os.R_OK) or path.is_dir():
                self.problem(f"file {path} is not a readable file", key)
        return path

    def resolve_path(self, raw: str) -> Path:
        path = Path(os.path.expanduser(raw.strip()))
        return path if path.is_absolute() else (self.base_dir / path)

    def expand(self, value: str, key: str) -> str:
        """``${ENV}`` substituted, without recording problems (they are reported by ``text``)."""
        return _ENV.sub(lambda m: self.environ.get(m.group(1), ""), value)

    def _expand_env(self, value: str, key: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.environ:
                self.problem(f"environment variable {name} is not set", key)
                return ""
            return self.environ[name]

        return _ENV.sub(substitute, value)


def kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    return "a list" if isinstance(value, list) else "a single value"
