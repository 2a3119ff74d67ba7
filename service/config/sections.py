"""The sections of the configuration file, each parsed into its settings, every problem reported at once."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from service.config.reader import (
    Reader,
    StringLoader,
    kind_of,
    parse_bool,
    parse_duration,
    parse_int,
    parse_listen,
    parse_size,
)
from service.config.settings import (
    ApiKeyAuth,
    BackoffSettings,
    CASettings,
    Config,
    GatewaySettings,
    KeyStoreAuth,
    LedgerSettings,
    ListenSettings,
    PasswordAuth,
    ProfileOptions,
    ProxySettings,
    RestSettings,
    SectigoProperties,
    StaticProfile,
    TLSListenSettings,
)
from service.errors import ConfigError

log = logging.getLogger(__name__)

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
DEFAULT_LEDGER_FILE = "cagw-ledger.db"
DEFAULT_TOKEN_URL = "https://auth.sso.sectigo.com/auth/realms/apiclients/protocol/openid-connect/token"


def _listen(r: Reader, section: Mapping[str, Any], default: str) -> ListenSettings:
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


def _sectigo_properties(r: Reader, props: Mapping[str, Any]) -> SectigoProperties | None:
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
    org_id = r.convert(props, "org-id", lambda t: parse_int(t, low=1), 0)
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
        max_attempts=r.convert(props, "enroll-max-attempts", lambda t: parse_int(t, low=1, high=1000), 5),
    )

    proxy = None
    if any(k in props for k in ("proxy-host-name", "proxy-port", "proxy-username", "proxy-password")):
        host = r.text(props, "proxy-host-name", required=True)
        port = r.convert(props, "proxy-port", lambda t: parse_int(t, low=1, high=65535), 0)
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


def _profiles(r: Reader, raw: Any) -> tuple[StaticProfile, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.problem(f"must be a list, found {kind_of(raw)}", "profiles")
        return ()
    profiles: list[StaticProfile] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        with r.at(f"profiles[{index}]"):
            entry = r.mapping(item)
            r.reject_unknown(entry, _PROFILE_KEYS)
            profile_id = r.text(entry, "id", required=True)
            cert_type = r.text(entry, "cert-type", required=True)
            term = r.convert(entry, "term", lambda t: parse_int(t, low=1, high=3650), None)
            if profile_id in seen:
                r.problem(f"duplicate profile id {profile_id!r}", "id")
            if profile_id and cert_type:
                seen.add(profile_id)
                profiles.append(StaticProfile(id=profile_id, name=r.text(entry, "name") or profile_id,
                                              cert_type=cert_type, term=term,
                                              description=r.text(entry, "description") or ""))
    return tuple(profiles)


def _gateway(r: Reader, section: Mapping[str, Any]) -> GatewaySettings:
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
        max_concurrent_requests=r.convert(section, "max-concurrent-requests", lambda t: parse_int(t, low=1, high=1000),
                                          defaults.max_concurrent_requests),
        give_up_after=r.convert(section, "give-up-after", _positive_duration, defaults.give_up_after),
        profile_cache_ttl=r.convert(section, "profile-cache-ttl", parse_duration, defaults.profile_cache_ttl),
        profile_sync=r.convert(section, "profile-sync", parse_bool, defaults.profile_sync),
        default_term=r.convert(section, "default-term", lambda t: parse_int(t, low=1, high=3650), None),
        subject_revoke_limit=r.convert(section, "subject-revoke-limit", lambda t: parse_int(t, low=1),
                                       defaults.subject_revoke_limit),
        retry_attempts=r.convert(section, "retry-attempts", lambda t: parse_int(t, low=1, high=20),
                                 defaults.retry_attempts),
        retry_base_delay=r.convert(section, "retry-base-delay", parse_duration, defaults.retry_base_delay),
        profile_options=options,
    )


def _managed_ca(r: Reader, entry: Mapping[str, Any]) -> CASettings | None:
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
                      profiles=profiles, gateway=gateway, backoff=properties.backoff)


def _ledger(r: Reader, section: Mapping[str, Any]) -> LedgerSettings:
    """``url`` chooses the backend by its scheme (``path`` is short for a ``sqlite:///`` URL); the
    backend parses the URL and its own keys. On a problem the default stands in (never used)."""
    # Imported here: the ledger package imports the connector types, which import config.
    from service.ledger.registry import LedgerSettingsError, backend_for, parse_target, url_for_path

    url, path = r.text(section, "url"), r.text(section, "path")
    if url is not None and path is not None:
        r.problem("give url or path, not both (path is short for a sqlite:/// url)", "url")
    key = "url" if url is not None else "path"
    written = url if url is not None else url_for_path(path if path is not None else DEFAULT_LEDGER_FILE)
    try:
        try:
            backend = backend_for(written)
        except LedgerSettingsError:
            r.reject_unknown(section, {"path", "url"})
            raise
        r.reject_unknown(section, {"path", "url", *backend.option_keys})
        options = {name: r.text(section, name) or "" for name in sorted(backend.option_keys) if name in section}
        target = parse_target(written, options=options, resolve_path=r.resolve_path)
    except LedgerSettingsError as exc:
        for problem_key, text in exc.problems:
            r.problem(text, key if problem_key == "url" else problem_key)
        target = parse_target(url_for_path(DEFAULT_LEDGER_FILE), resolve_path=r.resolve_path)
    return LedgerSettings(target=target)


def parse_config(document: Any, *, base_dir: Path, environ: Mapping[str, str] | None = None,
                 source: Path | None = None) -> Config:
    """Validate a parsed YAML document; raise one ConfigError listing every problem."""
    r = Reader(base_dir, os.environ if environ is None else environ)
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
                            max_body_bytes=r.convert(rest_section, "max-body-size", parse_size, 1024 * 1024),
                            enrollment_status="standard" if enrollment_status == "standard" else "documented")
    with r.at("ops"):
        ops_section = r.mapping(top.get("ops"))
        r.reject_unknown(ops_section, {"listen"})
        ops = _listen(r, ops_section, "127.0.0.1:9464")
    with r.at("ledger"):
        ledger = _ledger(r, r.mapping(top.get("ledger")))
    if top.get("clients") is not None:  # even an empty list: it would read as "nobody" yet allow everyone
        r.problem("caller authorization (clients) is not available in this release; remove the section "
                  "rather than believe it is enforced", "clients")
    shutdown_grace = r.convert(top, "shutdown-grace", parse_duration, 10.0)

    cas: list[CASettings] = []
    raw_cas = top.get("managed-cas")
    if raw_cas is None:
        r.problem("is required: list at least one CA", "managed-cas")
    elif not isinstance(raw_cas, list):
        r.problem(f"must be a list, found {kind_of(raw_cas)}", "managed-cas")
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
        document = yaml.load(text, Loader=StringLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc
    return parse_config(document, base_dir=path.resolve().parent, environ=environ, source=path)
