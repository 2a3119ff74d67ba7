"""The verified identity of a caller: what its client certificate says, parsed once by the transport."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANONYMOUS", "PeerIdentity"]

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class PeerIdentity:
    """A verified client certificate's subject (RFC 4514, as the certificate spells it, and
    normalised), its URI SANs and the SHA-256 of its DER (lower-case hex, no colons)."""

    subject: str = ""
    normalized_subject: str = ""
    uri_sans: tuple[str, ...] = ()
    sha256: str = ""

    @property
    def text(self) -> str:
        """How audit entries and logs name the caller."""
        return self.subject or (f"sha256:{self.sha256}" if self.sha256 else ANONYMOUS)
