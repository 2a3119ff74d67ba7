"""What the client commands share: an RPC error in words, and the ledger a command names."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

__all__ = ["describe_error", "ledger_target"]


def describe_error(error: grpc.RpcError) -> str:
    lines = [f"{error.code().name}: {error.details()}"]
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            lines.append(f"  reason: {info.reason}")
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            lines += [f"  {v.field}: {v.description}" for v in bad.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            lines.append(f"  retry after: {retry.retry_delay.ToTimedelta().total_seconds():g}s")
    return "\n".join(lines)


def ledger_target(args: argparse.Namespace) -> Any:
    """The ledger ``--config`` or ``--ledger`` names (a LedgerTarget), or None after saying why not."""
    from service.ledger.registry import LedgerSettingsError, file_target, parse_target

    if args.config:
        from service.config import load_config

        return load_config(Path(args.config)).ledger.target
    try:
        return parse_target(args.ledger) if "://" in args.ledger else file_target(Path(args.ledger))
    except LedgerSettingsError as exc:
        print("error: --ledger: " + "; ".join(text for _, text in exc.problems), file=sys.stderr)
        return None
