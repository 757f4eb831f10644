"""The atheris entry point: ``python -m tests.fuzz.fuzz_protocol [libFuzzer flags] [corpus dirs]``.

Instruments the protocol modules (and the harness) for coverage, then hands ``harness.one_input``
to libFuzzer. ``tests/fuzz/run.py`` runs it for a bounded time (``make test``, ``make fuzz``).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["wechat_core", "tests.fuzz.harness"]):
    from tests.fuzz import harness


def test_one_input(data: bytes) -> None:
    harness.one_input(data)


def main() -> None:
    # Comparisons with str methods and regular expressions guide the mutations too.
    atheris.enabled_hooks.add("RegEx")
    atheris.enabled_hooks.add("str")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
