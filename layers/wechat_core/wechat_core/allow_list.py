"""Which H5 pages the platform may send a browser back to, or sign a JS-SDK configuration for.

Configured as comma-separated ``https://`` prefixes: scheme, host, optional port and optional path
prefix (``https://h5.example.com``, ``https://shop.example.com:8443/app``). A URL is allowed when,
parsed, it has the same scheme, host and port as one entry and its path starts with the entry's
path at a segment boundary (``/app`` allows ``/app``, ``/app/`` and ``/app/x``, not ``/apple``).

Refused whatever the entries: any scheme but ``https``, a protocol-relative URL, user info
(``https://h5.example.com@evil``), a host that merely starts like an entry's
(``https://h5.example.com.evil``), backslashes, whitespace or control characters (browsers read
``\\`` as ``/``), and ``.``/``..`` path segments, plain or percent-encoded (browsers resolve them, so
``/app/../admin`` would leave the prefix). Hosts compare case-insensitively; ``:443`` is the
default port. The CORS origins of the H5 routes are the entries' origins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from wechat_core.errors import ConfigurationError

MAX_URL_CHARS = 2048
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class NotAllowed(ValueError):
    """A URL the allow-list refuses, with a reason safe to show."""


@dataclass(frozen=True, slots=True)
class Entry:
    host: str
    port: int
    path: str  # "" or "/..." without a trailing slash

    @property
    def origin(self) -> str:
        return f"https://{self.host}" + ("" if self.port == 443 else f":{self.port}")

    def covers(self, host: str, port: int, path: str) -> bool:
        if (host, port) != (self.host, self.port):
            return False
        return not self.path or path == self.path or path.startswith(self.path + "/")


def _parse(url: str) -> tuple[SplitResult, str, int]:
    """(parts, host, port) of an absolute https URL, or ``NotAllowed``."""
    if not url or len(url) > MAX_URL_CHARS:
        raise NotAllowed("missing or overlong URL")
    if _UNSAFE.search(url):
        raise NotAllowed("URL with whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced "[" (an IPv6 literal) and the like
        raise NotAllowed("malformed URL") from None
    if url[: len("https://")].lower() != "https://":  # also refuses "//host" and "https:host"
        raise NotAllowed("only https:// URLs")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise NotAllowed("URL with user info")
    host = (parts.hostname or "").lower()
    if not _HOST.fullmatch(host):
        raise NotAllowed("URL without a valid host name")
    try:
        port = parts.port or 443
    except ValueError:
        raise NotAllowed("URL with an invalid port") from None
    segments = unquote(parts.path).split("/")
    if any(s in (".", "..") for s in segments):
        raise NotAllowed("URL with . or .. path segments")
    return parts, host, port


class AllowList:
    def __init__(self, entries: tuple[Entry, ...]) -> None:
        self.entries = entries

    @classmethod
    def parse(cls, configured: str) -> AllowList:
        """The configured prefixes; a malformed one is a configuration error (the deployment's)."""
        entries = []
        for raw in (p.strip() for p in configured.split(",")):
            if not raw:
                continue
            try:
                parts, host, port = _parse(raw)
            except NotAllowed as error:
                raise ConfigurationError(f"H5 allow-list entry {raw!r}: {error}") from None
            if parts.query or parts.fragment or raw.endswith(("?", "#")):
                raise ConfigurationError(f"H5 allow-list entry {raw!r}: no query or fragment")
            entries.append(Entry(host, port, parts.path.rstrip("/")))
        return cls(tuple(entries))

    @property
    def origins(self) -> tuple[str, ...]:
        """The CORS origins of the H5 routes, each once, in the configured order."""
        return tuple(dict.fromkeys(e.origin for e in self.entries))

    def check(self, url: str) -> str:
        """``url`` when an entry allows it, else ``NotAllowed`` with the reason."""
        if not self.entries:
            raise NotAllowed("no page is allowed: the H5 allow-list (H5AllowList) is empty")
        parts, host, port = _parse(url)
        if not any(e.covers(host, port, parts.path or "/") for e in self.entries):
            raise NotAllowed("URL is not on the H5 allow-list")
        return url
