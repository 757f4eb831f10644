"""Every module that serves WeChat APIs; importing this registers all their routes."""

from __future__ import annotations

from wechat_simulator import accounts, authorization, component, miniprogram
from wechat_simulator.protocol import API_ROUTES

__all__ = ["API_ROUTES", "accounts", "authorization", "component", "miniprogram"]
