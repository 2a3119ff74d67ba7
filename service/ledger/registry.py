"""Ledger backends, chosen by the scheme of ``ledger.url``: each registers itself, the registry builds one.

A backend is a package ``service.ledger.<name>`` whose ``__init__`` calls
:func:`register_backend` with a :class:`LedgerBackend` for its URL scheme(s)
and imports its database driver only inside its functions, so a missing driver
troubles only those who choose that backend. The first time a scheme is asked
for that nobody registered, the registry imports every such package, so a new
backend (``service/ledger/postgres/`` for ``postgresql://``) touches no other file.

A URL may hold a password. No message of this module quotes the URL as
written: :func:`redact_url` replaces credentials with ``***``, and
:attr:`LedgerTarget.shown` (what logs and errors print) is made with it.

Example::

    target = parse_target("sqlite:///ledger.db", resolve_path=lambda raw: config_folder / raw)
    ledger = create_ledger(target, clock=None)   # not open yet: ``await ledger.open()``
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import pkgutil
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote, unquote, urlsplit

from service.ledger.base import Ledger


__all__ = [
    "DEFAULT_SCHEME",
    "Clock",
    "LedgerBackend",
    "LedgerSettingsError",
    "LedgerSource",
    "LedgerTarget",
    "backend_for",
    "create_ledger",
    "file_target",
    "parse_target",
    "redact_url",
    "register_backend",
    "supported_schemes",
    "target_of",
    "url_for_path",
]

DEFAULT_SCHEME = "sqlite"  # the embedded default; ``ledger.path`` is short for a URL of this scheme

Clock = Callable[[], dt.datetime]
S = TypeVar("S")

# Query parameters whose values are secrets (libpq accepts ``?password=…``, ``?sslpassword=…``).
_SECRET_WORDS = ("password", "secret", "token")


class LedgerSettingsError(ValueError):
    """Bad ledger settings. Each problem is ``(key, text)``, ``key`` being ``url`` or one of the
    backend's option keys; no text holds a credential."""

    def __init__(self, *problems: tuple[str, str]) -> None:
        self.problems: tuple[tuple[str, str], ...] = problems
        super().__init__("; ".join(f"{key}: {text}" for key, text in problems))


@dataclass(frozen=True)
class LedgerSource:
    """What a backend's ``parse`` reads: the URL as written (it may hold a password, so it goes in
    no message), the backend's own keys of the ``ledger:`` section as text, and how a relative
    path resolves (against the configuration file's folder)."""

    url: str = field(repr=False)
    options: Mapping[str, str] = field(default_factory=dict)
    resolve_path: Callable[[str], Path] = Path


@dataclass(frozen=True)
class LedgerBackend(Generic[S]):
    """One ledger implementation, as it registers itself.

    ``parse`` turns a :class:`LedgerSource` into the backend's own frozen settings ``S`` (secrets
    in them held as ``Secret``) or raises :class:`LedgerSettingsError`; ``create`` builds an
    unopened ledger from them (``clock`` None: the backend's own time); ``describe`` shows them
    as a URL (credentials are redacted again after it). ``option_keys`` are the extra keys the
    backend reads from the ``ledger:`` section. ``backup`` copies the ledger consistently while
    gateways use it, without opening it as a ledger; None when the backend has no such copy.
    ``file_of`` names the ledger's file for a backend that keeps it in one.
    """

    name: str
    schemes: tuple[str, ...]
    parse: Callable[[LedgerSource], S]
    create: Callable[[S, Clock | None], Ledger]
    describe: Callable[[S], str]
    option_keys: frozenset[str] = frozenset()
    backup: Callable[[S, Path], Awaitable[None]] | None = None
    file_of: Callable[[S], Path] | None = None


@dataclass(frozen=True)
class LedgerTarget:
    """A parsed ledger location: its backend, the backend's settings, and ``shown``, the URL
    without credentials. The repr shows only ``shown``."""

    backend: LedgerBackend[Any]
    settings: Any
    shown: str

    def __repr__(self) -> str:
        return f"LedgerTarget({self.shown!r})"

    @property
    def path(self) -> Path | None:
        """The ledger's file when the backend keeps it in one (SQLite), else None."""
        return self.backend.file_of(self.settings) if self.backend.file_of is not None else None


_BACKENDS: dict[str, LedgerBackend[Any]] = {}
_UNLOADABLE: dict[str, str] = {}  # backend package -> why it could not be imported


def register_backend(backend: LedgerBackend[Any]) -> None:
    """Make ``ledger.url`` with any of ``backend.schemes`` choose ``backend``."""
    for scheme in backend.schemes:
        _BACKENDS[scheme.lower()] = backend


def supported_schemes() -> list[str]:
    """Every scheme a backend registered, after importing every backend package."""
    _discover()
    return sorted(_BACKENDS)


def backend_for(url: str) -> LedgerBackend[Any]:
    """The backend registered for the URL's scheme; :class:`LedgerSettingsError` on ``url`` if none."""
    scheme = _scheme(url)
    if scheme not in _BACKENDS:
        _discover()
    backend = _BACKENDS.get(scheme)
    if backend is not None:
        return backend
    supported = ", ".join(sorted(_BACKENDS))
    text = (f"unknown ledger scheme {scheme!r} (supported: {supported})" if scheme else
            f"is not a URL: expected SCHEME://…, e.g. {DEFAULT_SCHEME}:///cagw-ledger.db (supported schemes: "
            f"{supported})")
    for package, reason in sorted(_UNLOADABLE.items()):
        text += f"; the ledger backend {package} could not be loaded: {reason}"
    raise LedgerSettingsError(("url", text))


def parse_target(url: str, *, options: Mapping[str, str] | None = None,
                 resolve_path: Callable[[str], Path] = Path) -> LedgerTarget:
    """Choose the backend by the URL's scheme and let it parse its settings.

    Raises :class:`LedgerSettingsError`; whatever a backend says, no credential of ``url`` is
    left in a problem's text.
    """
    backend = backend_for(url)
    unknown = sorted(set(options or {}) - backend.option_keys)
    if unknown:
        raise LedgerSettingsError(*((key, f"is not a setting of the {backend.name} ledger") for key in unknown))
    try:
        settings = backend.parse(LedgerSource(url=url, options=dict(options or {}), resolve_path=resolve_path))
    except LedgerSettingsError as exc:
        raise LedgerSettingsError(*((key, _scrub(text, url)) for key, text in exc.problems)) from None
    return LedgerTarget(backend=backend, settings=settings, shown=_scrub(redact_url(backend.describe(settings)), url))


def url_for_path(raw: str) -> str:
    """The URL that ``ledger.path: raw`` is short for (relative stays relative: ``sqlite:///raw``)."""
    return f"{DEFAULT_SCHEME}:///{quote(raw, safe='/~')}"


def file_target(path: Path) -> LedgerTarget:
    """The default backend on the file ``path`` (relative to the working directory)."""
    return parse_target(url_for_path(str(path)))


class LedgerSection(Protocol):
    """What the configuration's ``ledger:`` settings offer the registry (``config.LedgerSettings``)."""

    @property
    def target(self) -> LedgerTarget: ...


def target_of(where: LedgerSection | LedgerTarget | os.PathLike[str]) -> LedgerTarget:
    """The target of a configuration's ``ledger`` settings, of a target, or of a file path."""
    if isinstance(where, LedgerTarget):
        return where
    if isinstance(where, os.PathLike):
        return file_target(Path(where))
    return where.target


def create_ledger(target: LedgerTarget, *, clock: Clock | None = None) -> Ledger:
    """Build the target's ledger, not yet open."""
    return target.backend.create(target.settings, clock)


def redact_url(text: str) -> str:
    """``text`` with the password of its user part and the values of secret query parameters
    (``password``, ``sslpassword``, ``…secret…``, ``…token…``) replaced by ``***``; the rest
    stays as written (``sqlite:////abs`` keeps its four slashes)."""
    try:
        parts = urlsplit(text)
    except ValueError:  # a malformed host ("[x"): show nothing of it but the scheme
        return f"{_scheme(text) or '?'}:***"
    userinfo, at, host = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        text = text.replace(f"//{parts.netloc}", f"//{userinfo.partition(':')[0]}:***@{host}", 1)
    if parts.query:
        query = "&".join(_redact_pair(pair) for pair in parts.query.split("&"))
        text = text.replace(f"?{parts.query}", f"?{query}", 1)
    return text


def _redact_pair(pair: str) -> str:
    key, equals, _ = pair.partition("=")
    return f"{key}=***" if equals and any(word in unquote(key).lower() for word in _SECRET_WORDS) else pair


def _secrets_of(url: str) -> list[str]:
    """The credential texts in ``url`` (raw and percent-decoded), longest first."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    for pair in parts.query.split("&"):
        key, equals, value = pair.partition("=")
        if equals and any(word in unquote(key).lower() for word in _SECRET_WORDS):
            found.append(value)
    return sorted({text for secret in found for text in (secret, unquote(secret)) if text}, key=len, reverse=True)


def _scrub(text: str, url: str) -> str:
    for secret in _secrets_of(url):
        text = text.replace(secret, "***")
    return text


def _scheme(url: str) -> str:
    head, colon, _ = url.strip().partition(":")
    valid = colon and head[:1].isalpha() and all(ch.isalnum() or ch in "+-." for ch in head)
    return head.lower() if valid else ""


def _discover() -> None:
    """Import every backend package of ``service.ledger`` not imported yet (they register on import)."""
    package = sys.modules[__name__.rpartition(".")[0]]
    for info in pkgutil.iter_modules(package.__path__):
        name = f"{package.__name__}.{info.name}"
        if not info.ispkg or name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:  # its driver is missing: worth saying when its scheme is asked for
            _UNLOADABLE[name] = str(exc)
        else:
            _UNLOADABLE.pop(name, None)
