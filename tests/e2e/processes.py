"""Real ``cagw`` processes for the e2e suite: start, wait until ready, stop, always clean up.

Every process is started with ``subprocess.Popen`` (fork + exec at once, never a
bare fork of this gRPC-importing test process), with stdout and stderr in files
next to the test's data and an environment without proxy or TLS-override
variables. Readiness is polled (REST ``/cagw/health``, the simulator's admin
``/__simulator/stats``) under a deadline, and a process that dies while it is
awaited fails the wait at once with its log tail. :class:`Processes` remembers
what it started and stops all of it (SIGTERM, then SIGKILL) on ``cleanup``,
which the fixtures call even when a test fails.

Example::

    procs = Processes(tmp_path)
    try:
        sim = start_simulator(procs, tmp_path / "sim", issue_after="1s")
        gateway = start_gateway(procs, write_config(tmp_path / "gw", gateway_document(sim.api_url)))
        result = run_cagw("cas", "--server", gateway.grpc_target)
    finally:
        procs.cleanup()
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = [
    "CAGW",
    "CA_ID",
    "PROFILE_ID",
    "GatewayProcess",
    "Process",
    "Processes",
    "SimulatorProcess",
    "child_env",
    "free_port",
    "free_ports",
    "gateway_document",
    "http_json",
    "run_cagw",
    "start_embedded_gateway",
    "start_gateway",
    "start_simulator",
    "wait_until",
    "write_config",
]

PROJECT = Path(__file__).resolve().parents[2]
CAGW: tuple[str, ...] = (sys.executable, "-m", "service.cli")
START_TIMEOUT = 30.0  # generous for a loaded 2-core CI runner; a healthy start takes about a second
STOP_TIMEOUT = 15.0

_SCRUBBED = re.compile(r"^(?:(?:https?|all|no|ftp|grpc|socks)_proxy|ssl_cert_(?:file|dir)|requests_ca_bundle|"
                       r"curl_ca_bundle|grpc_default_ssl_roots_file_path|pythonstartup)$", re.IGNORECASE)
# urllib without proxies, whatever the test process's own environment says.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

T = TypeVar("T")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without proxy/TLS overrides, importing this checkout's code, unbuffered."""
    env = {key: value for key, value in os.environ.items() if not _SCRUBBED.match(key)}
    paths = [str(PROJECT), str(PROJECT / "generated")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def free_ports(count: int) -> list[int]:
    """``count`` different ports that were free a moment ago (bind 127.0.0.1:0, read them, close)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:  # all held open together, so the kernel cannot hand out one twice
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def http_json(method: str, url: str, body: Any = None, *, timeout: float = 5.0) -> tuple[int, Any]:
    """(status, decoded JSON or None) of one plain HTTP call, with no proxy."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with _HTTP.open(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    return status, (json.loads(raw) if raw.strip() else None)


def run_cagw(*args: str, timeout: float = 60.0, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one ``cagw`` command to completion and return its exit code and output."""
    return subprocess.run([*CAGW, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=child_env(env), stdin=subprocess.DEVNULL, check=False)


# ---------------------------------------------------------------------------- processes


@dataclass
class Process:
    """One started process and the files its output goes to."""

    name: str
    argv: Sequence[str]
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self, lines: int = 40) -> str:
        """Exit status and the tail of both logs, for assertion messages."""
        def tail(text: str) -> str:
            return "\n".join(text.splitlines()[-lines:])

        state = "running" if self.returncode is None else f"exited with {self.returncode}"
        return (f"--- {self.name} (pid {self.pid}, {state}): {' '.join(self.argv)}\n"
                f"--- stdout:\n{tail(self.stdout())}\n--- stderr:\n{tail(self.stderr())}")

    def send(self, signum: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; returns the exit status."""
        self.send(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        self.send(signal.SIGKILL)
        return self.popen.wait(STOP_TIMEOUT)


class Processes:
    """Starts processes with their logs under ``folder`` and stops every one of them on cleanup."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[Process] = []
        folder.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *args: str, cwd: Path | None = None) -> Process:
        index = len(self.started)
        stdout_path = self.folder / f"{index:02d}-{name}.stdout.log"
        stderr_path = self.folder / f"{index:02d}-{name}.stderr.log"
        argv = [*CAGW, *args]
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            popen = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd or self.folder,
                                     env=child_env())
        process = Process(name=name, argv=argv, popen=popen, stdout_path=stdout_path, stderr_path=stderr_path)
        self.started.append(process)
        return process

    def cleanup(self) -> None:
        """Stop whatever still runs (even after a failed test); kill what does not stop in time."""
        for process in reversed(self.started):
            if process.returncode is None:
                process.stop()


def wait_until(condition: Callable[[], T | None], *, what: str, timeout: float = START_TIMEOUT,
               interval: float = 0.05, watch: Sequence[Process] = ()) -> T:
    """Poll ``condition`` until it returns something truthy (returned); fail after ``timeout``
    seconds, or at once when one of the ``watch`` processes exits meanwhile."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        for process in watch:
            if process.returncode is not None:
                raise AssertionError(f"{process.name} exited while waiting for {what}\n{process.describe()}")
        try:
            result = condition()
            if result:
                return result
        except (OSError, ValueError) as exc:  # not listening yet, or a half-written answer
            last_error = exc
        if time.monotonic() >= deadline:
            logs = "\n".join(p.describe() for p in watch)
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last error: {last_error!r})\n{logs}")
        time.sleep(interval)


# ---------------------------------------------------------------------------- the simulator


@dataclass
class SimulatorProcess:
    process: Process
    port: int
    ca_dir: Path
    state_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def ca_pem(self) -> Path:
        return self.ca_dir / "ca.pem"

    def stats(self) -> dict[str, Any]:
        status, body = http_json("GET", f"{self.url}/__simulator/stats")
        assert status == 200, body
        return dict(body)

    def enrolls(self) -> int:
        return int(self.stats()["requests"].get("enroll", 0))

    def add_fault(self, **rule: Any) -> None:
        status, body = http_json("POST", f"{self.url}/__simulator/faults", rule)
        assert status == 201, body


def start_simulator(procs: Processes, folder: Path, *, options: Sequence[str] = ("--issue-after", "1s"),
                    name: str = "simulator") -> SimulatorProcess:
    """``cagw simulator`` over plain HTTP on a free port, with its CA and state in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    ca_dir, state_file = folder / "ca", folder / "state.json"
    process = procs.start(name, "simulator", "--listen", f"127.0.0.1:{port}", "--ca-dir", str(ca_dir),
                          "--state", str(state_file), *options)
    simulator = SimulatorProcess(process=process, port=port, ca_dir=ca_dir, state_file=state_file)
    wait_until(lambda: http_json("GET", f"{simulator.url}/__simulator/stats")[0] == 200,
               what=f"the simulator on port {port}", watch=[process])
    return simulator


# ---------------------------------------------------------------------------- the gateway


CA_ID = "sim"
PROFILE_ID = "ov-server"


def gateway_document(api_url: str, folder: Path, *, grpc_port: int = 0, rest_port: int = 0,
                     timer: str = "50ms", max_timer: str = "50ms", attempts: int = 3, grace: str = "5s",
                     extra_cas: Sequence[tuple[str, dict[str, str]]] = ()) -> dict[str, Any]:
    """A configuration for one CA (``sim``, profile ``ov-server``) on a plain-HTTP simulator.

    ``extra_cas`` adds CAs on the same simulator: (id, property overrides) each.
    """
    def ca(ca_id: str, overrides: dict[str, str]) -> dict[str, Any]:
        return {
            "id": ca_id,
            "name": f"Simulated Sectigo ({ca_id})",
            "connector": "sectigo",
            "properties": {
                "url": api_url,
                "customer-uri": "simulator",
                "org-id": "1234",
                "login": "simulator-admin",
                "login-password": "simulator-password",
                "enroll-back-off-timer": timer,
                "enroll-max-back-off-timer": max_timer,
                "enroll-max-attempts": str(attempts),
                **overrides,
            },
            "profiles": [{"id": PROFILE_ID, "name": "OV server", "cert-type": "1001"}],
            "gateway": {"request-timeout": "10s", "connect-timeout": "2s"},
        }

    fresh = free_ports(3)
    return {
        "grpc": {"listen": f"127.0.0.1:{grpc_port or fresh[0]}"},
        "rest": {"listen": f"127.0.0.1:{rest_port or fresh[1]}", "context-path": "/cagw"},
        "ops": {"listen": "127.0.0.1:0"},
        "admin": {"listen": f"127.0.0.1:{fresh[2]}"},
        "ledger": {"path": str(folder / "ledger.db")},
        "shutdown-grace": grace,
        "managed-cas": [ca(CA_ID, {}), *(ca(ca_id, overrides) for ca_id, overrides in extra_cas)],
    }


def write_config(folder: Path, document: dict[str, Any], name: str = "cagw.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@dataclass
class GatewayProcess:
    process: Process
    grpc_port: int
    rest_port: int
    ledger_path: Path
    config_path: Path | None = None  # config mode
    workdir: Path | None = None  # embedded mode: simulator CA, TLS files and ledger
    admin_port: int = 0  # the OrderAdminService listener

    @property
    def admin_target(self) -> str:
        return f"127.0.0.1:{self.admin_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_base(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}/cagw"

    def healthy(self) -> bool:
        return http_json("GET", f"{self.rest_base}/health", timeout=2.0)[0] == 200

    def wait_ready(self) -> GatewayProcess:
        # REST starts after gRPC and after the unfinished orders were resumed: healthy means all of it.
        wait_until(self.healthy, what=f"{self.process.name} to report healthy on {self.rest_base}/health",
                   watch=[self.process])
        return self


def start_gateway(procs: Processes, config_path: Path, *, name: str = "gateway", wait: bool = True
                  ) -> GatewayProcess:
    """``cagw serve --config``; waits until ``/cagw/health`` answers 200 unless ``wait`` is false."""
    document = yaml.safe_load(config_path.read_text())
    process = procs.start(name, "serve", "--config", str(config_path))
    gateway = GatewayProcess(process=process, grpc_port=_port_of(document["grpc"]["listen"]),
                             rest_port=_port_of(document["rest"]["listen"]),
                             ledger_path=Path(document["ledger"].get("path", "")), config_path=config_path,
                             admin_port=_port_of(document["admin"]["listen"]) if "admin" in document else 0)
    return gateway.wait_ready() if wait else gateway


def start_embedded_gateway(procs: Processes, workdir: Path, *, name: str = "embedded") -> GatewayProcess:
    """``cagw serve`` with no configuration (what ``make run`` does), on free ports."""
    grpc_port, rest_port, admin_port = free_ports(3)
    process = procs.start(name, "serve", "--workdir", str(workdir), "--grpc-listen", f"127.0.0.1:{grpc_port}",
                          "--rest-listen", f"127.0.0.1:{rest_port}", "--ops-listen", "127.0.0.1:0",
                          "--admin-listen", f"127.0.0.1:{admin_port}")
    gateway = GatewayProcess(process=process, grpc_port=grpc_port, rest_port=rest_port,
                             ledger_path=workdir / "ledger.db", workdir=workdir, admin_port=admin_port)
    return gateway.wait_ready()
