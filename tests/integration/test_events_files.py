"""events/ is up to date with its generator, and each file gets its expected answer from the handler."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wechat_simulator import Platform, Simulator

from tests.conftest import reset_service_caches
from tests.support.aws import Resources, apply_environment, create_resources, restore_environment
from tests.support.lambdas import LambdaContext, load_function
from tests.support.template import ROOT, template

pytestmark = pytest.mark.integration

EXPECTED = json.loads((ROOT / "events/expected.json").read_text("utf-8"))


def test_events_match_their_generator(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "scripts/make_events.py", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    committed = sorted(p.name for p in (ROOT / "events").glob("*.json"))
    assert committed == sorted(p.name for p in tmp_path.glob("*.json"))
    for name in committed:
        assert (ROOT / "events" / name).read_text("utf-8") == (tmp_path / name).read_text("utf-8"), name


@pytest.fixture
def sample_service(moto_server: object, simulator: Simulator) -> Iterator[Resources]:
    """The service configured with the documented sample platform the events are signed with."""
    sample = Platform(**json.loads((ROOT / "local/sample-platform.json").read_text("utf-8")))
    resources = create_resources(
        {"appsecret": sample.appsecret, "token": sample.token, "encoding_aes_key": sample.encoding_aes_key}
    )
    local_env = json.loads((ROOT / "local/env.json").read_text("utf-8"))["Parameters"]
    previous = apply_environment(
        {
            "TABLE_NAME": resources.table_name,
            "COMPONENT_APPID": sample.appid,
            "COMPONENT_SECRET_ID": resources.secret_name,
            "WECHAT_API_BASE": simulator.url,
            "TIMESTAMP_TOLERANCE_SECONDS": local_env["TIMESTAMP_TOLERANCE_SECONDS"],
        }
    )
    reset_service_caches()
    yield resources
    restore_environment(previous)
    reset_service_caches()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_file_gets_expected_answer(name: str, sample_service: Resources) -> None:
    spec = EXPECTED[name]
    code_uri = template()["Resources"][spec["function"]]["Properties"]["CodeUri"]
    event = json.loads((ROOT / "events" / name).read_text("utf-8"))
    response = load_function(code_uri).lambda_handler(event, LambdaContext(function_name=spec["function"]))
    assert {k: response[k] for k in spec["expect"]} == spec["expect"]
