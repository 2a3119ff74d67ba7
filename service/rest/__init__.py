"""The REST shim: CAGW JSON over HTTP, transcoded to the service methods from the proto annotations.

``build_rest_app`` builds the aiohttp application; ``RestServer`` runs it on a
listener. Routes come from ``google.api.http`` (:mod:`.routes`), requests are
transcoded by proto3 JSON (:mod:`.transcode`), statuses follow one table
(:mod:`.status_table`), bodies one marshaler (:mod:`.render`), and the OpenAPI
document is derived from the same descriptors (:mod:`.openapi`).
"""

from __future__ import annotations

from service.rest.app import OPENAPI_KEY, ROUTES_KEY, RestServer, build_rest_app
from service.rest.openapi import build_openapi
from service.rest.routes import RouteError, RouteTable
from service.rest.status_table import HTTP_STATUS_BY_CODE, http_status_from_code

__all__ = [
    "HTTP_STATUS_BY_CODE",
    "OPENAPI_KEY",
    "ROUTES_KEY",
    "RestServer",
    "RouteError",
    "RouteTable",
    "build_openapi",
    "build_rest_app",
    "http_status_from_code",
]
