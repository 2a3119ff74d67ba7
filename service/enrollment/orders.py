"""What the engine keeps of an order beyond the ledger's columns, typed: ``OrderOptions`` and ``OrderView``.

The ledger stores the options as opaque JSON (string values). The shape is
the one every gateway release wrote, so rows of older releases read back the
same::

    {"format": "PEM", "include_ca": "true", "subject_dn": "CN=www.example.com",
     "custom-field.<name>": "...", "external-requester": "...", "renewal_of_ca_order": "...",
     "reissue_reason": "...", "server_key": "RSA 2048", "auto_renew": "true"}

(``format`` is ``PKCS12`` and ``server_key`` names the key type when the
gateway made the key; the key itself is never in the options.)

``OrderOptions.to_ledger`` and ``OrderOptions.from_ledger`` are the only
readers and writers of that shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from service.ledger.base import AUTO_RENEW_OPTION, OrderRecord

__all__ = ["FORMATS", "Format", "OrderOptions", "OrderView"]

Format = Literal["PEM", "X509", "PKCS12"]
FORMATS: tuple[Format, ...] = ("PEM", "X509", "PKCS12")

_FORMAT = "format"
_INCLUDE_CA = "include_ca"
_SUBJECT_DN = "subject_dn"
_CUSTOM_FIELD = "custom-field."
_EXTERNAL_REQUESTER = "external-requester"
_RENEWAL_OF_CA_ORDER = "renewal_of_ca_order"
_REISSUE_REASON = "reissue_reason"
_SERVER_KEY = "server_key"
_AUTO_RENEW = AUTO_RENEW_OPTION  # absent: the order made no choice of automatic renewal (its profile's)


@dataclass(frozen=True)
class OrderOptions:
    """How to answer about an order, and what to tell the CA beyond the CSR."""

    required_format: Format = "PEM"  # the certificate's form in the answer
    include_ca: bool = True  # the chain goes with the certificate
    subject_dn: str = ""  # the subject to show the caller, as the caller wrote it (not normalised)
    custom_fields: Mapping[str, str] = field(default_factory=dict)  # the CA's custom fields, by name
    external_requester: str = ""
    renewal_of_ca_order: str = ""  # the CA order a renewal renews (or a reissue issues again)
    reissue_reason: str = ""  # what a reissue tells the CA
    server_key: str = ""  # PKCS12: the key type the gateway made ("RSA 2048", "EC P-256")
    auto_renew: bool | None = None  # properties.AutomaticRenewal; None: the profile decides

    def to_ledger(self) -> dict[str, str]:
        """The ledger's JSON shape (see the module docstring)."""
        stored = {_FORMAT: self.required_format, _INCLUDE_CA: "true" if self.include_ca else "false",
                  _SUBJECT_DN: self.subject_dn}
        stored.update({_CUSTOM_FIELD + name: value for name, value in self.custom_fields.items()})
        if self.external_requester:
            stored[_EXTERNAL_REQUESTER] = self.external_requester
        if self.renewal_of_ca_order:
            stored[_RENEWAL_OF_CA_ORDER] = self.renewal_of_ca_order
        if self.reissue_reason:
            stored[_REISSUE_REASON] = self.reissue_reason
        if self.server_key:
            stored[_SERVER_KEY] = self.server_key
        if self.auto_renew is not None:
            stored[_AUTO_RENEW] = "true" if self.auto_renew else "false"
        return stored

    @classmethod
    def from_ledger(cls, stored: Mapping[str, str]) -> OrderOptions:
        """Read the ledger's JSON shape back; a missing key takes its default (PEM, with the chain)."""
        return cls(
            required_format=next((known for known in FORMATS if known == stored.get(_FORMAT)), "PEM"),
            include_ca=stored.get(_INCLUDE_CA, "true") == "true",
            subject_dn=stored.get(_SUBJECT_DN, ""),
            custom_fields={key[len(_CUSTOM_FIELD):]: value for key, value in stored.items()
                           if key.startswith(_CUSTOM_FIELD)},
            external_requester=stored.get(_EXTERNAL_REQUESTER, ""),
            renewal_of_ca_order=stored.get(_RENEWAL_OF_CA_ORDER, ""),
            reissue_reason=stored.get(_REISSUE_REASON, ""),
            server_key=stored.get(_SERVER_KEY, ""),
            auto_renew={"true": True, "false": False}.get(stored.get(_AUTO_RENEW, "")),
        )


@dataclass(frozen=True)
class OrderView:
    """What an answer about an order shows besides its state. Fixed once the order is recorded,
    so every event carries it and no watcher reads the ledger to answer."""

    id: str
    ca_id: str
    profile_id: str
    requested_dn: str  # normalised
    options: OrderOptions = OrderOptions()

    @classmethod
    def of(cls, order: OrderRecord) -> OrderView:
        return cls(id=order.id, ca_id=order.ca_id, profile_id=order.profile_id, requested_dn=order.requested_dn,
                   options=OrderOptions.from_ledger(order.options))

    @property
    def subject_dn(self) -> str:
        """The subject to show while the order has no certificate."""
        return self.options.subject_dn or self.requested_dn
