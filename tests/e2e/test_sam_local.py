"""The real handlers in Lambda containers: ``sam local invoke`` with every file in events/, and
WeChat's pushes through ``sam local start-api`` into the table on moto."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from wechat_simulator import Platform, SimState
from wechat_simulator.pusher import envelope, signed_query, ticket_xml

from scripts.local_stack import ROOT, StackInfo, sample_platform
from tests.conftest import reset_service_caches
from tests.support.aws import apply_environment, aws_environment, restore_environment
from tests.support.event_setups import Invoke, check_answer, invoke_in_process, prepare

pytestmark = pytest.mark.e2e

EXPECTED: dict[str, dict[str, Any]] = json.loads((ROOT / "events/expected.json").read_text("utf-8"))


def test_every_event_file_has_an_expectation() -> None:
    files = sorted(p.name for p in (ROOT / "events").glob("*.json") if p.name != "expected.json")
    assert files == sorted(EXPECTED)


def _in_process(stack: StackInfo, table: str) -> Iterator[Invoke]:
    """Setup steps run the same handlers in this process against the stack's moto and simulator
    (a container per step would triple the run's time); the event file itself goes through
    ``sam local invoke``."""
    local = json.loads((ROOT / "local/env.json").read_text("utf-8"))["Parameters"]
    previous = apply_environment(
        aws_environment(stack.moto_url)
        | {
            "TABLE_NAME": table,
            "COMPONENT_APPID": stack.component_appid,
            "COMPONENT_SECRET_ID": stack.secret_name,
            "WECHAT_API_BASE": stack.simulator_url,
            "WECHAT_MP_BASE": stack.simulator_url,
            "WECHAT_OPEN_BASE": stack.simulator_url,
            "WECHAT_API_FALLBACK_BASE": "",
            "TIMESTAMP_TOLERANCE_SECONDS": local["TIMESTAMP_TOLERANCE_SECONDS"],
        }
    )
    reset_service_caches()
    try:
        yield invoke_in_process
    finally:
        restore_environment(previous)
        reset_service_caches()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_file_through_sam_local_invoke(local_stack: StackInfo, name: str) -> None:
    """Each file gets its expected answer from the function in its Lambda container, on a fresh
    table, after the setup steps it names (tests/support/event_setups.py)."""
    spec = EXPECTED[name]
    table = f"e2e-{uuid.uuid4().hex[:10]}"
    local_stack.create_table(table)
    with contextlib.contextmanager(_in_process)(local_stack, table) as setup_invoke:
        prepare(spec.get("setup", []), local_stack.simulator_url, setup_invoke)
    answer = local_stack.invoke(spec["function"], ROOT / "events" / name, table_name=table)
    check_answer(spec, answer)


def test_simulator_ticket_push_through_start_api_is_stored(local_stack: StackInfo) -> None:
    result = requests.post(local_stack.simulator_url + "/__sim/push/ticket", timeout=60).json()
    assert (result["status"], result["body"]) == (200, "success")
    item = local_stack.stored_ticket()
    assert item is not None
    assert item["component_verify_ticket"]["S"] == result["ticket"]


def _push_parts() -> tuple[dict[str, str], str, str]:
    """(query, Encrypt, envelope XML) of a ticket push signed as WeChat (the simulator) signs it."""
    state = SimState(Platform(**sample_platform()))
    encrypt, body = envelope(state, ticket_xml(state, "ticket@@@tampered-" + uuid.uuid4().hex))
    return signed_query(state, encrypt), encrypt, body


def _flip(text: str, index: int) -> str:
    return text[:index] + ("B" if text[index] == "A" else "A") + text[index + 1 :]


def _tampered_body() -> tuple[dict[str, str], str]:
    query, encrypt, body = _push_parts()
    return query, body.replace(encrypt, _flip(encrypt, len(encrypt) // 2))


def _tampered_signature() -> tuple[dict[str, str], str]:
    query, _, body = _push_parts()
    signature = query["msg_signature"]
    return query | {"msg_signature": signature[:-1] + ("0" if signature[-1] != "0" else "1")}, body


@pytest.mark.parametrize("tamper", [_tampered_body, _tampered_signature], ids=["ciphertext", "signature"])
def test_tampered_push_through_start_api_is_refused_and_stores_nothing(
    local_stack: StackInfo, tamper: Any
) -> None:
    query, body = tamper()
    before = local_stack.items()
    answer = requests.post(
        local_stack.callback_url,
        params=query,
        data=body.encode(),
        headers={"Content-Type": "text/xml"},
        timeout=60,
    )
    assert answer.status_code == 401
    assert local_stack.items() == before
