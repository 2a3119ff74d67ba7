"""How this package reports a bad caller value: one InvalidRequest naming the CAGW field."""

from __future__ import annotations

from service.errors import FieldViolation, InvalidRequest

_VALIDITY_FIELD = "optionalCertificateRequestDetails.validityPeriod"
_MAX_ECHO = 256  # longest caller value copied into a violation


def _violation(field: str, description: str, value: str = "") -> InvalidRequest:
    if len(value) > _MAX_ECHO:
        value = value[:_MAX_ECHO] + "…"
    return InvalidRequest.of([FieldViolation(field, description, value)])
