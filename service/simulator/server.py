"""Run the simulator: start/stop on a real socket, TLS and client-certificate setup, CLI helpers.

Example::

    sim = await start_simulator(SimulatorSettings(port=0, ca_dir=tmp_path / "ca"))
    async with aiohttp.ClientSession() as http:
        await http.get(f"{sim.url}/api/ssl/v1/types", headers=sim.credentials_headers())
    await sim.stop()

``cagw simulator`` calls :func:`add_simulator_arguments` and
:func:`run_simulator_command`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from aiohttp import web

from service.config import parse_duration, parse_listen
from service.errors import ConfigError
from service.keystores import listener_ssl_context

from .app import SimulatorStats, build_app, is_loopback
from .auth import Authenticator
from .faults import FaultInjector
from .local_ca import LocalCA
from .manager import Clock, SimulatedCertificateManager
from .settings import (
    DEMO_OAUTH_CLIENT_SECRET,
    DEMO_PASSWORD,
    SimulatorSettings,
    default_ca_dir,
)
from .state import OrderBook

__all__ = [
    "Simulator",
    "add_simulator_arguments",
    "run_simulator_command",
    "settings_from_args",
    "start_simulator",
]

Sleep = Callable[[float], Awaitable[None]]
_SHUTDOWN_TIMEOUT = 2.0


class Simulator:
    """A running simulator. ``url`` is the base: clients append ``/api`` or ``/private/api``."""

    def __init__(
        self,
        *,
        settings: SimulatorSettings,
        runner: web.AppRunner,
        url: str,
        manager: SimulatedCertificateManager,
        auth: Authenticator,
        faults: FaultInjector,
        stats: SimulatorStats,
    ) -> None:
        self.settings = settings
        self.url = url
        self.manager = manager
        self.faults = faults
        self.stats = stats
        self._auth = auth
        self._runner = runner
        self._stopped = False

    def __repr__(self) -> str:
        return f"Simulator(url={self.url!r}, orders={len(self.state)})"

    async def __aenter__(self) -> Simulator:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def private_api_url(self) -> str:
        return f"{self.url}/private/api"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def ca_certificate_path(self) -> Path:
        """``ca-dir/ca.pem``: the CA that signs every certificate the simulator issues."""
        return self.manager.ca.certificate_path

    @property
    def state(self) -> OrderBook:
        """The orders, for assertions (``len(sim.state)``, ``sim.state.find(comments=...)``)."""
        return self.manager.book

    @property
    def tokens_issued(self) -> int:
        """OAuth2 tokens handed out so far (lets a test check that a client caches its token)."""
        return self._auth.tokens_issued

    def credentials_headers(self) -> dict[str, str]:
        """The password-login headers for ``/api``."""
        s = self.settings
        return {"login": s.login, "password": s.password, "customerUri": s.customer_uri}

    async def stop(self) -> None:
        """Stop listening, finish in-flight requests (briefly) and flush the state file."""
        if self._stopped:
            return
        self._stopped = True
        await self._runner.cleanup()
        self.manager.book.save()


def _server_ssl_context(settings: SimulatorSettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None:
        if settings.client_ca is not None:
            raise ConfigError("simulator: a client CA needs HTTPS (give tls_cert and tls_key)")
        return None
    # Optional at the TLS layer, required per route: /api password callers must still get in.
    return listener_ssl_context(settings.tls_cert, settings.tls_key, client_ca=settings.client_ca,
                                client_auth="optional")


def _default_first_ssl_id(clock: Clock) -> int:
    # Ids differ between runs, so a gateway ledger never mistakes a new order for an old one.
    return (int(clock()) % 200_000) * 10_000 + 1


async def start_simulator(
    settings: SimulatorSettings,
    *,
    clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
) -> Simulator:
    """Create the CA if needed, load the state file, and listen on ``settings.host:port``.

    ``clock`` drives issuance timing, token expiry and certificate dates, so tests
    move time instead of sleeping; ``sleep`` serves latency faults.
    """
    if not is_loopback(settings.host) and settings.client_ca is None:
        raise ConfigError(f"simulator: {settings.host or '*'}:{settings.port} is not a loopback address; listening "
                          "there needs --client-ca (and --tls-cert), or anyone on the network may use its "
                          "demo credentials and admin routes")
    ssl_context = _server_ssl_context(settings)
    ca = LocalCA.load_or_create(settings.ca_dir, now=dt.datetime.fromtimestamp(clock(), dt.UTC))
    first_id = settings.first_ssl_id if settings.first_ssl_id is not None else _default_first_ssl_id(clock)
    book = OrderBook(first_ssl_id=first_id, state_file=settings.state_file)
    manager = SimulatedCertificateManager(settings, ca=ca, book=book, clock=clock)
    auth = Authenticator(settings, clock=clock)
    faults = FaultInjector(seed=settings.fault_seed)
    stats = SimulatorStats()
    app = build_app(manager, auth=auth, faults=faults, stats=stats, sleep=sleep)
    # aiohttp's default access log (request line, status, size, user agent) carries no secrets.
    runner = (
        web.AppRunner(app, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        if settings.access_log
        else web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"simulator cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from exc
    port = runner.addresses[0][1]
    scheme = "https" if ssl_context is not None else "http"
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return Simulator(
        settings=settings,
        runner=runner,
        url=f"{scheme}://{host}:{port}",
        manager=manager,
        auth=auth,
        faults=faults,
        stats=stats,
    )


# -- command line ------------------------------------------------------------------------------

def _duration_arg(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _listen_arg(text: str) -> tuple[str, int]:
    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_simulator_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``cagw simulator`` flags; defaults are the demo settings."""
    d = SimulatorSettings(ca_dir=Path("."))
    parser.add_argument("--listen", type=_listen_arg, default=(d.host, d.port), metavar="HOST:PORT",
                        help=f"address to listen on (default {d.host}:{d.port})")
    parser.add_argument("--tls-cert", type=Path, metavar="PEM", help="server certificate chain (HTTPS); plain HTTP without it")
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="server private key (default: inside --tls-cert)")
    parser.add_argument("--client-ca", type=Path, metavar="PEM",
                        help="CA of client certificates; /private/api then requires one")
    parser.add_argument("--login", default=d.login, help="SCM admin login (default: %(default)s)")
    parser.add_argument("--password", default=None,
                        help="SCM admin password; visible to every user of this machine in the process list, so "
                             f"prefer --password-file or ${PASSWORD_ENV} (default: the demo password)")
    parser.add_argument("--password-file", type=Path, metavar="FILE", help="read the SCM admin password from FILE")
    parser.add_argument("--customer-uri", default=d.customer_uri, help="SCM customerUri (default: %(default)s)")
    parser.add_argument("--org-id", type=int, default=d.org_id, help="organization id (default: %(default)s)")
    parser.add_argument("--oauth-client-id", default=d.oauth_client_id, help="OAuth2 client id (default: %(default)s)")
    parser.add_argument("--oauth-client-secret", default=None,
                        help=f"OAuth2 client secret; prefer --oauth-client-secret-file or ${SECRET_ENV} "
                             "(default: the demo secret)")
    parser.add_argument("--oauth-client-secret-file", type=Path, metavar="FILE",
                        help="read the OAuth2 client secret from FILE")
    parser.add_argument("--token-ttl", type=_duration_arg, default=d.token_ttl, metavar="DURATION",
                        help="OAuth2 token lifetime (default: %(default)ss)")
    parser.add_argument("--issue-after", type=_duration_arg, default=d.issue_after, metavar="DURATION",
                        help="time from enroll to issuance, e.g. 3s, 500ms (default: %(default)ss)")
    parser.add_argument("--issue-after-polls", type=int, metavar="N",
                        help="issue after N pending collect answers instead of after a time")
    parser.add_argument("--pending-code", type=int, default=d.pending_code,
                        help="SCM code of the pending collect answer (default: %(default)s)")
    parser.add_argument("--require-approval", action="store_true", help="new orders wait for /approve")
    parser.add_argument("--ca-dir", type=Path, default=None, metavar="DIR",
                        help=f"folder of ca.pem and ca-key.pem (default: {default_ca_dir()})")
    parser.add_argument("--state", type=Path, default=None, metavar="FILE", help="JSON file keeping orders across restarts")
    parser.add_argument("--access-log", action="store_true", help="log every request")


PASSWORD_ENV = "CAGW_SIMULATOR_PASSWORD"
SECRET_ENV = "CAGW_SIMULATOR_OAUTH_CLIENT_SECRET"


def _secret(given: str | None, file: Path | None, env: str, flag: str, default: str) -> str:
    """A secret from its flag, else its ``-file`` flag (first line), else the environment, else the demo's."""
    if given is not None and file is not None:
        raise ConfigError(f"simulator: give {flag} or {flag}-file, not both")
    if given is not None:
        return given
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"simulator: {flag}-file {file}: cannot read it ({exc})") from None
        if not lines or not lines[0].strip():
            raise ConfigError(f"simulator: {flag}-file {file} is empty")
        return lines[0].strip()
    return os.environ.get(env) or default


def settings_from_args(args: argparse.Namespace) -> SimulatorSettings:
    """Turn parsed ``cagw simulator`` flags into settings."""
    host, port = args.listen
    base = SimulatorSettings()
    return replace(
        base,
        host=host,
        port=port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.client_ca,
        login=args.login,
        password=_secret(args.password, args.password_file, PASSWORD_ENV, "--password", base.password),
        customer_uri=args.customer_uri,
        org_id=args.org_id,
        oauth_client_id=args.oauth_client_id,
        oauth_client_secret=_secret(args.oauth_client_secret, args.oauth_client_secret_file, SECRET_ENV,
                                    "--oauth-client-secret", base.oauth_client_secret or ""),
        token_ttl=args.token_ttl,
        issue_after=args.issue_after,
        issue_after_polls=args.issue_after_polls,
        pending_code=args.pending_code,
        require_approval=args.require_approval,
        ca_dir=args.ca_dir if args.ca_dir is not None else base.ca_dir,
        state_file=args.state,
        access_log=args.access_log,
    )


def _banner(sim: Simulator) -> str:
    s = sim.settings
    password = s.password if s.password == DEMO_PASSWORD else "(as given)"
    secret = s.oauth_client_secret if s.oauth_client_secret == DEMO_OAUTH_CLIENT_SECRET else "(as given)"
    issue = f"after {s.issue_after_polls} pending collects" if s.issue_after_polls is not None else f"after {s.issue_after:g}s"
    lines = [
        f"Sectigo SCM simulator listening on {sim.url}",
        f"  API base:        {sim.api_url}   (private/mTLS: {sim.private_api_url})",
        f"  login:           {s.login}",
        f"  password:        {password}",
        f"  customerUri:     {s.customer_uri}",
        f"  orgId:           {s.org_id}   cert types: {', '.join(str(t.id) for t in s.cert_types)}",
        f"  issuance:        {issue}",
        f"  CA certificate:  {sim.ca_certificate_path}",
    ]
    if s.oauth_client_id:
        lines.append(f"  OAuth2 token:    POST {sim.url}/oauth/token  client_id={s.oauth_client_id} client_secret={secret}")
    if s.client_ca is not None:
        lines.append(f"  client CA:       {s.client_ca} (required on /private/api)")
    if s.state_file is not None:
        lines.append(f"  state file:      {s.state_file}")
    return "\n".join(lines)


async def run_simulator_command(args: argparse.Namespace) -> int:
    """``cagw simulator``: run until SIGINT/SIGTERM; 0 on a clean stop, 2 on a setup error."""
    try:
        settings = settings_from_args(args)
        sim = await start_simulator(settings)
    except ConfigError as exc:
        print(f"cagw simulator: {exc}", file=sys.stderr)
        return 2
    if settings.access_log:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # Printed only once the handlers are in place: a supervisor may signal as soon as it reads it.
    print(_banner(sim), flush=True)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await sim.stop()
    print("simulator stopped", flush=True)
    return 0
