"""SCM error answers: ``{"code": <int>, "description": "..."}`` with an HTTP status.

The simulator's business code raises :class:`ScmError`; only ``app.py`` turns it
into an HTTP response. Codes and texts follow the SCM error table (reference
§3); the ``code_*`` helpers keep each text in one place.
"""

from __future__ import annotations

__all__ = [
    "ScmError",
    "already_revoked",
    "bad_format",
    "bad_value",
    "csr_decode_error",
    "csr_invalid",
    "csr_not_base64",
    "ecc_not_allowed",
    "invalid_term",
    "key_too_small",
    "malformed_body",
    "missing_custom_field",
    "missing_field",
    "not_issued_for_revoke",
    "organization_not_found",
    "renew_wrong_state",
    "revoked_cannot_download",
    "serial_not_found",
    "state_not_issued",
    "unknown_cert_type",
    "unknown_org_id",
    "unknown_ssl_id",
    "unknown_user",
    "unsupported_algorithm",
    "unsupported_key_size",
    "wrong_state_to_approve",
]


class ScmError(Exception):
    """An SCM error answer: HTTP ``status`` plus the body's ``code`` and ``description``."""

    def __init__(self, status: int, code: int, description: str) -> None:
        super().__init__(f"{status} {code} {description}")
        self.status = status
        self.code = code
        self.description = description

    def body(self) -> dict[str, object]:
        """The JSON body SCM sends for this error."""
        return {"code": self.code, "description": self.description}


def unknown_user() -> ScmError:
    return ScmError(401, -16, "Unknown user")


def missing_field(name: str) -> ScmError:
    return ScmError(400, -7, f"{name} is required but missing.")


def bad_value(name: str) -> ScmError:
    return ScmError(400, -1601, f"Field '{name}' has invalid value.")


def malformed_body() -> ScmError:
    # SCM's table has no code for an unparsable body; -1 is its "unknown error".
    return ScmError(400, -1, "Malformed request body: expected JSON.")


def csr_not_base64() -> ScmError:
    return ScmError(400, -9, "The CSR is not valid Base-64 data!")


def csr_decode_error() -> ScmError:
    return ScmError(400, -10, "Error while decoding CSR.")


def csr_invalid() -> ScmError:
    return ScmError(400, -138, "Invalid CSR.")


def unsupported_algorithm() -> ScmError:
    return ScmError(400, -11, "The CSR uses an unsupported algorithm!")


def unsupported_key_size() -> ScmError:
    return ScmError(400, -13, "The CSR uses an unsupported key size!")


def key_too_small(minimum: int) -> ScmError:
    return ScmError(400, -141, f"The public key size in the CSR should be {minimum} bits minimum.")


def ecc_not_allowed() -> ScmError:
    return ScmError(400, -170, "Based on the customer configuration, ECC CSRs are not allowed.")


def invalid_term() -> ScmError:
    return ScmError(400, -36, "The validity period (term) is invalid for this certificate profile.")


def unknown_cert_type() -> ScmError:
    return ScmError(400, -39, "The certificate profile id is invalid!")


def unknown_org_id() -> ScmError:
    return ScmError(400, -639, "Supplied orgid invalid..")


def organization_not_found(org: str, *, status: int = 404) -> ScmError:
    return ScmError(status, -1023, f"Organization '{org}' not found.")


def missing_custom_field() -> ScmError:
    return ScmError(400, -62, "Missing mandatory custom field!")


def unknown_ssl_id(ssl_id: str) -> ScmError:
    return ScmError(404, -124, f"Wrong SSL certificate id {ssl_id}.")


def serial_not_found(what: str) -> ScmError:
    return ScmError(404, -5101, f"Certificate not found. {what}")


def bad_format(fmt: str) -> ScmError:
    return ScmError(400, -126, f"Unknown SSL certificate file format requested: {fmt}")


def revoked_cannot_download() -> ScmError:
    return ScmError(400, -110, "Certificate has been revoked and cannot be downloaded.")


def state_not_issued(status: str) -> ScmError:
    return ScmError(400, -130, f"SSL state is not 'ISSUED': {status}")


def not_issued_for_revoke() -> ScmError:
    return ScmError(400, -102, "Only issued certificates could be revoked.")


def already_revoked() -> ScmError:
    return ScmError(400, -159, "Your certificate already revoked")


def renew_wrong_state(status: str) -> ScmError:
    return ScmError(400, -105, f"Error was occurred while renewing cert. Status = {status}")


def wrong_state_to_approve(status: str, *, action: str = "approved") -> ScmError:
    return ScmError(400, -1112, f"Certificate can't be {action} cause it has state = {status}")
