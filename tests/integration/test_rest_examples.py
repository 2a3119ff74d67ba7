"""docs/rest-examples.md works as written: every ```sh block, run in order by bash against a live gateway.

The blocks run in one ``bash`` with ``set -euo pipefail``, as a reader pasting them into one
terminal would; only ``CAGW``, ``CA`` and ``PROFILE`` (the variables the page defaults to the
``make run`` values) point them at the test stack. The simulator issues an order 0.8 s after it
is placed and the gateway collects every 0.4 s, so "200 after a wait" and "202 with maxWait
0.5s" both happen as on ``make run``, only faster.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from service.simulator.embedded import EMBEDDED_CA_ID, EMBEDDED_PROFILE_ID
from service.simulator import SimulatorSettings
from tests.integration.stack import CA_ID, PROFILE_ID, running_stack

DOC = Path(__file__).resolve().parents[2] / "docs" / "rest-examples.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.DOTALL | re.MULTILINE)
MARKER = "=== block {} ==="
TIMEOUT = 60.0

pytestmark = pytest.mark.skipif(shutil.which("curl") is None or shutil.which("jq") is None,
                                reason="the examples need curl and jq")


def _blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def _script(blocks: list[str]) -> str:
    parts = ["set -euo pipefail"]
    for number, block in enumerate(blocks):
        parts += [f"echo '{MARKER.format(number)}'", block]
    return "\n".join(parts) + "\n"


def _outputs(stdout: str) -> dict[int, str]:
    """The output of each block that started, split on the markers the script echoes."""
    pieces = re.split(r"^=== block (\d+) ===\n", stdout, flags=re.MULTILINE)
    return {int(number): text for number, text in zip(pieces[1::2], pieces[2::2], strict=True)}


def test_the_page_defaults_to_make_run() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "CAGW=${CAGW:-http://127.0.0.1:8444/cagw}" in text  # `cagw serve` --rest-listen default + /cagw
    assert f"CA=${{CA:-{EMBEDDED_CA_ID}}}" in text
    assert f"PROFILE=${{PROFILE:-{EMBEDDED_PROFILE_ID}}}" in text
    assert len(_blocks()) >= 10


async def test_every_block_runs_against_a_live_gateway(tmp_path: Path) -> None:
    blocks = _blocks()
    work = tmp_path / "work"
    work.mkdir()
    settings = SimulatorSettings(issue_after=0.8)
    async with running_stack(tmp_path, simulator=settings, timer="1.2s", max_timer="0.4s", attempts=10) as stack:
        env = {**os.environ, "CAGW": stack.rest_base, "CA": CA_ID, "PROFILE": PROFILE_ID,
               # `cagw` from this virtual environment, as after `source .venv/bin/activate`
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        process = await asyncio.create_subprocess_exec(
            "bash", "-c", _script(blocks), cwd=work, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    output, errors = stdout.decode(), stderr.decode()
    outputs = _outputs(output)
    last = max(outputs, default=0)
    assert process.returncode == 0, (
        f"block {last} failed (exit {process.returncode}):\n{blocks[last]}\n"
        f"--- stdout ---\n{output[-3000:]}\n--- stderr ---\n{errors[-3000:]}")
    assert sorted(outputs) == list(range(len(blocks)))
    by_heading = {block.splitlines()[0]: outputs[n] for n, block in enumerate(blocks)}

    def output_of(first_line_start: str) -> str:
        return next(out for line, out in by_heading.items() if line.startswith(first_line_start))

    enroll = output_of("cagw csr --cn www.example.com")
    assert enroll.splitlines()[0] == "200" and '"status": "ISSUED"' in enroll
    assert (work / "cert.pem").read_text().count("BEGIN CERTIFICATE") >= 2
    pending = output_of("cagw csr --cn slow.example.com")
    assert pending.splitlines()[0] == "202" and '"status": "PENDING"' in pending
    assert '"status": "normal"' in output_of("DN_PATH=")
    watch = output_of("cagw csr --cn watch.example.com").splitlines()
    assert '"ENROLLMENT_STATE_RECEIVED"' in watch[0] and '"ENROLLMENT_STATE_ISSUED"' in watch[-1]
    p12 = output_of("P12_PASS=").splitlines()
    assert p12[0] == "200" and "CN = app.example.com" in p12[1]
    assert (work / "app.p12").stat().st_size > 0
    assert shutil.which("keytool") is None or "PrivateKeyEntry" in p12[2]
    p12_later = output_of("P12_ID=")
    assert '"pkcs12": true' in p12_later and "HTTP 400" in p12_later and "protection.password" in p12_later
    assert '"status": "revoked"' in output
    assert "HTTP 404" in output and "HTTP 501" in output
