"""Orders whose key the gateway makes (``requiredFormat: PKCS12``): their checks, their key, their answer.

Such a request carries no CSR. Its subject comes from
``optionalCertificateRequestDetails.subjectDn`` and/or ``subjectVariables``,
its SANs from ``subjectAltNames``, its key type from the profile (the first
allowed one, unless ``properties.keyType`` / ``properties.keySize`` choose
another allowed one), and its password from ``requiredFormat.protection``.

After validation, :func:`attach_server_key` makes the key and the CSR in
memory and puts the key, encrypted under the caller's password
(:mod:`service.x509.pbes2`), into the order the ledger records, so the key is
never anywhere in clear but in this process's memory. :func:`open_keystore`
builds the PKCS#12 answer from the stored key once the certificate is issued,
which needs the password again: the engine keeps it in memory while the
order's task runs, and after that (or after a restart) the caller gives it to
``GetEnrollment``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping

from cryptography import x509 as crypto_x509
from cryptography.hazmat.primitives import serialization

from service import x509 as x
from service.authorities import ManagedCA
from service.catalog import ResolvedProfile
from service.config import Secret
from service.enrollment.channel import OrderEvent
from service.enrollment.violations import Violations
from service.errors import FailedPrecondition, FieldViolation, InvalidRequest, Unimplemented
from service.ledger.base import Ledger, NewOrder, ServerKey
from service.x509.pbes2 import WrongPassword, decrypt_private_key, encrypt_private_key
from service.x509.server_keys import (
    KeySpec,
    Pkcs12Encryption,
    attribute_forms,
    build_pkcs12,
    choose_key_spec,
    generate_key,
    make_csr,
    subject_from_variables,
)


__all__ = [
    "KEY_SIZE_PROPERTY",
    "KEY_TYPE_PROPERTY",
    "MAX_PASSWORD",
    "PASSWORD_PROTECTION",
    "PKCS12",
    "attach_server_key",
    "check_protection",
    "open_keystore",
    "server_key_fingerprint",
    "server_key_refusal",
    "server_key_spec",
    "server_key_subject",
    "wants_server_key",
]

PKCS12 = "PKCS12"
PASSWORD_PROTECTION = "PasswordProtection"
MAX_PASSWORD = 256
KEY_TYPE_PROPERTY = "keyType"
KEY_SIZE_PROPERTY = "keySize"
_PROTECTION = "requiredFormat.protection"
_SUBJECT_DN = "optionalCertificateRequestDetails.subjectDn"


def wants_server_key(required_format: str) -> bool:
    return required_format.strip().upper() == PKCS12


def server_key_refusal(ca: ManagedCA) -> Unimplemented | None:
    """The refusal of a PKCS12 request on a CA that has server-side keys switched off."""
    if ca.settings.gateway.server_side_keys:
        return None
    return Unimplemented(f"requiredFormat PKCS12 needs server-side key generation, which CA {ca.id} does not "
                         "offer (gateway.server-side-keys: false): send a CSR and ask for PEM or X509",
                         reason="SERVER_KEYGEN_NOT_OFFERED")


def check_protection(protection_type: str, password: Secret | None, problems: Violations, *,
                     field: str = _PROTECTION) -> None:
    """``{type: PasswordProtection, password}`` with a password of 1-256 characters."""
    if password is None and not protection_type:
        problems.add(field, f"is required with requiredFormat PKCS12: {{\"type\": \"{PASSWORD_PROTECTION}\", "
                     "\"password\": \"...\"}}")
        return
    if protection_type and protection_type != PASSWORD_PROTECTION:
        problems.add(f"{field}.type", f"must be {PASSWORD_PROTECTION}", protection_type[:64])
    secret = "" if password is None else password.reveal()
    if not secret:
        problems.add(f"{field}.password", "is required and must not be empty: it protects the PKCS#12 and the key")
    elif len(secret) > MAX_PASSWORD:
        problems.add(f"{field}.password", f"is longer than {MAX_PASSWORD} characters")


def server_key_subject(subject_dn: str, variables: tuple[tuple[str, str], ...],
                       problems: Violations) -> crypto_x509.Name | None:
    """The subject to put in the CSR: ``subjectDn`` when given (every subject variable must then be
    one of its attributes), else the ``subjectVariables`` in the order given."""
    if any(not kind or not value for kind, value in variables):
        return None  # the generic check names them
    variables_name = problems.attempt(subject_from_variables, variables) if variables else None
    if variables and variables_name is None:
        return None
    if not subject_dn:
        if variables_name is None:
            problems.add("subjectVariables", f"give the subject (subjectVariables or {_SUBJECT_DN}): with "
                         "requiredFormat PKCS12 there is no CSR to take it from")
        return variables_name
    name = problems.attempt(x.parse_dn, subject_dn, field=_SUBJECT_DN)
    if name is not None and variables:
        present = attribute_forms(name)
        for index, (kind, value) in enumerate(variables):
            if not attribute_forms(subject_from_variables(((kind, value),))) <= present:
                problems.add(f"subjectVariables[{index}]", f"{kind}={value} is not in {_SUBJECT_DN}; give the "
                             "same subject in both, or only one of them", f"{kind}={value}"[:64])
    return name


def server_key_spec(profile: ResolvedProfile | None, properties: Mapping[str, str],
                    problems: Violations) -> KeySpec | None:
    """The key to make for ``profile``, as ``properties.keyType``/``keySize`` may choose."""
    if profile is None:
        return None
    algorithm = str(properties.get(KEY_TYPE_PROPERTY, "")).strip()
    size = str(properties.get(KEY_SIZE_PROPERTY, "")).strip()
    field = f"properties.{KEY_SIZE_PROPERTY if size and algorithm else KEY_TYPE_PROPERTY}"
    return problems.attempt(choose_key_spec, profile.key_types, algorithm=algorithm, size=size, field=field)


def server_key_fingerprint(*parts: str, request_id: str) -> str:
    """The duplicate key of a PKCS12 order. Its CSR is new each time, so only a caller's request id
    makes two requests the same order; without one, each request is an order of its own."""
    digest = hashlib.sha256()
    for part in (*parts, "server-key", request_id or str(uuid.uuid4())):
        data = part.encode()
        digest.update(len(data).to_bytes(4, "big") + data)
    return digest.hexdigest()


def _make(order: NewOrder, spec: KeySpec, password: bytes) -> tuple[str, bytes]:
    subject = x.parse_dn(order.options.get("subject_dn", ""))
    sans = [x.SubjectAltNameValue(san.type, san.value) for san in order.subject_alt_names]
    key = generate_key(spec)
    csr = make_csr(key, subject, sans)
    return csr.public_bytes(serialization.Encoding.PEM).decode(), encrypt_private_key(key, password)


async def attach_server_key(order: NewOrder, *, spec: KeySpec, password: Secret, retention: float,
                            now: dt.datetime) -> NewOrder:
    """``order`` with a fresh key's CSR and that key, encrypted under ``password``, kept until
    ``now + retention``. Key generation and the KDF cost up to a second: done in a thread."""
    csr_pem, blob = await asyncio.to_thread(_make, order, spec, password.reveal().encode())
    return dataclasses.replace(order, csr_pem=csr_pem,
                               server_key=ServerKey(blob, now + dt.timedelta(seconds=retention)))


def _pack(blob: bytes, password: bytes, certificate: bytes, chain: tuple[bytes, ...],
          encryption: Pkcs12Encryption, name: str) -> bytes:
    key = decrypt_private_key(blob, password)
    return build_pkcs12(key, certificate, chain, password, encryption=encryption, name=name)


async def open_keystore(ledger: Ledger, event: OrderEvent, password: Secret, *, encryption: Pkcs12Encryption,
                        field: str) -> bytes:
    """The PKCS#12 of an issued PKCS12 order: its stored key (opened with ``password``, the field
    named ``field`` in errors), its certificate and, with ``includeCa``, its chain."""
    certificate = event.certificate
    assert certificate is not None
    stored = await ledger.get_server_key(event.order_id)
    if stored is None:
        raise FailedPrecondition(
            f"the key of enrollment {event.order_id} is no longer kept (the gateway deletes it after "
            f"gateway.server-side-key-retention); its certificate is still at "
            f"/v1/certificate-authorities/{event.order.ca_id}/certificates/{certificate.serial_number}",
            reason="SERVER_KEY_DELETED", metadata={"enrollment_id": event.order_id})
    chain = certificate.chain_der if event.order.options.include_ca else ()
    try:
        return await asyncio.to_thread(_pack, stored.encrypted_pkcs8, password.reveal().encode(),
                                       certificate.certificate_der, chain, encryption, certificate.subject_dn)
    except WrongPassword:
        raise InvalidRequest.of([FieldViolation(field, f"does not open the key of enrollment {event.order_id}: "
                                                "give the password its enrollment request gave")]) from None
