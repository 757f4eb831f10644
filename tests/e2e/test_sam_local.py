"""The real handlers in Lambda containers: WeChat's pushes through ``sam local start-api`` into the
table on moto, and ``sam local invoke`` with every file in events/."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
from wechat_simulator import Platform, SimState
from wechat_simulator.pusher import envelope, signed_query, ticket_xml

from devtools.project import ROOT, sample_platform
from devtools.stack_info import StackInfo
from tests.support.event_setups import (
    check_answer,
    invoke_in_process,
    prepare,
    service_context,
    service_environment,
    verify,
)

pytestmark = pytest.mark.e2e

EXPECTED: dict[str, dict[str, Any]] = json.loads((ROOT / "events/expected.json").read_text("utf-8"))


# The start-api tests come first: event files whose function finds no ticket ask WeChat to push one,
# and the simulator pushes it to start-api, into the stack's own table, a moment later.


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


def test_every_event_file_has_an_expectation() -> None:
    files = sorted(p.name for p in (ROOT / "events").glob("*.json") if p.name != "expected.json")
    assert files == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_file_through_sam_local_invoke(local_stack: StackInfo, name: str) -> None:
    """Each file gets its expected answer from the function in its Lambda container, on a fresh
    table, after the setup steps it names (tests/support/event_setups.py); then what it names must
    hold in the table. The setup steps run the handlers in this process, against the stack's moto
    and simulator (a container per step would double the run's time); the file itself goes
    through ``sam local invoke``."""
    spec = EXPECTED[name]
    table = f"e2e-{uuid.uuid4().hex[:10]}"
    local_stack.create_table(table)
    environment = service_environment(
        moto_url=local_stack.moto_url,
        simulator_url=local_stack.simulator_url,
        table_name=table,
        component_appid=local_stack.component_appid,
        secret_name=local_stack.secret_name,
    )
    with service_context(environment):
        prepare(spec.get("setup", []), local_stack.simulator_url, invoke_in_process)
    answer = local_stack.invoke(spec["function"], ROOT / "events" / name, table_name=table)
    check_answer(spec, answer)
    with service_context(environment):
        verify(spec.get("then", []))
