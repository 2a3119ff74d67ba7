"""YAML configuration → validated, typed, frozen settings.

The file is CAGW-style: top-level listeners and a ``managed-cas`` list whose
entries carry the Sectigo connector's documented ``properties`` verbatim, plus a
sibling ``gateway:`` block for what this gateway adds (timeouts, bounds, ...).

Every problem is collected and reported at once, each with its YAML path
(``managed-cas[0] (id sectigo-ov).properties.org-id: ...``), and no message
ever contains a secret value. Scalars are read as strings (YAML 1.1 would turn
``012345``, ``no`` and ``12:30:00`` into other things) and converted
explicitly. Relative paths resolve against the configuration file's folder;
secrets may be written ``${ENV_VAR}`` or ``file:PATH``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml

from service.errors import ConfigError

__all__ = [
    "ApiKeyAuth",
    "BackoffSettings",
    "CASettings",
    "Config",
    "GatewaySettings",
    "KeyStoreAuth",
    "ListenSettings",
    "PasswordAuth",
    "ProfileOptions",
    "ProxySettings",
    "Secret",
    "SectigoProperties",
    "StaticProfile",
    "TLSListenSettings",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_listen",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Secret:
    """A secret string that never shows itself in a repr, str or log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class TLSListenSettings:
    cert: Path
    key: Path
    client_ca: Path | None = None


@dataclass(frozen=True)
class ListenSettings:
    host: str
    port: int
    tls: TLSListenSettings | None = None

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RestSettings:
    listen: ListenSettings
    context_path: str = "/cagw"
    max_body_bytes: int = 1024 * 1024
    # "documented": the connector documentation's 200/202/404 on enrollment; "standard": the grpc-gateway table.
    enrollment_status: Literal["documented", "standard"] = "documented"


@dataclass(frozen=True)
class PasswordAuth:
    login: str
    password: Secret
    mode: Literal["password"] = "password"


@dataclass(frozen=True)
class KeyStoreAuth:
    login: str
    key_store: Path
    key_alias: str
    key_store_password: Secret
    key_store_type: Literal["JKS", "PKCS12"]
    mode: Literal["key-store"] = "key-store"


@dataclass(frozen=True)
class ApiKeyAuth:
    client_id: str
    client_secret: Secret
    token_url: str
    mode: Literal["api-key"] = "api-key"


@dataclass(frozen=True)
class ProxySettings:
    host: str
    port: int
    username: str | None = None
    password: Secret | None = None


@dataclass(frozen=True)
class BackoffSettings:
    """The connector documentation's enrollment settings."""

    back_off_timer: float = 2.0
    max_back_off_timer: float = 32.0
    max_attempts: int = 5


@dataclass(frozen=True)
class SectigoProperties:
    url: str
    customer_uri: str
    org_id: int
    auth: PasswordAuth | KeyStoreAuth | ApiKeyAuth
    trust_store: Path | None
    trust_store_password: Secret | None
    trust_store_type: Literal["JKS", "PKCS12", "PEM"] | None
    backoff: BackoffSettings
    proxy: ProxySettings | None = None


@dataclass(frozen=True)
class StaticProfile:
    id: str
    name: str
    cert_type: str
    term: int | None = None
    description: str = ""


@dataclass(frozen=True)
class ProfileOptions:
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    external_requester: str = ""


@dataclass(frozen=True)
class GatewaySettings:
    """What the gateway adds per CA (the ``gateway:`` block)."""

    request_timeout: float = 30.0
    connect_timeout: float = 10.0
    max_concurrent_requests: int = 8
    give_up_after: float = 7 * 24 * 3600.0
    profile_cache_ttl: float = 300.0
    profile_sync: bool = True
    default_term: int | None = None
    subject_revoke_limit: int = 10
    # Idempotent CA calls (collect, details, list, profiles) are tried this many times in all ...
    retry_attempts: int = 4
    # ... waiting about this long before the first retry, doubling after each.
    retry_base_delay: float = 0.5
    profile_options: Mapping[str, ProfileOptions] = field(default_factory=dict)


@dataclass(frozen=True)
class CASettings:
    id: str
    name: str
    connector: str
    properties: SectigoProperties
    profiles: tuple[StaticProfile, ...] = ()
    gateway: GatewaySettings = GatewaySettings()


@dataclass(frozen=True)
class LedgerSettings:
    path: Path


@dataclass(frozen=True)
class Config:
    grpc: ListenSettings
    rest: RestSettings
    ops: ListenSettings
    ledger: LedgerSettings
    managed_cas: tuple[CASettings, ...]
    shutdown_grace: float = 10.0
    source: Path | None = None

    def ca(self, ca_id: str) -> CASettings | None:
        return next((ca for ca in self.managed_cas if ca.id == ca_id), None)


# ---------------------------------------------------------------- parsing helpers


class _StringLoader(yaml.SafeLoader):
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


_StringLoader.yaml_implicit_resolvers = {
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


_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib)?\s*$", re.I)


def _parse_size(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 1048576, 512KiB, 1MiB)")
    unit = (match.group(2) or "b").lower()
    return int(match.group(1)) * {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}[unit]


def _parse_int(text: str, *, low: int | None = None, high: int | None = None) -> int:
    if not re.fullmatch(r"\s*-?\d+\s*", text):
        raise ValueError(f"{text!r} is not a whole number")
    value = int(text)
    if low is not None and value < low:
        raise ValueError(f"{value} is below the minimum {low}")
    if high is not None and value > high:
        raise ValueError(f"{value} is above the maximum {high}")
    return value


def _parse_bool(text: str) -> bool:
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


class _Reader:
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
            self.problem(f"must be a mapping, found {_kind(value)}", key)
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
            self.problem(f"must be a single value, found {_kind(value)}", key)
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


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    return "a list" if isinstance(value, list) else "a single value"


# ---------------------------------------------------------------- sections

_TOP_KEYS = {"grpc", "rest", "ops", "ledger", "clients", "managed-cas", "shutdown-grace"}
_CA_KEYS = {"id", "name", "connector", "properties", "profiles", "gateway"}
_SECTIGO_KEYS = {
    "customer-uri", "org-id", "url",
    "login", "login-password",
    "client-cert-key-store", "client-cert-key-alias", "client-cert-key-store-password", "client-cert-key-store-type",
    "ssl-trust-store", "ssl-trust-store-password", "ssl-truststore-type", "ssl-trust-store-type",
    "enroll-back-off-timer", "enroll-max-back-off-timer", "enroll-max-attempts",
    "proxy-host-name", "proxy-port", "proxy-username", "proxy-password",
    "api-client-id", "api-client-secret", "api-token-url",
}
_GATEWAY_KEYS = {
    "request-timeout", "connect-timeout", "max-concurrent-requests", "give-up-after", "profile-cache-ttl",
    "profile-sync", "default-term", "subject-revoke-limit", "profile-options", "retry-attempts",
    "retry-base-delay",
}
_PROFILE_KEYS = {"id", "name", "cert-type", "term", "description"}
_CA_ID = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_STORE_TYPES = ("JKS", "PKCS12")
DEFAULT_TOKEN_URL = "https://auth.sso.sectigo.com/auth/realms/apiclients/protocol/openid-connect/token"


def _listen(r: _Reader, section: Mapping[str, Any], default: str) -> ListenSettings:
    host, port = r.convert(section, "listen", parse_listen, parse_listen(default))
    tls = None
    tls_section = r.mapping(section.get("tls"), "tls")
    if tls_section:
        with r.at("tls"):
            r.reject_unknown(tls_section, {"cert", "key", "client-ca"})
            cert = r.path(tls_section, "cert", required=True)
            key = r.path(tls_section, "key", required=True)
            client_ca = r.path(tls_section, "client-ca")
            if cert and key:
                tls = TLSListenSettings(cert=cert, key=key, client_ca=client_ca)
    return ListenSettings(host=host, port=port, tls=tls)


def _sectigo_properties(r: _Reader, props: Mapping[str, Any]) -> SectigoProperties | None:
    r.reject_unknown(props, _SECTIGO_KEYS)
    url = r.text(props, "url", required=True) or ""
    for key in ("url", "api-token-url"):
        try:
            parts = urlsplit(str(props.get(key) or ""))
        except ValueError:
            continue  # reported as "not an http(s) URL" below
        if parts.username is not None or parts.password is not None:
            r.problem("credentials do not belong in the url; use login / login-password", key)
    for key in ("login", "login-password", "customer-uri", "api-client-id", "api-client-secret"):
        value = props.get(key)
        if isinstance(value, str) and any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in r.expand(value, key)):
            r.problem("contains a control character (it is sent as an HTTP header)", key)
    if url.strip() and not _is_http_url(url):
        r.problem(f"{url!r} is not an http(s) URL", "url")
    customer_uri = r.text(props, "customer-uri", required=True) or ""
    org_id = r.convert(props, "org-id", lambda t: _parse_int(t, low=1), 0)
    if props.get("org-id") is None:  # absent or empty: convert() kept the default silently
        r.problem("is required", "org-id")

    modes = [name for name, key in (("password", "login-password"), ("key-store", "client-cert-key-store"),
                                    ("api-key", "api-client-id")) if props.get(key) is not None]
    auth: PasswordAuth | KeyStoreAuth | ApiKeyAuth | None = None
    if len(modes) != 1:
        found = " and ".join(modes) if modes else "none"
        r.problem("exactly one authentication mode is needed: login-password (password), client-cert-key-store "
                  f"(key store) or api-client-id (API key); found {found}")
    elif modes[0] == "password":
        login = r.text(props, "login", required=True)
        password = r.secret(props, "login-password", required=True)
        for stray in ("client-cert-key-alias", "client-cert-key-store-password", "client-cert-key-store-type"):
            if stray in props:
                r.problem("belongs to the key-store mode, not the password mode", stray)
        if login and password:
            auth = PasswordAuth(login=login, password=password)
    elif modes[0] == "key-store":
        login = r.text(props, "login", required=True)
        store = r.path(props, "client-cert-key-store", required=True)
        alias = r.text(props, "client-cert-key-alias", required=True)
        store_password = r.secret(props, "client-cert-key-store-password", required=True)
        store_type = _store_type(r, props, "client-cert-key-store-type", required=True)
        if login and store and alias and store_password and store_type in _STORE_TYPES:
            auth = KeyStoreAuth(login=login, key_store=store, key_alias=alias, key_store_password=store_password,
                                key_store_type=store_type)  # type: ignore[arg-type]
    else:
        client_id = r.text(props, "api-client-id", required=True)
        secret = r.secret(props, "api-client-secret", required=True)
        token_url = r.text(props, "api-token-url", default=DEFAULT_TOKEN_URL) or DEFAULT_TOKEN_URL
        if not _is_http_url(token_url):
            r.problem(f"{token_url!r} is not an http(s) URL", "api-token-url")
        if "login" in props:
            r.problem("is not used in the API-key mode", "login")
        if client_id and secret:
            auth = ApiKeyAuth(client_id=client_id, client_secret=secret, token_url=token_url)

    if "ssl-truststore-type" in props and "ssl-trust-store-type" in props:
        r.problem("give ssl-truststore-type or ssl-trust-store-type, not both", "ssl-trust-store-type")
    type_key = "ssl-trust-store-type" if "ssl-trust-store-type" in props else "ssl-truststore-type"
    scheme = url.partition(":")[0].strip().lower()
    trust_store = r.path(props, "ssl-trust-store", required=scheme == "https")
    trust_password = r.secret(props, "ssl-trust-store-password")
    trust_type: str | None = None
    if trust_store is not None:
        trust_type = _store_type(r, props, type_key, required=False, allow_pem=True) or _guess_type(trust_store)
    if scheme == "http" and trust_store is None:
        log.warning("CA url %s is plain HTTP: nothing protects the Sectigo credentials in transit", url)

    backoff = BackoffSettings(
        back_off_timer=r.convert(props, "enroll-back-off-timer", _positive_duration, 2.0),
        max_back_off_timer=r.convert(props, "enroll-max-back-off-timer", _positive_duration, 32.0),
        max_attempts=r.convert(props, "enroll-max-attempts", lambda t: _parse_int(t, low=1, high=1000), 5),
    )

    proxy = None
    if any(k in props for k in ("proxy-host-name", "proxy-port", "proxy-username", "proxy-password")):
        host = r.text(props, "proxy-host-name", required=True)
        port = r.convert(props, "proxy-port", lambda t: _parse_int(t, low=1, high=65535), 0)
        if props.get("proxy-port") is None:
            r.problem("is required with proxy-host-name", "proxy-port")
        user = r.text(props, "proxy-username")
        proxy_password = r.secret(props, "proxy-password")
        if (user is None) != (proxy_password is None):
            r.problem("proxy-username and proxy-password go together", "proxy-username" if user is None else "proxy-password")
        if host and port:
            proxy = ProxySettings(host=host, port=port, username=user, password=proxy_password)

    if auth is None or not url or not customer_uri or not org_id:
        return None
    return SectigoProperties(url=url.rstrip("/"), customer_uri=customer_uri, org_id=org_id, auth=auth,
                             trust_store=trust_store, trust_store_password=trust_password,
                             trust_store_type=trust_type,  # type: ignore[arg-type]
                             backoff=backoff, proxy=proxy)


def _is_http_url(text: str) -> bool:
    try:  # urlsplit raises ValueError on a malformed IPv6 host ("https://[x")
        parts = urlsplit(text)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _positive_duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return seconds


def _store_type(r: _Reader, props: Mapping[str, Any], key: str, *, required: bool, allow_pem: bool = False) -> str | None:
    raw = r.text(props, key, required=required)
    if raw is None:
        return None
    allowed = (*_STORE_TYPES, "PEM") if allow_pem else _STORE_TYPES
    value = raw.strip().upper().replace("PKCS#12", "PKCS12")
    if value not in allowed:
        r.problem(f"{raw!r} is not a supported store type ({' or '.join(allowed)})", key)
        return None
    return value


def _guess_type(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".p12": "PKCS12", ".pfx": "PKCS12", ".pem": "PEM", ".crt": "PEM"}.get(suffix, "JKS")


def _profiles(r: _Reader, raw: Any) -> tuple[StaticProfile, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.problem(f"must be a list, found {_kind(raw)}", "profiles")
        return ()
    profiles: list[StaticProfile] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        with r.at(f"profiles[{index}]"):
            entry = r.mapping(item)
            r.reject_unknown(entry, _PROFILE_KEYS)
            profile_id = r.text(entry, "id", required=True)
            cert_type = r.text(entry, "cert-type", required=True)
            term = r.convert(entry, "term", lambda t: _parse_int(t, low=1, high=3650), None)
            if profile_id in seen:
                r.problem(f"duplicate profile id {profile_id!r}", "id")
            if profile_id and cert_type:
                seen.add(profile_id)
                profiles.append(StaticProfile(id=profile_id, name=r.text(entry, "name") or profile_id,
                                              cert_type=cert_type, term=term,
                                              description=r.text(entry, "description") or ""))
    return tuple(profiles)


def _gateway(r: _Reader, section: Mapping[str, Any]) -> GatewaySettings:
    r.reject_unknown(section, _GATEWAY_KEYS)
    defaults = GatewaySettings()
    options: dict[str, ProfileOptions] = {}
    for profile_id, raw in r.mapping(section.get("profile-options"), "profile-options").items():
        with r.at(f"profile-options.{profile_id}"):
            entry = r.mapping(raw)
            r.reject_unknown(entry, {"custom-fields", "external-requester"})
            fields = r.mapping(entry.get("custom-fields"), "custom-fields")
            options[str(profile_id)] = ProfileOptions(
                custom_fields={str(k): "" if v is None else str(v) for k, v in fields.items()},
                external_requester=r.text(entry, "external-requester") or "",
            )
    return GatewaySettings(
        request_timeout=r.convert(section, "request-timeout", _positive_duration, defaults.request_timeout),
        connect_timeout=r.convert(section, "connect-timeout", _positive_duration, defaults.connect_timeout),
        max_concurrent_requests=r.convert(section, "max-concurrent-requests", lambda t: _parse_int(t, low=1, high=1000),
                                          defaults.max_concurrent_requests),
        give_up_after=r.convert(section, "give-up-after", _positive_duration, defaults.give_up_after),
        profile_cache_ttl=r.convert(section, "profile-cache-ttl", parse_duration, defaults.profile_cache_ttl),
        profile_sync=r.convert(section, "profile-sync", _parse_bool, defaults.profile_sync),
        default_term=r.convert(section, "default-term", lambda t: _parse_int(t, low=1, high=3650), None),
        subject_revoke_limit=r.convert(section, "subject-revoke-limit", lambda t: _parse_int(t, low=1),
                                       defaults.subject_revoke_limit),
        retry_attempts=r.convert(section, "retry-attempts", lambda t: _parse_int(t, low=1, high=20),
                                 defaults.retry_attempts),
        retry_base_delay=r.convert(section, "retry-base-delay", parse_duration, defaults.retry_base_delay),
        profile_options=options,
    )


def _managed_ca(r: _Reader, entry: Mapping[str, Any]) -> CASettings | None:
    r.reject_unknown(entry, _CA_KEYS)
    ca_id = r.text(entry, "id", required=True)
    if ca_id and not _CA_ID.match(ca_id):
        r.problem(f"{ca_id!r} must be 1-64 characters of letters, digits, '.', '_', '~' or '-'", "id")
    connector = r.text(entry, "connector", default="sectigo")
    if connector != "sectigo":
        r.problem(f"unknown connector {connector!r} (supported: sectigo)", "connector")
    props = r.mapping(entry.get("properties"), "properties")
    if "properties" not in entry:
        r.problem("is required", "properties")
    with r.at("properties"):
        properties = _sectigo_properties(r, props)
    profiles = _profiles(r, entry.get("profiles"))
    with r.at("gateway"):
        gateway = _gateway(r, r.mapping(entry.get("gateway")))
    if properties is not None and properties.backoff.back_off_timer < 1:
        log.warning("CA %s: enroll-back-off-timer %.3gs is below one second, so each wait (timer ^ attempt) is "
                    "shorter than the one before it", ca_id, properties.backoff.back_off_timer)
    if ca_id is None or properties is None or connector != "sectigo":
        return None
    return CASettings(id=ca_id, name=r.text(entry, "name") or ca_id, connector=connector, properties=properties,
                      profiles=profiles, gateway=gateway)


def parse_config(document: Any, *, base_dir: Path, environ: Mapping[str, str] | None = None,
                 source: Path | None = None) -> Config:
    """Validate a parsed YAML document; raise one ConfigError listing every problem."""
    r = _Reader(base_dir, os.environ if environ is None else environ)
    top = r.mapping(document)
    if document is not None and not isinstance(document, dict):
        raise ConfigError.collect(r.problems)
    r.reject_unknown(top, _TOP_KEYS)

    with r.at("grpc"):
        grpc_section = r.mapping(top.get("grpc"))
        r.reject_unknown(grpc_section, {"listen", "tls"})
        grpc_listen = _listen(r, grpc_section, "127.0.0.1:50051")
    with r.at("rest"):
        rest_section = r.mapping(top.get("rest"))
        r.reject_unknown(rest_section, {"listen", "tls", "context-path", "max-body-size", "enrollment-status"})
        rest_listen = _listen(r, rest_section, "127.0.0.1:8444")
        context_path = "/" + (r.text(rest_section, "context-path", default="/cagw") or "").strip("/")
        if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", context_path):
            r.problem(f"{context_path!r} is not a valid context path", "context-path")
        enrollment_status = r.text(rest_section, "enrollment-status", default="documented")
        if enrollment_status not in ("documented", "standard"):
            r.problem(f"{enrollment_status!r} must be documented (200/202/404) or standard (grpc-gateway table)",
                      "enrollment-status")
        rest = RestSettings(listen=rest_listen, context_path=context_path.rstrip("/") or "",
                            max_body_bytes=r.convert(rest_section, "max-body-size", _parse_size, 1024 * 1024),
                            enrollment_status="standard" if enrollment_status == "standard" else "documented")
    with r.at("ops"):
        ops_section = r.mapping(top.get("ops"))
        r.reject_unknown(ops_section, {"listen"})
        ops = _listen(r, ops_section, "127.0.0.1:9464")
    with r.at("ledger"):
        ledger_section = r.mapping(top.get("ledger"))
        r.reject_unknown(ledger_section, {"path"})
        ledger = LedgerSettings(path=r.resolve_path(r.text(ledger_section, "path", default="cagw-ledger.db") or ""))
    if top.get("clients") is not None:  # even an empty list: it would read as "nobody" yet allow everyone
        r.problem("caller authorization (clients) is not available in this release; remove the section "
                  "rather than believe it is enforced", "clients")
    shutdown_grace = r.convert(top, "shutdown-grace", parse_duration, 10.0)

    cas: list[CASettings] = []
    raw_cas = top.get("managed-cas")
    if raw_cas is None:
        r.problem("is required: list at least one CA", "managed-cas")
    elif not isinstance(raw_cas, list):
        r.problem(f"must be a list, found {_kind(raw_cas)}", "managed-cas")
    elif not raw_cas:
        r.problem("is empty: list at least one CA", "managed-cas")
    else:
        seen: set[str] = set()
        for index, entry in enumerate(raw_cas):
            label = f"[{index}]"
            if isinstance(entry, dict) and entry.get("id") is not None:
                label += f" (id {entry['id']})"
            with r.at("managed-cas"), r.at(label):
                ca = _managed_ca(r, r.mapping(entry))
            if ca is not None:
                if ca.id in seen:
                    r.problem(f"duplicate CA id {ca.id!r}", f"managed-cas{label}")
                seen.add(ca.id)
                cas.append(ca)
    if r.problems:
        raise ConfigError.collect(r.problems)
    return Config(grpc=grpc_listen, rest=rest, ops=ops, ledger=ledger, managed_cas=tuple(cas),
                  shutdown_grace=shutdown_grace, source=source)


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror or exc}") from exc
    except ValueError as exc:  # UnicodeDecodeError
        raise ConfigError(f"{path}: cannot read the configuration file: not UTF-8 text") from exc
    try:
        document = yaml.load(text, Loader=_StringLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc
    return parse_config(document, base_dir=path.resolve().parent, environ=environ, source=path)
