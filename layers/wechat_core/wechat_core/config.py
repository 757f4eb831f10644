"""Configuration: plain settings from the environment, secrets from Secrets Manager.

The secret named by ``COMPONENT_SECRET_ID`` is JSON ``{"appsecret", "token", "encoding_aes_key"}``,
and during a key rotation also ``"previous": {"token"?, "encoding_aes_key"?, "until"}``: the values
the console had before, accepted for WeChat's re-sends of earlier messages until ``until`` (epoch
seconds or ISO 8601), see README "Rotating the platform's keys".
It is read through Powertools Parameters (cached for ``SECRET_MAX_AGE_SECONDS``) and never logged:
``ComponentSecret``'s repr hides every value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from wechat_core.errors import ConfigurationError

DEFAULT_API_BASE = "https://api.weixin.qq.com"
DEFAULT_MP_BASE = "https://mp.weixin.qq.com"
DEFAULT_OPEN_BASE = "https://open.weixin.qq.com"


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name} must be an integer") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name} must be a number") from None


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = os.environ.get(name) or default
    if value not in allowed:
        raise ConfigurationError(f"environment variable {name} must be one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    component_appid: str
    component_secret_id: str
    wechat_api_base: str = DEFAULT_API_BASE
    wechat_mp_base: str = DEFAULT_MP_BASE
    wechat_open_base: str = DEFAULT_OPEN_BASE
    # WeChat's clock and ours may differ a little; pushes older or newer than this are refused.
    timestamp_tolerance_seconds: int = 300
    secret_max_age_seconds: int = 300
    # None: api2.weixin.qq.com when the base is the default host; "" disables the fallback.
    wechat_api_fallback_base: str | None = None
    wechat_max_attempts: int = 3
    wechat_backoff_seconds: float = 0.2
    wechat_read_timeout_seconds: float = 5.0
    # Where the authorization flow ends (our page or the customer's); empty: a built-in page.
    authorized_redirect_url: str = ""
    # Origins of H5 pages and web-views allowed to call the Mini Program routes (CORS).
    allowed_origins: tuple[str, ...] = ()
    # This API's public base URL (custom domains); empty: API Gateway's own domain and stage.
    public_base_url: str = ""
    # "open": anyone may open the authorization page; "signed": only links we signed.
    authorize_access: str = "open"
    # The scheduled refresher: how far ahead it refreshes, and how many at once.
    refresh_lookahead_seconds: float = 300.0
    refresh_concurrency: int = 16
    event_bus_name: str = ""
    # How long a process trusts an account's active authorization for its messages (0: never)
    authorization_memory_seconds: float = 10.0
    # H5 pages (web OAuth return targets, JS-SDK pages): comma-separated https:// prefixes
    h5_allow_list: str = ""
    # The release queue (Mini Program releases from a template)
    release_queue_url: str = ""


def load_settings() -> Settings:
    """Settings from the environment (``runtime.settings()`` keeps them for the process)."""
    return Settings(
        table_name=_env("TABLE_NAME"),
        component_appid=_env("COMPONENT_APPID"),
        component_secret_id=_env("COMPONENT_SECRET_ID"),
        wechat_api_base=_env("WECHAT_API_BASE", DEFAULT_API_BASE).rstrip("/"),
        wechat_mp_base=_env("WECHAT_MP_BASE", DEFAULT_MP_BASE).rstrip("/"),
        wechat_open_base=_env("WECHAT_OPEN_BASE", DEFAULT_OPEN_BASE).rstrip("/"),
        timestamp_tolerance_seconds=_env_int("TIMESTAMP_TOLERANCE_SECONDS", 300),
        secret_max_age_seconds=_env_int("SECRET_MAX_AGE_SECONDS", 300),
        wechat_api_fallback_base=os.environ.get("WECHAT_API_FALLBACK_BASE"),
        wechat_max_attempts=_env_int("WECHAT_MAX_ATTEMPTS", 3),
        wechat_backoff_seconds=_env_float("WECHAT_BACKOFF_SECONDS", 0.2),
        wechat_read_timeout_seconds=_env_float("WECHAT_READ_TIMEOUT_SECONDS", 5.0),
        authorized_redirect_url=os.environ.get("AUTHORIZED_REDIRECT_URL", ""),
        public_base_url=os.environ.get("PUBLIC_BASE_URL", "").strip().rstrip("/"),
        authorize_access=_choice("AUTHORIZE_ACCESS", ("open", "signed"), "open"),
        allowed_origins=tuple(
            o.strip() for o in os.environ.get("ALLOWED_ORIGINS", "").split(",") if o.strip()
        ),
        refresh_lookahead_seconds=_env_float("REFRESH_LOOKAHEAD_SECONDS", 300.0),
        refresh_concurrency=_env_int("REFRESH_CONCURRENCY", 16),
        event_bus_name=os.environ.get("EVENT_BUS_NAME", ""),
        authorization_memory_seconds=_env_float("AUTHORIZATION_MEMORY_SECONDS", 10.0),
        h5_allow_list=os.environ.get("H5_ALLOW_LIST", ""),
        release_queue_url=os.environ.get("RELEASE_QUEUE_URL", ""),
    )


@dataclass(frozen=True, slots=True)
class PreviousKeys:
    """The message token and EncodingAESKey in use before a rotation, and the end of their grace."""

    token: str = field(repr=False)
    encoding_aes_key: str = field(repr=False)
    until: float


@dataclass(frozen=True, slots=True)
class ComponentSecret:
    appsecret: str = field(repr=False)
    token: str = field(repr=False)
    encoding_aes_key: str = field(repr=False)
    previous: PreviousKeys | None = None


MAX_GRACE_SECONDS = 30 * 24 * 3600


def _until(value: Any) -> float:
    """The end of a rotation's grace: epoch seconds, or ISO 8601 with a time zone."""
    if isinstance(value, bool):
        raise ConfigurationError("component secret: previous.until must be a time")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        from datetime import datetime  # noqa: PLC0415

        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigurationError("component secret: previous.until is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise ConfigurationError("component secret: previous.until needs a time zone (e.g. Z)")
        return moment.timestamp()
    raise ConfigurationError("component secret: previous.until must be a time")


def _previous(raw: Any, token: str, encoding_aes_key: str) -> PreviousKeys | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or "until" not in raw:
        raise ConfigurationError("component secret: previous must be an object with until")
    old_token, old_key = raw.get("token") or token, raw.get("encoding_aes_key") or encoding_aes_key
    if not isinstance(old_token, str) or not isinstance(old_key, str):
        raise ConfigurationError("component secret: previous values must be strings")
    return PreviousKeys(old_token, old_key, _until(raw["until"]))


def load_component_secret(conf: Settings) -> ComponentSecret:
    """The platform's secret values, from Secrets Manager (cached by Powertools Parameters for
    ``secret_max_age_seconds``, so a rotated secret takes effect without a restart)."""
    from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415 - keep cold start light

    from wechat_core.aws import apply_endpoint_aliases  # noqa: PLC0415

    apply_endpoint_aliases()
    try:
        raw: Any = parameters.get_secret(
            conf.component_secret_id, transform="json", max_age=conf.secret_max_age_seconds
        )
    except parameters.exceptions.TransformParameterError:
        raise ConfigurationError("component secret is not valid JSON") from None
    except parameters.exceptions.GetParameterError:
        raise ConfigurationError("component secret cannot be read") from None
    if not isinstance(raw, dict):
        raise ConfigurationError("component secret must be a JSON object")
    missing = [k for k in ("appsecret", "token", "encoding_aes_key") if not raw.get(k)]
    if missing:
        raise ConfigurationError(f"component secret lacks {', '.join(missing)}")
    token, encoding_aes_key = str(raw["token"]), str(raw["encoding_aes_key"])
    return ComponentSecret(
        appsecret=str(raw["appsecret"]),
        token=token,
        encoding_aes_key=encoding_aes_key,
        previous=_previous(raw.get("previous"), token, encoding_aes_key),
    )


def forget_secrets() -> None:
    """Drop Powertools' cache of the secret (``runtime.reset()``)."""
    from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415

    parameters.clear_caches()  # type: ignore[no-untyped-call]
