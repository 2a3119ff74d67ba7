"""``cagw certificates``: the gateway's inventory as a table (or JSON), soonest expiry first."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from cagw.v1 import certificate_authorities_pb2 as ca_pb
from cagw.v1 import certificate_authorities_pb2_grpc as ca_grpc
from cagw.v1 import inventory_pb2 as inv_pb
from cagw.v1 import inventory_pb2_grpc as inv_grpc
from google.protobuf import json_format

__all__ = ["add_inventory_command", "list_certificates"]

_COLUMNS = ("CA", "SERIAL", "STATUS", "NOT AFTER", "DAYS", "OWNER", "PROFILE", "RENEWED BY", "NAMES")
_PAGE = 500


def add_inventory_command(commands: Any, add_connection: Callable[[argparse.ArgumentParser], None]) -> None:
    listing = commands.add_parser("certificates", help="list the certificates the gateway knows, soonest expiry first")
    add_connection(listing)
    listing.add_argument("--ca", help="CA id (default: every CA of the gateway)")
    listing.add_argument("--expiring", metavar="DURATION", help="only those expiring within, e.g. 30d, 12h")
    listing.add_argument("--status", choices=["normal", "revoked", "expired"])
    listing.add_argument("--owner", help="only those ordered by this client")
    listing.add_argument("--name", help="a DNS name they carry: exact, or *.domain")
    listing.add_argument("--limit", type=int, default=1000, help="show at most this many (default %(default)s)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")


def _certificates(stub: inv_grpc.CertificateInventoryServiceStub, args: argparse.Namespace,
                  ca_id: str) -> Iterator[inv_pb.InventoryCertificate]:
    token, shown = "", 0
    while shown < args.limit:
        page = stub.ListCertificates(inv_pb.ListCertificatesRequest(
            ca_id=ca_id, status=args.status or "", owner=args.owner or "", name=args.name or "",
            expiring_within=args.expiring or "", page_size=min(_PAGE, args.limit - shown), page_token=token),
            timeout=args.timeout)
        for certificate in page.certificates:
            shown += 1
            yield certificate
        token = page.next_page_token
        if not token:
            return


def _row(ca_id: str, c: inv_pb.InventoryCertificate) -> tuple[str, ...]:
    return (ca_id, c.serial_number, c.status, c.not_after[:10], str(c.days_to_expiry), c.owner or "-",
            c.profile_id or "-", c.replaced_by or "-", ",".join(c.names) or c.subject_name)


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS) - 1)]
    for row in [_COLUMNS, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


def list_certificates(args: argparse.Namespace, channel: grpc.Channel) -> int:
    """Print the inventory of one CA or of all; 0 even when nothing matches (an empty table says so)."""
    if args.ca:
        ca_ids = [args.ca]
    else:
        listed = ca_grpc.CertificateAuthorityServiceStub(channel).ListCertificateAuthorities(
            ca_pb.ListCertificateAuthoritiesRequest(), timeout=args.timeout)
        ca_ids = [ca.id for ca in listed.ca_list]
    stub = inv_grpc.CertificateInventoryServiceStub(channel)
    rows = []
    for ca_id in ca_ids:
        for certificate in _certificates(stub, args, ca_id):
            if args.json:
                print(json_format.MessageToJson(certificate, indent=None))
            rows.append(_row(ca_id, certificate))
    if not args.json:
        _print_table(rows)
        print(f"{len(rows)} certificate(s)")
    return 0
