"""PEM text and DER bytes of certificate bundles."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

_PEM_BLOCK_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END ([A-Z0-9 ]+)-----", re.DOTALL)



def _pem(label: str, der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n"


def pem_bundle(ders: Iterable[bytes]) -> str:
    """Certificates as concatenated PEM blocks (64-column base64, ``\\n`` line ends), leaf first as given."""
    return "".join(_pem("CERTIFICATE", der) for der in ders)


def der_from_pem_bundle(text: str) -> list[bytes]:
    """The DER of every ``CERTIFICATE`` block in ``text``, in order.

    Text between blocks (OpenSSL's ``subject=`` lines) and blocks of other
    kinds are skipped; a certificate block whose body is not base64 raises
    ``ValueError``.
    """
    ders: list[bytes] = []
    for label, body, end_label in _PEM_BLOCK_RE.findall(text):
        if label != "CERTIFICATE" or end_label != "CERTIFICATE":
            continue
        try:
            ders.append(base64.b64decode("".join(body.split()), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"certificate block {len(ders) + 1} is not valid base64") from exc
    return ders
