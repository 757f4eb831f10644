"""The benchmarks under bench/ still run and print their tables (a few pushes each: figures from a
run this short mean nothing, and no figure is judged here; `make bench` is where they are read)."""

from __future__ import annotations

import os
import re
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


def test_release_benchmark_submits_every_mini_program_once() -> None:
    out = run("bench/release_bench.py", "--accounts", "20", "--workers", "2")
    assert "commit and submit: 20 Mini Programs, 2 workers" in out
    assert "time, POST to the last account auditing" in out
    assert re.search(r"^per account +POST +fanout +commit +submit +poller +all$", out, re.MULTILINE), out
    for row in ("WeChat commit", "WeChat submit_audit", "DynamoDB, all requests", "SQS, all requests"):
        assert re.search(rf"^{row} ", out, re.MULTILINE), row
    for line in (
        "PASS every Mini Program auditing (20/20)",
        "PASS every Mini Program: commit once, submit_audit once, nothing else (20/20)",
        "PASS no Official Account touched (0/2 touched)",
        "PASS nothing in the dead-letter queue (0)",
    ):
        assert line in out
    assert "FAIL" not in out
