"""Messages Lambda: WeChat's deliveries to the message URL of authorized accounts."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from wechat_core import tracing, web
from wechat_core.features import account_messages

app = APIGatewayRestResolver()
logger = Logger()
tracer = Tracer(patch_modules=tracing.PATCHED_MODULES)
metrics = Metrics()
web.install_error_handler(app, logger)


@app.post("/wechat/authorizers/<appid>/messages")
def messages_route(appid: str) -> Response[str]:
    event = app.current_event
    answer = account_messages.handle_account_message(appid, web.unique_query(event), web.raw_body(event))
    content_type = "application/xml" if answer.xml else content_types.TEXT_PLAIN
    return Response(status_code=200, content_type=content_type, body=answer.body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# Responses and errors can hold user messages: none of it goes into X-Ray.
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
