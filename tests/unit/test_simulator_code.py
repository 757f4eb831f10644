"""Mini Program code management in the simulator, in process: the names calls and faults use,
the per-call work that does not grow with the number of accounts (1,000 Mini Programs committed,
audited and released without a single scan of the accounts), and permission set 18 withheld
across authorizations."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest
from wechat_simulator import Platform, SimState, code_management
from wechat_simulator.accounts import add_account, authorizer_token_account, issue_access_token
from wechat_simulator.protocol import api_name
from wechat_simulator.records import Account
from wechat_simulator.server import APIS

pytestmark = pytest.mark.unit

CODE_APIS = {
    "gettemplatedraftlist",
    "gettemplatelist",
    "addtotemplate",
    "deletetemplate",
    "commit",
    "submit_audit",
    "get_latest_auditstatus",
    "get_auditstatus",
    "release",
    "modify_domain",
    "setprivacysetting",
}


def test_every_code_api_has_its_own_name() -> None:
    assert {api_name(route.path) for route in code_management.APIS} == CODE_APIS
    names = Counter(api_name(route.path) for route in APIS)
    assert [name for name, count in names.items() if count > 1] == []
    assert set(names) >= CODE_APIS


def test_posts_without_a_body_have_their_own_answer() -> None:
    posts = {api_name(r.path): r.empty_body for r in code_management.APIS if r.method == "POST"}
    assert set(posts) == CODE_APIS - {"gettemplatedraftlist", "gettemplatelist", "get_latest_auditstatus"}
    assert all(handler is not None for handler in posts.values())


class NoScan(dict[str, Account]):
    """The accounts, refusing to be walked through: any per-call scan fails the test."""

    def _refuse(self, *args: Any) -> NoReturn:
        raise AssertionError("the accounts were scanned")

    __iter__ = values = items = keys = _refuse


def call(state: SimState, handler: Any, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = handler(state, body or {}, {"access_token": token})
    return answer


@pytest.fixture
def state() -> SimState:
    return SimState(Platform.generate())


def mini_programs(state: SimState, count: int) -> Iterator[tuple[str, str]]:
    """(appid, authorizer_access_token) of ``count`` authorized Mini Programs."""
    for _ in range(count):
        account = add_account(state, "mini_program")
        account.authorize(state.now(), None)
        yield account.appid, issue_access_token(state, account, state.now()).value


def test_a_thousand_mini_programs_without_scanning_the_accounts(state: SimState) -> None:
    template_id = code_management.add_template(state)["template_id"]
    programs = list(mini_programs(state, 1000))
    state.accounts = NoScan(state.accounts)
    with pytest.raises(AssertionError, match="scanned"):  # NoScan does catch a scan
        authorizer_token_account(state, {"access_token": "sim_aat_never_issued"})
    started = time.perf_counter()
    for appid, token in programs:
        body = {
            "template_id": template_id,
            "ext_json": json.dumps({"extAppid": appid}),
            "user_version": "1.0.0",
        }
        assert call(state, code_management.api_commit, token, body | {"user_desc": "d"})["errcode"] == 0
        assert call(state, code_management.api_submit_audit, token)["errcode"] == 0
        code_management.set_audit_outcome(state, appid, "lost")  # decided, nothing to push
    finished = code_management.finish_audits(state)
    assert [f["status"] for f in finished] == [0] * 1000
    for _, token in programs:
        assert call(state, code_management.api_release, token)["errcode"] == 0
        assert call(state, code_management.api_get_latest_auditstatus, token)["status"] == 0
    assert time.perf_counter() - started < 20  # generous: a scan per call would still pass, NoScan would not
    appid, token = programs[-1]
    assert code_management.code_calls(state, appid) == {
        "commit": 1,
        "submit_audit": 1,
        "release": 1,
        "get_latest_auditstatus": 1,
    }
    assert state.pending_audits == {}


def test_the_token_index_drops_tokens_an_account_no_longer_keeps(state: SimState) -> None:
    [(appid, first)] = list(mini_programs(state, 1))
    account = state.accounts[appid]
    for _ in range(20):
        issue_access_token(state, account, state.now())
    assert first not in state.authorizer_tokens
    assert len(state.authorizer_tokens) == len(account.access_tokens) == 20
    _, refused = authorizer_token_account(state, {"access_token": first})
    assert refused is not None
    assert refused["errcode"] == 40001


def test_a_withheld_permission_set_stays_out_of_later_authorizations(state: SimState) -> None:
    account = add_account(state, "mini_program")
    code_management.set_code_permission(state, account.appid, False)
    account.authorize(state.now(), None)
    assert 18 not in account.func_info
    account.authorize(state.now(), [17, 18])
    assert account.func_info == [17]
    granted = code_management.set_code_permission(state, account.appid, True)
    assert granted["func_info"] == [17, 18]
    token = issue_access_token(state, account, state.now()).value
    assert call(state, code_management.api_get_latest_auditstatus, token)["errcode"] == 85058
