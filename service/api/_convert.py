"""Translation shared by the certificate and subject servicers: ledger records → CAGW messages, actions, ``$fields``.

``$fields`` (cagw-api.md §4.1) is a comma-separated list of dotted paths into
the response, JSON names (``certificate.certificateData``) or proto names.
What is supported, minimal but real:

* ``-path`` removes that member: any field at any depth, through singular and
  repeated messages (``-certificate.certificateData``, ``-chain``,
  ``-events.certificate``, ``-certificate.subjectPublicKeyInfo``);
* a positive ``path`` asks for an optional member; every member is already in
  the default answer, so it changes nothing;
* unknown paths are ignored, not refused.

Over REST a removed string or message is absent (the shim leaves out every
field that has no value); a removed list is empty.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import cast

from cagw.v1 import certificates_pb2, common_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from service.certificates import ActionInput, RevokeOrder, certificate_status
from service.errors import FieldViolation, InvalidRequest
from service.ledger.base import CertificateRecord
from service.x509 import describe_certificate

__all__ = [
    "ACTION_COMPLETED",
    "FieldProjection",
    "action_input",
    "action_message",
    "base64_der",
    "certificate_message",
    "chain_messages",
    "iso_z",
]

ACTION_COMPLETED = "COMPLETED"


def iso_z(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with ``Z``; microseconds only when there are some (``2024-03-05T22:43:23.429157Z``)."""
    moment = moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def certificate_message(record: CertificateRecord, *, now: dt.datetime) -> certificates_pb2.Certificate:
    """The CAGW certificate object (cagw-api.md §4.8) of a stored certificate."""
    info = describe_certificate(record.certificate_der)
    message = certificates_pb2.Certificate(
        status=certificate_status(record, now),
        version_number=info.version,
        serial_number=info.serial_hex,
        signature_alg_id=info.signature_algorithm_oid,
        issuer_name=info.issuer.cagw_lowercase,
        subject_name=info.subject.cagw_lowercase,
        rfc2253_encoded_subject_name=info.subject.rfc2253_encoded,
        rfc2253_escaped_subject_name=info.subject.rfc2253_escaped,
        validity_period=info.validity_period,
        subject_public_key_info=certificates_pb2.SubjectPublicKeyInfo(
            public_key_alg=info.public_key_algorithm, subject_public_key=info.subject_public_key),
        certificate_signature_alg=info.signature_algorithm_name,
        certificate_data=info.certificate_data,
    )
    if record.status == "revoked":
        message.revocation_info.CopyFrom(certificates_pb2.RevocationInfo(
            comment=record.revocation_comment, reason=record.revocation_reason,
            revocation_date=iso_z(record.revoked_at) if record.revoked_at else "",
            compromise_date=iso_z(record.compromise_date) if record.compromise_date else ""))
    return message


def base64_der(der: bytes) -> str:
    """Standard base64 without line breaks, CAGW's form of every binary object."""
    return base64.b64encode(der).decode("ascii")


def chain_messages(record: CertificateRecord) -> list[common_pb2.CertificateData]:
    """The stored chain above the certificate, issuer first, as base64 DER."""
    return [common_pb2.CertificateData(certificate_data=base64_der(der)) for der in record.chain_der]


def action_input(action: common_pb2.Action) -> ActionInput:
    """The caller's action as plain values for the core (which validates them). A ``csr`` is read by
    ``ReissueAction`` alone: on any other action it is refused, not ignored."""
    if action.csr:
        kind = action.type.strip() or "an action without a type"
        raise InvalidRequest.of([FieldViolation("action.csr", f"is only read by ReissueAction on a certificate, "
                                                f"not by {kind}")])
    return ActionInput(type=action.type.strip(), reason=action.reason, comment=action.comment,
                       compromise_date=action.compromise_date, force=action.force)


def action_message(requested: common_pb2.Action, order: RevokeOrder) -> common_pb2.Action:
    """CAGW's ActionResponse action: a fresh id, ``COMPLETED``, the reason in CAGW spelling, the rest echoed.

    ``succeedIfAlreadyInRequestedState`` is always true: a proto3 bool cannot
    tell "false" from "absent", and CAGW clients expect an already revoked
    certificate to answer success.
    """
    return common_pb2.Action(
        type=requested.type.strip(), id=str(uuid.uuid4()), status=ACTION_COMPLETED, reason=order.reason.cagw_name,
        comment=order.comment, compromise_date=order.compromise_date, succeed_if_already_in_requested_state=True,
        properties=dict(requested.properties))


@dataclass(frozen=True)
class FieldProjection:
    """A parsed ``$fields`` value; see the module docstring for what it supports."""

    excluded: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def parse(cls, text: str) -> FieldProjection:
        excluded = []
        for item in text.split(","):
            path = item.strip()
            if path.startswith("-") and path[1:].strip():
                excluded.append(tuple(part.strip() for part in path[1:].split(".")))
        return cls(tuple(excluded))

    def excludes(self, path: str) -> bool:
        """True when ``path`` (JSON names, dotted) or one of its parents is removed."""
        parts = tuple(path.split("."))
        return any(parts[: len(removed)] == removed for removed in self.excluded)

    def apply(self, message: Message) -> None:
        """Remove the excluded members from ``message`` in place."""
        for path in self.excluded:
            _clear(message, path)


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    found = descriptor.fields_by_name.get(name)
    if found is None:
        found = next((f for f in descriptor.fields if f.json_name == name), None)
    return found


def _clear(message: Message, path: tuple[str, ...]) -> None:
    field = _field(cast(Descriptor, message.DESCRIPTOR), path[0])
    if field is None:
        return  # unknown paths are ignored (cagw-api.md §4.1)
    if len(path) == 1:
        message.ClearField(field.name)
        return
    target = field.message_type
    if field.type != FieldDescriptor.TYPE_MESSAGE or target is None or target.GetOptions().map_entry:
        return
    if field.is_repeated:
        for element in getattr(message, field.name):
            _clear(element, path[1:])
    elif message.HasField(field.name):
        _clear(getattr(message, field.name), path[1:])
