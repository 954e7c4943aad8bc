"""schemathesis hooks for the OpenAPI fuzz (`SCHEMATHESIS_HOOKS=tests.fuzz_hooks`).

Every case starts from a reset emulator: a fault or clock change one case scripts (a 60 s delay, a
dropped connection, a clock at 10^11 s) must not decide the answer to the next case.
"""

from __future__ import annotations

import os
from typing import Any

import requests
import schemathesis


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    requests.post(os.environ["FUZZ_BASE_URL"] + "/__mock/reset", timeout=30).raise_for_status()
