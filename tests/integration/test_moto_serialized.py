"""moto's server, started through devtools/moto_launcher.py, lets one conditional write win.

Over HTTP, many processes race for the same item, round after round; in process, two threads are
held inside the condition check together, which only the launcher's lock prevents.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier as ProcessBarrier
from typing import Any, cast
from unittest import mock

import boto3
import pytest
from botocore.config import Config
from moto.dynamodb import comparisons
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.exceptions import ConditionalCheckFailed
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler

from devtools import moto_launcher
from devtools.project import REGION, ROOT
from devtools.resources import MotoServer

pytestmark = pytest.mark.integration

WRITERS = 30
ROUNDS = 20
WAIT = 60.0  # bound on every wait: generous, as 30 processes start on two cores
KINDS = ("put", "update")


# --- over HTTP ---------------------------------------------------------------------------------


def _client(endpoint: str) -> Any:
    # One attempt: a retried write that had won would come back as a lost one.
    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


def _key(kind: str, round_: int) -> dict[str, Any]:
    return {"pk": {"S": f"{kind}-{round_}"}}


def _write(client: Any, table: str, kind: str, round_: int, me: int) -> None:
    if kind == "put":
        client.put_item(
            TableName=table,
            Item=_key(kind, round_) | {"writer": {"N": str(me)}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    else:
        client.update_item(
            TableName=table,
            Key=_key(kind, round_),
            UpdateExpression="SET #v = :next, #w = :me",
            ConditionExpression="#v = :expected",
            ExpressionAttributeNames={"#v": "version", "#w": "writer"},
            ExpressionAttributeValues={":expected": {"N": "0"}, ":next": {"N": "1"}, ":me": {"N": str(me)}},
        )


def _writer(
    endpoint: str, table: str, kind: str, me: int, go: ProcessBarrier, outcomes: multiprocessing.Queue[Any]
) -> None:
    """One process: every round, wait with the others for the go, then try the write once."""
    client = _client(endpoint)
    for round_ in range(ROUNDS):
        try:
            go.wait(WAIT)
        except threading.BrokenBarrierError:
            return  # the test gave up
        try:
            _write(client, table, kind, round_, me)
            outcome = "won"
        except client.exceptions.ConditionalCheckFailedException:
            outcome = "lost"
        except Exception as error:
            outcome = f"error {error!r}"
        outcomes.put((round_, me, outcome))


@pytest.fixture(scope="module")
def busy_moto() -> Iterator[MotoServer]:
    """moto through the launcher, its request threads trading the GIL every 10 µs, not every 5 ms.

    At Python's default, a request almost never loses the GIL between moto's condition check and
    its write: plain moto.server gave no second winner in 120 of these rounds. At 10 µs it let two
    or three writers win in 1 to 8 of every 20 UpdateItem rounds (once answering 500 as well) and
    in 0 to 3 of 20 PutItem rounds, so these rounds can see the race.
    """
    server = MotoServer(switch_interval=1e-5)
    yield server
    server.stop()


@pytest.fixture
def table(busy_moto: MotoServer) -> Iterator[str]:
    name = f"serialized-{uuid.uuid4().hex[:10]}"
    client = _client(busy_moto.url)
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    client.delete_table(TableName=name)


@pytest.mark.parametrize("kind", KINDS)
def test_one_conditional_write_wins_per_round_over_http(busy_moto: MotoServer, table: str, kind: str) -> None:
    assert "devtools.moto_launcher" in cast("list[str]", busy_moto.process.args)
    # forkserver: the writers fork from a process that has already imported boto3 and this module,
    # and no thread of pytest's is copied into them as plain fork would.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    go = ctx.Barrier(WRITERS + 1)  # the writers and this test: the item exists before anyone writes
    outcomes: multiprocessing.Queue[Any] = ctx.Queue()
    writers = [
        ctx.Process(target=_writer, args=(busy_moto.url, table, kind, me, go, outcomes), daemon=True)
        for me in range(WRITERS)
    ]
    for process in writers:
        process.start()
    client = _client(busy_moto.url)
    winners: list[list[int]] = []
    stored: list[int | None] = []
    errors: list[str] = []
    try:
        for round_ in range(ROUNDS):
            if kind == "update":
                client.put_item(TableName=table, Item=_key(kind, round_) | {"version": {"N": "0"}})
            go.wait(WAIT)
            results = [outcomes.get(timeout=WAIT) for _ in range(WRITERS)]
            winners.append(sorted(me for _, me, outcome in results if outcome == "won"))
            errors += [outcome for _, _, outcome in results if outcome not in ("won", "lost")]
            item = client.get_item(TableName=table, Key=_key(kind, round_), ConsistentRead=True)["Item"]
            stored.append(int(item["writer"]["N"]) if "writer" in item else None)
    finally:
        go.abort()  # writers still waiting (after a failure) stop instead of waiting out WAIT
        for process in writers:
            process.join(WAIT)
            if process.is_alive():
                process.terminate()
                process.join(WAIT)
    assert errors == [], errors
    assert [len(w) for w in winners] == [1] * ROUNDS, winners
    # The item holds the winner's write: no loser's write landed after it.
    assert stored == [w[0] for w in winners]


# --- in process: the lock is what serializes ---------------------------------------------------


class _Rendezvous:
    """A condition that, once evaluated, waits for the other writer to have evaluated it too."""

    def __init__(self, op: Any, inside: threading.Barrier) -> None:
        self.op = op
        self.inside = inside

    def expr(self, item: Any) -> bool:
        result = bool(self.op.expr(item))
        with contextlib.suppress(threading.BrokenBarrierError):
            self.inside.wait()
        return result


class _Parser:
    def __init__(self, parser: Any, inside: threading.Barrier) -> None:
        self.parser = parser
        self.inside = inside

    def parse(self) -> _Rendezvous:
        return _Rendezvous(self.parser.parse(), self.inside)


def _backend(serialized: bool) -> Any:
    # A subclass, so that wrapping it leaves moto's own DynamoDBBackend (used elsewhere) alone.
    backend_cls = type("Backend", (DynamoDBBackend,), {})
    if serialized:
        moto_launcher.serialize(backend_cls, type("Handler", (DynamoHandler,), {}))
    backend = backend_cls(region_name=REGION, account_id="123456789012")
    backend.create_table(
        "t",
        schema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        throughput=None,
        attr=[{"AttributeName": "pk", "AttributeType": "S"}],
        global_indexes=None,
        indexes=None,
        streams=None,
        billing_mode="PAY_PER_REQUEST",
        sse_specification=None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    return backend


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("serialized", [True, False], ids=["serialized", "unserialized"])
def test_lock_keeps_a_second_writer_out_of_the_condition_check(kind: str, serialized: bool) -> None:
    backend = _backend(serialized)
    key = {"pk": {"S": "k"}}
    if kind == "update":
        backend.put_item("t", key | {"version": {"N": "0"}})
    # Each writer, having evaluated the condition, waits there for the other. Serialized, the other
    # cannot get in until the first has written, so the first waits out the (short) timeout alone;
    # unserialized, both meet, both saw the condition hold, and both write.
    inside = threading.Barrier(2, timeout=0.5 if serialized else WAIT)
    start = threading.Barrier(2, timeout=WAIT)

    def write(me: int) -> str:
        start.wait()
        try:
            if kind == "put":
                backend.put_item(
                    "t", key | {"writer": {"N": str(me)}}, condition_expression="attribute_not_exists(pk)"
                )
            else:
                backend.update_item(
                    "t",
                    key,
                    update_expression="SET version = :next",
                    expression_attribute_names={},
                    expression_attribute_values={":expected": {"N": "0"}, ":next": {"N": "1"}},
                    condition_expression="version = :expected",
                )
        except ConditionalCheckFailed:
            return "lost"
        return "won"

    create = comparisons.create_condition_expression_parser

    def rendezvous(*args: Any, **kwargs: Any) -> _Parser:
        return _Parser(create(*args, **kwargs), inside)

    with (
        # put_item parses through comparisons.get_filter_expression; update_item imported the name.
        mock.patch.object(comparisons, "create_condition_expression_parser", rendezvous),
        mock.patch.object(dynamodb_models, "create_condition_expression_parser", rendezvous),
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        futures = [pool.submit(write, me) for me in range(2)]
        outcomes = sorted(f.result(timeout=WAIT) for f in futures)

    if serialized:
        assert outcomes == ["lost", "won"]
        assert inside.broken  # never were both writers inside the check at once
    else:
        assert outcomes == ["won", "won"]  # the race the lock is there for: this test can see it
        assert not inside.broken


# --- the launcher refuses to run unserialized -----------------------------------------------------


def test_launcher_is_written_for_the_pinned_moto() -> None:
    pins = re.findall(r"^moto==(\S+)", (ROOT / "requirements-dev.txt").read_text(), re.MULTILINE)
    assert pins == [moto_launcher.MOTO_VERSION]
    moto_launcher.check()


def test_launcher_refuses_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_launcher, "MOTO_VERSION", "0.0.1")
    with pytest.raises(SystemExit, match=r"moto_launcher: moto 5\.2\.5 is installed.*against moto 0\.0\.1"):
        moto_launcher.main(["-p", "1"])
    assert not hasattr(DynamoDBBackend.put_item, "_serialized_by_moto_launcher")


def test_launcher_refuses_when_a_method_is_missing() -> None:
    def put_item(self: object) -> None:
        pass

    backend_cls = type("Backend", (), {"put_item": put_item})
    handler_cls = type("Handler", (DynamoHandler,), {})
    with pytest.raises(
        moto_launcher.MotoMismatch, match=r"no Backend\.update_item, .*Backend\.batch_execute"
    ):
        moto_launcher.serialize(backend_cls, handler_cls)
    assert backend_cls.__dict__["put_item"] is put_item  # checked before anything was wrapped
    assert "call_action" not in handler_cls.__dict__
