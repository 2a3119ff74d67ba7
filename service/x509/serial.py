"""Serial numbers: every way clients write them in, the canonical lowercase hex out."""

from __future__ import annotations

import re

from service.x509._violations import _violation

_MAX_SERIAL_TEXT = 200
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_BYTE_RE = re.compile(r"[0-9a-fA-F]{1,2}")
_SERIAL_SEPARATOR_RE = re.compile(r"\s*:\s*|\s+")


def parse_serial(text: str, *, field: str = "serialNumber") -> int:
    """Read a serial number the way clients write it: hex in any case, any zero padding.

    Accepts ``5912bd91``, ``0000000091CA4B…`` (40-digit padded), ``0x5912BD91``
    and byte-separated ``59:12:BD:91`` / ``59 12 bd 91`` (each byte one or two
    digits). Refuses empty, non-hex and values longer than 20 bytes (RFC 5280).
    """
    stripped = text.strip()
    if not stripped:
        raise _violation(field, "serial number is empty", text)
    if len(stripped) > _MAX_SERIAL_TEXT:
        raise _violation(field, f"serial number is longer than {_MAX_SERIAL_TEXT} characters", text)
    if stripped[:2].lower() == "0x":
        stripped = stripped[2:]
    groups = _SERIAL_SEPARATOR_RE.split(stripped)
    if len(groups) > 1:
        if not all(_BYTE_RE.fullmatch(group) for group in groups):
            raise _violation(field, "serial number bytes separated by ':' or spaces must be 1-2 hex digits each", text)
        digits = "".join(group.rjust(2, "0") for group in groups)
    elif _HEX_RE.fullmatch(stripped):
        digits = stripped
    else:
        raise _violation(field, "serial number must be hexadecimal", text)
    serial = int(digits, 16)
    if serial.bit_length() > 160:
        raise _violation(field, "serial number is longer than 20 bytes (RFC 5280)", text)
    return serial


def format_serial(serial: int) -> str:
    """Canonical form: lower-case hex without leading zeros (``"0"`` for zero); the ledger key and the CAGW answer."""
    if serial < 0:
        raise ValueError("serial numbers are not negative")
    return f"{serial:x}"

