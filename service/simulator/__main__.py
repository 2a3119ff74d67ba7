"""``python -m service.simulator``: the same as ``cagw simulator``."""

from __future__ import annotations

import argparse
import asyncio

from .server import add_simulator_arguments, run_simulator_command


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m service.simulator", description="Sectigo SCM simulator")
    add_simulator_arguments(parser)
    return asyncio.run(run_simulator_command(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
