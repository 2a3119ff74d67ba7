"""The client side of the ``cagw`` command: talk to a running gateway over gRPC.

``cagw enroll --watch`` prints one line per state change of the enrollment
stream (with the wait before the next collect attempt) and writes the
certificate; ``certificate``, ``subject``, ``revoke``, ``cas`` and
``profiles`` do the rest; ``csr`` makes a key and a CSR to try it with;
``ledger backup`` copies a running gateway's ledger, ``ledger check`` checks one
(:mod:`service.admin_cli`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from cagw.v1 import certificate_authorities_pb2 as ca_pb
from cagw.v1 import certificate_authorities_pb2_grpc as ca_grpc
from cagw.v1 import certificates_pb2 as cert_pb
from cagw.v1 import certificates_pb2_grpc as cert_grpc
from cagw.v1 import common_pb2
from cagw.v1 import enrollments_pb2 as enr_pb
from cagw.v1 import enrollments_pb2_grpc as enr_grpc
from cagw.v1 import subjects_pb2 as sub_pb
from cagw.v1 import subjects_pb2_grpc as sub_grpc
from google.protobuf import json_format
from grpc_status import rpc_status

from service.admin_cli import add_ledger_check
from service.cli_support import describe_error, ledger_target
from service.inventory_cli import add_inventory_command, list_certificates

__all__ = ["add_client_commands", "run_client_command"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
_CLIENT_COMMANDS = ("enroll", "certificate", "certificates", "subject", "revoke", "cas", "profiles", "csr",
                    "ledger")
# The contract names the CA's order id after the CA it was written for; the CLI shows that field
# in the contract's own words ("<name> order") rather than knowing which CA is behind the gateway.
_ORDER_LABEL = "sectigo_order_id".removesuffix("_order_id").capitalize() + " order"


def _add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default="127.0.0.1:50051", help="gateway gRPC address (default %(default)s)")
    parser.add_argument("--tls-ca", help="PEM of the CA that signed the gateway's TLS certificate (enables TLS)")
    parser.add_argument("--tls-cert", help="client certificate PEM (mutual TLS)")
    parser.add_argument("--tls-key", help="client key PEM (mutual TLS)")
    parser.add_argument("--timeout", type=float, default=None, help="deadline of the call in seconds")


def add_client_commands(commands: Any) -> None:
    enroll = commands.add_parser("enroll", help="enroll a CSR and write the certificate")
    _add_connection(enroll)
    enroll.add_argument("--ca", required=True, help="CA id")
    enroll.add_argument("--profile", required=True, help="profile id")
    enroll.add_argument("--csr", required=True, help="CSR file (PEM or DER)")
    enroll.add_argument("--out", help="where to write the certificate (PEM with chain); default stdout")
    enroll.add_argument("--format", choices=["PEM", "X509"], default="PEM")
    enroll.add_argument("--san", action="append", default=[], metavar="TYPE=VALUE",
                        help="subject alternative name, e.g. dNSName=www.example.com (repeatable)")
    enroll.add_argument("--request-id", help="idempotency key: a retry with it never orders twice")
    enroll.add_argument("--watch", action="store_true", help="stream every state change")
    enroll.add_argument("--check", action="store_true",
                        help="dry run: every check of the enrollment (names, grants, quotas...), no order placed")

    certificate = commands.add_parser("certificate", help="show a certificate by serial number")
    _add_connection(certificate)
    certificate.add_argument("--ca", required=True)
    certificate.add_argument("--serial", required=True)
    certificate.add_argument("--out", help="write the certificate as PEM to this file")

    add_inventory_command(commands, _add_connection)

    subject = commands.add_parser("subject", help="list the certificates of a subject DN")
    _add_connection(subject)
    subject.add_argument("--ca", required=True)
    subject.add_argument("--dn", required=True, help="RFC 4514 DN, e.g. 'CN=www.example.com,O=Example'")

    revoke = commands.add_parser("revoke", help="revoke a certificate (or every certificate of a subject)")
    _add_connection(revoke)
    revoke.add_argument("--ca", required=True)
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--serial")
    target.add_argument("--dn")
    revoke.add_argument("--reason", default="unspecified", help="RFC 5280 reason name (default %(default)s)")
    revoke.add_argument("--comment", default="")
    revoke.add_argument("--force", action="store_true", help="with --dn: above the configured count too")

    cas = commands.add_parser("cas", help="list the gateway's certificate authorities")
    _add_connection(cas)

    profiles = commands.add_parser("profiles", help="list the profiles of a CA")
    _add_connection(profiles)
    profiles.add_argument("--ca", required=True)

    csr = commands.add_parser("csr", help="make a private key and a CSR (to try enrollment)")
    csr.add_argument("--cn", required=True, help="common name")
    csr.add_argument("--san", action="append", default=[], help="DNS name (repeatable)")
    csr.add_argument("--key-out", required=True, help="where to write the private key (PEM, mode 0600)")
    csr.add_argument("--csr-out", required=True, help="where to write the CSR (PEM)")
    csr.add_argument("--key-type", choices=["rsa2048", "rsa3072", "ec256", "ec384"], default="ec256")

    ledger = commands.add_parser("ledger", help="ledger maintenance")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True)
    backup = ledger_commands.add_parser("backup", help="write a consistent copy of the ledger (safe while the "
                                        "gateway runs)")
    source = backup.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="gateway configuration (the ledger its ledger section names is copied)")
    source.add_argument("--ledger", help="ledger file, or ledger URL (sqlite:///FILE)")
    backup.add_argument("path", help="the copy to write (must not exist)")
    add_ledger_check(ledger_commands)


def _channel(args: argparse.Namespace) -> grpc.Channel:
    if (args.tls_cert or args.tls_key) and not args.tls_ca:
        raise SystemExit("--tls-cert/--tls-key need --tls-ca (the CA of the gateway's certificate); "
                         "refusing to fall back to a plaintext connection")
    if not args.tls_ca:
        return grpc.insecure_channel(args.server)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(args.tls_ca).read_bytes(),
        private_key=Path(args.tls_key).read_bytes() if args.tls_key else None,
        certificate_chain=Path(args.tls_cert).read_bytes() if args.tls_cert else None)
    return grpc.secure_channel(args.server, credentials)


def _print_json(message: Any) -> None:
    print(json_format.MessageToJson(message, indent=2))


def _sans(values: list[str]) -> list[enr_pb.SubjectAltName]:
    sans = []
    for value in values:
        kind, sep, name = value.partition("=")
        if not sep:
            raise SystemExit(f"--san {value!r}: write TYPE=VALUE, e.g. dNSName=www.example.com")
        sans.append(enr_pb.SubjectAltName(type=kind, value=name))
    return sans


def _write_certificate(enrollment: enr_pb.Enrollment, out: str | None) -> None:
    if out:
        Path(out).write_text(enrollment.body if enrollment.body.endswith("\n") else enrollment.body + "\n")
        print(f"certificate written to {out} (serial {enrollment.serial_number})", file=sys.stderr)
    else:
        print(enrollment.body)


def _event_line(event: enr_pb.EnrollmentEvent) -> str:
    state = enr_pb.EnrollmentState.Name(event.state).removeprefix("ENROLLMENT_STATE_")
    attempt = f" attempt {event.attempt}/{event.max_attempts}" if event.attempt else ""
    if event.state == enr_pb.ENROLLMENT_STATE_WAITING:
        wait = event.delay.ToTimedelta().total_seconds()
        return f"{state:<9}{attempt}: next collect in {wait:g}s"
    if event.state == enr_pb.ENROLLMENT_STATE_ISSUED:
        return f"{state:<9}{attempt}: serial {event.enrollment.serial_number}, {event.enrollment.subject_name}"
    if event.state == enr_pb.ENROLLMENT_STATE_TIMED_OUT:
        return (f"{state:<9}: not issued yet; the gateway keeps collecting. Later: cagw subject --ca ... "
                f"--dn '{event.enrollment.subject_name}' (enrollment {event.enrollment_id})")
    if event.state == enr_pb.ENROLLMENT_STATE_FAILED:
        return f"{state:<9}{attempt}: {event.error.message or event.detail}"
    order = f" ({_ORDER_LABEL} {event.sectigo_order_id})" if event.sectigo_order_id else ""
    return f"{state:<9}{attempt}: {event.detail or event.enrollment_id}{order}"


def _check(answer: enr_pb.CheckEnrollmentResponse) -> int:
    """Print a dry run's answer: ALLOWED with the grant, or REFUSED with every reason; exit 0 / 1."""
    who = f" for client {answer.client}" if answer.client else ""
    if answer.allowed:
        print(f"ALLOWED{who} by {answer.grant}: {answer.operation} of {answer.subject_name}")
    else:
        print(f"REFUSED{who}: {answer.operation}")
        for refusal in answer.refusals:
            print(f"  {refusal.code} {refusal.reason}: {refusal.message}")
            for violation in refusal.field_violations:
                print(f"    {violation}")
    for name in answer.names:
        print(f"  name {name.type}:{name.value} ({name.source})")
    return EXIT_OK if answer.allowed else EXIT_FAILED


def _enroll(args: argparse.Namespace, channel: grpc.Channel) -> int:
    csr = Path(args.csr).read_bytes()
    try:
        csr_text = csr.decode("ascii")
    except UnicodeDecodeError:
        import base64

        csr_text = base64.b64encode(csr).decode()
    fields = dict(ca_id=args.ca, profile_id=args.profile, csr=csr_text,
                  required_format=enr_pb.RequiredFormat(format=args.format), subject_alt_names=_sans(args.san),
                  request_id=args.request_id or "")
    stub = enr_grpc.EnrollmentServiceStub(channel)
    if args.check:
        return _check(stub.CheckEnrollment(enr_pb.CheckEnrollmentRequest(**fields), timeout=args.timeout))
    if not args.watch:
        response = stub.Enroll(enr_pb.EnrollRequest(**fields), timeout=args.timeout)
        enrollment = response.enrollment
        if enrollment.status == "ISSUED":
            _write_certificate(enrollment, args.out)
            return EXIT_OK
        print(f"PENDING: enrollment {enrollment.id} ({_ORDER_LABEL} {enrollment.sectigo_order_id}); look it up "
              f"later with: cagw subject --ca {args.ca} --dn '{enrollment.subject_name}'", file=sys.stderr)
        return EXIT_OK
    stream: Iterator[enr_pb.EnrollAndWatchResponse] = stub.EnrollAndWatch(
        enr_pb.EnrollAndWatchRequest(**fields), timeout=args.timeout)
    for message in stream:
        event = message.event
        print(_event_line(event), file=sys.stderr, flush=True)
        if event.state == enr_pb.ENROLLMENT_STATE_ISSUED:
            _write_certificate(event.enrollment, args.out)
        elif event.state == enr_pb.ENROLLMENT_STATE_FAILED:
            return EXIT_FAILED
    return EXIT_OK


def _certificate(args: argparse.Namespace, channel: grpc.Channel) -> int:
    response = cert_grpc.CertificateServiceStub(channel).GetCertificate(
        cert_pb.GetCertificateRequest(ca_id=args.ca, serial_number=args.serial), timeout=args.timeout)
    if args.out:
        import base64

        from service.x509 import pem_bundle

        der = base64.b64decode(response.certificate.certificate_data, validate=True)
        Path(args.out).write_text(pem_bundle([der]))
    _print_json(response)
    return EXIT_OK


def _action(args: argparse.Namespace) -> common_pb2.Action:
    return common_pb2.Action(type="RevokeAction", reason=args.reason, comment=args.comment,
                             force=bool(getattr(args, "force", False)))


def _revoke(args: argparse.Namespace, channel: grpc.Channel) -> int:
    if args.serial:
        response: Any = cert_grpc.CertificateServiceStub(channel).PerformCertificateAction(
            cert_pb.PerformCertificateActionRequest(ca_id=args.ca, serial_number=args.serial, action=_action(args)),
            timeout=args.timeout)
    else:
        response = sub_grpc.SubjectServiceStub(channel).PerformSubjectAction(
            sub_pb.PerformSubjectActionRequest(ca_id=args.ca, dn=args.dn, action=_action(args)),
            timeout=args.timeout)
    _print_json(response)
    return EXIT_OK


def _make_csr(args: argparse.Namespace) -> int:
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    key: Any
    if args.key_type.startswith("rsa"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(args.key_type[3:]))
    else:
        key = ec.generate_private_key(ec.SECP256R1() if args.key_type == "ec256" else ec.SECP384R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, args.cn)]))
    names = [args.cn, *args.san]
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dict.fromkeys(names)]),
                                    critical=False)
    request = builder.sign(key, hashes.SHA256())
    fd = os.open(args.key_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode only applies to a new file
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    Path(args.csr_out).write_bytes(request.public_bytes(serialization.Encoding.PEM))
    print(f"key written to {args.key_out}, CSR to {args.csr_out}", file=sys.stderr)
    return EXIT_OK


def _ledger_backup(args: argparse.Namespace) -> int:
    """Copy the ledger through its backend: the configuration's ``ledger`` section, or
    ``--ledger`` (a SQLite file, or a ledger URL; relative to the working directory)."""
    import asyncio

    from service.errors import NotFound, Unimplemented
    from service.ledger import backup_ledger

    target = ledger_target(args)
    if target is None:
        return EXIT_USAGE
    try:
        asyncio.run(backup_ledger(target, Path(args.path)))
    except (NotFound, Unimplemented) as exc:  # no ledger there / a backend without a copy of its own
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    print(f"ledger {target.path or target.shown} copied to {args.path}", file=sys.stderr)
    return EXIT_OK


def run_client_command(args: argparse.Namespace) -> int:
    if args.command not in _CLIENT_COMMANDS:
        raise SystemExit(f"unknown command {args.command}")
    if args.command == "csr":
        return _make_csr(args)
    if args.command == "ledger" and args.ledger_command == "check":
        from service.admin_cli import ledger_check

        return ledger_check(args)
    if args.command == "ledger":
        return _ledger_backup(args)
    try:
        with _channel(args) as channel:
            if args.command == "enroll":
                return _enroll(args, channel)
            if args.command == "certificate":
                return _certificate(args, channel)
            if args.command == "certificates":
                return list_certificates(args, channel)
            if args.command == "subject":
                _print_json(sub_grpc.SubjectServiceStub(channel).GetSubject(
                    sub_pb.GetSubjectRequest(ca_id=args.ca, dn=args.dn), timeout=args.timeout))
                return EXIT_OK
            if args.command == "revoke":
                return _revoke(args, channel)
            stub = ca_grpc.CertificateAuthorityServiceStub(channel)
            if args.command == "cas":
                _print_json(stub.ListCertificateAuthorities(ca_pb.ListCertificateAuthoritiesRequest(),
                                                            timeout=args.timeout))
            else:
                _print_json(stub.ListProfiles(ca_pb.ListProfilesRequest(ca_id=args.ca), timeout=args.timeout))
            return EXIT_OK
    except grpc.RpcError as error:
        print(describe_error(error), file=sys.stderr)
        # No google.rpc.Status from the gateway means the call never reached it.
        reached = rpc_status.from_call(error) is not None
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not reached:
            return EXIT_UNREACHABLE
        return EXIT_FAILED
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
