"""X.509 values the gateway reads from callers and CAs: CSRs, SANs, DNs, serials, validity.

This package owns the text ⇄ typed-value boundary for everything certificate
shaped. Its functions are pure (no I/O, no clock: ``now`` is passed in), and a
bad caller input raises :class:`~service.errors.InvalidRequest` whose
violations name the CAGW JSON field (``csr``, ``subjectAltNames[1].value``,
``optionalCertificateRequestDetails.validityPeriod``, ``serialNumber``, ``dn``).

Decisions a reader should know:

* **DN order.** An RFC 4514 string lists the *last* RDN of the certificate's
  sequence first (``CN=a,O=b,C=US`` is encoded C, O, CN). :func:`parse_dn`
  reverses accordingly, and every string this module prints (the normal form
  and the CAGW forms) uses the same most-specific-first order as CAGW's
  samples, so a DN copied from any of them parses back to the same
  :class:`~cryptography.x509.Name`.
* **DN normal form** (:func:`normalize_dn`, the ledger's subject key): RDNs in
  the order above; attribute types as lower-case short names (dotted OIDs for
  unknown types); values NFKC-normalised, case-folded, inner whitespace
  collapsed and outer whitespace dropped (LDAP's caseIgnoreMatch / RFC 4518,
  which is how directory users expect DNs to compare); the attributes of a
  multi-valued RDN sorted. RDN order stays significant, as in X.500.
* **Validity arithmetic.** A year is 365 days, a month 30 days, a week 7 days.
  Every request form resolves to an interval; the requested lifetime is the
  time from ``max(start, now)`` to its end, because a CA starts a
  certificate at issuance and cannot back- or post-date it.
* **SANs a CA cannot carry** are the connector's business (its optional
  ``SubjectAltNameTypes``); this package parses every CAGW SAN type.
"""

from __future__ import annotations

from service.x509.certificate import CertificateInfo, describe_certificate
from service.x509.csr import ParsedCSR, check_key_allowed, parse_csr
from service.x509.dn import DNForms, attribute_mismatch, dn_strings, normalize_dn, parse_dn
from service.x509.pem import der_from_pem_bundle, pem_bundle
from service.x509.san import (
    SAN_TYPES,
    SubjectAltNameValue,
    normalize_dns_name,
    parse_subject_alt_names,
)
from service.x509.serial import format_serial, parse_serial
from service.x509.validity import (
    choose_term,
    format_validity,
    is_zero_duration,
    lifetime_days,
    longest_term_within,
    parse_validity_period,
    whole_days_within,
)

__all__ = [
    "SAN_TYPES",
    "CertificateInfo",
    "DNForms",
    "ParsedCSR",
    "SubjectAltNameValue",
    "attribute_mismatch",
    "check_key_allowed",
    "choose_term",
    "der_from_pem_bundle",
    "describe_certificate",
    "dn_strings",
    "format_serial",
    "format_validity",
    "is_zero_duration",
    "lifetime_days",
    "longest_term_within",
    "normalize_dns_name",
    "normalize_dn",
    "parse_csr",
    "parse_dn",
    "parse_serial",
    "parse_subject_alt_names",
    "parse_validity_period",
    "pem_bundle",
    "whole_days_within",
]
