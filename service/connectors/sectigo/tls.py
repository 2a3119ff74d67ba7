"""The TLS context toward Sectigo, built once per CA from its configured stores.

Sectigo's certificate is verified against ``ssl-trust-store`` only: never the system
roots, never switched off. Hostname checking stays on. In the key-store mode the same
context carries the client certificate, so it is presented to Sectigo, also inside a
proxy's CONNECT tunnel. Plain ``http://`` urls (a local simulator) need no context.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from service.errors import ConfigError
from service.keystores import client_ssl_context, load_key_store, load_trust_store

from .settings import ApiKeyAuth, KeyStoreAuth, SectigoProperties

__all__ = ["build_ssl_context"]


def build_ssl_context(properties: SectigoProperties, *, ca_id: str) -> ssl.SSLContext | None:
    """The client context for the CA's https urls, or ``None`` when every url is plain http.

    Raises ``ConfigError`` naming the CA when an https url has no trust store, or a store
    cannot be read (wrong password, alias, format).
    """
    urls = [properties.url]
    if isinstance(properties.auth, ApiKeyAuth):
        urls.append(properties.auth.token_url)
    https = [url for url in urls if urlsplit(url).scheme == "https"]
    key_store = properties.auth if isinstance(properties.auth, KeyStoreAuth) else None
    if not https:
        if key_store is not None:
            raise ConfigError(f"CA {ca_id}: client-cert-key-store needs an https url, not {properties.url}")
        return None
    if properties.trust_store is None:
        raise ConfigError(
            f"CA {ca_id}: {https[0]} is https but no ssl-trust-store is configured; the gateway trusts "
            "only its own trust store, never the system roots"
        )
    try:
        trusted = load_trust_store(
            properties.trust_store,
            password=properties.trust_store_password.reveal() if properties.trust_store_password else None,
            declared_type=properties.trust_store_type,
        )
        client = None
        if key_store is not None:
            client = load_key_store(
                key_store.key_store,
                alias=key_store.key_alias,
                password=key_store.key_store_password.reveal(),
                declared_type=key_store.key_store_type,
            )
        return client_ssl_context(trusted=trusted, client=client)
    except ConfigError as exc:
        raise ConfigError(f"CA {ca_id}: {exc.message}", problems=[f"CA {ca_id}: {p}" for p in exc.problems]) from exc
