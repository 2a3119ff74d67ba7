"""The processes under measurement: the SCM simulator and ``cagw serve``, each on its own.

Both are started with ``subprocess.Popen`` from this (load-driving) process, on
free loopback ports, with their output in files under the work folder. The
simulator serves HTTPS with a throwaway TLS CA that the gateway trusts through
a generated PEM trust store, so the gateway pays for TLS as it does in
production. :class:`ProcessMeter` reads a process's own accounting from
``/proc`` (CPU of all its threads, resident memory, context switches), so a
noisy neighbour on the machine does not distort the per-enrollment figures.

Example::

    with Stack.start(work / "instant", issue_after="0s", backoff=("0.1s", "32s", 5)) as stack:
        before = stack.gateway_meter.sample()
        ...
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from service.simulator.embedded import _ensure_tls_files

__all__ = ["CA_ID", "PROFILE_ID", "Backoff", "MeterSample", "ProcessMeter", "Stack", "free_ports"]

CA_ID = "sim"
PROFILE_ID = "ov-server"
PROJECT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def free_ports(count: int) -> list[int]:
    """``count`` different ports that were free a moment ago (all bound together, then closed)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True)
class MeterSample:
    """One reading of a process: CPU seconds (user + system, every thread), RSS bytes, context
    switches (voluntary + involuntary, summed over the threads alive now) and the wall clock."""

    cpu: float
    rss: int
    ctx_switches: int
    wall: float

    def cpu_since(self, earlier: MeterSample) -> float:
        return self.cpu - earlier.cpu


class ProcessMeter:
    """Reads ``/proc/<pid>`` of one process (Linux only)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def sample(self) -> MeterSample:
        base = Path(f"/proc/{self.pid}")
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        fields = (base / "stat").read_text().rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
        rss_pages = int((base / "statm").read_text().split()[1])
        return MeterSample(cpu=(utime + stime) / _CLOCK_TICKS, rss=rss_pages * _PAGE,
                           ctx_switches=self._context_switches(base), wall=time.monotonic())

    @staticmethod
    def _context_switches(base: Path) -> int:
        total = 0
        for task in (base / "task").iterdir():
            try:
                text = (task / "status").read_text()
            except OSError:  # the thread ended meanwhile
                continue
            for line in text.splitlines():
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    total += int(line.split()[1])
        return total


def _child_env() -> dict[str, str]:
    """This environment without proxies, importing this checkout's code, unbuffered."""
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    paths = [str(PROJECT), str(PROJECT / "generated")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _Child:
    """A started process with its output in two files."""

    def __init__(self, name: str, argv: list[str], folder: Path) -> None:
        self.name = name
        self.stdout_path = folder / f"{name}.stdout.log"
        self.stderr_path = folder / f"{name}.stderr.log"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=folder,
                                          env=_child_env())

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            tail = "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(STOP_TIMEOUT)


def _get(url: str, context: ssl.SSLContext | None = None, *, timeout: float = 5.0) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def _wait_for(child: _Child, url: str, context: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        child.check_alive()
        try:
            if _get(url, context, timeout=2.0)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name} did not answer {url} within {START_TIMEOUT:g}s")
        time.sleep(0.05)


@dataclass(frozen=True)
class Backoff:
    """The connector's collect schedule: ``enroll-back-off-timer``, its maximum and the attempts."""

    timer: str
    max_timer: str
    attempts: int


def gateway_document(*, folder: Path, sim_url: str, trust_store: Path, ports: list[int],
                     backoff: Backoff) -> dict[str, Any]:
    """``cagw serve`` configuration: one CA (``sim``) on the simulator, every other key at its default
    but the stream limits (per caller, in all, and per gRPC connection)."""
    return {
        # The watchers scenario also holds its 500 streams on one connection (the default allows 100).
        "grpc": {"listen": f"127.0.0.1:{ports[0]}", "limits": {"max-concurrent-streams": 2000}},
        "rest": {"listen": f"127.0.0.1:{ports[1]}", "context-path": "/cagw"},
        "ops": {"listen": f"127.0.0.1:{ports[2]}"},
        # Not the default port: another gateway on the machine may hold it.
        "admin": {"listen": f"127.0.0.1:{ports[3]}"},
        "ledger": {"path": str(folder / "ledger.db")},
        # The watchers scenario opens hundreds of streams as one caller (no client certificates).
        "streams": {"max-per-caller": "5000", "max-total": "5000"},
        "managed-cas": [{
            "id": CA_ID,
            "name": "Simulated Sectigo",
            "connector": "sectigo",
            "properties": {
                "url": f"{sim_url}/api",
                "customer-uri": "simulator",
                "org-id": "1234",
                "login": "simulator-admin",
                "login-password": "simulator-password",
                "ssl-trust-store": str(trust_store),
                "ssl-truststore-type": "PEM",
                "enroll-back-off-timer": backoff.timer,
                "enroll-max-back-off-timer": backoff.max_timer,
                "enroll-max-attempts": str(backoff.attempts),
            },
            "profiles": [{"id": PROFILE_ID, "name": "OV server", "cert-type": "1001", "term": "365"}],
        }],
    }


class Stack:
    """A simulator process and a gateway process pointed at it; stopped on exit, always."""

    def __init__(self, folder: Path, *, issue_after: str, backoff: Backoff) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.tls = _ensure_tls_files(folder / "tls")
        self.client_tls = ssl.create_default_context(cafile=str(self.tls.trust_store))
        sim_port, grpc_port, rest_port, ops_port, admin_port = free_ports(5)
        self.sim_url = f"https://127.0.0.1:{sim_port}"
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.rest_base = f"http://127.0.0.1:{rest_port}/cagw"
        self.metrics_url = f"http://127.0.0.1:{ops_port}/metrics"
        self._issue_after = issue_after
        self._backoff = backoff
        self._ports = [grpc_port, rest_port, ops_port, admin_port]
        self._children: list[_Child] = []

    @classmethod
    def start(cls, folder: Path, *, issue_after: str, backoff: Backoff) -> Stack:
        stack = cls(folder, issue_after=issue_after, backoff=backoff)
        try:
            stack._start_simulator()
            stack._start_gateway()
        except BaseException:
            stack.stop()
            raise
        return stack

    def _start_simulator(self) -> None:
        port = self.sim_url.rsplit(":", 1)[1]
        argv = [sys.executable, "-m", "service.simulator", "--listen", f"127.0.0.1:{port}",
                "--tls-cert", str(self.tls.server_cert), "--tls-key", str(self.tls.server_key),
                "--ca-dir", str(self.folder / "simulator-ca"), "--issue-after", self._issue_after]
        self.simulator = _Child("simulator", argv, self.folder)
        self._children.append(self.simulator)
        _wait_for(self.simulator, f"{self.sim_url}/__simulator/stats", self.client_tls)
        self.simulator_meter = ProcessMeter(self.simulator.popen.pid)

    def _start_gateway(self) -> None:
        document = gateway_document(folder=self.folder, sim_url=self.sim_url, trust_store=self.tls.trust_store,
                                    ports=self._ports, backoff=self._backoff)
        config = self.folder / "cagw.yaml"
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        argv = [sys.executable, "-m", "service.cli", "serve", "--config", str(config)]
        self.gateway = _Child("gateway", argv, self.folder)
        self._children.append(self.gateway)
        _wait_for(self.gateway, f"{self.rest_base}/health")
        self.gateway_meter = ProcessMeter(self.gateway.popen.pid)

    @property
    def gateway_pid(self) -> int:
        return self.gateway.popen.pid

    def simulator_bytes(self, path: str) -> bytes:
        status, body = _get(f"{self.sim_url}{path}", self.client_tls, timeout=30.0)
        if status != 200:
            raise RuntimeError(f"simulator {path}: HTTP {status}")
        return body

    def simulator_json(self, path: str) -> Any:
        return json.loads(self.simulator_bytes(path))

    def simulator_delete(self, path: str) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=self.client_tls))
        with opener.open(urllib.request.Request(f"{self.sim_url}{path}", method="DELETE"), timeout=10.0):
            pass

    def simulator_post(self, path: str, body: Any) -> Any:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=self.client_tls))
        request = urllib.request.Request(f"{self.sim_url}{path}", data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with opener.open(request, timeout=30.0) as answer:
            return json.loads(answer.read())

    def metrics(self) -> str:
        status, body = _get(self.metrics_url, timeout=10.0)
        if status != 200:
            raise RuntimeError(f"gateway /metrics: HTTP {status}")
        return body.decode("utf-8")

    def check_alive(self) -> None:
        for child in self._children:
            child.check_alive()

    def stop(self) -> None:
        for child in reversed(self._children):
            child.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
