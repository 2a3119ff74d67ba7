"""The sections of the configuration file, each parsed into its settings, every problem reported at once."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from cryptography import x509 as crypto_x509

from service.config.budget_section import parse_collect_budget
from service.config.clients import parse_clients
from service.config.lifecycle import parse_renewal, parse_sync, parse_webhooks
from service.config.limit_sections import (
    parse_grpc_limits,
    parse_http_limits,
    parse_lookup_limits,
    parse_stream_limits,
)
from service.config.observability import parse_circuit_breaker, parse_log, parse_tracing
from service.config.reader import (
    Reader,
    StringLoader,
    kind_of,
    parse_bool,
    parse_duration,
    parse_int,
    parse_listen,
    parse_size,
    positive_duration,
)
from service.config.settings import (
    CASettings,
    Config,
    GatewaySettings,
    LedgerSettings,
    ListenSettings,
    ProfileOptions,
    RestSettings,
    StaticProfile,
    TLSListenSettings,
)
from service.connectors.registry import ConnectorPlugin, find_connector, installed_connectors, known_connectors
from service.errors import ConfigError
from service.x509.pem import der_from_pem_bundle

log = logging.getLogger(__name__)

_TOP_KEYS = {"grpc", "rest", "ops", "admin", "ledger", "clients", "managed-cas", "shutdown-grace", "log",
             "tracing", "webhooks", "streams", "lookups"}
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_CA_KEYS = {"id", "name", "connector", "properties", "profiles", "gateway"}
_GATEWAY_KEYS = {
    "request-timeout", "connect-timeout", "max-concurrent-requests", "give-up-after", "profile-cache-ttl",
    "profile-sync", "default-term", "subject-revoke-limit", "profile-options", "retry-attempts",
    "retry-base-delay", "circuit-breaker", "renewal", "sync", "server-side-keys", "server-side-key-retention",
    "pkcs12-encryption", "validity-rounding", "ca-certificates", "max-pending-orders", "background-collects",
}
VALIDITY_ROUNDINGS = ("exact", "up")
_PROFILE_KEYS = {"id", "name", "cert-type", "term", "description"}
_CA_ID = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
DEFAULT_LEDGER_FILE = "cagw-ledger.db"


def _listen(r: Reader, section: Mapping[str, Any], default: str) -> ListenSettings:
    host, port = r.convert(section, "listen", parse_listen, parse_listen(default))
    insecure = r.convert(section, "insecure", parse_bool, False)
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
    return ListenSettings(host=host, port=port, tls=tls, insecure=insecure)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``; an empty host or 0.0.0.0 listens on every interface."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_api_listeners(r: Reader, listeners: Mapping[str, ListenSettings],
                         clients: tuple[Any, ...] | None) -> None:
    """Who can reach an API listener must be known: a client CA needs ``clients`` to decide, no
    ``clients`` means loopback only, and a listener open to the network needs mutual TLS, unless
    the operator wrote ``insecure: true`` on it (the start-up log then warns every time)."""
    for name, listen in listeners.items():
        mutual = listen.tls is not None and listen.tls.client_ca is not None
        if mutual and clients is None:
            r.problem("tls.client-ca is set, so a clients section is required to decide who may do what "
                      "(see docs/security.md)", f"{name}.tls.client-ca")
        if is_loopback(listen.host) or listen.insecure:
            continue
        if clients is None:
            r.problem(f"{listen.host} is not a loopback address: without a clients section every caller may do "
                      "everything, so every API listener must be on 127.0.0.1/::1 (or set insecure: true)",
                      f"{name}.listen")
        elif not mutual:
            r.problem(f"{listen.host} is not a loopback address: a listener open to the network needs "
                      "tls.cert, tls.key and tls.client-ca (or set insecure: true on it)", f"{name}.listen")


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
    with r.at("circuit-breaker"):
        breaker = parse_circuit_breaker(r, r.mapping(section.get("circuit-breaker")))
    with r.at("renewal"):
        renewal = parse_renewal(r, r.mapping(section.get("renewal")))
    with r.at("sync"):
        sync = parse_sync(r, r.mapping(section.get("sync")))
    with r.at("background-collects"):
        budget = parse_collect_budget(r, r.mapping(section.get("background-collects")))
    pkcs12_encryption = r.text(section, "pkcs12-encryption", default="modern")
    if pkcs12_encryption not in ("modern", "legacy"):
        r.problem(f"{pkcs12_encryption!r} must be modern (AES-256, SHA-256) or legacy (3DES, SHA-1)",
                  "pkcs12-encryption")
    return GatewaySettings(
        request_timeout=r.convert(section, "request-timeout", positive_duration, defaults.request_timeout),
        connect_timeout=r.convert(section, "connect-timeout", positive_duration, defaults.connect_timeout),
        max_concurrent_requests=r.convert(section, "max-concurrent-requests", lambda t: parse_int(t, low=1, high=1000),
                                          defaults.max_concurrent_requests),
        give_up_after=r.convert(section, "give-up-after", positive_duration, defaults.give_up_after),
        profile_cache_ttl=r.convert(section, "profile-cache-ttl", parse_duration, defaults.profile_cache_ttl),
        profile_sync=r.convert(section, "profile-sync", parse_bool, defaults.profile_sync),
        default_term=r.convert(section, "default-term", lambda t: parse_int(t, low=1, high=3650), None),
        subject_revoke_limit=r.convert(section, "subject-revoke-limit", lambda t: parse_int(t, low=1),
                                       defaults.subject_revoke_limit),
        max_pending_orders=r.convert(section, "max-pending-orders", lambda t: parse_int(t, low=1),
                                     defaults.max_pending_orders),
        retry_attempts=r.convert(section, "retry-attempts", lambda t: parse_int(t, low=1, high=20),
                                 defaults.retry_attempts),
        retry_base_delay=r.convert(section, "retry-base-delay", parse_duration, defaults.retry_base_delay),
        profile_options=options,
        circuit_breaker=breaker,
        renewal=renewal,
        sync=sync,
        background_collects=budget,
        server_side_keys=r.convert(section, "server-side-keys", parse_bool, defaults.server_side_keys),
        server_side_key_retention=r.convert(section, "server-side-key-retention", positive_duration,
                                            defaults.server_side_key_retention),
        pkcs12_encryption="legacy" if pkcs12_encryption == "legacy" else "modern",
        validity_rounding=r.convert(section, "validity-rounding", _rounding, defaults.validity_rounding),
        ca_certificates=_ca_certificates(r, section),
    )


def _rounding(text: str) -> Literal["exact", "up"]:
    lowered = text.strip().lower()
    if lowered == "exact":
        return "exact"
    if lowered == "up":
        return "up"
    raise ValueError(f"{text!r} is not one of {', '.join(VALIDITY_ROUNDINGS)}")


def _ca_certificates(r: Reader, section: Mapping[str, Any]) -> tuple[bytes, ...]:
    """The PEM file ``ca-certificates`` names, as DER certificates (issuing CA first)."""
    path = r.path(section, "ca-certificates")
    if path is None:
        return ()
    try:
        ders = der_from_pem_bundle(path.read_text(encoding="utf-8"))
        for der in ders:
            crypto_x509.load_der_x509_certificate(der)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        r.problem(f"{path}: not a readable PEM file of certificates ({exc})", "ca-certificates")
        return ()
    if not ders:
        r.problem(f"{path}: holds no CERTIFICATE block", "ca-certificates")
    return tuple(ders)


def _plugin(r: Reader, entry: Mapping[str, Any]) -> ConnectorPlugin | None:
    """The CA's connector plug-in. Without a ``connector`` key, the one installed connector package
    is meant (the common case of a single-CA-vendor gateway); with several installed, it must be named."""
    connector = r.text(entry, "connector")
    if connector is None:
        installed = installed_connectors()
        if len(installed) != 1:
            r.problem(f"is required: {len(installed)} connectors are installed ({', '.join(installed) or 'none'})",
                      "connector")
            return None
        connector = installed[0]
    plugin = find_connector(connector)
    if plugin is None:
        r.problem(f"unknown connector {connector!r} (supported: {', '.join(known_connectors())})", "connector")
    return plugin


def _managed_ca(r: Reader, entry: Mapping[str, Any]) -> CASettings | None:
    """The generic part of a CA entry here; its ``properties`` go to the connector's plug-in."""
    r.reject_unknown(entry, _CA_KEYS)
    ca_id = r.text(entry, "id", required=True)
    if ca_id and not _CA_ID.match(ca_id):
        r.problem(f"{ca_id!r} must be 1-64 characters of letters, digits, '.', '_', '~' or '-'", "id")
    plugin = _plugin(r, entry)
    props = r.mapping(entry.get("properties"), "properties")
    if "properties" not in entry:
        r.problem("is required", "properties")
    parsed = None
    if plugin is not None:
        with r.at("properties"):
            parsed = plugin.parse_properties(r, props)
    profiles = _profiles(r, entry.get("profiles"))
    with r.at("gateway"):
        gateway = _gateway(r, r.mapping(entry.get("gateway")))
    if parsed is not None and parsed.backoff.back_off_timer < 1:
        log.warning("CA %s: the back-off timer %.3gs is below one second, so each wait (timer ^ attempt) is "
                    "shorter than the one before it", ca_id, parsed.backoff.back_off_timer)
    if ca_id is None or plugin is None or parsed is None:
        return None
    return CASettings(id=ca_id, name=r.text(entry, "name") or ca_id, connector=plugin.type_name,
                      properties=parsed.settings, profiles=profiles, gateway=gateway, backoff=parsed.backoff)


def _managed_cas(r: Reader, raw_cas: Any) -> list[CASettings]:
    cas: list[CASettings] = []
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
    return cas


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


def _admin(r: Reader, section: Mapping[str, Any]) -> ListenSettings:
    """The operator's listener: loopback only, since every caller that reaches it may change any order."""
    r.reject_unknown(section, {"listen"})
    listen = _listen(r, section, "127.0.0.1:50052")
    if listen.host.lower() not in _LOOPBACK:
        r.problem(f"{listen.host!r} is not a loopback address: the admin service lets whoever reaches it list, "
                  "retry and abandon any order, so it listens on 127.0.0.1, ::1 or localhost only", "listen")
    return listen


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
        r.reject_unknown(grpc_section, {"listen", "tls", "insecure", "limits"})
        grpc_listen = dataclasses.replace(_listen(r, grpc_section, "127.0.0.1:50051"),
                                          grpc_limits=parse_grpc_limits(r, grpc_section))
    with r.at("rest"):
        rest_section = r.mapping(top.get("rest"))
        r.reject_unknown(rest_section, {"listen", "tls", "insecure", "context-path", "max-body-size",
                                        "enrollment-status", "limits"})
        rest_listen = dataclasses.replace(_listen(r, rest_section, "127.0.0.1:8444"),
                                          http_limits=parse_http_limits(r, rest_section))
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
        r.reject_unknown(ops_section, {"listen", "limits"})
        ops = dataclasses.replace(_listen(r, ops_section, "127.0.0.1:9464"),
                                  http_limits=parse_http_limits(r, ops_section, default_connections=100))
    with r.at("streams"):
        streams = parse_stream_limits(r, r.mapping(top.get("streams")))
    with r.at("lookups"):
        lookups = parse_lookup_limits(r, r.mapping(top.get("lookups")))
    with r.at("admin"):
        admin = _admin(r, r.mapping(top.get("admin")))
    with r.at("ledger"):
        ledger = _ledger(r, r.mapping(top.get("ledger")))
    shutdown_grace = r.convert(top, "shutdown-grace", parse_duration, 10.0)
    with r.at("log"):
        log_settings = parse_log(r, r.mapping(top.get("log")))
    with r.at("tracing"):
        tracing = parse_tracing(r, r.mapping(top.get("tracing")))
    cas = _managed_cas(r, top.get("managed-cas"))
    with r.at("webhooks"):
        webhooks = parse_webhooks(r, top.get("webhooks"), [ca.id for ca in cas])
    raw_cas = top.get("managed-cas")
    known = {str(e["id"]) for e in raw_cas if isinstance(e, dict) and e.get("id") is not None} \
        if isinstance(raw_cas, list) else set()
    clients = parse_clients(r, top.get("clients"), known_cas=known)
    _check_api_listeners(r, {"grpc": grpc_listen, "rest": rest_listen}, clients)
    if r.problems:
        raise ConfigError.collect(r.problems)
    return Config(grpc=grpc_listen, rest=rest, ops=ops, admin=admin, ledger=ledger, managed_cas=tuple(cas),
                  shutdown_grace=shutdown_grace, source=source, log=log_settings, tracing=tracing,
                  webhooks=webhooks, clients=clients, streams=streams, lookups=lookups)


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
