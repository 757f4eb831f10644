"""The benchmarks under bench/ still run and print their tables (a few pushes each: figures from a
run this short mean nothing, and no figure is judged here; `make bench` is where they are read)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devtools.project import ROOT, python_path

pytestmark = pytest.mark.integration


def run(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": python_path(os.environ.get("PYTHONPATH"))},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_push_benchmark_compares_both_handlers() -> None:
    out = run("bench/push_bench.py", "--pushes", "5", "--rounds", "1")
    assert "ticket push (component_verify_ticket)" in out
    assert "requests by operation, ours: PutItem 1.00\n" in out  # one request per ticket push
    assert "ours has" in out  # the crypto path against wechatpy's


def test_import_benchmark_covers_every_function() -> None:
    out = run("bench/import_bench.py", "--rounds", "1")
    for name in ("CallbackFunction", "PreAuthFunction", "RefresherFunction", "bare Powertools handler"):
        assert name in out
