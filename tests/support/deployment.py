"""A deployed service for tests: its table, secret, bus and queues on moto, and the environment a
deployment's functions get, pointed at the simulator (conftest's ``service`` fixture, and suites
that deploy once per module)."""

from __future__ import annotations

from wechat_simulator import Platform

from devtools.resources import Resources, apply_environment, create_resources


def deploy(platform: Platform, simulator_url: str, **extra: str) -> tuple[Resources, dict[str, str | None]]:
    """The resources, and the environment as it was before (for ``restore_environment``)."""
    resources = create_resources(
        {
            "appsecret": platform.appsecret,
            "token": platform.token,
            "encoding_aes_key": platform.encoding_aes_key,
        },
        platform.appid,
    )
    previous = apply_environment(
        {
            "TABLE_NAME": resources.table_name,
            "COMPONENT_APPID": platform.appid,
            "COMPONENT_SECRET_ID": resources.secret_name,
            "EVENT_BUS_NAME": resources.bus_name,
            "RELEASE_QUEUE_URL": resources.release_queue_url,
            "WECHAT_API_BASE": simulator_url,
            "WECHAT_MP_BASE": simulator_url,
            "WECHAT_OPEN_BASE": simulator_url,
            # Fast, bounded retries in tests; the production defaults are 0.2 s and 5 s.
            "WECHAT_BACKOFF_SECONDS": "0.01",
            "WECHAT_READ_TIMEOUT_SECONDS": "1",
            "WECHAT_API_FALLBACK_BASE": "",
            **extra,
        }
    )
    return resources, previous
