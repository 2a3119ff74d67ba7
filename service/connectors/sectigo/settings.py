"""The Sectigo connector's settings: its ``properties`` keys, their frozen types and their parser.

``properties`` holds exactly the keys of the CAGW Sectigo connector
documentation (including the odd ``ssl-truststore-type`` spelling), plus the
API-key mode's ``api-client-id``, ``api-client-secret`` and ``api-token-url``.
:func:`parse_properties` is this connector's part of the configuration loader:
it reports every problem through the loader's ``Reader`` (so each names its YAML
path, and all are reported at once) and returns the :class:`SectigoProperties`
plus the collect schedule (``enroll-*`` keys) the core runs.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from service.config import BackoffSettings, CASettings, Secret
from service.config.reader import Reader, parse_int, positive_duration
from service.connectors.registry import ParsedProperties
from service.errors import ConfigError

__all__ = [
    "DEFAULT_TOKEN_URL",
    "PROPERTY_KEYS",
    "ApiKeyAuth",
    "KeyStoreAuth",
    "PasswordAuth",
    "ProxySettings",
    "SectigoProperties",
    "parse_properties",
    "sectigo_properties",
]

log = logging.getLogger(__name__)

PROPERTY_KEYS = frozenset({
    "customer-uri", "org-id", "url",
    "login", "login-password",
    "client-cert-key-store", "client-cert-key-alias", "client-cert-key-store-password", "client-cert-key-store-type",
    "ssl-trust-store", "ssl-trust-store-password", "ssl-truststore-type", "ssl-trust-store-type",
    "enroll-back-off-timer", "enroll-max-back-off-timer", "enroll-max-attempts",
    "proxy-host-name", "proxy-port", "proxy-username", "proxy-password",
    "api-client-id", "api-client-secret", "api-token-url",
})
DEFAULT_TOKEN_URL = "https://auth.sso.sectigo.com/auth/realms/apiclients/protocol/openid-connect/token"
_STORE_TYPES = ("JKS", "PKCS12")
_PROXY_KEYS = ("proxy-host-name", "proxy-port", "proxy-username", "proxy-password")


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


def sectigo_properties(ca: CASettings) -> SectigoProperties:
    """The CA's properties, which must be this connector's own (the loader made them with its parser)."""
    if not isinstance(ca.properties, SectigoProperties):
        raise ConfigError(f"CA {ca.id}: the sectigo connector needs SectigoProperties, "
                          f"not {type(ca.properties).__name__}")
    return ca.properties


def parse_properties(r: Reader, props: Mapping[str, Any]) -> ParsedProperties | None:
    """The plug-in's properties parser (see :class:`service.connectors.registry.ConnectorPlugin`)."""
    r.reject_unknown(props, set(PROPERTY_KEYS))
    url = r.text(props, "url", required=True) or ""
    _check_header_values(r, props)
    if url.strip() and not _is_http_url(url):
        r.problem(f"{url!r} is not an http(s) URL", "url")
    elif _plain_http_off_loopback(url):
        r.problem(f"{url!r} is plain HTTP to a host that is not loopback: the Sectigo credentials and "
                  "every certificate would cross the network unprotected; use https://", "url")
    customer_uri = r.text(props, "customer-uri", required=True) or ""
    org_id = r.convert(props, "org-id", lambda t: parse_int(t, low=1), 0)
    if props.get("org-id") is None:  # absent or empty: convert() kept the default silently
        r.problem("is required", "org-id")
    auth = _auth(r, props)
    trust_store, trust_password, trust_type = _trust_store(r, props, url)
    backoff = _backoff(r, props)
    proxy = _proxy(r, props)
    if auth is None or not url or not customer_uri or not org_id:
        return None
    properties = SectigoProperties(url=url.rstrip("/"), customer_uri=customer_uri, org_id=org_id, auth=auth,
                                   trust_store=trust_store, trust_store_password=trust_password,
                                   trust_store_type=trust_type,  # type: ignore[arg-type]
                                   backoff=backoff, proxy=proxy)
    return ParsedProperties(settings=properties, backoff=backoff)


def _check_header_values(r: Reader, props: Mapping[str, Any]) -> None:
    """No credentials inside URLs, no control characters in what is sent as an HTTP header."""
    for key in ("url", "api-token-url"):
        try:
            parts = urlsplit(str(props.get(key) or ""))
        except ValueError:
            continue  # reported as "not an http(s) URL"
        if parts.username is not None or parts.password is not None:
            r.problem("credentials do not belong in the url; use login / login-password", key)
    for key in ("login", "login-password", "customer-uri", "api-client-id", "api-client-secret"):
        value = props.get(key)
        if isinstance(value, str) and any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in r.expand(value, key)):
            r.problem("contains a control character (it is sent as an HTTP header)", key)


def _auth(r: Reader, props: Mapping[str, Any]) -> PasswordAuth | KeyStoreAuth | ApiKeyAuth | None:
    modes = [name for name, key in (("password", "login-password"), ("key-store", "client-cert-key-store"),
                                    ("api-key", "api-client-id")) if props.get(key) is not None]
    if len(modes) != 1:
        found = " and ".join(modes) if modes else "none"
        r.problem("exactly one authentication mode is needed: login-password (password), client-cert-key-store "
                  f"(key store) or api-client-id (API key); found {found}")
        return None
    if modes[0] == "password":
        return _password_auth(r, props)
    if modes[0] == "key-store":
        return _key_store_auth(r, props)
    return _api_key_auth(r, props)


def _password_auth(r: Reader, props: Mapping[str, Any]) -> PasswordAuth | None:
    login = r.text(props, "login", required=True)
    password = r.secret(props, "login-password", required=True)
    for stray in ("client-cert-key-alias", "client-cert-key-store-password", "client-cert-key-store-type"):
        if stray in props:
            r.problem("belongs to the key-store mode, not the password mode", stray)
    return PasswordAuth(login=login, password=password) if login and password else None


def _key_store_auth(r: Reader, props: Mapping[str, Any]) -> KeyStoreAuth | None:
    login = r.text(props, "login", required=True)
    store = r.path(props, "client-cert-key-store", required=True)
    alias = r.text(props, "client-cert-key-alias", required=True)
    store_password = r.secret(props, "client-cert-key-store-password", required=True)
    store_type = _store_type(r, props, "client-cert-key-store-type", required=True)
    if login and store and alias and store_password and store_type in _STORE_TYPES:
        return KeyStoreAuth(login=login, key_store=store, key_alias=alias, key_store_password=store_password,
                            key_store_type=store_type)  # type: ignore[arg-type]
    return None


def _api_key_auth(r: Reader, props: Mapping[str, Any]) -> ApiKeyAuth | None:
    client_id = r.text(props, "api-client-id", required=True)
    secret = r.secret(props, "api-client-secret", required=True)
    token_url = r.text(props, "api-token-url", default=DEFAULT_TOKEN_URL) or DEFAULT_TOKEN_URL
    if not _is_http_url(token_url):
        r.problem(f"{token_url!r} is not an http(s) URL", "api-token-url")
    if "login" in props:
        r.problem("is not used in the API-key mode", "login")
    return ApiKeyAuth(client_id=client_id, client_secret=secret, token_url=token_url) if client_id and secret else None


def _trust_store(r: Reader, props: Mapping[str, Any], url: str) -> tuple[Path | None, Secret | None, str | None]:
    """The trust store, required for an https url (with a trust store the gateway trusts only it)."""
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
    return trust_store, trust_password, trust_type


def _backoff(r: Reader, props: Mapping[str, Any]) -> BackoffSettings:
    """The documented enrollment keys: the collect schedule of this CA."""
    defaults = BackoffSettings()
    return BackoffSettings(
        back_off_timer=r.convert(props, "enroll-back-off-timer", positive_duration, defaults.back_off_timer),
        max_back_off_timer=r.convert(props, "enroll-max-back-off-timer", positive_duration,
                                     defaults.max_back_off_timer),
        max_attempts=r.convert(props, "enroll-max-attempts", lambda t: parse_int(t, low=1, high=1000),
                               defaults.max_attempts),
    )


def _proxy(r: Reader, props: Mapping[str, Any]) -> ProxySettings | None:
    if not any(key in props for key in _PROXY_KEYS):
        return None
    host = r.text(props, "proxy-host-name", required=True)
    port = r.convert(props, "proxy-port", lambda t: parse_int(t, low=1, high=65535), 0)
    if props.get("proxy-port") is None:
        r.problem("is required with proxy-host-name", "proxy-port")
    user = r.text(props, "proxy-username")
    password = r.secret(props, "proxy-password")
    if (user is None) != (password is None):
        r.problem("proxy-username and proxy-password go together", "proxy-username" if user is None else "proxy-password")
    return ProxySettings(host=host, port=port, username=user, password=password) if host and port else None


def _plain_http_off_loopback(text: str) -> bool:
    """An ``http://`` URL whose host is not 127.0.0.0/8, ::1 or localhost (a local test double)."""
    parts = urlsplit(text)
    if parts.scheme.lower() != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _is_http_url(text: str) -> bool:
    try:  # urlsplit raises ValueError on a malformed IPv6 host ("https://[x")
        parts = urlsplit(text)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _store_type(r: Reader, props: Mapping[str, Any], key: str, *, required: bool, allow_pem: bool = False) -> str | None:
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
