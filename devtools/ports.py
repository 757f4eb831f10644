"""Ports on this machine: is one open, can one be bound, a free one, waiting for a service."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from devtools.errors import StackError
from devtools.project import Log

if TYPE_CHECKING:
    from devtools.children import Child


def port_open(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def can_bind(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at ``host`` ("" = on any address) right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pick_port(preferred: int, log: Log, what: str) -> int:
    """``preferred`` when nothing listens on it on any address, else a free port (0: any free port)."""
    if preferred and can_bind("", preferred):
        return preferred
    port = free_port("")
    if preferred:
        log(f"port {preferred} is taken, {what} uses {port}")
    return port


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def host_port(url: str) -> tuple[str, int]:
    """(host, port) of an ``http://host:port/...`` URL."""
    rest = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


def wait(what: str, ready: Callable[[], bool], timeout: float, child: Child | None = None) -> None:
    """Poll ``ready`` (a port or an HTTP answer) until it holds; bounded by ``timeout``, and given up
    as soon as ``child`` (the process that should make it hold) exits."""
    deadline = time.monotonic() + timeout
    while not ready():
        if child is not None and child.exited():
            raise StackError(f"{child.name} exited while waiting for {what}; its log:\n{child.tail()}")
        if time.monotonic() > deadline:
            detail = f"; its log:\n{child.tail()}" if child is not None else ""
            raise StackError(f"{what} not ready after {timeout:.0f}s{detail}")
        time.sleep(0.2)
