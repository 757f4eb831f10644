"""Releases Lambda (IAM-authorized routes, for operators): the Mini Program template library and
releases of a template to many Mini Programs (the work itself is the release worker's)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from wechat_core import tracing, web
from wechat_core.errors import BadRequest
from wechat_core.features import releases

MAX_BODY_BYTES = 256 * 1024  # up to 5,000 appids and the options

app = APIGatewayRestResolver()
logger = Logger()
tracer = Tracer(patch_modules=tracing.PATCHED_MODULES)
metrics = Metrics()
web.install_error_handler(app, logger)


def _page() -> tuple[int, str | None]:
    query = web.query(app.current_event, ("limit", "next"))
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    return limit, query.get("next")


@app.get("/wechat/templates")
def templates() -> dict[str, Any]:
    return releases.templates()


@app.get("/wechat/templates/drafts")
def drafts() -> dict[str, Any]:
    return releases.drafts()


@app.post("/wechat/templates")
def add_template() -> dict[str, Any]:
    return releases.add_template(web.json_body(app.current_event, MAX_BODY_BYTES))


@app.delete("/wechat/templates/<template_id>")
def delete_template(template_id: str) -> dict[str, Any]:
    return releases.delete_template(template_id)


@app.post("/wechat/releases")
def create_release() -> Response[Any]:
    created = releases.create(web.json_body(app.current_event, MAX_BODY_BYTES))
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=created)


@app.get("/wechat/releases")
def list_releases() -> dict[str, Any]:
    limit, after = _page()
    return releases.listing(limit, after)


@app.get("/wechat/releases/<release_id>")
def release_status(release_id: str) -> dict[str, Any]:
    limit, after = _page()
    return releases.status(release_id, limit, after)


@app.post("/wechat/releases/<release_id>/release")
def release_approved(release_id: str) -> dict[str, Any]:
    return releases.release_approved(release_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
