"""events/ is up to date with its generator, and each file gets its expected answer from the handler."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wechat_simulator import Platform, Simulator

from devtools.resources import Resources, apply_environment, create_resources, restore_environment
from devtools.template import ROOT
from tests.conftest import reset_service_caches
from tests.support.event_setups import check_answer, invoke_in_process, prepare, verify

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


def test_readme_gives_each_event_its_invoke_line_and_setup() -> None:
    """README's table: one row per file with its exact ``sam local invoke`` line (through the
    ``invoke`` alias), and a ``seed`` command exactly when the file needs setup."""
    rows = {}
    for line in (ROOT / "README.md").read_text("utf-8").splitlines():
        found = re.search(r"`invoke (\w+) -e events/([\w.-]+)`", line)
        if line.startswith("|") and found:
            assert found.group(2) not in rows, f"{found.group(2)} twice in README"
            rows[found.group(2)] = (found.group(1), line)
    assert sorted(rows) == sorted(EXPECTED)
    for name, (function, line) in rows.items():
        assert function == EXPECTED[name]["function"], name
        seeded = f"`seed events/{name}`" in line
        assert seeded == bool(EXPECTED[name].get("setup")), f"{name}: seed command in README"


@pytest.fixture
def sample_simulator() -> Iterator[Simulator]:
    """WeChat playing the documented sample platform the events are signed with."""
    sim = Simulator(Platform(**json.loads((ROOT / "local/sample-platform.json").read_text("utf-8")))).start()
    yield sim
    sim.stop()


@pytest.fixture
def sample_service(moto_server: object, sample_simulator: Simulator) -> Iterator[Resources]:
    """The service configured as local/env.json configures it, with a table, an event bus (and the
    queue subscribed to it) and a release queue of its own."""
    sample = sample_simulator.state.platform
    resources = create_resources(
        {"appsecret": sample.appsecret, "token": sample.token, "encoding_aes_key": sample.encoding_aes_key},
        sample.appid,
    )
    local_env = json.loads((ROOT / "local/env.json").read_text("utf-8"))["Parameters"]
    previous = apply_environment(
        {
            "TABLE_NAME": resources.table_name,
            "COMPONENT_APPID": sample.appid,
            "COMPONENT_SECRET_ID": resources.secret_name,
            "EVENT_BUS_NAME": resources.bus_name,
            "RELEASE_QUEUE_URL": resources.release_queue_url,
            "WECHAT_API_BASE": sample_simulator.url,
            "WECHAT_MP_BASE": sample_simulator.url,
            "WECHAT_OPEN_BASE": sample_simulator.url,
            "WECHAT_API_FALLBACK_BASE": "",
            "TIMESTAMP_TOLERANCE_SECONDS": local_env["TIMESTAMP_TOLERANCE_SECONDS"],
            "H5_ALLOW_LIST": local_env["H5_ALLOW_LIST"],
            "PUBLIC_BASE_URL": "http://127.0.0.1:3000",  # as devtools/local_stack.py sets it
        }
    )
    reset_service_caches()
    yield resources
    restore_environment(previous)
    reset_service_caches()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_file_gets_expected_answer(
    name: str, sample_service: Resources, sample_simulator: Simulator
) -> None:
    spec = EXPECTED[name]
    prepare(spec.get("setup", []), sample_simulator.url, invoke_in_process)
    check_answer(spec, invoke_in_process(name))
    verify(spec.get("then", []))
