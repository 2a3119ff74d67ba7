"""``SectigoConnector``: the connector protocol of ``connectors/base.py`` on Sectigo's SSL API.

Each method is one (sometimes two) ``SectigoClient`` calls plus parsing into the
frozen result types. Reads (types, custom fields, collect, details, list) are
retried on transient failures; writes (enroll, revoke, renew, replace) are sent
once: when their answer is lost the gateway looks the order up with
:meth:`SectigoConnector.find_order_by_marker` instead of paying twice.

A collect answered HTTP 400 with a pending code (0, -1400, -183, -109, -103) is
not an error but ``CollectResult(pending_detail=…, pending_code=…)``; every other
error stays an error.

Revocation reasons: Sectigo accepts only unspecified (0), keyCompromise (1),
affiliationChanged (3), superseded (4) and cessationOfOperation (5). Any other
RFC 5280 reason raises ``SectigoValidationError`` before anything is sent; the
reason is never silently changed to one Sectigo takes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from cryptography.hazmat.primitives.serialization import Encoding

from service.config import CASettings
from service.connectors.base import (
    CAProfile,
    CollectRequest,
    CollectResult,
    CustomField,
    DetailsRequest,
    EnrollRequest,
    EnrollResult,
    IssuedCertificate,
    ListRequest,
    ListResult,
    OrderDetails,
    OrderStatus,
    RenewRequest,
    RenewResult,
    ReplaceRequest,
    RevokeRequest,
    SleepFunction,
    SubjectAltName,
)
from service.connectors.hooks import ExchangeHooks
from service.errors import Unimplemented

from . import codes, parsing
from .client import RetryPolicy, SectigoClient, SectigoResponse
from .errors import SectigoNotFound, SectigoOrderFailed, SectigoRejected, SectigoValidationError
from .settings import sectigo_properties

__all__ = ["MAX_PAGE_SIZE", "SAN_TYPES", "ReplaceRequest", "SectigoConnector", "subj_alt_names_item"]

_T = TypeVar("_T")

MAX_PAGE_SIZE = 200  # the largest ``size`` Sectigo's list accepts
MAX_REVOKE_REASON_LENGTH = 512
SAN_TYPES = frozenset({"dNSName", "iPAddress", "rfc822Name"})  # what SSL enroll's subjAltNames can carry
LEAF_FORMAT = "x509CO"  # the certificate only, PEM
CHAIN_FORMAT = "x509IOR"  # intermediates and root only, PEM (order rebuilt from signatures anyway)


class SectigoConnector:
    """The Sectigo connector of one CA.

    Example::

        async with SectigoConnector(ca=settings) as sectigo:
            order = await sectigo.enroll(EnrollRequest(csr_pem=csr, profile_id="1001", term_days=365,
                                                       common_name="www.example.com", comments="cagw:42"))
            result = await sectigo.collect(CollectRequest(order_id=order.order_id))
    """

    def __init__(
        self,
        *,
        ca: CASettings,
        retry: RetryPolicy = RetryPolicy(),
        sleep: SleepFunction = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        properties = sectigo_properties(ca)
        self._ca_id = ca.id
        self._org_id = properties.org_id
        self.client = SectigoClient(ca_id=ca.id, properties=properties, gateway=ca.gateway, retry=retry,
                                    sleep=sleep, rng=rng, clock=clock)

    @classmethod
    def from_settings(cls, ca: CASettings) -> SectigoConnector:
        """The registry's factory: the retry policy of the CA's ``gateway:`` block and real time."""
        return cls(ca=ca, retry=RetryPolicy(max_attempts=ca.gateway.retry_attempts,
                                            base_delay=ca.gateway.retry_base_delay))

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> SectigoConnector:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"SectigoConnector(ca_id={self._ca_id!r}, client={self.client!r})"

    def observe_exchanges(self, hooks: ExchangeHooks) -> None:
        """Hooks around each HTTP exchange with Sectigo (metrics, traces, ``traceparent``)."""
        self.client.observe_exchanges(hooks)

    # ------------------------------------------------------------ reads

    async def check(self) -> None:
        """One authenticated call (the org's cert types), not retried: a health probe should answer now."""
        await self.client.get_json("ssl/v1/types", operation="check", params=self._org_param(), retry=False)

    async def profiles(self) -> tuple[CAProfile, ...]:
        document, response = await self.client.get_json("ssl/v1/types", operation="list cert types",
                                                        params=self._org_param())
        return self._parsed(parsing.parse_profiles, document, response, "list cert types")

    async def custom_fields(self) -> tuple[CustomField, ...]:
        document, response = await self.client.get_json("ssl/v1/customFields", operation="list custom fields")
        return self._parsed(parsing.parse_custom_fields, document, response, "list custom fields")

    async def collect(self, request: CollectRequest) -> CollectResult:
        """The issued certificate and its chain, or what Sectigo said while it is not ready."""
        order_id = self._order_id(request.order_id)
        operation = f"collect {order_id}"
        try:
            leaf_response = await self._download(order_id, LEAF_FORMAT, operation)
        except SectigoRejected as exc:
            if codes.is_pending(exc.http_status or 0, exc.code):
                return CollectResult(pending_detail=exc.description or "not issued yet", pending_code=exc.code)
            if exc.code == codes.STATE_NOT_ISSUED_CODE:
                return await self._not_issued(order_id, exc)
            raise
        chain_response = await self._download(order_id, CHAIN_FORMAT, operation)
        try:
            leaf, *extra = parsing.parse_certificates(leaf_response.body)
            chain = parsing.order_certificates(leaf, [*extra, *parsing.parse_certificates(chain_response.body)])
        except ValueError as exc:
            raise self.client.bad_response(leaf_response, operation=operation, problem=str(exc)) from None
        return CollectResult(issued=IssuedCertificate(
            certificate_der=leaf.public_bytes(Encoding.DER),
            chain_der=tuple(certificate.public_bytes(Encoding.DER) for certificate in chain),
        ))

    async def details(self, request: DetailsRequest) -> OrderDetails:
        order_id = self._order_id(request.order_id)
        operation = f"details {order_id}"
        document, response = await self.client.get_json(f"ssl/v1/{order_id}", operation=operation)
        return self._parsed(parsing.parse_details, document, response, operation)

    async def list(self, request: ListRequest) -> ListResult:
        """One page of orders matching the filters; ``total`` is Sectigo's ``X-Total-Count``.

        ``size`` is clamped to Sectigo's maximum page of 200; the total tells how many remain.
        """
        params = {"size": str(max(1, min(request.size, MAX_PAGE_SIZE))), "position": str(max(0, request.position))}
        if request.common_name is not None:
            params["commonName"] = request.common_name
        if request.serial_number is not None:
            params["serialNumber"] = parsing.format_serial(request.serial_number)
        if request.status is not None:
            word = codes.status_filter(request.status)
            if word is None:
                raise Unimplemented(f"CA {self._ca_id}: Sectigo cannot list orders by status "
                                    f"{request.status.value!r} (it has no single status word for it)")
            params["status"] = word
        document, response = await self.client.get_json("ssl/v1", operation="list certificates", params=params)
        items = self._parsed(parsing.parse_order_summaries, document, response, "list certificates")
        total_header = response.headers.get("X-Total-Count", "").strip()
        # Without the header the total is unknown: count this page as if another might follow
        # (a full page), so a caller paging on `total` does not stop after page one.
        if total_header.isascii() and total_header.isdigit():
            total = int(total_header)
        else:
            total = request.position + len(items) + (1 if len(items) >= request.size else 0)
        return ListResult(items=items, total=total)

    async def find_order_by_marker(self, common_name: str, marker: str) -> OrderDetails | None:
        """The order for ``common_name`` whose ``comments`` contain ``marker``, or ``None``.

        Sectigo's list cannot search comments, so every order listed for the common name
        is a candidate and its details are read, newest (highest id) first. This is how an
        enroll whose answer was lost is found again before anything is sent twice.
        """
        if not marker:
            raise ValueError("an empty marker would match every order")
        candidates: list[str] = []
        position = 0
        while True:
            page = await self.list(ListRequest(common_name=common_name, position=position, size=MAX_PAGE_SIZE))
            candidates += [item.order_id for item in page.items]
            position += len(page.items)
            if not page.items or len(page.items) < MAX_PAGE_SIZE or position >= page.total:
                break
        for order_id in sorted(set(candidates), key=_numeric_first, reverse=True):
            try:
                details = await self.details(DetailsRequest(order_id=order_id))
            except SectigoNotFound:
                continue  # removed between the list and now
            if marker in details.comments:
                return details
        return None

    # ------------------------------------------------------------ writes (never resent blindly)

    async def enroll(self, request: EnrollRequest) -> EnrollResult:
        """Submit an order; the answer is its Sectigo ``sslId`` (and ``renewId``)."""
        body: dict[str, Any] = {
            "orgId": self._org_id,
            "csr": request.csr_pem.strip(),
            "certType": self._cert_type(request.profile_id),
            "term": request.term_days,
        }
        if request.subject_alt_names:
            body["subjAltNames"] = self._san_list(request.subject_alt_names)
        if request.comments:
            body["comments"] = request.comments
        if request.external_requester:
            body["externalRequester"] = request.external_requester
        if request.custom_fields:
            body["customFields"] = [{"name": name, "value": value} for name, value in request.custom_fields.items()]
        response = await self.client.request("POST", "ssl/v1/enroll", operation="enroll", json_body=body,
                                             idempotent=False)
        document = self.client.decode_json(response, operation="enroll")
        ssl_id = document.get("sslId") if isinstance(document, dict) else None
        if isinstance(ssl_id, bool) or not isinstance(ssl_id, (int, str)) or not str(ssl_id).strip():
            raise self.client.bad_response(response, operation="enroll", problem="no sslId in the answer")
        renew_id = document.get("renewId")
        return EnrollResult(order_id=str(ssl_id).strip(), renew_id=renew_id if isinstance(renew_id, str) else "")

    async def revoke(self, request: RevokeRequest) -> None:
        """Revoke by order id, or by serial number when the request has no order id."""
        code = codes.revoke_reason_code(request.reason)
        if code is None:
            allowed = ", ".join(reason.cagw_name for reason in codes.ALLOWED_REVOKE_REASONS)
            raise SectigoValidationError(
                f"CA {self._ca_id}: Sectigo does not accept the revocation reason {request.reason.cagw_name} "
                f"(accepted: {allowed})"
            )
        text = request.comment.strip() or request.reason.cagw_name
        if len(text) > MAX_REVOKE_REASON_LENGTH:
            raise SectigoValidationError(f"CA {self._ca_id}: the revocation comment is longer than "
                                         f"{MAX_REVOKE_REASON_LENGTH} characters, Sectigo's limit")
        if request.order_id:
            order_id = self._order_id(request.order_id)
            path, operation = f"ssl/v1/revoke/{order_id}", f"revoke {order_id}"
        elif request.serial_number is not None:
            serial = parsing.format_serial(request.serial_number)
            path, operation = f"ssl/v1/revoke/serial/{quote(serial, safe=':')}", f"revoke serial {serial}"
        else:
            raise ValueError("RevokeRequest needs an order_id or a serial_number")
        await self.client.request("POST", path, operation=operation, json_body={"reasonCode": code, "reason": text},
                                  idempotent=False)

    async def renew(self, request: RenewRequest) -> RenewResult:
        """Renew an order by its id (``renewById``); the answer is the new order's id."""
        order_id = self._order_id(request.order_id)
        operation = f"renew {order_id}"
        body = {"csr": request.csr_pem.strip()} if request.csr_pem else {}
        response = await self.client.request("POST", f"ssl/v1/renewById/{order_id}", operation=operation,
                                             json_body=body, idempotent=False)
        document = self.client.decode_json(response, operation=operation)
        new_id = document.get("sslId") if isinstance(document, dict) else None
        if isinstance(new_id, bool) or not isinstance(new_id, (int, str)) or not str(new_id).strip():
            raise self.client.bad_response(response, operation=operation, problem="no sslId in the answer")
        return RenewResult(order_id=str(new_id).strip())

    async def replace(self, request: ReplaceRequest) -> None:
        """Re-issue an order with a new CSR; Sectigo keeps the order id (answer 204)."""
        order_id = self._order_id(request.order_id)
        if not request.reason.strip():
            raise SectigoValidationError(f"CA {self._ca_id}: replace needs a reason")
        body: dict[str, Any] = {"csr": request.csr_pem.strip(), "reason": request.reason.strip()}
        if request.common_name:
            body["commonName"] = request.common_name
        if request.subject_alt_names:
            body["subjectAlternativeNames"] = list(request.subject_alt_names)  # an array here, unlike enroll
        await self.client.request("POST", f"ssl/v1/replace/{order_id}", operation=f"replace {order_id}",
                                  json_body=body, idempotent=False)

    # ------------------------------------------------------------ helpers

    async def _not_issued(self, order_id: str, refusal: SectigoRejected) -> CollectResult:
        """Collect said "state is not ISSUED" (-130): the order's status tells waiting from failed."""
        details = await self.details(DetailsRequest(order_id=order_id))
        if details.status in (OrderStatus.REQUESTED, OrderStatus.APPLIED, OrderStatus.ISSUED):
            # ISSUED here is a race with issuance: the next collect gets the certificate.
            return CollectResult(pending_detail=f"{refusal.description} (status {details.ca_status})".strip(),
                                 pending_code=refusal.code)
        if details.status is not OrderStatus.FAILED:
            raise refusal
        raise SectigoOrderFailed(
            f"CA {self._ca_id}: order {order_id} will not be issued: its status is {details.ca_status or 'unknown'}",
            http_status=refusal.http_status, ca_code=refusal.code, ca_description=refusal.description,
        ) from refusal

    @property
    def san_types(self) -> frozenset[str]:
        """SSL enroll carries DNS names, IP addresses and e-mail addresses in ``subjAltNames``."""
        return SAN_TYPES

    @property
    def max_comment_length(self) -> int:
        return MAX_REVOKE_REASON_LENGTH

    def _san_list(self, sans: tuple[SubjectAltName, ...]) -> str:
        """Sectigo's one comma-separated string. A type Sectigo cannot carry must have been refused
        before (here it is a bug, never a silent drop)."""
        items = [subj_alt_names_item(san) for san in sans]
        if None in items:
            raise SectigoValidationError(f"CA {self._ca_id}: subjAltNames cannot carry "
                                         + ", ".join(san.type for san in sans if subj_alt_names_item(san) is None))
        return ",".join(item for item in items if item is not None)

    def _org_param(self) -> dict[str, str]:
        return {"organizationId": str(self._org_id)}

    async def _download(self, order_id: str, fmt: str, operation: str) -> SectigoResponse:
        response = await self.client.request("GET", f"ssl/v1/collect/{order_id}", operation=operation,
                                             params={"format": fmt}, idempotent=True,
                                             accept="application/octet-stream, application/json;q=0.9, */*;q=0.8")
        if not response.body.strip():
            raise self.client.bad_response(response, operation=operation, problem=f"empty {fmt} download")
        return response

    def _order_id(self, order_id: str) -> str:
        """Sectigo order ids are numbers; anything else cannot exist (and must not reach a URL path)."""
        text = order_id.strip()
        if not text.isdigit():
            raise SectigoNotFound(f"CA {self._ca_id}: {order_id!r} is not a Sectigo order id (sslId)")
        return text

    def _cert_type(self, profile_id: str) -> int:
        try:
            return int(profile_id.strip())
        except ValueError:
            raise SectigoValidationError(
                f"CA {self._ca_id}: profile id {profile_id!r} is not a Sectigo cert type number"
            ) from None

    def _parsed(self, parse: Callable[[Any], _T], document: Any, response: SectigoResponse, operation: str) -> _T:
        try:
            return parse(document)
        except (ValueError, TypeError) as exc:
            raise self.client.bad_response(response, operation=operation, problem=str(exc)) from None


class _TypedName(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def value(self) -> str: ...


def subj_alt_names_item(san: _TypedName) -> str | None:
    """The item for SSL enroll's comma-separated ``subjAltNames``, or ``None`` when it cannot carry the type.

    DNS names, IP addresses and e-mail addresses go as they are; validated,
    none of them holds a comma. ``uniformResourceIdentifier``, ``directoryName``,
    ``registeredID`` and a CSR's ``otherName`` have no place in that string.
    """
    if san.type not in SAN_TYPES or "," in san.value:
        return None
    return san.value


def _numeric_first(order_id: str) -> tuple[int, str]:
    return (int(order_id) if order_id.isdigit() else -1, order_id)
