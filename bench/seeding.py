"""Authorizations for the benchmarks: accounts authorized at the simulator and stored as the code
exchange stores them, written straight with BatchWriteItem through a client no meter counts
(setting up is not what a benchmark measures)."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeSerializer
from wechat_core.features.tokens import REFRESH_BEFORE_SECONDS
from wechat_core.store.keys import authorizer_sk, component_pk, due_pk
from wechat_simulator import Simulator
from wechat_simulator import accounts as sim_accounts
from wechat_simulator.records import Account

from devtools.resources import Resources


def authorized_account(sim: Simulator, kind: str) -> tuple[Account, str, str]:
    """A new simulated account that authorized the platform: (account, refresh token, access token)."""
    account = sim_accounts.add_account(sim.state, kind)
    with sim.state.lock:
        sim_now = sim.state.now()
        account.authorize(sim_now, None)
        refresh_token = account.issue_refresh_token(sim_now, 0).value
        access_token = account.issue_access_token(sim_now).value
    return account, refresh_token, access_token


def authorization_item(
    component_appid: str,
    account: Account,
    refresh_token: str,
    access_token: str,
    expires_at: int,
    **more: Any,
) -> dict[str, Any]:
    """The item ``authorizers.activate`` writes for an account (``more``: attributes beside it)."""
    return {
        "pk": component_pk(component_appid),
        "sk": authorizer_sk(account.appid),
        "authorizer_appid": account.appid,
        "status": "active",
        "refresh_token": refresh_token,
        "access_token": access_token,
        "expires_at": expires_at,
        "func_info": list(account.func_info),
        "due_pk": due_pk(component_appid),
        "due_at": expires_at - REFRESH_BEFORE_SECONDS,
        "version": 1,
        **more,
    }


def put_all(resources: Resources, items: list[dict[str, Any]]) -> None:
    """``items`` into the table, 25 a request, unprocessed ones again until none are left."""
    serialize = TypeSerializer().serialize
    puts = [{"PutRequest": {"Item": {k: serialize(v) for k, v in item.items()}}} for item in items]
    client = resources.dynamodb
    for start in range(0, len(puts), 25):
        pending: dict[str, Any] = {resources.table_name: puts[start : start + 25]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
