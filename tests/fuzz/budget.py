"""The fuzz suite's budget: small by default (``make test``), larger with ``CAGW_FUZZ_EXAMPLES``.

Runs are derandomized by default, so a failure repeats on every run and machine; set
``CAGW_FUZZ_SEED`` to explore other cases (``make fuzz`` does, with a larger budget).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("CAGW_FUZZ_EXAMPLES", "60"))
SEED = os.environ.get("CAGW_FUZZ_SEED")


def fuzz_settings(examples: int = EXAMPLES) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=SEED is None,
                    suppress_health_check=list(HealthCheck))
