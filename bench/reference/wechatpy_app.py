"""A minimal ticket-push handler built from a peer, the reference for bench/push_bench.py.

What a careful team would write in a few lines with wechatpy: its ``WeChatCrypto`` checks the
signature and decrypts, xmltodict parses, and one conditional boto3 write keeps the newest ticket
(or, for an ``unauthorized`` push, marks the authorization revoked); a message to an account's
URL is written once by its MsgId and put on the event bus. No framework, no logging, no metrics,
no timestamp window, no replay, AppId or authorization checks: a floor to measure against, not a
peer product. Never deployed.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import boto3
import xmltodict
from wechatpy.crypto import WeChatCrypto

_secret = json.loads(
    boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["COMPONENT_SECRET_ID"])[
        "SecretString"
    ]
)
APPID = os.environ["COMPONENT_APPID"]
TABLE = os.environ["TABLE_NAME"]
crypto = WeChatCrypto(_secret["token"], _secret["encoding_aes_key"], APPID)
dynamodb = boto3.client("dynamodb")
events = boto3.client("events")
BUS = os.environ.get("EVENT_BUS_NAME", "")
PK = {"S": f"component#{APPID}"}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    query = event["queryStringParameters"]
    body = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"]
    xml = crypto.decrypt_message(body, query["msg_signature"], query["timestamp"], query["nonce"])
    push = xmltodict.parse(xml)["xml"]
    create_time = {"N": push["CreateTime"]}
    if "MsgType" in push:
        return _message(event["pathParameters"]["appid"], push)
    try:
        if push["InfoType"] == "component_verify_ticket":
            dynamodb.put_item(
                TableName=TABLE,
                Item={
                    "pk": PK,
                    "sk": {"S": "ref-ticket"},
                    "ticket": {"S": push["ComponentVerifyTicket"]},
                    "create_time": create_time,
                },
                ConditionExpression="attribute_not_exists(pk) OR create_time < :t",
                ExpressionAttributeValues={":t": create_time},
            )
        elif push["InfoType"] == "unauthorized":
            dynamodb.update_item(
                TableName=TABLE,
                Key={"pk": PK, "sk": {"S": "ref-authorizer#" + push["AuthorizerAppid"]}},
                UpdateExpression="SET #s = :s, event_time = :t",
                ConditionExpression="attribute_not_exists(event_time) OR event_time <= :t",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":t": create_time, ":s": {"S": "revoked"}},
            )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        pass
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "success"}


def _message(appid: str, message: dict[str, Any]) -> dict[str, Any]:
    try:
        dynamodb.put_item(
            TableName=TABLE,
            Item={"pk": {"S": f"ref-msg#{appid}#{message['MsgId']}"}, "sk": {"S": "m"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return {"statusCode": 200, "body": "success"}
    events.put_events(
        Entries=[
            {
                "EventBusName": BUS,
                "Source": f"wechat.component.{APPID}",  # what the bench queue's rule matches, as ours
                "DetailType": "message",
                "Detail": json.dumps({"appid": appid, **message}),
            }
        ]
    )
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "success"}
