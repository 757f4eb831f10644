"""moto's server with DynamoDB serialized: ``python -m devtools.moto_launcher -H HOST -p PORT``
takes ``python -m moto.server``'s arguments (and ``--switch-interval``) and starts the same server,
in this process.

moto's DynamoDB backend checks a ConditionExpression and then writes without a lock, and its server
answers requests in threads, so two concurrent conditional writes on one item can both succeed
(measured: two winners in 2 of 20 rounds of 30 processes). Real DynamoDB is linearizable per item,
and our contention tests (50 callers, one upstream call) must pass or fail for our reasons, not
moto's. So every DynamoDB request, and every backend method that checks and then writes, holds one
process-wide lock. A moto other than the audited version stops the launcher before it serves.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import inspect
import sys
import threading
from collections.abc import Callable
from typing import Any

# The methods below were chosen by reading this version's source. Another version may check and
# write somewhere else, so moving the pin in requirements-dev.txt means reading it again, not
# running unserialized.
MOTO_VERSION = "5.2.5"

# DynamoDBBackend methods that evaluate a condition and then write, or write several items that
# must be seen all or none. batch_write_item is an empty stub in 5.2.5 (the handler calls put_item
# and delete_item per item); it is wrapped so that logic moving into it stays covered.
BACKEND_METHODS = (
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)

# Reads need the lock too, and at the request, not at the backend: the backend hands the handler
# live Item objects that UpdateItem changes in place one clause at a time, and the handler turns
# them into JSON after the backend has returned (GetItem, Query, BatchGetItem, and UpdateItem's own
# ReturnValues, whose old values it reads before calling the backend); Query and Scan iterate dicts
# that a concurrent PutItem grows. Locking backend reads would leave all of that outside, so each
# whole DynamoDB request is one step. That is stronger than DynamoDB (the whole server, not each
# item, is serialized) and costs nothing that matters here: moto runs under one GIL anyway.
HANDLER_METHODS = ("call_action",)

# Re-entrant because a locked request calls locked backend methods, and transact_write_items calls
# put_item, update_item and delete_item.
LOCK = threading.RLock()

_MARK = "_serialized_by_moto_launcher"


class MotoMismatch(RuntimeError):
    """The installed moto is not the one this launcher was written against."""


def check_version() -> None:
    installed = importlib.metadata.version("moto")
    if installed != MOTO_VERSION:
        raise MotoMismatch(
            f"moto {installed} is installed, but devtools/moto_launcher.py was written against "
            f"moto {MOTO_VERSION}: re-check which DynamoDB methods evaluate a condition and write, "
            "then update MOTO_VERSION (and the pin in requirements-dev.txt)"
        )


def _classes(backend_cls: type | None, handler_cls: type | None) -> tuple[type, type]:
    if backend_cls is None:
        from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415 - moto only once checked

        backend_cls = DynamoDBBackend
    if handler_cls is None:
        from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415

        handler_cls = DynamoHandler
    return backend_cls, handler_cls


def _targets(backend_cls: type, handler_cls: type) -> list[tuple[type, str]]:
    targets = [(backend_cls, name) for name in BACKEND_METHODS]
    targets += [(handler_cls, name) for name in HANDLER_METHODS]
    missing = [
        f"{cls.__name__}.{name}" for cls, name in targets if not inspect.isfunction(getattr(cls, name, None))
    ]
    if missing:
        raise MotoMismatch(
            f"moto has no {', '.join(missing)}: devtools/moto_launcher.py cannot serialize DynamoDB "
            "and will not run unserialized"
        )
    return targets


def check(backend_cls: type | None = None, handler_cls: type | None = None) -> None:
    """Raise MotoMismatch unless this moto can be serialized; changes nothing."""
    check_version()
    _targets(*_classes(backend_cls, handler_cls))


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with LOCK:
            return method(*args, **kwargs)

    setattr(locked, _MARK, True)
    return locked


def serialize(backend_cls: type | None = None, handler_cls: type | None = None) -> None:
    """Wrap moto's DynamoDB backend and request handler (or the classes given) in LOCK.

    Every method is checked before any is wrapped, so a mismatch leaves moto untouched.
    """
    check_version()
    for cls, name in _targets(*_classes(backend_cls, handler_cls)):
        method = getattr(cls, name)
        if not getattr(method, _MARK, False):
            # A plain function, as moto's dispatcher lists a handler's actions with inspect.isfunction.
            setattr(cls, name, _locked(method))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    # Python hands the GIL to another thread every 5 ms by default, so a request rarely loses it
    # between moto's condition check and its write; the race tests shorten that to see races at all.
    parser.add_argument("--switch-interval", type=float, help="seconds, for sys.setswitchinterval")
    ours, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        serialize()
    except MotoMismatch as error:
        raise SystemExit(f"moto_launcher: {error}") from None
    if ours.switch_interval is not None:
        sys.setswitchinterval(ours.switch_interval)
    from moto import server  # noqa: PLC0415 - after serialize(): the server imports the backends

    # moto.server reads sys.argv when given no arguments, and werkzeug's reloader restarts with it.
    sys.argv[1:] = rest
    server.main(rest)


if __name__ == "__main__":
    main()
