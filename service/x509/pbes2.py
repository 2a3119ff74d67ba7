"""A private key as an encrypted PKCS#8 blob (RFC 5958 ``EncryptedPrivateKeyInfo``) with a KDF we choose.

``cryptography``'s ``BestAvailableEncryption`` for PKCS#8 uses PBKDF2 with
2048 rounds and offers no way to ask for more (its ``encryption_builder`` only
serves OpenSSH and PKCS#12), which is far too cheap to guess for a key kept at
rest. So this module writes the one fixed structure itself:

    EncryptedPrivateKeyInfo ::= SEQUENCE {
      encryptionAlgorithm  SEQUENCE { pkcs5PBES2, SEQUENCE {
          keyDerivationFunc  SEQUENCE { pkcs5PBKDF2, SEQUENCE {
              salt OCTET STRING (16), iterationCount INTEGER, prf SEQUENCE { hmacWithSHA256, NULL } } },
          encryptionScheme   SEQUENCE { aes256-CBC, iv OCTET STRING (16) } } },
      encryptedData        OCTET STRING }

Reading it back is left to ``cryptography`` (OpenSSL), so a blob this module
writes wrongly cannot be read at all, and a test reads it with ``openssl``.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

__all__ = ["KDF_ROUNDS", "WrongPassword", "decrypt_private_key", "encrypt_private_key"]

KDF_ROUNDS = 600_000  # PBKDF2-HMAC-SHA256, as OWASP advises for stored secrets

_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_HMAC_SHA256 = "1.2.840.113549.2.9"
_AES256_CBC = "2.16.840.1.101.3.4.1.42"


class WrongPassword(Exception):
    """The password does not open the blob (or the blob is not one)."""


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def _sequence(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # +1: room for the sign bit


def _oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def encrypt_private_key(key: PrivateKeyTypes, password: bytes, *, rounds: int = KDF_ROUNDS) -> bytes:
    """``key`` as DER ``EncryptedPrivateKeyInfo``: PBES2, PBKDF2-HMAC-SHA256 with ``rounds``
    rounds and a random 16-byte salt, AES-256-CBC with a random IV. Costs about ``rounds``
    HMACs: call it off the event loop."""
    if not password:
        raise ValueError("an empty password protects nothing")
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    salt, iv = os.urandom(16), os.urandom(16)
    secret = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=rounds).derive(password)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    kdf = _sequence(_oid(_PBKDF2), _sequence(_octets(salt), _integer(rounds), _sequence(_oid(_HMAC_SHA256),
                                                                                         b"\x05\x00")))
    scheme = _sequence(_oid(_AES256_CBC), _octets(iv))
    return _sequence(_sequence(_oid(_PBES2), _sequence(kdf, scheme)), _octets(encrypted))


def decrypt_private_key(blob: bytes, password: bytes) -> PrivateKeyTypes:
    """The key of an ``EncryptedPrivateKeyInfo``; :class:`WrongPassword` when ``password`` does
    not open it. Costs as much as the encryption did: call it off the event loop."""
    try:
        return serialization.load_der_private_key(blob, password=password)
    except (ValueError, TypeError):
        raise WrongPassword("the password does not open this key") from None
