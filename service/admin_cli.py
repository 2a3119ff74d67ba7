"""The operator's side of the ``cagw`` command: ``ledger check``.

``cagw ledger check`` reads the ledger file itself (read-only, safe beside a
running gateway) and prints one line per problem, then a summary. Exit codes:
0 the ledger is sound, 1 problems were found, 2 no ledger there or a backend
that keeps no file.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["ledger_check"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def ledger_check(args: argparse.Namespace) -> int:
    """``cagw ledger check --config FILE | --ledger FILE-OR-URL``."""
    from service.client_cli import ledger_target
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
