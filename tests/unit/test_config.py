"""service.config: every configuration error names its exact YAML path; the OK side parses to typed settings.

The failure table builds a valid document, breaks one thing, and asserts the exact problem text
(``managed-cas[0] (id sectigo-ov).properties.org-id: ...``). Key stores are the keytool-made
fixtures when they exist; the loader only checks that a file is there and readable, so nothing here
depends on their content.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.config import (
    Config,
    ProfileOptions,
    Secret,
    StaticProfile,
    load_config,
    parse_config,
    parse_duration,
)
from service.connectors.sectigo.settings import DEFAULT_TOKEN_URL, ApiKeyAuth, KeyStoreAuth, PasswordAuth
from service.errors import ConfigError

PROJECT = Path(__file__).resolve().parents[2]
FIXTURES = PROJECT / "tests" / "fixtures" / "keystores"

CA = "managed-cas[0] (id sectigo-ov)"
P = f"{CA}.properties"

# Distinctive secret values: none of them may ever show in a message or a repr.
LOGIN_PASSWORD = "Login-S3cret-7f1d"
TRUST_PASSWORD = "Trust-S3cret-92ab"
KEY_STORE_PASSWORD = "KeyStore-S3cret-4c0e"
PROXY_PASSWORD = "Proxy-S3cret-e55a"
API_SECRET = "ApiClient-S3cret-0b3f"
FILE_SECRET = "FileContent-S3cret-a6d2"
SECRETS = (LOGIN_PASSWORD, TRUST_PASSWORD, KEY_STORE_PASSWORD, PROXY_PASSWORD, API_SECRET, FILE_SECRET)

AUTH_MODES = ("exactly one authentication mode is needed: login-password (password), client-cert-key-store "
              "(key store) or api-client-id (API key); found ")
ALLOWED_TOP = ("admin, clients, grpc, ledger, log, lookups, managed-cas, ops, rest, shutdown-grace, streams, "
               "tracing, webhooks")
ALLOWED_CA = "connector, gateway, id, name, profiles, properties"
ALLOWED_PROPERTIES = (
    "api-client-id, api-client-secret, api-token-url, client-cert-key-alias, client-cert-key-store, "
    "client-cert-key-store-password, client-cert-key-store-type, customer-uri, enroll-back-off-timer, "
    "enroll-max-attempts, enroll-max-back-off-timer, login, login-password, org-id, proxy-host-name, proxy-password, "
    "proxy-port, proxy-username, ssl-trust-store, ssl-trust-store-password, ssl-trust-store-type, "
    "ssl-truststore-type, url"
)
ALLOWED_GATEWAY = ("background-collects, ca-certificates, circuit-breaker, connect-timeout, default-term, give-up-after, "
                   "max-concurrent-requests, max-pending-orders, pkcs12-encryption, profile-cache-ttl, profile-options, profile-sync, "
                   "renewal, request-timeout, retry-attempts, retry-base-delay, server-side-key-retention, "
                   "server-side-keys, subject-revoke-limit, sync, validity-rounding")
ALLOWED_PROFILE = "cert-type, description, id, name, term"
ALLOWED_TLS = "cert, client-ca, key"
ADMIN_CLIENT = {"name": "admins", "match": {"subject": "CN=admin"}, "admin": "true"}
ALLOWED_REST = "context-path, enrollment-status, insecure, limits, listen, max-body-size, tls"


# ---------------------------------------------------------------- fixtures and builders


@dataclass(frozen=True)
class Ctx:
    tmp: Path
    trust_store: Path
    key_store: Path
    tls_cert: Path
    tls_key: Path


def _store(tmp: Path, name: str) -> Path:
    """The keytool fixture if present, else a placeholder (config.py only checks the file is readable)."""
    fixture = FIXTURES / name
    if fixture.is_file():
        return fixture
    placeholder = tmp / "placeholders" / name
    placeholder.parent.mkdir(exist_ok=True)
    placeholder.write_bytes(b"placeholder")
    return placeholder


@pytest.fixture
def ctx(tmp_path: Path) -> Ctx:
    tls_cert = tmp_path / "server.pem"
    tls_key = tmp_path / "server-key.pem"
    tls_cert.write_text("cert")
    tls_key.write_text("key")
    return Ctx(tmp=tmp_path, trust_store=_store(tmp_path, "truststore.jks"), key_store=_store(tmp_path, "client.p12"),
               tls_cert=tls_cert, tls_key=tls_key)


def base_document(c: Ctx) -> dict[str, Any]:
    """A valid password-mode document, as the string-only YAML loader would hand it over."""
    return {
        "managed-cas": [{
            "id": "sectigo-ov",
            "name": "Sectigo OV",
            "connector": "sectigo",
            "properties": {
                "url": "https://cert-manager.example.com/api",
                "customer-uri": "acme",
                "org-id": "12345",
                "login": "api-user",
                "login-password": LOGIN_PASSWORD,
                "ssl-trust-store": str(c.trust_store),
                "ssl-trust-store-password": TRUST_PASSWORD,
                "ssl-truststore-type": "JKS",
            },
        }],
    }


def parse(document: Any, c: Ctx, environ: dict[str, str] | None = None) -> Config:
    return parse_config(document, base_dir=c.tmp, environ={} if environ is None else environ)


Mutation = Callable[[dict[str, Any], Ctx], None]


def _value(value: Any, c: Ctx) -> Any:
    """Resolve ``lambda ctx: ...`` placeholders, also inside nested mappings and lists."""
    if callable(value):
        return value(c)
    if isinstance(value, dict):
        return {k: _value(v, c) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v, c) for v in value]
    return value


def props(set_: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> Mutation:
    """Set (values may be ``lambda ctx: ...``) and drop keys of the first CA's properties."""
    def mutate(doc: dict[str, Any], c: Ctx) -> None:
        target = doc["managed-cas"][0]["properties"]
        for key in drop:
            target.pop(key, None)
        for key, value in (set_ or {}).items():
            target[key] = _value(value, c)
    return mutate


def ca(set_: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> Mutation:
    def mutate(doc: dict[str, Any], c: Ctx) -> None:
        target = doc["managed-cas"][0]
        for key in drop:
            target.pop(key, None)
        for key, value in (set_ or {}).items():
            target[key] = _value(value, c)
    return mutate


def top(set_: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> Mutation:
    def mutate(doc: dict[str, Any], c: Ctx) -> None:
        for key in drop:
            doc.pop(key, None)
        for key, value in (set_ or {}).items():
            doc[key] = _value(value, c)
    return mutate


def chain(*mutations: Mutation) -> Mutation:
    def mutate(doc: dict[str, Any], c: Ctx) -> None:
        for m in mutations:
            m(doc, c)
    return mutate


KEY_STORE_MODE = props(
    drop=("login-password",),
    set_={"client-cert-key-store": lambda c: str(c.key_store), "client-cert-key-alias": "client",
          "client-cert-key-store-password": KEY_STORE_PASSWORD, "client-cert-key-store-type": "PKCS12"},
)
API_KEY_MODE = props(drop=("login", "login-password"),
                     set_={"api-client-id": "gateway-client", "api-client-secret": API_SECRET})
PROXY = props(set_={"proxy-host-name": "proxy.corp.example", "proxy-port": "3128",
                    "proxy-username": "gw", "proxy-password": PROXY_PASSWORD})


def _second_ca(doc: dict[str, Any], c: Ctx) -> None:
    doc["managed-cas"].append(copy.deepcopy(doc["managed-cas"][0]))


def _secret_file(content: bytes, name: str = "secret.txt") -> Callable[[Ctx], str]:
    def make(c: Ctx) -> str:
        (c.tmp / name).write_bytes(content)
        return f"file:{name}"
    return make


def _dir(name: str) -> Callable[[Ctx], str]:
    def make(c: Ctx) -> str:
        (c.tmp / name).mkdir(exist_ok=True)
        return str(c.tmp / name)
    return make


# ---------------------------------------------------------------- the failure table


@dataclass(frozen=True)
class Fail:
    mutate: Mutation
    expected: tuple[str, ...]  # "{tmp}" stands for the test's tmp_path
    exact: bool = True  # the problems are exactly these (else: at least these)


def fail(mutate: Mutation, *expected: str, exact: bool = True) -> Fail:
    return Fail(mutate, expected, exact)


FAILURES: dict[str, Fail] = {
    # --- missing mandatory keys
    "fail-missing-url": fail(props(drop=("url",)), f"{P}.url: is required"),
    "fail-empty-url": fail(props({"url": None}), f"{P}.url: is required"),
    "fail-blank-url": fail(props({"url": "  "}), f"{P}.url: must not be empty"),
    "fail-missing-customer-uri": fail(props(drop=("customer-uri",)), f"{P}.customer-uri: is required"),
    "fail-missing-org-id": fail(props(drop=("org-id",)), f"{P}.org-id: is required"),
    "fail-empty-org-id": fail(props({"org-id": None}), f"{P}.org-id: is required"),
    "fail-missing-trust-store-for-https": fail(props(drop=("ssl-trust-store",)), f"{P}.ssl-trust-store: is required"),
    "fail-missing-trust-store-for-uppercase-https": fail(
        props({"url": "HTTPS://cert-manager.example.com/api"}, drop=("ssl-trust-store",)),
        f"{P}.ssl-trust-store: is required"),
    "fail-password-mode-missing-login": fail(props(drop=("login",)), f"{P}.login: is required"),
    "fail-key-store-mode-missing-login": fail(chain(KEY_STORE_MODE, props(drop=("login",))), f"{P}.login: is required"),
    "fail-key-store-mode-missing-alias": fail(chain(KEY_STORE_MODE, props(drop=("client-cert-key-alias",))),
                                              f"{P}.client-cert-key-alias: is required"),
    "fail-key-store-mode-missing-password": fail(
        chain(KEY_STORE_MODE, props(drop=("client-cert-key-store-password",))),
        f"{P}.client-cert-key-store-password: is required"),
    "fail-key-store-mode-missing-type": fail(chain(KEY_STORE_MODE, props(drop=("client-cert-key-store-type",))),
                                             f"{P}.client-cert-key-store-type: is required"),
    "fail-api-key-mode-missing-secret": fail(chain(API_KEY_MODE, props(drop=("api-client-secret",))),
                                             f"{P}.api-client-secret: is required"),
    "fail-missing-properties": fail(ca(drop=("properties",)), f"{CA}.properties: is required", exact=False),
    "fail-missing-ca-id": fail(ca(drop=("id",)), "managed-cas[0].id: is required"),
    "fail-missing-profile-cert-type": fail(ca({"profiles": [{"id": "ov"}]}),
                                           f"{CA}.profiles[0].cert-type: is required"),
    "fail-missing-profile-id": fail(ca({"profiles": [{"cert-type": "101"}]}), f"{CA}.profiles[0].id: is required"),
    "fail-missing-tls-key": fail(top({"grpc": {"tls": {"cert": lambda c: str(c.tls_cert)}}}), "grpc.tls.key: is required"),
    "fail-missing-managed-cas": fail(top(drop=("managed-cas",)), "managed-cas: is required: list at least one CA"),
    "fail-empty-managed-cas": fail(top({"managed-cas": []}), "managed-cas: is empty: list at least one CA"),
    # --- unknown keys, at every level
    "fail-unknown-top-level-key": fail(top({"colour": "red"}), f"colour: unknown key (allowed: {ALLOWED_TOP})"),
    "fail-unknown-ca-key": fail(ca({"description": "x"}), f"{CA}.description: unknown key (allowed: {ALLOWED_CA})"),
    "fail-unknown-property": fail(props({"ssl-trust-store-passwd": "x"}),
                                  f"{P}.ssl-trust-store-passwd: unknown key (allowed: {ALLOWED_PROPERTIES})"),
    "fail-gateway-key-in-properties": fail(props({"request-timeout": "5s"}),
                                           f"{P}.request-timeout: unknown key (allowed: {ALLOWED_PROPERTIES})"),
    "fail-budget-rate-not-a-rate": fail(ca({"gateway": {"background-collects": {"rate": "ten"}}}),
                                        f"{CA}.gateway.background-collects.rate: 'ten' is not a rate: write calls "
                                        "per second, minute or hour (10/s, 300/min, 5000/h)"),
    "fail-budget-burst-zero": fail(ca({"gateway": {"background-collects": {"burst": 0}}}),
                                   f"{CA}.gateway.background-collects.burst: 0 is below the minimum 1"),
    "fail-budget-unknown-key": fail(ca({"gateway": {"background-collects": {"per-second": 5}}}),
                                    f"{CA}.gateway.background-collects.per-second: unknown key (allowed: burst, listing, rate, verify-after)"),
    "fail-unknown-gateway-key": fail(ca({"gateway": {"timeout": "5s"}}),
                                     f"{CA}.gateway.timeout: unknown key (allowed: {ALLOWED_GATEWAY})"),
    "fail-unknown-profile-options-key": fail(
        ca({"gateway": {"profile-options": {"ov": {"requester": "x"}}}}),
        f"{CA}.gateway.profile-options.ov.requester: unknown key (allowed: custom-fields, external-requester)"),
    "fail-unknown-profile-key": fail(ca({"profiles": [{"id": "ov", "cert-type": "101", "kind": "x"}]}),
                                     f"{CA}.profiles[0].kind: unknown key (allowed: {ALLOWED_PROFILE})"),
    "fail-unknown-tls-key": fail(
        top({"grpc": {"tls": {"cert": lambda c: str(c.tls_cert), "key": lambda c: str(c.tls_key), "ca": "x"}}}),
        f"grpc.tls.ca: unknown key (allowed: {ALLOWED_TLS})"),
    "fail-unknown-grpc-key": fail(top({"grpc": {"port": "50051"}}),
                                  "grpc.port: unknown key (allowed: insecure, limits, listen, tls)"),
    "fail-unknown-rest-key": fail(top({"rest": {"base-path": "/x"}}),
                                  f"rest.base-path: unknown key (allowed: {ALLOWED_REST})"),
    "fail-unknown-ops-key": fail(top({"ops": {"tls": {}}}), "ops.tls: unknown key (allowed: limits, listen)"),
    "fail-unknown-ledger-key": fail(top({"ledger": {"file": "x"}}), "ledger.file: unknown key (allowed: path, url)"),
    # --- wrong types
    "fail-managed-cas-not-a-list": fail(top({"managed-cas": {"id": "x"}}), "managed-cas: must be a list, found a mapping"),
    "fail-ca-entry-not-a-mapping": fail(top({"managed-cas": ["sectigo-ov"]}),
                                        "managed-cas[0]: must be a mapping, found a single value", exact=False),
    "fail-properties-not-a-mapping": fail(ca({"properties": ["url"]}),
                                          f"{P}: must be a mapping, found a list", exact=False),
    "fail-grpc-not-a-mapping": fail(top({"grpc": ["127.0.0.1:1"]}), "grpc: must be a mapping, found a list"),
    "fail-tls-not-a-mapping": fail(top({"rest": {"tls": "on"}}), "rest.tls: must be a mapping, found a single value"),
    "fail-profiles-not-a-list": fail(ca({"profiles": {"id": "ov"}}), f"{CA}.profiles: must be a list, found a mapping"),
    "fail-gateway-not-a-mapping": fail(ca({"gateway": ["x"]}), f"{CA}.gateway: must be a mapping, found a list"),
    "fail-custom-fields-not-a-mapping": fail(
        ca({"gateway": {"profile-options": {"ov": {"custom-fields": ["a"]}}}}),
        f"{CA}.gateway.profile-options.ov.custom-fields: must be a mapping, found a list"),
    "fail-url-is-a-mapping": fail(props({"url": {"host": "x"}}), f"{P}.url: must be a single value, found a mapping"),
    "fail-login-is-a-list": fail(props({"login": ["a", "b"]}), f"{P}.login: must be a single value, found a list"),
    "fail-url-not-http": fail(props({"url": "ftp://cert-manager.example.com"}),
                              f"{P}.url: 'ftp://cert-manager.example.com' is not an http(s) URL"),
    "fail-url-malformed-ipv6": fail(props({"url": "https://[::1/api"}), f"{P}.url: 'https://[::1/api' is not an http(s) URL"),
    "fail-org-id-not-integer": fail(props({"org-id": "12a"}), f"{P}.org-id: '12a' is not a whole number"),
    "fail-org-id-decimal": fail(props({"org-id": "12.5"}), f"{P}.org-id: '12.5' is not a whole number"),
    "fail-org-id-zero": fail(props({"org-id": "0"}), f"{P}.org-id: 0 is below the minimum 1"),
    "fail-bad-duration": fail(props({"enroll-back-off-timer": "soon"}),
                              f"{P}.enroll-back-off-timer: 'soon' is not a duration "
                              "(examples: 2, 2s, 2 sec, 500ms, 1.5s, 5m)"),
    "fail-negative-duration": fail(props({"enroll-max-back-off-timer": "-1s"}),
                                   f"{P}.enroll-max-back-off-timer: '-1s' is not a duration "
                                   "(examples: 2, 2s, 2 sec, 500ms, 1.5s, 5m)"),
    "fail-zero-duration": fail(props({"enroll-back-off-timer": "0s"}),
                               f"{P}.enroll-back-off-timer: '0s' must be longer than zero"),
    "fail-max-attempts-zero": fail(props({"enroll-max-attempts": "0"}), f"{P}.enroll-max-attempts: 0 is below the minimum 1"),
    "fail-max-attempts-words": fail(props({"enroll-max-attempts": "five"}),
                                    f"{P}.enroll-max-attempts: 'five' is not a whole number"),
    "fail-bad-boolean": fail(ca({"gateway": {"profile-sync": "maybe"}}),
                             f"{CA}.gateway.profile-sync: 'maybe' is not a boolean (true or false)"),
    "fail-bad-gateway-duration": fail(ca({"gateway": {"request-timeout": "30 parsecs"}}),
                                      f"{CA}.gateway.request-timeout: '30 parsecs' is not a duration "
                                      "(examples: 2, 2s, 2 sec, 500ms, 1.5s, 5m)"),
    "fail-bad-server-side-keys": fail(ca({"gateway": {"server-side-keys": "sometimes"}}),
                                      f"{CA}.gateway.server-side-keys: 'sometimes' is not a boolean (true or false)"),
    "fail-zero-key-retention": fail(ca({"gateway": {"server-side-key-retention": "0s"}}),
                                    f"{CA}.gateway.server-side-key-retention: '0s' must be longer than zero"),
    "fail-pkcs12-encryption": fail(ca({"gateway": {"pkcs12-encryption": "rc2"}}),
                                   f"{CA}.gateway.pkcs12-encryption: 'rc2' must be modern (AES-256, SHA-256) or "
                                   "legacy (3DES, SHA-1)"),
    "fail-bad-concurrency": fail(ca({"gateway": {"max-concurrent-requests": "0"}}),
                                 f"{CA}.gateway.max-concurrent-requests: 0 is below the minimum 1"),
    "fail-bad-default-term": fail(ca({"gateway": {"default-term": "4000"}}),
                                  f"{CA}.gateway.default-term: 4000 is above the maximum 3650"),
    "fail-bad-validity-rounding": fail(ca({"gateway": {"validity-rounding": "nearest"}}),
                                       f"{CA}.gateway.validity-rounding: 'nearest' is not one of exact, up"),
    "fail-bad-profile-term": fail(ca({"profiles": [{"id": "ov", "cert-type": "101", "term": "1y"}]}),
                                  f"{CA}.profiles[0].term: '1y' is not a whole number"),
    "fail-listen-port-too-high": fail(top({"grpc": {"listen": "127.0.0.1:70000"}}), "grpc.listen: port 70000 is above 65535"),
    "fail-listen-no-port": fail(top({"rest": {"listen": "localhost"}}), "rest.listen: 'localhost' is not HOST:PORT"),
    "fail-listen-bad-port": fail(top({"ops": {"listen": "127.0.0.1:http"}}), "ops.listen: '127.0.0.1:http' is not HOST:PORT"),
    "fail-listen-ipv6-unbracketed": fail(top({"grpc": {"listen": "::1:50051"}}), "grpc.listen: '::1:50051' is not HOST:PORT"),
    "fail-proxy-port-zero": fail(chain(PROXY, props({"proxy-port": "0"})), f"{P}.proxy-port: 0 is below the minimum 1"),
    "fail-proxy-port-too-high": fail(chain(PROXY, props({"proxy-port": "65536"})),
                                     f"{P}.proxy-port: 65536 is above the maximum 65535"),
    "fail-bad-trust-store-type": fail(props({"ssl-truststore-type": "JCEKS"}),
                                      f"{P}.ssl-truststore-type: 'JCEKS' is not a supported store type "
                                      "(JKS or PKCS12 or PEM)"),
    "fail-bad-key-store-type": fail(chain(KEY_STORE_MODE, props({"client-cert-key-store-type": "PEM"})),
                                    f"{P}.client-cert-key-store-type: 'PEM' is not a supported store type (JKS or PKCS12)"),
    "fail-bad-enrollment-status": fail(top({"rest": {"enrollment-status": "fast"}}),
                                       "rest.enrollment-status: 'fast' must be documented (200/202/404) or standard "
                                       "(grpc-gateway table)"),
    "fail-bad-context-path": fail(top({"rest": {"context-path": "/ca gw"}}),
                                  "rest.context-path: '/ca gw' is not a valid context path"),
    "fail-bad-max-body-size": fail(top({"rest": {"max-body-size": "big"}}),
                                   "rest.max-body-size: 'big' is not a size (examples: 1048576, 512KiB, 1MiB)"),
    "fail-bad-shutdown-grace": fail(top({"shutdown-grace": "later"}),
                                    "shutdown-grace: 'later' is not a duration (examples: 2, 2s, 2 sec, 500ms, 1.5s, 5m)"),
    "fail-bad-ca-id": fail(ca({"id": "sectigo ov"}),
                           "managed-cas[0] (id sectigo ov).id: 'sectigo ov' must be 1-64 characters of letters, digits, "
                           "'.', '_', '~' or '-'"),
    "fail-unknown-connector": fail(ca({"connector": "entrust"}),
                                   f"{CA}.connector: unknown connector 'entrust' (supported: sectigo)"),
    "fail-bad-api-token-url": fail(chain(API_KEY_MODE, props({"api-token-url": "auth.example.com/token"})),
                                   f"{P}.api-token-url: 'auth.example.com/token' is not an http(s) URL"),
    # --- unreadable files
    "fail-trust-store-missing": fail(props({"ssl-trust-store": "stores/nope.jks"}),
                                     f"{P}.ssl-trust-store: file {{tmp}}/stores/nope.jks does not exist"),
    "fail-trust-store-is-a-directory": fail(props({"ssl-trust-store": _dir("stores")}),
                                            f"{P}.ssl-trust-store: file {{tmp}}/stores is not a readable file"),
    "fail-key-store-missing": fail(chain(KEY_STORE_MODE, props({"client-cert-key-store": "client-missing.p12"})),
                                   f"{P}.client-cert-key-store: file {{tmp}}/client-missing.p12 does not exist"),
    "fail-tls-cert-missing": fail(top({"rest": {"tls": {"cert": "missing.pem", "key": lambda c: str(c.tls_key)}}}),
                                  "rest.tls.cert: file {tmp}/missing.pem does not exist"),
    "fail-tls-client-ca-is-a-directory": fail(
        top({"grpc": {"tls": {"cert": lambda c: str(c.tls_cert), "key": lambda c: str(c.tls_key),
                              "client-ca": _dir("cas")}}, "clients": [ADMIN_CLIENT]}),
        "grpc.tls.client-ca: file {tmp}/cas is not a readable file"),
    # --- authentication modes: exactly one
    "fail-no-auth-mode": fail(props(drop=("login-password",)), f"{P}: {AUTH_MODES}none"),
    "fail-password-and-key-store": fail(
        props({"client-cert-key-store": lambda c: str(c.key_store), "client-cert-key-alias": "client",
               "client-cert-key-store-password": KEY_STORE_PASSWORD, "client-cert-key-store-type": "PKCS12"}),
        f"{P}: {AUTH_MODES}password and key-store"),
    "fail-password-and-api-key": fail(props({"api-client-id": "gw", "api-client-secret": API_SECRET}),
                                      f"{P}: {AUTH_MODES}password and api-key"),
    "fail-key-store-and-api-key": fail(chain(KEY_STORE_MODE, props({"api-client-id": "gw"})),
                                       f"{P}: {AUTH_MODES}key-store and api-key"),
    "fail-all-three-auth-modes": fail(chain(KEY_STORE_MODE, props({"login-password": LOGIN_PASSWORD,
                                                                   "api-client-id": "gw"})),
                                      f"{P}: {AUTH_MODES}password and key-store and api-key"),
    "fail-key-store-key-in-password-mode": fail(props({"client-cert-key-alias": "client"}),
                                                f"{P}.client-cert-key-alias: belongs to the key-store mode, "
                                                "not the password mode"),
    "fail-login-in-api-key-mode": fail(chain(API_KEY_MODE, props({"login": "api-user"})),
                                       f"{P}.login: is not used in the API-key mode"),
    # --- proxy half-configured
    "fail-proxy-username-without-password": fail(chain(PROXY, props(drop=("proxy-password",))),
                                                 f"{P}.proxy-password: proxy-username and proxy-password go together"),
    "fail-proxy-password-without-username": fail(chain(PROXY, props(drop=("proxy-username",))),
                                                 f"{P}.proxy-username: proxy-username and proxy-password go together"),
    "fail-proxy-host-without-port": fail(chain(PROXY, props(drop=("proxy-port",))),
                                         f"{P}.proxy-port: is required with proxy-host-name"),
    "fail-proxy-empty-port": fail(chain(PROXY, props({"proxy-port": None})),
                                  f"{P}.proxy-port: is required with proxy-host-name"),
    "fail-proxy-port-without-host": fail(chain(PROXY, props(drop=("proxy-host-name",))),
                                         f"{P}.proxy-host-name: is required"),
    # --- duplicates
    "fail-duplicate-ca-id": fail(_second_ca, "managed-cas[1] (id sectigo-ov): duplicate CA id 'sectigo-ov'"),
    "fail-duplicate-profile-id": fail(ca({"profiles": [{"id": "ov", "cert-type": "101"},
                                                       {"id": "ov", "cert-type": "102"}]}),
                                      f"{CA}.profiles[1].id: duplicate profile id 'ov'"),
    # --- secrets and environment
    "fail-env-unset": fail(props({"login-password": "${CAGW_TEST_UNSET}"}),
                           f"{P}.login-password: environment variable CAGW_TEST_UNSET is not set"),
    "fail-env-unset-in-plain-key": fail(props({"customer-uri": "${CAGW_CUSTOMER}"}),
                                        f"{P}.customer-uri: environment variable CAGW_CUSTOMER is not set"),
    "fail-file-secret-missing": fail(props({"login-password": "file:secrets/missing.txt"}),
                                     f"{P}.login-password: cannot read the secret file {{tmp}}/secrets/missing.txt: "
                                     "No such file or directory"),
    "fail-file-secret-is-a-directory": fail(props({"ssl-trust-store-password": lambda c: "file:" + _dir("secrets")(c)}),
                                            f"{P}.ssl-trust-store-password: cannot read the secret file "
                                            "{tmp}/secrets: Is a directory"),
    "fail-file-secret-not-text": fail(props({"login-password": _secret_file(b"\xff\xfe" + FILE_SECRET.encode())}),
                                      f"{P}.login-password: cannot read the secret file {{tmp}}/secret.txt: "
                                      "not a UTF-8 text file"),
    # --- refused and conflicting sections
    "fail-clients-section": fail(top({"clients": [{"name": "app", "match": {"subject": "CN=app"}, "admin": "true",
                                                        "allow": ["enroll"]}]}),
                                 "clients[0] (name app).allow: unknown key (allowed: admin, grants, limits, match, "
                                 "name)"),
    "fail-clients-section-empty-list": fail(top({"clients": []}),
                                            "clients: is empty: list at least one client, or leave the section out "
                                            "(loopback only)"),
    "fail-both-trust-store-type-spellings": fail(props({"ssl-trust-store-type": "JKS"}),
                                                 f"{P}.ssl-trust-store-type: give ssl-truststore-type or "
                                                 "ssl-trust-store-type, not both"),
}


@pytest.mark.parametrize("case", FAILURES.values(), ids=FAILURES.keys())
def test_configuration_errors_name_their_path(case: Fail, ctx: Ctx) -> None:
    document = base_document(ctx)
    case.mutate(document, ctx)
    with pytest.raises(ConfigError) as caught:
        parse(document, ctx)
    expected = [text.replace("{tmp}", str(ctx.tmp)) for text in case.expected]
    problems = caught.value.problems
    if case.exact:
        assert problems == expected
    else:
        assert set(expected) <= set(problems), problems
    for text in expected:
        assert text in caught.value.message
    assert caught.value.reason == "CONFIG_INVALID"
    assert not any(secret in caught.value.message for secret in SECRETS)


def test_every_problem_is_reported_at_once(ctx: Ctx) -> None:
    document = base_document(ctx)
    props({"org-id": "abc", "enroll-max-attempts": "many"}, drop=("customer-uri",))(document, ctx)
    top({"grpc": {"listen": "nowhere"}})(document, ctx)
    with pytest.raises(ConfigError) as caught:
        parse(document, ctx)
    assert caught.value.problems == [
        "grpc.listen: 'nowhere' is not HOST:PORT",
        f"{P}.customer-uri: is required",
        f"{P}.org-id: 'abc' is not a whole number",
        f"{P}.enroll-max-attempts: 'many' is not a whole number",
    ]
    assert caught.value.message.startswith("4 configuration problems:\n  grpc.listen: ")


@pytest.mark.parametrize("document, expected", [
    pytest.param(["a", "b"], "(top level): must be a mapping, found a list", id="fail-document-is-a-list"),
    pytest.param("managed-cas", "(top level): must be a mapping, found a single value", id="fail-document-is-a-scalar"),
    pytest.param(None, "managed-cas: is required: list at least one CA", id="fail-document-is-empty"),
])
def test_document_must_be_a_mapping(document: Any, expected: str, ctx: Ctx) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(document, ctx)
    assert caught.value.problems == [expected]


# ---------------------------------------------------------------- load_config: files and YAML


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def good_yaml(trust_store: Path | str, **extra: str) -> str:
    lines = "".join(f"      {k}: {v}\n" for k, v in extra.items())
    return textwrap.dedent(f"""\
        managed-cas:
          - id: sectigo-ov
            name: Sectigo OV
            connector: sectigo
            properties:
              url: https://cert-manager.example.com/api
              customer-uri: acme
              org-id: 12345
              login: api-user
              login-password: {LOGIN_PASSWORD}
              ssl-trust-store: {trust_store}
              ssl-trust-store-password: {TRUST_PASSWORD}
              ssl-truststore-type: JKS
        """) + lines


def test_fail_config_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.message == f"{path}: cannot read the configuration file: No such file or directory"


def test_fail_config_file_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ={})
    assert caught.value.message == f"{tmp_path}: cannot read the configuration file: Is a directory"


def test_fail_config_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "cagw.yaml"
    path.write_bytes(b"managed-cas: \xff\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.message == f"{path}: cannot read the configuration file: not UTF-8 text"


@pytest.mark.parametrize("text, where", [
    pytest.param("managed-cas:\n  - id: a\n    properties: [url\n", "line 4, column 1", id="fail-yaml-unclosed-flow"),
    pytest.param("grpc:\n  listen: 1\n listen: 2\n", "line 3, column 2", id="fail-yaml-bad-indentation"),
    pytest.param("a: b: c\n", "line 1, column 5", id="fail-yaml-mapping-in-scalar"),
    pytest.param("rest:\n\tlisten: 1\n", "line 2, column 1", id="fail-yaml-tab"),
])
def test_fail_invalid_yaml_gives_line_and_column(text: str, where: str, tmp_path: Path) -> None:
    path = tmp_path / "cagw.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.message.startswith(f"{path}: not valid YAML at {where}: ")


def test_fail_yaml_python_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "cagw.yaml", "grpc: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.message.startswith(f"{path}: not valid YAML at line 1, column 7: ")


def test_fail_yaml_document_is_a_list(tmp_path: Path) -> None:
    path = write(tmp_path / "cagw.yaml", "- id: sectigo-ov\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.problems == ["(top level): must be a mapping, found a list"]


def test_yaml_11_traps_stay_strings(ctx: Ctx) -> None:
    path = write(ctx.tmp / "cagw.yaml", good_yaml(ctx.trust_store).replace("customer-uri: acme", "customer-uri: no")
                 .replace("org-id: 12345", "org-id: 012345").replace("login: api-user", "login: 12:30:00")
                 .replace(f"login-password: {LOGIN_PASSWORD}", "login-password: 0x1F"))
    ca_ = load_config(path, environ={}).managed_cas[0]
    assert ca_.properties.org_id == 12345  # decimal, not octal 5349
    assert ca_.properties.customer_uri == "no"  # not False
    assert isinstance(ca_.properties.auth, PasswordAuth)
    assert ca_.properties.auth.login == "12:30:00"  # not 45000 (sexagesimal)
    assert ca_.properties.auth.password.reveal() == "0x1F"  # not 31


def test_yaml_booleans_and_numbers_convert_explicitly(ctx: Ctx) -> None:
    text = good_yaml(ctx.trust_store, **{"enroll-max-attempts": "007", "enroll-back-off-timer": "1.5"}) + (
        "    gateway:\n"
        "      profile-sync: no\n"
        "      default-term: 0365\n"
        "      profile-options:\n"
        "        ov:\n"
        "          custom-fields: {Department: 012, Approved: yes, Empty: }\n")
    config = load_config(write(ctx.tmp / "cagw.yaml", text), environ={})
    ca_ = config.managed_cas[0]
    assert ca_.properties.backoff.max_attempts == 7
    assert ca_.properties.backoff.back_off_timer == 1.5
    assert ca_.gateway.profile_sync is False
    assert ca_.gateway.default_term == 365
    assert ca_.gateway.profile_options["ov"].custom_fields == {"Department": "012", "Approved": "yes", "Empty": ""}


def test_quoted_and_unquoted_org_id_agree(ctx: Ctx) -> None:
    quoted = load_config(write(ctx.tmp / "a.yaml", good_yaml(ctx.trust_store).replace("12345", '"12345"')), environ={})
    plain = load_config(write(ctx.tmp / "b.yaml", good_yaml(ctx.trust_store)), environ={})
    assert quoted.managed_cas == plain.managed_cas


def test_relative_paths_resolve_against_the_config_folder(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = ctx.tmp / "etc" / "cagw"
    (folder / "stores").mkdir(parents=True)
    (folder / "stores" / "truststore.jks").write_bytes(ctx.trust_store.read_bytes())
    (folder / "stores" / "client.p12").write_bytes(ctx.key_store.read_bytes())
    (folder / "tls").mkdir()
    (folder / "tls" / "cert.pem").write_text("cert")
    (folder / "tls" / "key.pem").write_text("key")
    (folder / "secrets").mkdir()
    (folder / "secrets" / "keystore-password").write_text(FILE_SECRET + "\n")
    path = write(folder / "cagw.yaml", """
        grpc:
          tls: {cert: tls/cert.pem, key: tls/key.pem, client-ca: ../cagw/tls/cert.pem}
        clients:
          - {name: admins, match: {subject: "CN=admin"}, admin: true}
        ledger:
          path: data/ledger.db
        managed-cas:
          - id: sectigo-ov
            properties:
              url: https://cert-manager.example.com/api
              customer-uri: acme
              org-id: 12345
              login: api-user
              client-cert-key-store: stores/client.p12
              client-cert-key-alias: client
              client-cert-key-store-password: file:secrets/keystore-password
              client-cert-key-store-type: PKCS12
              ssl-trust-store: stores/truststore.jks
        """)
    other_cwd = ctx.tmp / "elsewhere"
    other_cwd.mkdir()
    monkeypatch.chdir(other_cwd)  # relative to the file, never to the working directory
    config = load_config(Path(os.path.relpath(path, other_cwd)), environ={})
    base = folder.resolve()
    props_ = config.managed_cas[0].properties
    assert props_.trust_store == base / "stores" / "truststore.jks"
    assert props_.trust_store_type == "JKS"  # guessed from the suffix when no type is given
    assert isinstance(props_.auth, KeyStoreAuth)
    assert props_.auth.key_store == base / "stores" / "client.p12"
    assert props_.auth.key_store_password.reveal() == FILE_SECRET  # trailing newline stripped
    assert config.ledger.path == base / "data" / "ledger.db"
    assert config.grpc.tls is not None
    assert config.grpc.tls.cert == base / "tls" / "cert.pem"
    assert config.grpc.tls.client_ca == base / ".." / "cagw" / "tls" / "cert.pem"


def test_relative_trust_store_missing_names_the_resolved_path(tmp_path: Path) -> None:
    path = write(tmp_path / "conf" / "cagw.yaml", good_yaml("stores/truststore.jks"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    resolved = (tmp_path / "conf").resolve() / "stores" / "truststore.jks"
    assert caught.value.problems == [f"{P}.ssl-trust-store: file {resolved} does not exist"]


def test_absolute_paths_stay_absolute(ctx: Ctx) -> None:
    config = load_config(write(ctx.tmp / "sub" / "cagw.yaml", good_yaml(ctx.trust_store)), environ={})
    assert config.managed_cas[0].properties.trust_store == ctx.trust_store
    assert config.source == ctx.tmp / "sub" / "cagw.yaml"


# ---------------------------------------------------------------- the OK side


def test_ok_defaults(ctx: Ctx) -> None:
    config = parse(base_document(ctx), ctx)
    assert (config.grpc.host, config.grpc.port, config.grpc.tls) == ("127.0.0.1", 50051, None)
    assert config.grpc.address == "127.0.0.1:50051"
    assert (config.rest.listen.host, config.rest.listen.port) == ("127.0.0.1", 8444)
    assert config.rest.context_path == "/cagw"
    assert config.rest.max_body_bytes == 1024 * 1024
    assert config.rest.enrollment_status == "documented"
    assert config.ops.address == "127.0.0.1:9464"
    assert config.ledger.path == ctx.tmp / "cagw-ledger.db"
    assert config.shutdown_grace == 10.0
    (ca_,) = config.managed_cas
    assert (ca_.id, ca_.name, ca_.connector, ca_.profiles) == ("sectigo-ov", "Sectigo OV", "sectigo", ())
    backoff = ca_.properties.backoff
    assert (backoff.back_off_timer, backoff.max_back_off_timer, backoff.max_attempts) == (2.0, 32.0, 5)
    assert ca_.properties.proxy is None
    assert ca_.properties.url == "https://cert-manager.example.com/api"
    assert ca_.properties.trust_store_password == Secret(TRUST_PASSWORD)
    gateway = ca_.gateway
    assert (gateway.request_timeout, gateway.connect_timeout, gateway.max_concurrent_requests) == (30.0, 10.0, 8)
    assert (gateway.give_up_after, gateway.profile_cache_ttl, gateway.profile_sync) == (7 * 86400.0, 300.0, True)
    assert (gateway.default_term, gateway.subject_revoke_limit, dict(gateway.profile_options)) == (None, 10, {})
    assert (gateway.server_side_keys, gateway.server_side_key_retention, gateway.pkcs12_encryption) == (
        True, 7 * 86400.0, "modern")
    assert config.ca("sectigo-ov") is ca_
    assert config.ca("other") is None


def test_ok_name_defaults_to_id_and_connector_to_sectigo(ctx: Ctx) -> None:
    document = base_document(ctx)
    ca(drop=("name", "connector"))(document, ctx)
    (ca_,) = parse(document, ctx).managed_cas
    assert (ca_.name, ca_.connector) == ("sectigo-ov", "sectigo")


@pytest.mark.parametrize("text, seconds", [
    ("2", 2.0), ("2s", 2.0), ("2 sec", 2.0), ("2 seconds", 2.0), ("500ms", 0.5), ("1.5s", 1.5), ("0.1s", 0.1), (".5s", 0.5),
    ("250ms", 0.25), ("5m", 300.0), ("1 min", 60.0), ("1h", 3600.0), ("7d", 7 * 86400.0), (" 3S ", 3.0), ("10MS", 0.01),
], ids=lambda v: f"ok-duration-{v}" if isinstance(v, str) else str(v))
def test_ok_durations(text: str, seconds: float, ctx: Ctx) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    document = base_document(ctx)
    props({"enroll-max-back-off-timer": text})(document, ctx)
    assert parse(document, ctx).managed_cas[0].properties.backoff.max_back_off_timer == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "2x", "-2s", "1e3s", "2 s s", "nan", "inf", "1,5s", "5 m 3 s"])
def test_fail_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_ok_key_store_mode(ctx: Ctx) -> None:
    document = base_document(ctx)
    KEY_STORE_MODE(document, ctx)
    props({"client-cert-key-store-type": "pkcs#12"})(document, ctx)
    auth = parse(document, ctx).managed_cas[0].properties.auth
    assert auth == KeyStoreAuth(login="api-user", key_store=ctx.key_store, key_alias="client",
                                key_store_password=Secret(KEY_STORE_PASSWORD), key_store_type="PKCS12")
    assert auth.mode == "key-store"


def test_ok_password_mode(ctx: Ctx) -> None:
    auth = parse(base_document(ctx), ctx).managed_cas[0].properties.auth
    assert auth == PasswordAuth(login="api-user", password=Secret(LOGIN_PASSWORD))
    assert auth.mode == "password"


def test_ok_api_key_mode_default_token_url(ctx: Ctx) -> None:
    document = base_document(ctx)
    API_KEY_MODE(document, ctx)
    auth = parse(document, ctx).managed_cas[0].properties.auth
    assert auth == ApiKeyAuth(client_id="gateway-client", client_secret=Secret(API_SECRET), token_url=DEFAULT_TOKEN_URL)
    assert auth.mode == "api-key"
    assert DEFAULT_TOKEN_URL.startswith("https://")


def test_ok_api_key_mode_own_token_url(ctx: Ctx) -> None:
    document = base_document(ctx)
    chain(API_KEY_MODE, props({"api-token-url": "https://sso.example.com/token"}))(document, ctx)
    auth = parse(document, ctx).managed_cas[0].properties.auth
    assert isinstance(auth, ApiKeyAuth)
    assert auth.token_url == "https://sso.example.com/token"


@pytest.mark.parametrize("spelling", ["ssl-truststore-type", "ssl-trust-store-type"])
@pytest.mark.parametrize("written, parsed", [("JKS", "JKS"), ("pkcs12", "PKCS12"), ("PKCS#12", "PKCS12"),
                                             ("pem", "PEM")])
def test_ok_both_trust_store_type_spellings(spelling: str, written: str, parsed: str, ctx: Ctx) -> None:
    document = base_document(ctx)
    props({spelling: written}, drop=("ssl-truststore-type",))(document, ctx)
    assert parse(document, ctx).managed_cas[0].properties.trust_store_type == parsed


@pytest.mark.parametrize("name, guessed", [("trust.p12", "PKCS12"), ("trust.pfx", "PKCS12"), ("trust.pem", "PEM"),
                                           ("trust.crt", "PEM"), ("trust.jks", "JKS"), ("trust.store", "JKS")])
def test_ok_trust_store_type_guessed_from_suffix(name: str, guessed: str, ctx: Ctx) -> None:
    (ctx.tmp / name).write_bytes(b"x")
    document = base_document(ctx)
    props({"ssl-trust-store": name}, drop=("ssl-truststore-type",))(document, ctx)
    props_ = parse(document, ctx).managed_cas[0].properties
    assert (props_.trust_store, props_.trust_store_type) == (ctx.tmp / name, guessed)


def test_ok_plain_http_without_trust_store_warns(ctx: Ctx, caplog: pytest.LogCaptureFixture) -> None:
    document = base_document(ctx)
    props({"url": "http://127.0.0.1:8080/api/"},
          drop=("ssl-trust-store", "ssl-trust-store-password", "ssl-truststore-type"))(document, ctx)
    with caplog.at_level(logging.WARNING, logger="service.config"):
        props_ = parse(document, ctx).managed_cas[0].properties
    assert (props_.url, props_.trust_store, props_.trust_store_type) == ("http://127.0.0.1:8080/api", None, None)
    assert "is plain HTTP" in caplog.text


def test_ok_secrets_from_environment_and_files(ctx: Ctx) -> None:
    (ctx.tmp / "proxy-password").write_text(FILE_SECRET + "\r\n")
    document = base_document(ctx)
    chain(PROXY, props({"login-password": "${CAGW_LOGIN_PASSWORD}", "customer-uri": "${CAGW_CUSTOMER}-eu",
                        "proxy-password": "file:proxy-password",
                        "ssl-trust-store-password": f"file:{ctx.tmp / 'proxy-password'}"}))(document, ctx)
    environ = {"CAGW_LOGIN_PASSWORD": LOGIN_PASSWORD, "CAGW_CUSTOMER": "acme"}
    props_ = parse(document, ctx, environ).managed_cas[0].properties
    assert props_.auth == PasswordAuth(login="api-user", password=Secret(LOGIN_PASSWORD))
    assert props_.customer_uri == "acme-eu"
    assert props_.proxy is not None and props_.proxy.password == Secret(FILE_SECRET)
    assert props_.trust_store_password == Secret(FILE_SECRET)


def test_ok_environment_can_name_a_secret_file(ctx: Ctx) -> None:
    (ctx.tmp / "pw").write_text(LOGIN_PASSWORD)
    document = base_document(ctx)
    props({"login-password": "file:${CAGW_SECRETS}/pw"})(document, ctx)
    auth = parse(document, ctx, {"CAGW_SECRETS": str(ctx.tmp)}).managed_cas[0].properties.auth
    assert isinstance(auth, PasswordAuth) and auth.password.reveal() == LOGIN_PASSWORD


def test_ok_proxy(ctx: Ctx) -> None:
    document = base_document(ctx)
    PROXY(document, ctx)
    proxy = parse(document, ctx).managed_cas[0].properties.proxy
    assert proxy is not None
    assert (proxy.host, proxy.port, proxy.username, proxy.password) == ("proxy.corp.example", 3128, "gw",
                                                                        Secret(PROXY_PASSWORD))


def test_ok_proxy_without_credentials(ctx: Ctx) -> None:
    document = base_document(ctx)
    chain(PROXY, props(drop=("proxy-username", "proxy-password")))(document, ctx)
    proxy = parse(document, ctx).managed_cas[0].properties.proxy
    assert proxy is not None and (proxy.host, proxy.port, proxy.username, proxy.password) == (
        "proxy.corp.example", 3128, None, None)


def test_ok_enrollment_settings(ctx: Ctx) -> None:
    document = base_document(ctx)
    props({"enroll-back-off-timer": "3 sec", "enroll-max-back-off-timer": "1m", "enroll-max-attempts": "8"})(document, ctx)
    backoff = parse(document, ctx).managed_cas[0].properties.backoff
    assert (backoff.back_off_timer, backoff.max_back_off_timer, backoff.max_attempts) == (3.0, 60.0, 8)


def test_ok_gateway_block_and_profiles(ctx: Ctx) -> None:
    document = base_document(ctx)
    ca({
        "profiles": [{"id": "ov-server", "name": "OV server", "cert-type": "101", "term": "365",
                      "description": "OV TLS server"}, {"id": "ev", "cert-type": "102"}],
        "gateway": {
            "request-timeout": "20s", "connect-timeout": "2.5s", "max-concurrent-requests": "4", "give-up-after": "3d",
            "profile-cache-ttl": "0", "profile-sync": "false", "default-term": "730", "subject-revoke-limit": "25",
            "profile-options": {"ov-server": {"custom-fields": {"Cost Center": "4711"},
                                              "external-requester": "pki@example.com"},
                                "ev": None},
        },
    })(document, ctx)
    ca_ = parse(document, ctx).managed_cas[0]
    assert ca_.profiles == (StaticProfile(id="ov-server", name="OV server", cert_type="101", term=365,
                                          description="OV TLS server"),
                            StaticProfile(id="ev", name="ev", cert_type="102"))
    g = ca_.gateway
    assert (g.request_timeout, g.connect_timeout, g.max_concurrent_requests, g.give_up_after) == (20.0, 2.5, 4, 259200.0)
    assert (g.profile_cache_ttl, g.profile_sync, g.default_term, g.subject_revoke_limit) == (0.0, False, 730, 25)
    assert g.profile_options == {
        "ov-server": ProfileOptions(custom_fields={"Cost Center": "4711"}, external_requester="pki@example.com"),
        "ev": ProfileOptions(),
    }


def _self_signed_pem(folder: Path) -> Path:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Issuing CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    path = folder / "issuing-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_ok_validity_rounding_and_ca_certificates(ctx: Ctx, tmp_path: Path) -> None:
    document = base_document(ctx)
    chain = _self_signed_pem(tmp_path)
    ca({"gateway": {"validity-rounding": "UP", "ca-certificates": str(chain)}})(document, ctx)
    g = parse(document, ctx).managed_cas[0].gateway
    assert g.validity_rounding == "up"
    assert len(g.ca_certificates) == 1 and g.ca_certificates[0][:1] == b"\x30"  # DER


def test_defaults_of_validity_rounding_and_ca_certificates(ctx: Ctx) -> None:
    g = parse(base_document(ctx), ctx).managed_cas[0].gateway
    assert (g.validity_rounding, g.ca_certificates) == ("exact", ())


def test_fail_ca_certificates_missing(ctx: Ctx) -> None:
    document = base_document(ctx)
    ca({"gateway": {"ca-certificates": "no-such-chain.pem"}})(document, ctx)
    with pytest.raises(ConfigError, match=r"gateway\.ca-certificates: .*no-such-chain\.pem"):
        parse(document, ctx)


def test_fail_ca_certificates_without_a_certificate(ctx: Ctx, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificate here\n")
    document = base_document(ctx)
    ca({"gateway": {"ca-certificates": str(empty)}})(document, ctx)
    with pytest.raises(ConfigError, match="ca-certificates: .*holds no CERTIFICATE block"):
        parse(document, ctx)


@pytest.mark.parametrize("written, expected", [("true", True), ("Yes", True), ("on", True), ("1", True),
                                               ("false", False), ("NO", False), ("off", False), ("0", False)])
def test_ok_booleans(written: str, expected: bool, ctx: Ctx) -> None:
    document = base_document(ctx)
    ca({"gateway": {"profile-sync": written}})(document, ctx)
    assert parse(document, ctx).managed_cas[0].gateway.profile_sync is expected


def test_ok_listeners_and_rest(ctx: Ctx) -> None:
    document = base_document(ctx)
    top({
        "grpc": {"listen": "[::1]:6000", "tls": {"cert": str(ctx.tls_cert), "key": str(ctx.tls_key)}},
        "rest": {"listen": "0.0.0.0:0", "context-path": "api/cagw/", "enrollment-status": "standard",
                 "max-body-size": "512KiB", "insecure": "true"},
        "ops": {"listen": "localhost:9100"},
        "ledger": {"path": "/var/lib/cagw/ledger.db"},
        "shutdown-grace": "1.5s",
    })(document, ctx)
    config = parse(document, ctx)
    assert (config.grpc.host, config.grpc.port, config.grpc.address) == ("::1", 6000, "[::1]:6000")
    assert config.grpc.tls is not None and config.grpc.tls.client_ca is None
    assert (config.rest.listen.host, config.rest.listen.port) == ("0.0.0.0", 0)
    assert (config.rest.context_path, config.rest.enrollment_status) == ("/api/cagw", "standard")
    assert config.rest.max_body_bytes == 512 * 1024
    assert config.ops.address == "localhost:9100"
    assert config.ledger.path == Path("/var/lib/cagw/ledger.db")
    assert config.shutdown_grace == 1.5


@pytest.mark.parametrize("written, expected", [("documented", "documented"), ("standard", "standard")])
def test_ok_enrollment_status(written: str, expected: str, ctx: Ctx) -> None:
    document = base_document(ctx)
    top({"rest": {"enrollment-status": written}})(document, ctx)
    assert parse(document, ctx).rest.enrollment_status == expected


@pytest.mark.parametrize("written, expected", [("/", ""), ("cagw", "/cagw"), ("/a/b/", "/a/b")])
def test_ok_context_path(written: str, expected: str, ctx: Ctx) -> None:
    document = base_document(ctx)
    top({"rest": {"context-path": written}})(document, ctx)
    assert parse(document, ctx).rest.context_path == expected


@pytest.mark.parametrize("written, size", [("1048576", 1048576), ("100b", 100), ("512KiB", 524288), ("10kb", 10000),
                                           ("1MiB", 1048576), ("2 MB", 2000000), ("4mib", 4 * 1048576)])
def test_ok_max_body_size(written: str, size: int, ctx: Ctx) -> None:
    document = base_document(ctx)
    top({"rest": {"max-body-size": written}})(document, ctx)
    assert parse(document, ctx).rest.max_body_bytes == size


def test_ok_several_cas(ctx: Ctx) -> None:
    document = base_document(ctx)
    _second_ca(document, ctx)
    document["managed-cas"][1]["id"] = "sectigo-ev"
    config = parse(document, ctx)
    assert [c.id for c in config.managed_cas] == ["sectigo-ov", "sectigo-ev"]


def test_ok_empty_clients_key_is_ignored(ctx: Ctx) -> None:
    document = base_document(ctx)
    top({"clients": None})(document, ctx)
    parse(document, ctx)


def test_back_off_timer_below_one_second_warns(ctx: Ctx, caplog: pytest.LogCaptureFixture) -> None:
    document = base_document(ctx)
    props({"enroll-back-off-timer": "500ms"})(document, ctx)
    with caplog.at_level(logging.WARNING, logger="service.config"):
        config = parse(document, ctx)
    assert config.managed_cas[0].properties.backoff.back_off_timer == 0.5  # applied literally
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "sectigo-ov" in warnings[0].getMessage() and "below one second" in warnings[0].getMessage()


def test_back_off_timer_of_one_second_or_more_does_not_warn(ctx: Ctx, caplog: pytest.LogCaptureFixture) -> None:
    document = base_document(ctx)
    props({"enroll-back-off-timer": "1s"})(document, ctx)
    with caplog.at_level(logging.WARNING, logger="service.config"):
        parse(document, ctx)
    assert "below one second" not in caplog.text


# ---------------------------------------------------------------- secrets never show


def _everything_with_secrets(c: Ctx) -> dict[str, Any]:
    (c.tmp / "api-secret").write_text(FILE_SECRET)
    document = base_document(c)
    chain(PROXY, props({"client-cert-key-store": str(c.key_store), "client-cert-key-store-password": KEY_STORE_PASSWORD,
                        "api-client-id": "gw", "api-client-secret": "file:api-secret"}))(document, c)
    return document


@pytest.mark.parametrize("breakage", [
    pytest.param(lambda d: None, id="fail-three-auth-modes"),
    pytest.param(lambda d: d["managed-cas"][0]["properties"].update({"org-id": "x", "enroll-max-attempts": "y",
                                                                      "proxy-port": "z"}), id="fail-many-problems"),
    pytest.param(lambda d: d["managed-cas"][0]["properties"].pop("proxy-username"), id="fail-proxy-half"),
    pytest.param(lambda d: d["managed-cas"][0]["properties"].update({"ssl-trust-store": "missing.jks"}),
                 id="fail-missing-trust-store"),
])
def test_no_secret_in_error_messages(breakage: Callable[[dict[str, Any]], None], ctx: Ctx) -> None:
    document = _everything_with_secrets(ctx)
    breakage(document)
    with pytest.raises(ConfigError) as caught:
        parse(document, ctx)
    shown = "\n".join([str(caught.value), repr(caught.value), caught.value.message, *caught.value.problems])
    for secret in SECRETS:
        assert secret not in shown


def test_no_secret_in_error_messages_of_single_modes(ctx: Ctx) -> None:
    for mode in (KEY_STORE_MODE, API_KEY_MODE):
        document = base_document(ctx)
        chain(mode, PROXY, props({"proxy-username": None, "enroll-max-attempts": LOGIN_PASSWORD[:3] + "?"}))(document, ctx)
        with pytest.raises(ConfigError) as caught:
            parse(document, ctx)
        assert len(caught.value.problems) == 2
        for secret in SECRETS:
            assert secret not in str(caught.value)


@pytest.mark.parametrize("mode", [
    pytest.param(props({"login-password": "file:secret"}), id="ok-password-file"),
    pytest.param(chain(KEY_STORE_MODE, props({"client-cert-key-store-password": "file:secret"})), id="ok-key-store-file"),
    pytest.param(chain(API_KEY_MODE, props({"api-client-secret": "file:secret"})), id="ok-api-key-file"),
    pytest.param(props({}), id="ok-password"),
    pytest.param(KEY_STORE_MODE, id="ok-key-store"),
    pytest.param(API_KEY_MODE, id="ok-api-key"),
])
def test_no_secret_in_config_repr(mode: Mutation, ctx: Ctx) -> None:
    (ctx.tmp / "secret").write_text(FILE_SECRET)
    document = base_document(ctx)
    chain(mode, PROXY)(document, ctx)
    config = parse(document, ctx)
    shown = repr(config) + str(config) + repr(config.managed_cas[0].properties.auth)
    for secret in SECRETS:
        assert secret not in shown
    assert "Secret('***')" in shown


def test_secret_wrapper() -> None:
    secret = Secret(LOGIN_PASSWORD)
    assert repr(secret) == str(secret) == f"{secret}" == "Secret('***')"
    assert secret.reveal() == LOGIN_PASSWORD
    assert secret == Secret(LOGIN_PASSWORD) and secret != Secret("other") and secret != LOGIN_PASSWORD
    assert len({secret, Secret(LOGIN_PASSWORD)}) == 1


# ---------------------------------------------------------------- property-based


_UNITS = {"": 1.0, "ms": 0.001, "msec": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
          "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0, "h": 3600.0, "hour": 3600.0,
          "hours": 3600.0, "d": 86400.0, "day": 86400.0, "days": 86400.0}


@st.composite
def durations(draw: st.DrawFn) -> tuple[str, float]:
    whole = draw(st.integers(min_value=0, max_value=10**9))
    fraction = draw(st.one_of(st.just(""), st.from_regex(r"\A[0-9]{1,6}\Z")))
    number = f"{whole}.{fraction}" if fraction else str(whole)
    unit = draw(st.sampled_from(sorted(_UNITS)))
    cased = "".join(ch.upper() if draw(st.booleans()) else ch for ch in unit)
    space = draw(st.sampled_from(["", " ", "  "])) if unit else ""
    pad = draw(st.sampled_from(["", " ", "\t"]))
    return f"{pad}{number}{space}{cased}{pad}", float(number) * _UNITS[unit]


@settings(max_examples=200, deadline=None)
@given(durations())
def test_parse_duration_accepts_every_number_unit_form(case: tuple[str, float]) -> None:
    text, seconds = case
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(),
    st.builds("".join, st.lists(st.sampled_from([*"0123456789.-+eE \t\n", "ms", "s", "sec", "m", "h", "d", "x", "٣"]),
                                max_size=8)),
    st.integers(min_value=300, max_value=400).map(lambda n: "9" * n + "d"),  # overflows to inf past ~309 digits
))
def test_parse_duration_rejects_garbage_with_value_error_only(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert math.isfinite(seconds) and seconds >= 0
    assert any(ch.isdigit() for ch in text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Nd"]), min_size=0, max_size=20))
def test_parse_duration_needs_a_number(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


_yaml_values = st.recursive(
    st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["1", "0", "-1", "2s", "abc", "${X}", "file:x",
                                                                  "https://h", "JKS", "127.0.0.1:1"])),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.sampled_from(sorted(ALLOWED_PROPERTIES.split(", "))
                                                               + ["id", "properties", "managed-cas", "gateway",
                                                                  "profiles", "grpc", "tls", "listen"]),
                                               children, max_size=5)),
    max_leaves=20,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_yaml_values)
def test_parse_config_raises_only_config_error(document: Any) -> None:
    try:
        parse_config(document, base_dir=Path("/nonexistent-cagw-base"), environ={})
    except ConfigError as exc:
        assert exc.problems


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(ALLOWED_PROPERTIES.split(", "))), _yaml_values, max_size=8))
def test_parse_config_properties_raise_only_config_error(properties: dict[str, Any]) -> None:
    try:
        parse_config({"managed-cas": [{"id": "x", "properties": properties}]},
                     base_dir=Path("/nonexistent-cagw-base"), environ={})
    except ConfigError as exc:
        assert exc.problems


# ---------------------------------------------------------------- docs/configuration.md stays true

DOCS = PROJECT / "docs" / "configuration.md"


def test_docs_name_every_accepted_key() -> None:
    import service.config.sections as config_module
    from service.connectors.sectigo.settings import PROPERTY_KEYS

    text = DOCS.read_text(encoding="utf-8")
    keys = (config_module._TOP_KEYS | config_module._CA_KEYS | PROPERTY_KEYS
            | config_module._GATEWAY_KEYS | config_module._PROFILE_KEYS
            | {"listen", "tls", "cert", "key", "client-ca", "context-path", "max-body-size", "enrollment-status",
               "path", "custom-fields", "external-requester", "limits",
               "header-timeout", "body-timeout", "idle-timeout", "max-connections", "max-concurrent-streams",
               "max-concurrent-rpcs", "keepalive-min-interval", "max-connection-idle", "max-per-caller",
               "max-total", "unknown-serial-ttl", "ca-status-ttl", "ca-lookups-per-second", "ca-lookup-burst"})
    missing = sorted(key for key in keys if f"`{key}`" not in text and f"`{key}:" not in text
                     and f".{key}`" not in text)
    assert not missing
    assert DEFAULT_TOKEN_URL in text


def test_docs_complete_example_loads(tmp_path: Path) -> None:
    import re

    example = DOCS.read_text(encoding="utf-8").split("## A complete example", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", example, re.S)
    assert block is not None
    path = write(tmp_path / "cagw.yaml", block.group(1))
    for relative in re.findall(r"(?:cert|key|client-ca|ssl-trust-store|client-cert-key-store): (\S+)", block.group(1)):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("placeholder")
    for relative in re.findall(r"file:(\S+)", block.group(1)):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("placeholder-secret\n")
    environ = {"SECTIGO_OV_PASSWORD": "a", "SECTIGO_API_CLIENT_ID": "b", "SECTIGO_API_CLIENT_SECRET": "c"}
    config = load_config(path, environ=environ)
    assert [(ca.id, ca.properties.auth.mode) for ca in config.managed_cas] == [
        ("sectigo-ov", "password"), ("sectigo-ev", "key-store"), ("sectigo-dv", "api-key")]
    assert config.managed_cas[0].properties.org_id == 12345


# ---------------------------------------------------------------- cagw check-config (subprocess)
#
# These drive `python -m service.cli`: the whole command line must import (service.simulator,
# service.client_cli), and check-config imports service.app (build_connectors) before it reads the
# file; a good file also builds the Sectigo connector, which opens the trust store.


@dataclass(frozen=True)
class CheckRun:
    path: Path
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def check_config_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CheckRun]:
    """Run every `cagw check-config` case at once (parallel processes keep the module fast)."""
    folder = tmp_path_factory.mktemp("check-config")
    trust_store = FIXTURES / "truststore.jks"
    files = {
        "ok": write(folder / "ok.yaml", good_yaml(trust_store).replace(
            f"ssl-trust-store-password: {TRUST_PASSWORD}", "ssl-trust-store-password: changeit")),
        "bad": write(folder / "bad.yaml", good_yaml(trust_store).replace("org-id: 12345", "org-id: 12a45")),
        "missing": folder / "absent.yaml",
        # TRUST_PASSWORD is not the fixture store's password ("changeit")
        "wrong-password": write(folder / "wrong-password.yaml", good_yaml(trust_store)),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAGW_")}
    processes = {
        name: subprocess.Popen([sys.executable, "-m", "service.cli", "check-config", "--config", str(path)],
                               cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name, path in files.items()
    }
    runs = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=60)
        runs[name] = CheckRun(files[name], process.returncode, stdout, stderr)
    return runs


def test_check_config_ok(check_config_runs: dict[str, CheckRun]) -> None:
    run = check_config_runs["ok"]
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"{run.path}: OK (1 CA(s): sectigo-ov)"
    assert LOGIN_PASSWORD not in run.stdout + run.stderr


def test_check_config_bad_file(check_config_runs: dict[str, CheckRun]) -> None:
    run = check_config_runs["bad"]
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    assert run.stderr.strip().splitlines()[-1] == f"configuration error: {P}.org-id: '12a45' is not a whole number"
    for secret in (LOGIN_PASSWORD, TRUST_PASSWORD):
        assert secret not in run.stderr


def test_check_config_missing_file(check_config_runs: dict[str, CheckRun]) -> None:
    run = check_config_runs["missing"]
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        f"configuration error: {run.path}: cannot read the configuration file: No such file or directory")


def test_check_config_wrong_trust_store_password(check_config_runs: dict[str, CheckRun]) -> None:
    """Opening the stores is part of check-config: a wrong password is a configuration error (exit 2)."""
    run = check_config_runs["wrong-password"]
    assert run.returncode == 2, run.stderr
    last_line = run.stderr.strip().splitlines()[-1]
    assert last_line.startswith("configuration error: ")
    assert "sectigo-ov" in last_line and str(FIXTURES / "truststore.jks") in last_line
    for secret in (LOGIN_PASSWORD, TRUST_PASSWORD):
        assert secret not in run.stdout + run.stderr


def test_fail_a_key_given_twice_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("managed-cas:\n  - id: a\n    properties:\n      login-password: first\n"
                    "      login-password: second\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.message == f"{path}: not valid YAML at line 5, column 7: duplicate key 'login-password'"
    assert "second" not in caught.value.message and "first" not in caught.value.message


def test_ok_server_side_key_settings(ctx: Ctx) -> None:
    document = base_document(ctx)
    document["managed-cas"][0]["gateway"] = {"server-side-keys": "false", "server-side-key-retention": "36h",
                                             "pkcs12-encryption": "legacy"}
    gateway = parse(document, ctx).managed_cas[0].gateway
    assert (gateway.server_side_keys, gateway.server_side_key_retention, gateway.pkcs12_encryption) == (
        False, 36 * 3600.0, "legacy")

