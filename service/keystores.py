"""Key stores and TLS contexts: JKS / PKCS12 / PEM files → trusted CAs, key + chain, ``ssl.SSLContext``.

This module owns everything between a store file named in the configuration and the
``ssl.SSLContext`` the CA connectors (and the simulator's listeners) use. It is pure: bytes
and paths in, typed objects out, every failure a :class:`~service.errors.ConfigError` that
names the file and the problem, never a password.

Stores are read by what they *are*, not what they are called: keytool on JDK 17 writes PKCS12
into a file named ``.jks`` unless told otherwise, so the type is detected from the first bytes
and a mismatch with the declared type is logged, not fatal.

Example::

    trusted = load_trust_store(Path("ca-trust.jks"), password="changeit", declared_type="JKS")
    client = load_key_store(Path("client.p12"), alias="client", password="changeit", declared_type="PKCS12")
    context = client_ssl_context(trusted=trusted, client=client)
"""

from __future__ import annotations

import logging
import os
import secrets
import ssl
import struct
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jks
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from service.errors import ConfigError

__all__ = [
    "ClientAuth",
    "DetectedType",
    "KeyAndChain",
    "StoreType",
    "client_ssl_context",
    "detect_store_type",
    "listener_ssl_context",
    "load_key_store",
    "load_pem_identity",
    "load_trust_store",
    "server_ssl_context",
]

logger = logging.getLogger(__name__)

StoreType = Literal["JKS", "PKCS12", "PEM"]
"""A store type a configuration may declare."""

DetectedType = Literal["JKS", "JCEKS", "PKCS12", "PEM"]
"""A store format recognised from a file's first bytes (JCEKS is read like JKS)."""

ClientAuth = Literal["optional", "required"]
"""How a server context asks for client certificates when it is given client CAs."""

_JKS_MAGIC = b"\xfe\xed\xfe\xed"
_JCEKS_MAGIC = b"\xce\xce\xce\xce"
_DER_SEQUENCE = 0x30
# DER of the OIDs a PFX's authSafe ContentInfo may carry: pkcs7-data and pkcs7-signedData.
_PKCS7_DATA_OID = bytes.fromhex("06092a864886f70d010701")
_PKCS7_SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")
_DECLARABLE: tuple[StoreType, ...] = ("JKS", "PKCS12", "PEM")


@dataclass(frozen=True, eq=False)
class KeyAndChain:
    """A private key, its certificate and the certificates above it (issuer first, as in the store).

    ``repr`` shows whose key it is, never the key itself.
    """

    key: PrivateKeyTypes
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def __repr__(self) -> str:
        subject = self.certificate.subject.rfc4514_string()
        return (
            f"KeyAndChain(key=<{type(self.key).__name__}>, certificate={subject!r}, "
            f"chain={len(self.chain)} certificate(s))"
        )


# --- detection ---------------------------------------------------------------------------


def detect_store_type(data: bytes) -> DetectedType | None:
    """The store format of ``data`` from its first bytes, or ``None`` when it is none we know.

    JKS and JCEKS start with their magic numbers, PKCS12 with a DER SEQUENCE, PEM is text with a
    ``-----BEGIN`` line (bundles may carry comment lines before it).
    """
    if data.startswith(_JKS_MAGIC):
        return "JKS"
    if data.startswith(_JCEKS_MAGIC):
        return "JCEKS"
    # A PFX is always longer than 127 bytes, so its SEQUENCE has a long-form (or BER
    # indefinite) length; this keeps text starting with "0" (0x30) out.
    if len(data) > 1 and data[0] == _DER_SEQUENCE and 0x80 <= data[1] <= 0x84:
        return "PKCS12"
    if b"-----BEGIN " in data and b"\x00" not in data:
        return "PEM"
    return None


def _read_store(path: Path, kind: str, declared_type: str | None) -> tuple[bytes, DetectedType]:
    """Read a store file and settle its type: detected beats declared, with a warning."""
    declared = _normalise_declared(path, kind, declared_type)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{kind} {path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{kind} {path}: is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"{kind} {path}: cannot be read ({exc.strerror or type(exc).__name__})") from exc
    if not data:
        raise ConfigError(f"{kind} {path}: file is empty")
    detected = detect_store_type(data)
    if detected is None:
        raise ConfigError(f"{kind} {path}: unknown format (not JKS, JCEKS, PKCS12 or PEM)")
    if declared is not None and declared != detected:
        logger.warning(
            "%s %s is declared %s but its content is %s; loading it as %s",
            kind,
            path,
            declared,
            detected,
            detected,
        )
    return data, detected


def _normalise_declared(path: Path, kind: str, declared_type: str | None) -> StoreType | None:
    if declared_type is None or not declared_type.strip():
        return None
    wanted = declared_type.strip().upper()
    for declarable in _DECLARABLE:
        if declarable == wanted:
            return declarable
    raise ConfigError(f"{kind} {path}: unknown store type {declared_type!r} (expected one of {', '.join(_DECLARABLE)})")


# --- trust stores ------------------------------------------------------------------------


def load_trust_store(path: Path, *, password: str | None, declared_type: str | None) -> list[x509.Certificate]:
    """The trusted certificates of a JKS, PKCS12 or PEM trust store.

    JKS: the ``trustedCertEntry`` entries (key entries are not trust anchors, as in Java).
    PKCS12: every certificate of a store without private keys (what ``keytool -importcert``
    writes); a PKCS12 holding a private key is refused, because ``cryptography`` cannot tell
    its trusted entries from its key chain. PEM: every certificate; ``password`` is unused.
    A JKS trust store may be read without a password (its integrity is then not checked).
    """
    kind = "trust store"
    data, detected = _read_store(path, kind, declared_type)
    if detected in ("JKS", "JCEKS"):
        certificates = _jks_trusted_certificates(path, data, password)
    elif detected == "PKCS12":
        certificates = _pkcs12_trusted_certificates(path, data, password)
    else:
        certificates = _pem_certificates(path, kind, data)
    if not certificates:
        raise ConfigError(f"{kind} {path}: holds no trusted certificate")
    return certificates


def _jks_trusted_certificates(path: Path, data: bytes, password: str | None) -> list[x509.Certificate]:
    store = _open_jks(path, "trust store", data, password)
    certificates = []
    for alias, entry in sorted(store.certs.items()):
        if entry.type != "X.509":
            continue
        certificates.append(_der_certificate(path, "trust store", alias, entry.cert))
    if not certificates and store.private_keys:
        raise ConfigError(
            f"trust store {path}: holds no trusted certificate entry, only private keys "
            f"({_quoted(store.private_keys)}); is it a key store?"
        )
    return certificates


def _pkcs12_trusted_certificates(path: Path, data: bytes, password: str | None) -> list[x509.Certificate]:
    store = _open_pkcs12(path, "trust store", data, password)
    if store.key is not None:
        raise ConfigError(
            f"trust store {path}: holds a private key ({_pkcs12_key_alias(store)!r}); it is a key store. "
            "Use a store made of trusted certificates only (keytool -importcert)"
        )
    return _distinct([c.certificate for c in store.additional_certs] + ([store.cert.certificate] if store.cert else []))


def _pem_certificates(path: Path, kind: str, data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        # Also raised for PEM files without any CERTIFICATE block.
        raise ConfigError(f"{kind} {path}: no readable PEM certificate") from None


# --- key stores --------------------------------------------------------------------------


def load_key_store(
    path: Path,
    *,
    alias: str,
    password: str,
    declared_type: str | None,
    key_password: str | None = None,
) -> KeyAndChain:
    """The private key, certificate and chain stored under ``alias`` in a JKS or PKCS12 key store.

    Aliases match exactly or, failing that, case-insensitively (Java's key stores ignore case;
    keytool lowercases JKS aliases). A wrong alias is an error listing the aliases present.
    ``key_password`` defaults to the store password, as keytool does.
    """
    kind = "key store"
    data, detected = _read_store(path, kind, declared_type)
    if detected in ("JKS", "JCEKS"):
        result = _jks_key(path, data, alias=alias, password=password, key_password=key_password)
    elif detected == "PKCS12":
        result = _pkcs12_key(path, data, alias=alias, password=password)
    else:
        raise ConfigError(f"{kind} {path}: PEM files are read as trust stores only; use a JKS or PKCS12 key store")
    _check_key_matches(path, alias, result)
    return result


def _jks_key(path: Path, data: bytes, *, alias: str, password: str, key_password: str | None) -> KeyAndChain:
    store = _open_jks(path, "key store", data, password)
    name = _match_alias(path, alias, store.private_keys, others=store.certs)
    entry = store.private_keys[name]
    if not entry.is_decrypted():
        try:
            entry.decrypt(key_password if key_password is not None else password)
        except jks.util.DecryptionFailureException:
            # pyjks leaves a key encrypted when the store password does not open it.
            if key_password is None:
                problem = "its key password differs from the store password (keytool -keypasswd can align them)"
            else:
                problem = "wrong key password"
            raise ConfigError(f"key store {path}: cannot decrypt key {name!r}: {problem}") from None
        except ValueError:
            # JCEKS key protection only takes ASCII passwords.
            raise ConfigError(f"key store {path}: cannot decrypt key {name!r}: the password is not ASCII") from None
        except jks.util.KeystoreException as exc:
            raise ConfigError(f"key store {path}: cannot decrypt key {name!r} ({_jks_problem(exc)})") from exc
    try:
        key = serialization.load_der_private_key(entry.pkey_pkcs8, password=None)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"key store {path}: key {name!r} is not a readable private key") from exc
    certificates = [
        _der_certificate(path, "key store", name, der) for cert_type, der in entry.cert_chain if cert_type == "X.509"
    ]
    if not certificates:
        raise ConfigError(f"key store {path}: key {name!r} has no X.509 certificate")
    return KeyAndChain(key=key, certificate=certificates[0], chain=tuple(certificates[1:]))


def _pkcs12_key(path: Path, data: bytes, *, alias: str, password: str) -> KeyAndChain:
    store = _open_pkcs12(path, "key store", data, password)
    if store.key is None or store.cert is None:
        raise ConfigError(
            f"key store {path}: holds no private key with a certificate "
            f"(certificate entries: {_quoted(_friendly_names(store)) or 'none'})"
        )
    key_alias = _pkcs12_key_alias(store)
    if key_alias is None or not _alias_matches(alias, key_alias):
        if any(_alias_matches(alias, name) for name in _friendly_names(store)):
            # cryptography returns the first key of a PKCS12 only; the others' certificates
            # come back as plain certificates under their alias.
            raise ConfigError(
                f"key store {path}: alias {alias!r} is not the first private key of this PKCS12 "
                f"({key_alias!r}), and only the first can be read; move it into a store of its own "
                "(keytool -importkeystore -srcalias ...)"
            )
        present = repr(key_alias) if key_alias is not None else "one key without an alias (friendly name)"
        raise ConfigError(f"key store {path}: no private key with alias {alias!r}; private keys present: {present}")
    leaf = store.cert.certificate
    return KeyAndChain(key=store.key, certificate=leaf, chain=_issuer_chain(leaf, store.additional_certs))


def _pkcs12_key_alias(store: pkcs12.PKCS12KeyAndCertificates) -> str | None:
    if store.cert is None or store.cert.friendly_name is None:
        return None
    return store.cert.friendly_name.decode("utf-8", "replace")


def _friendly_names(store: pkcs12.PKCS12KeyAndCertificates) -> list[str]:
    return [c.friendly_name.decode("utf-8", "replace") for c in store.additional_certs if c.friendly_name]


def _issuer_chain(leaf: x509.Certificate, pool: Sequence[pkcs12.PKCS12Certificate]) -> tuple[x509.Certificate, ...]:
    """Order the loose certificates of a PKCS12 from the leaf's issuer upwards, ignoring unrelated ones."""
    candidates = _distinct([c.certificate for c in pool])
    chain: list[x509.Certificate] = []
    current = leaf
    while current.issuer != current.subject:
        issuer = next((c for c in candidates if c not in chain and c != leaf and _issued(current, c)), None)
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return tuple(chain)


def _issued(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _key_matches(result: KeyAndChain) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = result.key.public_key().public_bytes(serialization.Encoding.DER, spki)
    return ours == result.certificate.public_key().public_bytes(serialization.Encoding.DER, spki)


def _check_key_matches(path: Path, alias: str, result: KeyAndChain) -> None:
    if not _key_matches(result):
        raise ConfigError(f"key store {path}: the certificate of {alias!r} does not belong to its private key")


# --- opening the formats -----------------------------------------------------------------


def _open_jks(path: Path, kind: str, data: bytes, password: str | None) -> jks.KeyStore:
    """Parse a JKS/JCEKS store; a structure check first, so a damaged file is not called a bad password."""
    try:
        store = jks.KeyStore.loads(data, None, try_decrypt_keys=False)
    except Exception as exc:  # pyjks raises struct, pyasn1 and its own errors for damaged files
        raise ConfigError(f"{kind} {path}: corrupt Java key store ({_jks_problem(exc)})") from exc
    if password is None:
        return store
    try:
        # Keys stay encrypted here: only the one asked for is decrypted, by _jks_key.
        return jks.KeyStore.loads(data, password, try_decrypt_keys=False)
    except jks.util.KeystoreSignatureException:
        raise ConfigError(f"{kind} {path}: wrong password (the store's integrity check failed)") from None
    except Exception as exc:
        raise ConfigError(f"{kind} {path}: corrupt Java key store ({_jks_problem(exc)})") from exc


def _jks_problem(exc: Exception) -> str:
    if isinstance(exc, struct.error) or (exc.args and isinstance(exc.args[0], struct.error)):
        return "truncated or damaged"  # pyjks wraps struct's buffer errors
    # pyjks' own messages describe the damage and never contain the password.
    if isinstance(exc, jks.util.KeystoreException) and str(exc):
        return str(exc)
    return type(exc).__name__


def _open_pkcs12(path: Path, kind: str, data: bytes, password: str | None) -> pkcs12.PKCS12KeyAndCertificates:
    """Parse a PKCS12 store; its DER skeleton is checked first because cryptography raises
    the same error for a wrong password and for a damaged file."""
    problem = _pkcs12_structure_problem(data)
    if problem is not None:
        raise ConfigError(f"{kind} {path}: corrupt PKCS12 file ({problem})")
    try:
        return pkcs12.load_pkcs12(data, password.encode("utf-8") if password is not None else None)
    except UnsupportedAlgorithm as exc:
        raise ConfigError(
            f"{kind} {path}: PKCS12 protected with an algorithm this gateway cannot read; "
            "re-export it with a current keytool or openssl"
        ) from exc
    except ValueError as exc:
        if "deserialize" in str(exc):
            # cryptography's wording when the inner structure is broken; a MAC failure says "password".
            raise ConfigError(f"{kind} {path}: corrupt PKCS12 file (unreadable contents)") from None
        if password is None:
            raise ConfigError(f"{kind} {path}: cannot be opened without a password") from None
        raise ConfigError(f"{kind} {path}: wrong password (the PKCS12 integrity check failed)") from None


def _pkcs12_structure_problem(data: bytes) -> str | None:
    """Why ``data`` is not a PFX skeleton (SEQUENCE { INTEGER 3, ContentInfo, ... }), or ``None``."""
    outer = _der_header(data, 0)
    if outer is None or outer[0] != _DER_SEQUENCE:
        return "not a DER SEQUENCE"
    _, length, body = outer
    if length is not None and body + length != len(data):
        return f"declares {body + length} bytes but the file has {len(data)}"
    version = _der_header(data, body)
    if version is not None and version[0] == _DER_SEQUENCE:
        return "a DER structure that is not PKCS12 (a single DER certificate?)"
    if version is None or version[0] != 0x02 or version[1] != 1 or data[version[2] : version[2] + 1] != b"\x03":
        return "no PKCS12 version 3"
    content_info = _der_header(data, version[2] + 1)
    if content_info is None or content_info[0] != _DER_SEQUENCE:
        return "no content"
    oid_start = content_info[2]
    if data[oid_start : oid_start + len(_PKCS7_DATA_OID)] not in (_PKCS7_DATA_OID, _PKCS7_SIGNED_DATA_OID):
        return "content is neither data nor signed data"
    return None


def _der_header(data: bytes, pos: int) -> tuple[int, int | None, int] | None:
    """(tag, length or None when indefinite, offset of the value) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        return None
    tag, first = data[pos], data[pos + 1]
    if first < 0x80:
        return tag, first, pos + 2
    if first == 0x80:  # BER indefinite length, which some old tools write
        return tag, None, pos + 2
    count = first & 0x7F
    if count > 4 or pos + 2 + count > len(data):
        return None
    return tag, int.from_bytes(data[pos + 2 : pos + 2 + count], "big"), pos + 2 + count


# --- small helpers -----------------------------------------------------------------------


def _match_alias(path: Path, alias: str, keys: Mapping[str, object], *, others: Mapping[str, object]) -> str:
    if alias in keys:
        return alias
    folded = [name for name in keys if _alias_matches(alias, name)]
    if len(folded) == 1:
        return folded[0]
    if len(folded) > 1:
        raise ConfigError(f"key store {path}: alias {alias!r} is ambiguous, it matches {_quoted(folded)}")
    if alias in others or any(_alias_matches(alias, name) for name in others):
        raise ConfigError(f"key store {path}: alias {alias!r} is a trusted certificate, not a private key")
    present = _quoted(keys) or "none"
    raise ConfigError(f"key store {path}: no private key with alias {alias!r}; private keys present: {present}")


def _alias_matches(wanted: str, present: str) -> bool:
    return wanted == present or wanted.casefold() == present.casefold()


def _quoted(names: Mapping[str, object] | Sequence[str]) -> str:
    return ", ".join(repr(name) for name in sorted(names))


def _der_certificate(path: Path, kind: str, alias: str, der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise ConfigError(f"{kind} {path}: entry {alias!r} holds an unreadable certificate") from exc


# --- TLS contexts ------------------------------------------------------------------------


def client_ssl_context(*, trusted: Sequence[x509.Certificate], client: KeyAndChain | None = None) -> ssl.SSLContext:
    """A TLS client context that trusts ``trusted`` only (never the system roots).

    Hostname checking is on and a certificate is required. Every trusted certificate is a trust
    anchor, even an intermediate, as in a Java trust store. ``client`` adds a client certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _trust_only(context, trusted, "client context")
    if client is not None:
        _load_identity(context, client)
    return context


def server_ssl_context(
    identity: KeyAndChain,
    *,
    client_cas: Sequence[x509.Certificate] = (),
    client_auth: ClientAuth = "required",
) -> ssl.SSLContext:
    """A TLS server context presenting ``identity``.

    With ``client_cas`` it asks for client certificates issued by them, ``optional`` or
    ``required`` at the TLS layer (optional lets routes decide, as the simulator's ``/api`` and
    ``/private/api`` need); without them it asks for none.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_identity(context, identity)
    if client_cas:
        _trust_only(context, client_cas, "server context")
        context.verify_mode = ssl.CERT_REQUIRED if client_auth == "required" else ssl.CERT_OPTIONAL
    return context


def load_pem_identity(cert: Path, key: Path | None = None) -> KeyAndChain:
    """A listener's identity from PEM files: the certificate (then its chain) in ``cert``, the
    unencrypted private key in ``key`` (or in ``cert`` too when ``key`` is None)."""
    chain = _pem_certificates(cert, "certificate file", _read_file(cert, "certificate file"))
    key_path = key or cert
    try:
        private_key = serialization.load_pem_private_key(_read_file(key_path, "key file"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(f"key file {key_path}: no readable unencrypted PEM private key") from None
    identity = KeyAndChain(key=private_key, certificate=chain[0], chain=tuple(chain[1:]))
    if not _key_matches(identity):
        raise ConfigError(f"certificate file {cert}: the certificate does not match the private key in {key_path}")
    return identity


def listener_ssl_context(cert: Path, key: Path | None, *, client_ca: Path | None = None,
                         client_auth: ClientAuth = "required") -> ssl.SSLContext:
    """The server context of every TLS listener (REST, the simulator): PEM files in, and with
    ``client_ca`` client certificates issued by it, ``required`` or ``optional`` at the TLS layer."""
    client_cas = (_pem_certificates(client_ca, "client CA file", _read_file(client_ca, "client CA file"))
                  if client_ca is not None else ())
    return server_ssl_context(load_pem_identity(cert, key), client_cas=client_cas, client_auth=client_auth)


def _read_file(path: Path, kind: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{kind} {path}: cannot be read ({exc.strerror or exc})") from None


def _trust_only(context: ssl.SSLContext, trusted: Sequence[x509.Certificate], what: str) -> None:
    if not trusted:
        raise ConfigError(f"{what}: no trusted certificate given")
    bundle = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in trusted)
    try:
        context.load_verify_locations(cadata=bundle)
    except ssl.SSLError as exc:
        raise ConfigError(f"{what}: trusted certificates rejected by OpenSSL ({exc.reason or exc})") from exc
    # Java trusts every certificate of its trust store as an anchor; OpenSSL only self-signed
    # roots unless told so. CA trust stores often hold just the issuing CA.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN


def _load_identity(context: ssl.SSLContext, identity: KeyAndChain) -> None:
    """Load key + chain without ever writing the clear key to disk.

    ``ssl`` reads key material from files only, so it goes through an anonymous memory file,
    encrypted with a one-time password so that even the temp-file fallback holds no clear key.
    """
    one_time = secrets.token_bytes(32)
    pem = identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time),
    )
    for certificate in (identity.certificate, *identity.chain):
        pem += certificate.public_bytes(serialization.Encoding.PEM)
    subject = identity.certificate.subject.rfc4514_string()
    with _secret_file(pem) as name:
        try:
            context.load_cert_chain(name, password=one_time)
        except ssl.SSLError as exc:
            raise ConfigError(f"certificate {subject!r}: rejected by OpenSSL ({exc.reason or exc})") from exc


@contextmanager
def _secret_file(content: bytes) -> Iterator[str]:
    """A file name that reads ``content``: a memfd on Linux, else a 0600 temp file removed on exit."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("cagw-tls-identity", os.MFD_CLOEXEC)
        try:
            _write_all(fd, content)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, name = tempfile.mkstemp(prefix="cagw-tls-", suffix=".pem")  # mkstemp creates it 0600
    try:
        try:
            _write_all(fd, content)
        finally:
            os.close(fd)
        yield name
    finally:
        os.unlink(name)


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view) :]


def _distinct(certificates: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    return list(dict.fromkeys(certificates))  # certificates hash by their DER; order kept
