"""The ``cagw`` command: serve, simulator, check-config, the client commands and the operator's.

Exit codes: 0 success, 1 the operation failed (the CA or the gateway said no),
2 bad usage or configuration, 3 the gateway could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from service import __version__
from service.errors import CagwError, ConfigError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

log = logging.getLogger("cagw")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def _serve(args: argparse.Namespace) -> int:
    from service.app import Gateway
    from service.config import load_config

    embedded = None
    if args.config is None:
        from service.simulator.embedded import start_embedded

        embedded = await start_embedded(Path(args.workdir), grpc_listen=args.grpc_listen,
                                        rest_listen=args.rest_listen, ops_listen=args.ops_listen,
                                        admin_listen=args.admin_listen)
        config = embedded.config
        print(embedded.banner(), flush=True)
    else:
        config = load_config(Path(args.config))
    from service.observability.logs import configure_logging

    configure_logging(config.log, level=args.log_level)  # the command line's level wins over log.level
    gateway = Gateway(config)
    try:
        await gateway.start()
        rest = config.rest
        print(f"gRPC  {config.grpc.address} (health, reflection, cagw.v1)", flush=True)
        print(f"REST  http{'s' if rest.listen.tls else ''}://{rest.listen.address}{rest.context_path}/v1/"
              "certificate-authorities", flush=True)
        bound = gateway.ops.port if gateway.ops is not None else None  # the port really bound (ops.listen :0)
        ops = dataclasses.replace(config.ops, port=bound or config.ops.port)
        print(f"ops   http://{ops.address}/health, http://{ops.address}/metrics", flush=True)
        admin = dataclasses.replace(config.admin, port=(gateway.admin.port if gateway.admin else None) or config.admin.port)
        print(f"admin {admin.address} (cagw orders --server {admin.address})", flush=True)
        await gateway.serve_forever()
    finally:
        await gateway.stop()
        if embedded is not None:
            await embedded.stop()
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    from service.config import load_config

    config = load_config(Path(args.config))
    from service.app import build_connectors

    build_connectors(config)  # loads key and trust stores: wrong passwords show here
    print(f"{args.config}: OK ({len(config.managed_cas)} CA(s): {', '.join(ca.id for ca in config.managed_cas)})")
    return EXIT_OK


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cagw", description="Certificate gateway (CAGW v1 over gRPC and REST) "
                                     "in front of the CAs its connectors speak to")
    parser.add_argument("--version", action="version", version=f"cagw {__version__}")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        help="default: info (for serve: the configuration's log.level)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway (gRPC + REST)")
    serve.add_argument("--config", help="YAML configuration; without it the embedded CA simulator is used")
    serve.add_argument("--workdir", default=".cagw-dev", help="embedded mode: folder for the simulator CA, "
                       "TLS files and the ledger (default .cagw-dev)")
    serve.add_argument("--grpc-listen", default="127.0.0.1:50051", help="embedded mode: gRPC address")
    serve.add_argument("--rest-listen", default="127.0.0.1:8444", help="embedded mode: REST address")
    serve.add_argument("--ops-listen", default="127.0.0.1:9464", help="embedded mode: ops (health) address")
    serve.add_argument("--admin-listen", default="127.0.0.1:50052", help="embedded mode: operator (admin) "
                       "address, loopback only")

    check = commands.add_parser("check-config", help="validate a configuration file and its key stores")
    check.add_argument("--config", required=True)

    from service.simulator import COMMAND_HELP, add_simulator_arguments

    simulator = commands.add_parser("simulator", help=COMMAND_HELP)
    add_simulator_arguments(simulator)

    from service.client_cli import add_client_commands

    add_client_commands(commands)
    from service.admin_cli import add_orders_command

    add_orders_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level or "info")
    try:
        if args.command == "serve":
            return asyncio.run(_serve(args))
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "simulator":
            from service.simulator import run_simulator_command

            return asyncio.run(run_simulator_command(args))
        if args.command == "orders":
            from service.admin_cli import run_orders_command

            return run_orders_command(args)
        from service.client_cli import run_client_command

        return run_client_command(args)
    except ConfigError as exc:
        print(f"configuration error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except CagwError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
