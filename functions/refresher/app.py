"""Refresher Lambda, on an EventBridge schedule: the component token and every due authorizer token."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from wechat_core import runtime, tracing
from wechat_core.features import refresher

logger = Logger()
tracer = Tracer(patch_modules=tracing.PATCHED_MODULES)
metrics = Metrics()


@logger.inject_lambda_context
# Responses and errors can hold tokens, session tokens and user data: none of it goes into X-Ray.
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = refresher.run(
        context.get_remaining_time_in_millis,
        lookahead_seconds=runtime.settings().refresh_lookahead_seconds,
        concurrency=runtime.settings().refresh_concurrency,
    )
    return report.as_dict()
