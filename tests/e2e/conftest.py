"""End-to-end fixtures: the real handlers in Lambda containers through ``sam local``, against moto's
server and the WeChat simulator, set up by devtools/local_stack.py exactly as ``make local`` does.

The container engine and the Lambda base image come from scripts/container-engine.sh and
scripts/lambda-base-image.sh (called by ``LocalStack.start``), so plain ``pytest`` works. When they
cannot be set up, the e2e tests are skipped, except in CI (``CI=true``) where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devtools.errors import EngineUnavailable
from devtools.local_stack import LocalStack
from devtools.project import ROOT
from devtools.stack_info import StackInfo


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """One stack for the session: ``sam build`` once, one ``sam local start-api`` (warm containers),
    and the release worker behind ``sam local start-lambda``, fed from the release queue by its poller."""
    stack = LocalStack(
        work_dir=tmp_path_factory.mktemp("local-stack"),
        build_dir=ROOT / ".aws-sam" / "e2e" / "build",
        api_port=0,
        simulator_port=0,
        moto_port=0,
        lambda_port=0,
        push_interval=0,  # tests push when they want
        table_name="wechat-component-e2e",
        bus_name="wechat-component-e2e",
    )
    try:
        info = stack.start()
    except EngineUnavailable as exc:
        message = f"e2e tests need a container engine and the Lambda base image for sam local: {exc}"
        if in_ci():
            pytest.fail(f"{message}\n(CI=true: the e2e tests must run, so this is a failure)", pytrace=False)
        pytest.skip(f"{message}\n(see README, 'Run it locally'; in CI this fails instead)")
    try:
        yield info
    finally:
        stack.stop()
