"""LocalCA: a second, minimal connector plug-in that lives outside ``service/`` (tests only).

An in-memory CA that issues real certificates with ``cryptography``. It owns its
settings (``settings``: keys, types and parser), its connector (``connector``)
and its display names, and declares two capabilities (``SubjectAltNameTypes``
and ``CommentLimit``) whose values come from its own properties. Register
:data:`PLUGIN` with ``service.connectors.registry.register_connector`` before a
configuration naming ``connector: localca`` is read.
"""

from __future__ import annotations

from service.connectors.registry import ConnectorPlugin

from .connector import ERROR_DOMAIN, LocalCAConnector, LocalCARejected
from .settings import PROPERTY_KEYS, LocalCAProperties, parse_properties

__all__ = ["ERROR_DOMAIN", "PLUGIN", "PROPERTY_KEYS", "LocalCAConnector", "LocalCAProperties", "LocalCARejected"]

PLUGIN = ConnectorPlugin(
    type_name="localca",
    parse_properties=parse_properties,
    create=LocalCAConnector,
    connector_name="org.example.LocalCA",
    ca_type="In-memory test CA",
    vendor="LocalCA",
)
