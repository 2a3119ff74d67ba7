"""The operator's side of the ``cagw`` command: ``ledger check`` and ``orders …``.

``cagw ledger check`` reads the ledger file itself (read-only, safe beside a
running gateway) and prints one line per problem, then a summary. Exit codes:
0 the ledger is sound, 1 problems were found, 2 no ledger there or a backend
that keeps no file.

``cagw orders list|show|retry|abandon`` talk to the running gateway's
``OrderAdminService`` on its admin listener (``admin.listen``, loopback,
default 127.0.0.1:50052), never to the ledger file behind its back. Exit codes:
0 done, 1 the gateway said no (unknown order, finished order, bad argument),
3 the gateway could not be reached.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_ledger_check", "add_orders_command", "ledger_check", "run_orders_command"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
DEFAULT_ADMIN = "127.0.0.1:50052"


def add_ledger_check(ledger_commands: Any) -> None:
    check = ledger_commands.add_parser("check", help="check the ledger's integrity and consistency (read-only, "
                                       "safe while the gateway runs); exit 0 sound, 1 problems found")
    where = check.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="gateway configuration (the ledger its ledger section names is checked)")
    where.add_argument("--ledger", help="ledger file, or ledger URL (sqlite:///FILE)")


def ledger_check(args: argparse.Namespace) -> int:
    """``cagw ledger check --config FILE | --ledger FILE-OR-URL``."""
    from service.cli_support import ledger_target
    from service.ledger.sqlite.check import check_database

    target = ledger_target(args)
    if target is None:
        return EXIT_USAGE
    file_of = target.backend.file_of
    if file_of is None:
        print(f"error: the {target.backend.name} ledger {target.shown} keeps no file `cagw ledger check` can "
              "read; check it with its database's own tools", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = check_database(file_of(target.settings))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for finding in report.findings:
        print(f"PROBLEM {finding}")
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def add_orders_command(commands: Any) -> None:
    orders = commands.add_parser("orders", help="operator commands on the running gateway's orders (admin "
                                 "listener)")
    actions = orders.add_subparsers(dest="orders_command", required=True)

    def connection(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--server", default=DEFAULT_ADMIN, help="the gateway's admin.listen address "
                            "(default %(default)s)")
        parser.add_argument("--timeout", type=float, default=30.0, help="deadline of the call in seconds")
        parser.add_argument("--json", action="store_true", help="print the answer as JSON")

    listing = actions.add_parser("list", help="orders, newest first")
    connection(listing)
    listing.add_argument("--state", default="", help="pending (every unfinished state), RECEIVED, SUBMITTED, "
                         "COLLECTING, ISSUED, FAILED or ABANDONED")
    listing.add_argument("--ca", default="", help="only this CA's orders")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100, at most 1000)")
    show = actions.add_parser("show", help="one order: its whole history, CA calls and audit")
    connection(show)
    show.add_argument("id", help="enrollment id")
    retry = actions.add_parser("retry", help="collect now (or take an abandoned order up again)")
    connection(retry)
    retry.add_argument("id", help="enrollment id")
    abandon = actions.add_parser("abandon", help="stop collecting an order (audited)")
    connection(abandon)
    abandon.add_argument("id", help="enrollment id")
    abandon.add_argument("--reason", required=True, help="why (kept in the order's history and the audit)")


def run_orders_command(args: argparse.Namespace) -> int:
    import grpc
    from cagw.v1 import admin_pb2 as pb
    from cagw.v1 import admin_pb2_grpc
    from grpc_status import rpc_status

    from service.cli_support import describe_error

    try:
        with grpc.insecure_channel(args.server) as channel:  # the admin listener is loopback, plaintext
            stub = admin_pb2_grpc.OrderAdminServiceStub(channel)  # type: ignore[no-untyped-call]
            if args.orders_command == "list":
                answer: Any = stub.ListOrders(pb.ListOrdersRequest(state=args.state, ca_id=args.ca,
                                                                   page_size=args.limit), timeout=args.timeout)
            elif args.orders_command == "show":
                answer = stub.GetOrder(pb.GetOrderRequest(id=args.id), timeout=args.timeout)
            elif args.orders_command == "retry":
                answer = stub.RetryOrder(pb.RetryOrderRequest(id=args.id), timeout=args.timeout)
            else:
                answer = stub.AbandonOrder(pb.AbandonOrderRequest(id=args.id, reason=args.reason),
                                           timeout=args.timeout)
    except grpc.RpcError as error:
        print(describe_error(error), file=sys.stderr)
        reached = rpc_status.from_call(error) is not None  # a google.rpc.Status: the gateway answered
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not reached:
            print(f"is the gateway running with admin.listen {args.server}?", file=sys.stderr)
            return EXIT_UNREACHABLE
        return EXIT_FAILED
    _print(args, answer)
    return EXIT_OK


def _print(args: argparse.Namespace, answer: Any) -> None:
    from google.protobuf import json_format

    if args.json:
        print(json_format.MessageToJson(answer, indent=2))
    elif args.orders_command == "list":
        print(_table(answer.orders))
        if answer.next_page_token:
            print(f"(more than {len(answer.orders)}; narrow with --state / --ca or raise --limit)")
    elif args.orders_command == "show":
        print(_dossier(answer))
    elif args.orders_command == "retry":
        print(f"order {answer.order.id}: {answer.action} ({answer.order.state}, attempt {answer.order.attempts})")
    else:
        print(f"order {answer.order.id}: {answer.order.state}: {answer.order.detail}")


def _time(stamp: Any) -> str:
    return stamp.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if stamp.seconds or stamp.nanos else "-"


def _table(orders: Any) -> str:
    rows = [("ID", "CA", "STATE", "ATTEMPTS", "CA ORDER", "CREATED", "DETAIL")]
    rows += [(o.id, o.ca_id, o.state, str(o.attempts), o.ca_order_id or "-", _time(o.create_time),
              (o.error_reason + ": " if o.error_reason else "") + o.detail[:60]) for o in orders]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
                     for row in rows)


def _dossier(answer: Any) -> str:
    o = answer.order
    lines = [f"order {o.id} ({o.kind}) on CA {o.ca_id}: {o.state}" + (" — worked on now" if answer.running else ""),
             f"  profile {o.profile_id}, subject {o.requested_dn or '-'}, requested by {o.requested_by or '-'}"
             + (f", request id {o.request_id}" if o.request_id else ""),
             f"  CA order {o.ca_order_id or '-'}, attempts {o.attempts}, next attempt {_time(o.next_attempt_time)}"
             + (f", serial {o.serial_number}" if o.serial_number else ""),
             f"  created {_time(o.create_time)}, last change {_time(o.update_time)}",
             f"  detail: {(o.error_reason + ': ') if o.error_reason else ''}{o.detail or '-'}",
             "history:"]
    lines += [f"  {_time(h.time)}  {h.state:<10}  {h.detail}" for h in answer.history]
    lines.append("CA calls (since the gateway started):" if answer.ca_calls else "CA calls: none seen by this gateway")
    lines += [f"  {_time(c.time)}  {c.operation:<20}  {c.outcome:<12}  {c.duration_ms:8.1f} ms  {c.error}"
              for c in answer.ca_calls]
    lines.append("audit:" if answer.audit else "audit: none")
    lines += [f"  {_time(a.time)}  {a.action:<8}  {a.outcome:<7}  {a.actor}: {a.detail}" for a in answer.audit]
    return "\n".join(line.rstrip() for line in lines)
