"""The smallest Powertools REST handler (resolver, Logger, Tracer, Metrics): the cold-start
reference for bench/import_bench.py. Never deployed."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayRestResolver()
logger = Logger()
tracer = Tracer()
metrics = Metrics()


@app.post("/hello")
def hello() -> dict[str, str]:
    return {"hello": "world"}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
