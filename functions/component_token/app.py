"""Component token Lambda (IAM-authorized): the component access token, for business systems that
call component APIs this service does not wrap.

Whoever holds the component token can list every authorizer's refresh token
(api_get_authorizer_list), so this route has a function, a role and an IAM resource of its own.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from wechat_core import tracing, web
from wechat_core.features import token_service

app = APIGatewayRestResolver()
logger = Logger()
tracer = Tracer(patch_modules=tracing.PATCHED_MODULES)
metrics = Metrics()
web.install_error_handler(app, logger)


@app.get("/wechat/component/token")
def component_token() -> dict[str, Any]:
    return token_service.component_access_token()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# Responses and errors can hold tokens, session tokens and user data: none of it goes into X-Ray.
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
