"""Release worker Lambda: the release queue's messages (one account and step each, partial batch
failures reported to SQS), and an hourly schedule that queues audit checks for accounts whose
audit event has not come for a day."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from wechat_core import tracing
from wechat_core.features import releases

logger = Logger()
tracer = Tracer(patch_modules=tracing.PATCHED_MODULES)
metrics = Metrics()
# A batch whose every record failed is reported like any other (each record back to the queue),
# not raised: the invocation itself did not fail.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    try:
        message = json.loads(record.body)
    except ValueError:
        logger.error("release message is not JSON", extra={"message_id": record.message_id})
        return  # delivering it again would not make it JSON
    if not isinstance(message, dict):
        logger.error("release message is not a JSON object", extra={"message_id": record.message_id})
        return
    releases.handle(message)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return process_partial_response(  # type: ignore[return-value]
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    queued = releases.queue_audit_checks()
    return {"audit_checks_queued": queued}
