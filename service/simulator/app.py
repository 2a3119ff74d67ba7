"""HTTP face of the simulator: SCM routes under ``/api`` and ``/private/api``, token and admin routes.

Each SCM request goes through one pipeline: count it, apply faults, check the
caller, run the manager operation, render SCM's JSON or file answer. Routes
are named after the operation (``enroll``, ``collect``, …); those names key
the request counters and the fault rules.

Admin routes (``/__simulator/...``) need no credentials and never fault: they
let another process inject faults and read counters. ``/__simulator/calls``, the
log of every SCM call with its time and order id (what a benchmark needs to
check the collect schedule), answers loopback callers only.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import scm_errors
from .auth import Authenticator, OAuthError
from .faults import FaultInjector, FaultRule
from .manager import SimulatedCertificateManager
from .scm_errors import ScmError
from .state import OrderStatus

__all__ = ["API_PREFIXES", "CALL_LOG_SIZE", "CallRecord", "JSON_CONTENT_TYPE", "SimulatorStats", "build_app"]

log = logging.getLogger("service.simulator")

API_PREFIXES = ("/api", "/private/api")
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
_FILE_CONTENT_TYPE = "application/octet-stream;charset=UTF-8"
# The DOC shows plain application/json on organization endpoints.
_ORG_CONTENT_TYPE = "application/json"
TOKEN_PATHS = ("/oauth/token", "/auth/realms/apiclients/protocol/openid-connect/token")

# The newest calls kept (about 100 bytes each): 10,000 orders with a few collects each fit.
CALL_LOG_SIZE = 200_000


Sleep = Callable[[float], Awaitable[None]]
Operation = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class CallRecord:
    """One entry of the call log: when (the simulator's clock), which route, and the order's sslId
    (from the path; for an enroll, the id it was given)."""

    at: float
    route: str
    ssl_id: int | None = None

    def to_json(self) -> dict[str, object]:
        return {"time": self.at, "route": self.route, "sslId": self.ssl_id}


@dataclass
class SimulatorStats:
    """Request counters per route name (``enroll``, ``collect``, …), for tests and benchmarks,
    and the log of the newest calls."""

    requests: Counter[str] = field(default_factory=Counter)
    calls: deque[CallRecord] = field(default_factory=lambda: deque(maxlen=CALL_LOG_SIZE))
    calls_dropped: int = 0

    def record(self, name: str, *, at: float, ssl_id: int | None = None) -> CallRecord:
        self.requests[name] += 1
        if len(self.calls) == self.calls.maxlen:
            self.calls_dropped += 1
        entry = CallRecord(at, name, ssl_id)
        self.calls.append(entry)
        return entry

    def reset(self) -> None:
        self.requests.clear()
        self.clear_calls()

    def clear_calls(self) -> None:
        self.calls.clear()
        self.calls_dropped = 0


_CALL_RECORD = web.RequestKey("simulator.call_record", CallRecord)  # the request's entry in the call log


def _ssl_id_of(request: web.Request) -> int | None:
    text = request.match_info.get("ssl_id", "")
    return int(text) if text.isdigit() else None


def _from_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def _json(status: int, payload: object, *, content_type: str = JSON_CONTENT_TYPE) -> web.Response:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


def _error(exc: ScmError) -> web.Response:
    return _json(exc.status, exc.body())


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer; the returned response is never written."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)


async def _read_json(request: web.Request) -> object:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise scm_errors.malformed_body() from exc


@web.middleware
async def _http_errors_as_json(request: web.Request, handler: Operation) -> web.StreamResponse:
    """Unknown paths, wrong methods and oversize bodies also answer in SCM's error shape."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _json(exc.status, {"code": -1, "description": exc.reason})
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response


ADMIN_PREFIX = "/__simulator/"


def is_loopback(address: str | None) -> bool:
    """Whether ``address`` (a peer or listen host) is this machine's loopback: 127.0.0.0/8, ::1, localhost."""
    if not address:
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


@web.middleware
async def _admin_on_loopback_only(request: web.Request, handler: Operation) -> web.StreamResponse:
    """The admin routes need no credentials (they inject faults, read statistics): only a caller on
    this machine reaches them; anyone else is told there is no such route."""
    if request.path.startswith(ADMIN_PREFIX) and not is_loopback(request.remote):
        return _json(404, {"code": -1, "description": "Not Found"})
    return await handler(request)


class _Routes:
    """The handlers, closed over one simulator's manager, authenticator, faults and stats."""

    def __init__(
        self,
        manager: SimulatedCertificateManager,
        *,
        auth: Authenticator,
        faults: FaultInjector,
        stats: SimulatorStats,
        sleep: Sleep,
    ) -> None:
        self.manager = manager
        self.auth = auth
        self.faults = faults
        self.stats = stats
        self.sleep = sleep

    # -- the pipeline ----------------------------------------------------------------------

    def scm(self, name: str, operation: Operation, *, private: bool) -> Operation:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            request[_CALL_RECORD] = self.stats.record(name, at=self.manager.clock(), ssl_id=_ssl_id_of(request))
            decision = self.faults.decide(name)
            if decision.latency > 0:
                await request.read()  # taken in first, as a slow CA would: served even if the caller gave up
                await self.sleep(decision.latency)
            rule = decision.rule
            if rule is not None and rule.kind != "drop_reply":
                return _fault_response(request, rule)
            try:
                self._authenticate(request, private=private)
                response = await operation(request)
            except ScmError as exc:
                response = _error(exc)
                if exc.status == 401 and request.headers.get("Authorization", "").lower().startswith("bearer "):
                    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            except Exception:
                log.exception("simulator: %s %s failed", request.method, request.path)
                response = _json(500, {"code": -2, "description": "Internal error. Please contact Support for details."})
            if rule is not None:  # drop_reply: the work is done, the answer is lost
                return _drop(request)
            return response

        return endpoint

    def _authenticate(self, request: web.Request, *, private: bool) -> None:
        if not private:
            self.auth.check_api(request.headers)
            return
        peer = request.transport.get_extra_info("peercert") if request.transport is not None else None
        self.auth.check_private(request.headers, has_client_certificate=bool(peer))

    # -- SCM operations --------------------------------------------------------------------

    async def types(self, request: web.Request) -> web.StreamResponse:
        return _json(200, self.manager.cert_types(request.query.get("organizationId")))

    async def custom_fields(self, request: web.Request) -> web.StreamResponse:
        return _json(200, self.manager.custom_fields())

    async def enroll(self, request: web.Request) -> web.StreamResponse:
        body = await _read_json(request)
        # Bearer callers have no login header; SCM shows the API client as requester then.
        requester = request.headers.get("login") or self.manager.settings.oauth_client_id or "api-client"
        answer = self.manager.enroll(body, requester=requester)
        ssl_id = answer["sslId"]
        request[_CALL_RECORD].ssl_id = ssl_id if isinstance(ssl_id, int) else None
        return _json(200, answer)

    async def collect_query(self, request: web.Request) -> web.StreamResponse:
        return self._collect(request.match_info["ssl_id"], request.query.get("format", "base64"))

    async def collect_path(self, request: web.Request) -> web.StreamResponse:
        return self._collect(request.match_info["ssl_id"], request.match_info["format"])

    def _collect(self, ssl_id: str, fmt: str) -> web.StreamResponse:
        collected = self.manager.collect(ssl_id, fmt)
        return web.Response(
            body=collected.body,
            headers={
                "Content-Type": _FILE_CONTENT_TYPE,
                "Content-Disposition": f'attachment; filename="{collected.filename}"',
            },
        )

    async def details(self, request: web.Request) -> web.StreamResponse:
        return _json(200, self.manager.details(request.match_info["ssl_id"]))

    async def search(self, request: web.Request) -> web.StreamResponse:
        items, total = self.manager.search(request.query)
        if request.method == "HEAD":
            return web.Response(status=200, headers={"X-Total-Count": str(total)})
        response = _json(200, items)
        response.headers["X-Total-Count"] = str(total)
        return response

    async def revoke(self, request: web.Request) -> web.StreamResponse:
        self.manager.revoke(request.match_info["ssl_id"], await _read_json(request))
        return web.Response(status=204)

    async def revoke_serial(self, request: web.Request) -> web.StreamResponse:
        self.manager.revoke_by_serial(request.match_info["serial"], await _read_json(request))
        return web.Response(status=204)

    async def renew_by_id(self, request: web.Request) -> web.StreamResponse:
        return _json(200, self.manager.renew_by_id(request.match_info["ssl_id"], await _read_json(request)))

    async def renew(self, request: web.Request) -> web.StreamResponse:
        self.manager.renew(request.match_info["renew_id"], await _read_json(request))
        return web.Response(status=204)

    async def replace(self, request: web.Request) -> web.StreamResponse:
        self.manager.replace(request.match_info["ssl_id"], await _read_json(request))
        return web.Response(status=204)

    async def approve(self, request: web.Request) -> web.StreamResponse:
        self.manager.approve(request.match_info["ssl_id"], await _read_json(request))
        return web.Response(status=204)

    async def decline(self, request: web.Request) -> web.StreamResponse:
        self.manager.decline(request.match_info["ssl_id"], await _read_json(request))
        return web.Response(status=204)

    async def organizations(self, request: web.Request) -> web.StreamResponse:
        return _json(200, self.manager.organizations(), content_type=_ORG_CONTENT_TYPE)

    async def organization(self, request: web.Request) -> web.StreamResponse:
        return _json(200, self.manager.organization(request.match_info["org_id"]), content_type=_ORG_CONTENT_TYPE)

    # -- OAuth2 token endpoint -------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        self.stats.record("token", at=self.manager.clock())
        decision = self.faults.decide("token")
        if decision.latency > 0:
            await self.sleep(decision.latency)
        if decision.rule is not None and decision.rule.kind != "drop_reply":
            return _fault_response(request, decision.rule)
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            grant = self.auth.issue_token(fields, basic_auth=request.headers.get("Authorization"))
            response = _json(200, grant.to_json(), content_type="application/json")
        except OAuthError as exc:
            response = _json(exc.status, exc.body(), content_type="application/json")
        response.headers["Cache-Control"] = "no-store"
        if decision.rule is not None:
            return _drop(request)
        return response

    # -- admin -----------------------------------------------------------------------------

    async def admin_faults(self, request: web.Request) -> web.StreamResponse:
        return _json(200, {"rules": self.faults.snapshot()}, content_type="application/json")

    async def admin_add_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = await _read_json(request)
        except ScmError as exc:
            return _error(exc)
        items: Any = payload.get("rules") if isinstance(payload, dict) and "rules" in payload else payload
        if not isinstance(items, list):
            items = [items]
        try:
            rules = [FaultRule.from_json(item) for item in items]
        except (TypeError, ValueError) as exc:
            return _json(400, {"code": -1601, "description": str(exc)}, content_type="application/json")
        ids = {self.faults.add(rule) for rule in rules}
        added = [r for r in self.faults.snapshot() if r["id"] in ids]
        return _json(201, {"rules": added}, content_type="application/json")

    async def admin_clear_faults(self, request: web.Request) -> web.StreamResponse:
        self.faults.clear(request.query.get("route"))
        return web.Response(status=204)

    async def admin_remove_fault(self, request: web.Request) -> web.StreamResponse:
        rule_id = request.match_info["rule_id"]
        if not rule_id.isdigit() or not self.faults.remove(int(rule_id)):
            return _json(404, {"code": -1, "description": f"no fault rule {rule_id}"}, content_type="application/json")
        return web.Response(status=204)

    async def admin_stats(self, request: web.Request) -> web.StreamResponse:
        by_status = Counter(o.status.value for o in self.manager.book)
        return _json(
            200,
            {
                "requests": dict(self.stats.requests),
                "faultsApplied": dict(self.faults.applied),
                "tokensIssued": self.auth.tokens_issued,
                "orders": {"total": len(self.manager.book), "byStatus": {s.value: by_status[s.value] for s in OrderStatus}},
            },
            content_type="application/json",
        )

    async def admin_reset_stats(self, request: web.Request) -> web.StreamResponse:
        self.stats.reset()
        self.faults.applied.clear()
        return web.Response(status=204)

    async def admin_calls(self, request: web.Request) -> web.StreamResponse:
        if not _from_loopback(request):
            return _json(403, {"code": -1, "description": "the call log answers loopback callers only"},
                         content_type="application/json")
        calls = [entry.to_json() for entry in self.stats.calls]
        return _json(200, {"calls": calls, "dropped": self.stats.calls_dropped}, content_type="application/json")

    async def admin_clear_calls(self, request: web.Request) -> web.StreamResponse:
        if not _from_loopback(request):
            return _json(403, {"code": -1, "description": "the call log answers loopback callers only"},
                         content_type="application/json")
        self.stats.clear_calls()
        return web.Response(status=204)

    async def admin_issue(self, request: web.Request) -> web.StreamResponse:
        """``{"sslIds": [...]}``: issue those pending orders now (loopback callers only)."""
        if not _from_loopback(request):
            return _json(403, {"code": -1, "description": "issuing on demand answers loopback callers only"},
                         content_type="application/json")
        try:
            body = await request.json()
        except ValueError:
            body = None
        ids = body.get("sslIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return _json(400, {"code": -1, "description": "send {\"sslIds\": [<order id>, ...]}"},
                         content_type="application/json")
        return _json(200, {"issued": self.manager.issue_now(ids)}, content_type="application/json")

    async def admin_ca(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self.manager.ca.certificate_pem.encode("ascii"), headers={"Content-Type": "application/x-pem-file"})


def _fault_response(request: web.Request, rule: FaultRule) -> web.StreamResponse:
    if rule.kind in ("drop", "drop_reply"):
        return _drop(request)
    if rule.kind == "throttle":
        body = rule.body if rule.body is not None else {"code": 429, "description": "Rate limited"}
        response = _fault_body(429, body)
        response.headers["Retry-After"] = _retry_after(rule.retry_after)
        return response
    body = rule.body if rule.body is not None else {"code": -14, "description": "Unknown error. (simulated fault)"}
    return _fault_body(rule.status, body)


def _fault_body(status: int, body: object) -> web.Response:
    if isinstance(body, str):
        return web.Response(status=status, text=body, content_type="text/plain")
    return _json(status, body)


def _retry_after(seconds: float) -> str:
    # Retry-After is an integer number of seconds; round up so clients never retry early.
    whole = int(seconds)
    return str(whole if whole == seconds else whole + 1)


def build_app(
    manager: SimulatedCertificateManager,
    *,
    auth: Authenticator,
    faults: FaultInjector,
    stats: SimulatorStats,
    sleep: Sleep,
) -> web.Application:
    """The aiohttp application serving SCM under both prefixes plus the token and admin routes."""
    routes = _Routes(manager, auth=auth, faults=faults, stats=stats, sleep=sleep)
    app = web.Application(middlewares=[_admin_on_loopback_only, _http_errors_as_json])
    for prefix in API_PREFIXES:
        private = prefix == "/private/api"

        def add(method: str, path: str, name: str, operation: Operation) -> None:
            app.router.add_route(method, prefix + path, routes.scm(name, operation, private=private))

        # Literal segments before {ssl_id}: aiohttp matches routes in registration order.
        add("GET", "/ssl/v1/types", "types", routes.types)
        add("GET", "/ssl/v1/customFields", "customFields", routes.custom_fields)
        add("POST", "/ssl/v1/enroll", "enroll", routes.enroll)
        add("GET", "/ssl/v1/collect/{ssl_id}", "collect", routes.collect_query)
        add("GET", "/ssl/v1/collect/{ssl_id}/{format}", "collect", routes.collect_path)
        add("POST", "/ssl/v1/revoke/serial/{serial}", "revoke", routes.revoke_serial)
        add("POST", "/ssl/v1/revoke/{ssl_id}", "revoke", routes.revoke)
        add("POST", "/ssl/v1/renewById/{ssl_id}", "renew", routes.renew_by_id)
        add("POST", "/ssl/v1/renew/{renew_id}", "renew", routes.renew)
        add("POST", "/ssl/v1/replace/{ssl_id}", "replace", routes.replace)
        add("POST", "/ssl/v1/approve/{ssl_id}", "approve", routes.approve)
        add("POST", "/ssl/v1/decline/{ssl_id}", "decline", routes.decline)
        add("GET", "/ssl/v1", "list", routes.search)
        add("HEAD", "/ssl/v1", "list", routes.search)
        add("GET", "/ssl/v1/{ssl_id}", "details", routes.details)
        add("GET", "/organization/v1", "organizations", routes.organizations)
        add("GET", "/organization/v1/{org_id}", "organizations", routes.organization)
    for path in TOKEN_PATHS:
        app.router.add_post(path, routes.token)
    app.router.add_get("/__simulator/faults", routes.admin_faults)
    app.router.add_post("/__simulator/faults", routes.admin_add_faults)
    app.router.add_delete("/__simulator/faults", routes.admin_clear_faults)
    app.router.add_delete("/__simulator/faults/{rule_id}", routes.admin_remove_fault)
    app.router.add_get("/__simulator/stats", routes.admin_stats)
    app.router.add_delete("/__simulator/stats", routes.admin_reset_stats)
    app.router.add_get("/__simulator/calls", routes.admin_calls)
    app.router.add_delete("/__simulator/calls", routes.admin_clear_calls)
    app.router.add_post("/__simulator/issue", routes.admin_issue)
    app.router.add_get("/__simulator/ca.pem", routes.admin_ca)
    return app
