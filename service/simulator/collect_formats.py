"""The SCM collect download formats: which certificates, in what order, in what encoding.

The reference leaves the order of ``x509``/``x509R``/``pem`` unverified. The
simulator reads SCM's naming literally: the plain formats are top-down
(root first: ``x509IO`` is "Root/Intermediate(s) only", so ``x509`` is the
chain root first and the leaf last) and the ``R`` variants are bottom-up
(``x509R`` leaf first, ``x509IOR`` issuer first). ``pem`` ("certificate with
chain") is leaf first. Clients should pick the leaf with ``x509CO``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

__all__ = ["COLLECT_FORMATS", "canonical_format", "download_filename", "render_collect"]

COLLECT_FORMATS: tuple[str, ...] = (
    "x509",
    "x509CO",
    "base64",
    "bin",
    "x509IO",
    "x509IOR",
    "pem",
    "pemco",
    "pemia",
    "x509R",
)
_BY_LOWER = {f.lower(): f for f in COLLECT_FORMATS}
_SUFFIX = {
    "x509": ".crt",
    "x509R": ".crt",
    "pem": ".pem",
    "x509CO": "_cert.cer",
    "pemco": "_cert.pem",
    "pemia": "_cert_issuer.pem",
    "x509IO": "_interm.cer",
    "x509IOR": "_interm_rev.cer",
    "base64": ".p7b",
    "bin": ".p7b",
}


def canonical_format(fmt: str) -> str | None:
    """The SCM spelling of ``fmt`` (matched case-insensitively), or ``None`` if unknown."""
    return _BY_LOWER.get(fmt.lower())


def render_collect(fmt: str, leaf: x509.Certificate, chain: Sequence[x509.Certificate]) -> bytes:
    """Body of a collect download; ``chain`` is bottom-up (issuer first, root last)."""
    top_down = list(reversed(chain))
    if fmt == "base64":
        return pkcs7.serialize_certificates([leaf, *chain], serialization.Encoding.PEM)
    if fmt == "bin":
        return pkcs7.serialize_certificates([leaf, *chain], serialization.Encoding.DER)
    selected = {
        "x509": [*top_down, leaf],
        "x509R": [leaf, *chain],
        "pem": [leaf, *chain],
        "x509CO": [leaf],
        "pemco": [leaf],
        "pemia": [leaf, *chain[:1]],
        "x509IO": top_down,
        "x509IOR": list(chain),
    }[fmt]
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in selected)


def download_filename(common_name: str, fmt: str) -> str:
    """A safe attachment name derived from the common name (``*.a.b`` → ``star_a_b``)."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", common_name.replace("*", "star")) or "certificate"
    return f"{stem}{_SUFFIX[fmt]}"
