"""Keys the gateway makes for a caller: the key type, the key pair and its CSR, and the PKCS#12 answer.

A caller that asks for ``requiredFormat: PKCS12`` sends no CSR; the gateway
chooses the key from the profile (:func:`choose_key_spec`), makes the pair and
the CSR in memory (:func:`generate_key`, :func:`make_csr`) and later packs key,
certificate and chain into a PKCS#12 (:func:`build_pkcs12`). Keeping the key
at rest is :mod:`service.x509.pbes2`'s job.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12

from service.x509._violations import _violation
from service.x509.csr import _canonical_key
from service.x509.dn import _escape_value, normalize_dn, parse_dn
from service.x509.san import SubjectAltNameValue

__all__ = ["DEFAULT_KEY", "KeySpec", "Pkcs12Encryption", "attribute_forms", "build_pkcs12", "choose_key_spec",
           "generate_key", "make_csr", "subject_from_variables"]

Pkcs12Encryption = Literal["modern", "legacy"]
_CURVES: Mapping[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(),
                                           "P-521": ec.SECP521R1()}
_RSA_SIZES = range(2048, 8193)
_GENERATED = "RSA 2048-8192 in steps of 1024, EC P-256, P-384, P-521"
_PKCS12_KDF_ROUNDS = 50_000  # what OpenSSL 3 writes by default


@dataclass(frozen=True)
class KeySpec:
    """A key to make: ``RSA`` with a size in bits (``"2048"``) or ``EC`` with a curve (``"P-256"``)."""

    algorithm: str
    size: str

    def __str__(self) -> str:
        return f"{self.algorithm} {self.size}"

    @classmethod
    def parse(cls, text: str) -> KeySpec | None:
        """The form :meth:`__str__` writes (what the ledger keeps), or None."""
        algorithm, _, size = text.partition(" ")
        spec = cls(*_canonical_key(algorithm, size))
        return spec if spec.supported else None

    @property
    def supported(self) -> bool:
        if self.algorithm == "RSA":
            return self.size.isdigit() and int(self.size) in _RSA_SIZES and int(self.size) % 1024 == 0
        return self.algorithm == "EC" and self.size in _CURVES


DEFAULT_KEY = KeySpec("RSA", "2048")  # for a profile that lists no key types


def _allowed(key_types: Mapping[str, Sequence[str]]) -> list[KeySpec]:
    return [KeySpec(*_canonical_key(algorithm, size)) for algorithm, sizes in key_types.items() for size in sizes]


def choose_key_spec(key_types: Mapping[str, Sequence[str]], *, algorithm: str = "", size: str = "",
                    field: str = "properties.keyType") -> KeySpec:
    """The key to make: the profile's first allowed key (``CAProfile.key_types`` order) that this
    gateway can make, unless ``algorithm`` (and ``size``) choose another one the profile allows.
    A profile that lists none allows any; RSA 2048 is then the default."""
    allowed = [spec for spec in _allowed(key_types) if spec.supported]
    if key_types and not allowed:
        raise _violation("profileId", f"the profile allows no key type the gateway can generate ({_GENERATED})")
    if not algorithm:
        if size:
            raise _violation(field, "give the key type (RSA or EC) with its size")
        return allowed[0] if allowed else DEFAULT_KEY
    asked_algorithm = _canonical_key(algorithm, "")[0]
    candidates = [spec for spec in (allowed or [DEFAULT_KEY, KeySpec("EC", "P-256")])
                  if spec.algorithm == asked_algorithm]
    if size:
        wanted = KeySpec(*_canonical_key(algorithm, size))
        if not wanted.supported:
            raise _violation(field, f"{wanted} is not a key the gateway can generate ({_GENERATED})", str(wanted))
        candidates = [wanted] if (wanted in allowed or not key_types) else []
    if not candidates:
        listing = ", ".join(str(spec) for spec in allowed)
        raise _violation(field, f"{asked_algorithm} {size}".rstrip() + f" is not allowed by the profile; allowed: "
                         f"{listing}", f"{algorithm} {size}".strip())
    return candidates[0]


def subject_from_variables(variables: Sequence[tuple[str, str]], *, field: str = "subjectVariables") -> x509.Name:
    """CAGW ``subjectVariables`` (``(type, value)`` pairs such as ``("cn", "www.example.com")``) as
    a name, read like an RFC 4514 string written in the order given (most specific first)."""
    return parse_dn(",".join(f"{kind.strip()}={_escape_value(value)}" for kind, value in variables), field=field)


def attribute_forms(name: x509.Name) -> set[str]:
    """Each attribute of ``name`` in the DN normal form (``cn=www.example.com``), to compare names by parts."""
    return {normalize_dn(x509.Name([x509.RelativeDistinguishedName([attribute])])) for attribute in name}


def generate_key(spec: KeySpec) -> PrivateKeyTypes:
    """A fresh key pair (RSA: public exponent 65537). RSA 4096 takes about a second: call it off
    the event loop."""
    if spec.algorithm == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=int(spec.size))
    return ec.generate_private_key(_CURVES[spec.size])


def _general_name(san: SubjectAltNameValue) -> x509.GeneralName:
    if san.type == "dNSName":
        return x509.DNSName(san.value)
    if san.type == "rfc822Name":
        return x509.RFC822Name(san.value)
    if san.type == "iPAddress":
        return x509.IPAddress(ipaddress.ip_address(san.value))
    if san.type == "uniformResourceIdentifier":
        return x509.UniformResourceIdentifier(san.value)
    if san.type == "directoryName":
        return x509.DirectoryName(parse_dn(san.value))
    return x509.RegisteredID(x509.ObjectIdentifier(san.value))


def make_csr(key: PrivateKeyTypes, subject: x509.Name, sans: Sequence[SubjectAltNameValue]) -> x509.CertificateSigningRequest:
    """A PKCS#10 request for ``subject`` and ``sans`` signed by ``key`` (SHA-256)."""
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise TypeError(f"cannot sign a CSR with a {type(key).__name__}")
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(s) for s in sans]),
                                        critical=False)
    return builder.sign(key, hashes.SHA256())


def build_pkcs12(key: PrivateKeyTypes, certificate_der: bytes, chain_der: Sequence[bytes], password: bytes, *,
                 encryption: Pkcs12Encryption = "modern", name: str = "") -> bytes:
    """Key, certificate and chain (issuer first) as one PKCS#12 protected by ``password``.

    ``modern``: AES-256-CBC with PBKDF2-HMAC-SHA256 for key and certificates, an HMAC-SHA256
    MAC (OpenSSL 3's default; Java 8u301+/11.0.12+ and Windows Server 2019+ read it).
    ``legacy``: 3DES with SHA-1 and a SHA-1 MAC, for older Java and Windows readers.
    """
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise TypeError(f"cannot store a {type(key).__name__} in a PKCS#12")
    builder = PrivateFormat.PKCS12.encryption_builder().kdf_rounds(_PKCS12_KDF_ROUNDS)
    if encryption == "legacy":
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1())
    else:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
    certificate = x509.load_der_x509_certificate(certificate_der)
    cas = [x509.load_der_x509_certificate(der) for der in chain_der]
    return pkcs12.serialize_key_and_certificates(name.encode() or None, key, certificate, cas or None,
                                                 builder.build(password))
