"""The Sectigo Certificate Manager connector: an aiohttp SCM client behind ``connectors/base.py``.

Modules, one job each:

- ``settings``: ``SectigoProperties``, the ``properties`` keys and their parser;
- ``client``: ``SectigoClient``, the HTTP side (session, retries, error mapping, logging);
- ``auth``: the password, key-store (mTLS, ``/private/api``) and API-key (OAuth2) modes;
- ``tls``: the ``SSLContext`` from the configured trust and key stores;
- ``errors``: the Sectigo error family and ``map_aiohttp_errors()``;
- ``codes``: Sectigo's code and status tables;
- ``parsing``: JSON and download bodies → typed values;
- ``connector``: ``SectigoConnector``, the connector protocol on top of the client.

Importing the package registers the connector plug-in ``sectigo`` (:data:`PLUGIN`).
"""

from __future__ import annotations

from service.connectors.registry import ConnectorPlugin, register_connector

from .client import ClientState, RetryPolicy, SectigoClient, SectigoResponse, Timeouts
from .connector import ReplaceRequest, SectigoConnector
from .errors import (
    SectigoAuthError,
    SectigoBadResponse,
    SectigoConnectionError,
    SectigoError,
    SectigoNotFound,
    SectigoOrderFailed,
    SectigoProxyError,
    SectigoRejected,
    SectigoRevoked,
    SectigoServerError,
    SectigoThrottled,
    SectigoTimeout,
    SectigoTLSError,
    SectigoTransportError,
    SectigoUnavailable,
    SectigoValidationError,
    map_aiohttp_errors,
)
from .settings import (
    DEFAULT_TOKEN_URL,
    ApiKeyAuth,
    KeyStoreAuth,
    PasswordAuth,
    ProxySettings,
    SectigoProperties,
    parse_properties,
)

__all__ = [
    "DEFAULT_TOKEN_URL",
    "PLUGIN",
    "ApiKeyAuth",
    "ClientState",
    "KeyStoreAuth",
    "PasswordAuth",
    "ProxySettings",
    "ReplaceRequest",
    "RetryPolicy",
    "SectigoAuthError",
    "SectigoBadResponse",
    "SectigoClient",
    "SectigoConnectionError",
    "SectigoConnector",
    "SectigoError",
    "SectigoNotFound",
    "SectigoOrderFailed",
    "SectigoProperties",
    "SectigoProxyError",
    "SectigoRejected",
    "SectigoResponse",
    "SectigoRevoked",
    "SectigoServerError",
    "SectigoTLSError",
    "SectigoThrottled",
    "SectigoTimeout",
    "SectigoTransportError",
    "SectigoUnavailable",
    "SectigoValidationError",
    "Timeouts",
    "map_aiohttp_errors",
]

PLUGIN = ConnectorPlugin(
    type_name="sectigo",
    parse_properties=parse_properties,
    create=SectigoConnector.from_settings,
    connector_name="com.Sectigo",
    ca_type="Sectigo Certificate Manager",
    vendor="Sectigo",
)
register_connector(PLUGIN)
