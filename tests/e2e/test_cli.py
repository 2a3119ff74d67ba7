"""The ``cagw`` command against real processes: the embedded default, check-config, port clashes.

One embedded gateway (``cagw serve`` with no configuration, what ``make run``
does) serves every test of the module that only reads from it, so the suite
pays for its start-up once.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.e2e.processes import (
    GatewayProcess,
    Processes,
    free_port,
    gateway_document,
    run_cagw,
    start_embedded_gateway,
    write_config,
)

pytestmark = pytest.mark.slow

EMBEDDED_CA = "sectigo-sim"
EMBEDDED_PROFILE = "ov-server"
KEYSTORES = Path(__file__).resolve().parents[1] / "fixtures" / "keystores"


@pytest.fixture(scope="module")
def embedded(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("embedded")
    yield start_embedded_gateway(module_processes, workdir)


def _json_out(result: Any) -> Any:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return json.loads(result.stdout)


def _client(gateway: GatewayProcess, command: str, *args: str, timeout: float = 60.0) -> Any:
    return run_cagw(command, "--server", gateway.grpc_target, "--timeout", "30", *args, timeout=timeout)


# ---------------------------------------------------------------------------- embedded default


def test_ok_embedded_banner_names_the_simulator_and_listeners(embedded: GatewayProcess) -> None:
    banner = embedded.process.stdout()
    assert "embedded Sectigo simulator: https://127.0.0.1:" in banner
    assert f"gRPC  {embedded.grpc_target}" in banner
    assert f"REST  http://127.0.0.1:{embedded.rest_port}/cagw/v1/certificate-authorities" in banner


def test_ok_cas_lists_the_embedded_simulator(embedded: GatewayProcess) -> None:
    listing = _json_out(_client(embedded, "cas"))
    assert [ca["id"] for ca in listing["caList"]] == [EMBEDDED_CA]


def test_ok_profiles_lists_the_embedded_profile(embedded: GatewayProcess) -> None:
    listing = _json_out(_client(embedded, "profiles", "--ca", EMBEDDED_CA))
    assert EMBEDDED_PROFILE in json.dumps(listing)


def test_ok_csr_writes_a_private_key_and_a_signed_request(tmp_path: Path) -> None:
    key, csr = tmp_path / "key.pem", tmp_path / "req.pem"
    result = run_cagw("csr", "--cn", "csr.example.com", "--san", "alt.example.com", "--key-out", str(key),
                      "--csr-out", str(csr))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    request = x509.load_pem_x509_csr(csr.read_bytes())
    assert request.is_signature_valid
    assert request.subject.rfc4514_string() == "CN=csr.example.com"
    sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["csr.example.com", "alt.example.com"]


_STATE_LINE = re.compile(r"^(RECEIVED|SUBMITTED|WAITING|PENDING|ISSUED|TIMED_OUT|FAILED)[\s:]")


def test_ok_enroll_watch_then_subject_certificate_and_revoke(embedded: GatewayProcess, tmp_path: Path) -> None:
    """The tour of the README: watch an enrollment live, find it by subject and serial, revoke it."""
    key, csr, out = tmp_path / "key.pem", tmp_path / "req.pem", tmp_path / "cert.pem"
    assert run_cagw("csr", "--cn", "tour.example.com", "--key-out", str(key), "--csr-out", str(csr)).returncode == 0

    enrolled = _client(embedded, "enroll", "--ca", EMBEDDED_CA, "--profile", EMBEDDED_PROFILE, "--csr", str(csr),
                       "--watch", "--out", str(out))
    assert enrolled.returncode == 0, enrolled.stderr
    lines = [line for line in enrolled.stderr.splitlines() if _STATE_LINE.match(line)]
    states = [_STATE_LINE.match(line).group(1) for line in lines]  # type: ignore[union-attr]
    # One line per state change: received, submitted, then wait/collect rounds until issued
    # (the embedded simulator issues after 3 s; the default schedule waits 2 s, then 4 s).
    assert states[:2] == ["RECEIVED", "SUBMITTED"], enrolled.stderr
    assert states[-1] == "ISSUED", enrolled.stderr
    rounds = states[2:-1]
    assert rounds and rounds[0] == "WAITING" and len(rounds) % 2 == 1, enrolled.stderr
    assert rounds == ["WAITING", "PENDING"] * (len(rounds) // 2) + ["WAITING"], enrolled.stderr
    waits = [line for line in lines if line.startswith("WAITING")]
    assert "attempt 1/5: next collect in 2s" in waits[0], enrolled.stderr
    if len(waits) > 1:
        assert "attempt 2/5: next collect in 4s" in waits[1], enrolled.stderr
    enrollment_id = lines[0].split(":", 1)[1].strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", enrollment_id), lines[0]
    assert "(Sectigo order " in lines[1]

    # The written certificate (with its chain) verifies against the simulator's issuing CA.
    chain = x509.load_pem_x509_certificates(out.read_bytes())
    assert embedded.workdir is not None
    issuing = x509.load_pem_x509_certificate((embedded.workdir / "simulator-ca" / "ca.pem").read_bytes())
    leaf = chain[0]
    leaf.verify_directly_issued_by(issuing)
    assert chain[1:] == [issuing]
    assert leaf.subject.rfc4514_string() == "CN=tour.example.com"
    serial = format(leaf.serial_number, "x")
    assert f"serial {serial}" in lines[-1]
    assert f"certificate written to {out} (serial {serial})" in enrolled.stderr

    subject = _json_out(_client(embedded, "subject", "--ca", EMBEDDED_CA, "--dn", "CN=tour.example.com"))
    found = {c["serialNumber"]: c for c in subject["subject"]["certificates"]}
    assert found[serial]["status"] == "normal"
    assert found[serial]["enrollmentId"] == enrollment_id

    shown = _json_out(_client(embedded, "certificate", "--ca", EMBEDDED_CA, "--serial", serial.upper(),
                              "--out", str(tmp_path / "again.pem")))
    assert shown["certificate"]["serialNumber"] == serial
    assert shown["certificate"]["status"] == "normal"
    assert x509.load_pem_x509_certificate((tmp_path / "again.pem").read_bytes()) == leaf

    revoked = _json_out(_client(embedded, "revoke", "--ca", EMBEDDED_CA, "--serial", serial,
                                "--reason", "keyCompromise", "--comment", "e2e"))
    assert revoked["action"]["status"] == "COMPLETED"
    assert revoked["action"]["reason"] == "keyCompromise"

    after = _json_out(_client(embedded, "certificate", "--ca", EMBEDDED_CA, "--serial", serial))
    assert after["certificate"]["status"] == "revoked"
    assert after["certificate"]["revocationInfo"]["reason"] == "keyCompromise"


def test_ok_certificates_shows_the_inventory_as_a_table(embedded: GatewayProcess, tmp_path: Path) -> None:
    key, csr = tmp_path / "key.pem", tmp_path / "req.pem"
    assert run_cagw("csr", "--cn", "inventory.example.com", "--key-out", str(key),
                    "--csr-out", str(csr)).returncode == 0
    enrolled = _client(embedded, "enroll", "--ca", EMBEDDED_CA, "--profile", EMBEDDED_PROFILE, "--csr", str(csr),
                       "--out", str(tmp_path / "cert.pem"))
    assert enrolled.returncode == 0, enrolled.stderr
    serial = format(x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes()).serial_number, "x")

    listed = _client(embedded, "certificates", "--expiring", "400d", "--name", "inventory.example.com")
    assert listed.returncode == 0, listed.stderr
    header, row, total = listed.stdout.splitlines()
    assert header.split()[:4] == ["CA", "SERIAL", "STATUS", "NOT"]
    assert row.split()[:3] == [EMBEDDED_CA, serial, "normal"] and row.endswith("inventory.example.com")
    assert total == "1 certificate(s)"

    soon = _client(embedded, "certificates", "--ca", EMBEDDED_CA, "--expiring", "30d", "--name",
                   "inventory.example.com")
    assert (soon.returncode, soon.stdout.splitlines()[-1]) == (0, "0 certificate(s)")


@pytest.mark.parametrize(("args", "code", "message"), [
    pytest.param(("certificate", "--ca", EMBEDDED_CA, "--serial", "0badc0de"), 1, "NOT_FOUND",
                 id="fail-unknown-serial"),
    pytest.param(("subject", "--ca", "no-such-ca", "--dn", "CN=x"), 1, "NOT_FOUND", id="fail-unknown-ca"),
    pytest.param(("revoke", "--ca", EMBEDDED_CA, "--serial", "0badc0de", "--reason", "not-a-reason"), 1,
                 "INVALID_ARGUMENT", id="fail-unknown-revocation-reason"),
])
def test_fail_client_errors_exit_1_with_the_status(embedded: GatewayProcess, args: tuple[str, ...], code: int,
                                                   message: str) -> None:
    result = _client(embedded, *args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_fail_unreachable_gateway_exits_3() -> None:
    result = run_cagw("cas", "--server", f"127.0.0.1:{free_port()}", "--timeout", "5")
    assert result.returncode == 3, result.stderr
    assert "UNAVAILABLE" in result.stderr


# ---------------------------------------------------------------------------- port clash


@pytest.mark.parametrize("taken", ["grpc", "rest"], ids=["fail-grpc-port-taken", "fail-rest-port-taken"])
def test_fail_second_gateway_on_a_taken_port_exits_loudly(embedded: GatewayProcess, tmp_path: Path,
                                                          taken: str) -> None:
    grpc_port = embedded.grpc_port if taken == "grpc" else free_port()
    rest_port = embedded.rest_port if taken == "rest" else free_port()
    result = run_cagw("serve", "--workdir", str(tmp_path / "second"), "--grpc-listen", f"127.0.0.1:{grpc_port}",
                      "--rest-listen", f"127.0.0.1:{rest_port}", "--ops-listen", "127.0.0.1:0",
                      "--admin-listen", "127.0.0.1:0", timeout=60)
    taken_port = grpc_port if taken == "grpc" else rest_port
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert f"{taken}.listen: cannot listen on 127.0.0.1:{taken_port}" in result.stderr
    assert "Traceback" not in result.stderr
    # The first gateway keeps its port and keeps answering.
    assert embedded.process.returncode is None
    assert embedded.healthy()
    assert [ca["id"] for ca in _json_out(_client(embedded, "cas"))["caList"]] == [EMBEDDED_CA]


# ---------------------------------------------------------------------------- check-config

SECRET = "Login-S3cret-e2e-5f1c"
TRUST_SECRET = "Trust-S3cret-e2e-77aa"


def _valid_document(tmp_path: Path) -> dict[str, Any]:
    document = gateway_document("http://127.0.0.1:9/api", tmp_path)
    document["managed-cas"][0]["properties"]["login-password"] = SECRET
    return document


def _break(path: str, value: Any) -> Any:
    def apply(document: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value

    return apply


def _trust_store(password: str) -> Any:
    def apply(document: dict[str, Any]) -> None:
        props = document["managed-cas"][0]["properties"]
        props["url"] = "https://127.0.0.1:9/api"
        props["ssl-trust-store"] = str(KEYSTORES / "truststore.p12")
        props["ssl-trust-store-password"] = password

    return apply


CA_PATH = "managed-cas[0] (id sim).properties"


@pytest.mark.parametrize(("change", "expected"), [
    pytest.param(_break("managed-cas/0/properties/org-id", "12a"), f"{CA_PATH}.org-id: '12a' is not a whole number",
                 id="fail-org-id-not-a-number"),
    pytest.param(_break("managed-cas/0/properties/ssl-trust-store-passwd", TRUST_SECRET),
                 f"{CA_PATH}.ssl-trust-store-passwd: unknown key", id="fail-unknown-property"),
    pytest.param(_break("shutdown-grace", "forever"), "shutdown-grace: 'forever' is not a duration",
                 id="fail-bad-duration"),
    pytest.param(_break("managed-cas/0/properties/login-password", "${CAGW_E2E_NEVER_SET}"),
                 f"{CA_PATH}.login-password: environment variable CAGW_E2E_NEVER_SET is not set",
                 id="fail-unset-environment-variable"),
    pytest.param(_trust_store(TRUST_SECRET), "CA sim: trust store", id="fail-wrong-trust-store-password"),
])
def test_fail_check_config_exits_2_naming_the_key_never_the_secret(tmp_path: Path, change: Any,
                                                                  expected: str) -> None:
    document = _valid_document(tmp_path)
    change(document)
    result = run_cagw("check-config", "--config", str(write_config(tmp_path, document)))
    assert result.returncode == 2, f"{result.stdout}\n{result.stderr}"
    assert expected in result.stderr
    assert "configuration error:" in result.stderr
    for secret in (SECRET, TRUST_SECRET):
        assert secret not in result.stderr + result.stdout


def test_fail_check_config_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = run_cagw("check-config", "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "absent.yaml: cannot read the configuration file" in result.stderr


@pytest.mark.parametrize("change", [
    pytest.param(lambda document: None, id="ok-plain-http"),
    pytest.param(_trust_store("changeit"), id="ok-https-with-pkcs12-trust-store"),
])
def test_ok_check_config_exits_0(tmp_path: Path, change: Any) -> None:
    document = _valid_document(tmp_path)
    change(document)
    path = write_config(tmp_path, document)
    result = run_cagw("check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: OK (1 CA(s): sim)"
    assert SECRET not in result.stderr + result.stdout
