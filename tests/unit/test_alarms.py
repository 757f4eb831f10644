"""Operating it: the template's alarms, dashboard and log groups (README "Operating it").

Read from template.yaml itself, so a function added without its alarms or log group, an alarm on a
metric the code no longer emits (renamed, removed), or an alarm that ignores the topic parameter
fails here rather than in production.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from devtools.template import ROOT, api_routes, template
from tests.support import iam

pytestmark = pytest.mark.unit

# What each alarm on the service's own metrics watches: the metric names, read from the template.
SERVICE_METRIC_ALARMS = {
    "TicketMissingAlarm": {"TicketStored"},
    "ComponentTokenExpiredAlarm": {"ComponentTokenFetched"},
    "ComponentTokenRefreshFailingAlarm": {"ComponentTokenRefreshFailed", "RefresherNoTicket"},
    "AuthorizerRefreshFailuresAlarm": {"AuthorizerRefreshFailed"},
    "AuthorizerNeedsReauthorizationAlarm": {"AuthorizerNeedsReauthorization"},
    "QuotaExceededAlarm": {"QuotaExceeded", "WeChatErrcode.45009"},
    "MessagePublishFailedAlarm": {"MessagePublishFailed"},
}
# Alarms on something that must keep happening: no data is as bad as a zero.
ABSENCE_ALARMS = {"TicketMissingAlarm", "ComponentTokenExpiredAlarm"}
# WeChat's routes whose 5xx answers are alarmed, per method (API Gateway's detailed metrics).
ROUTE_5XX_ALARMS = {
    "CallbackRoute5xxAlarm": ("POST", "/wechat/component/events", "CallbackFunction"),
    "MessagesRoute5xxAlarm": ("POST", "/wechat/authorizers/{appid}/messages", "MessagesFunction"),
}
# CloudWatch Logs' allowed retentions (PutRetentionPolicy).
RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827]
RETENTION_DAYS += [2192, 2557, 2922, 3288, 3653]
ACTIONS = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template()["Resources"].items() if r.get("Type") == kind}


def _functions() -> dict[str, dict[str, Any]]:
    return _resources("AWS::Serverless::Function")


def _alarms() -> dict[str, dict[str, Any]]:
    return {n: r["Properties"] for n, r in _resources("AWS::CloudWatch::Alarm").items()}


def _metrics(alarm: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every metric an alarm reads: its own, or those of its metric math."""
    if "MetricName" in alarm:
        yield {k: alarm[k] for k in ("Namespace", "MetricName", "Dimensions")}
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            yield query["MetricStat"]["Metric"]


def _service() -> tuple[str, list[dict[str, str]]]:
    """The namespace and dimensions of every EMF metric, as Powertools sets them from Globals."""
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    return variables["POWERTOOLS_METRICS_NAMESPACE"], [
        {"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}
    ]


@cache
def _emitted() -> tuple[frozenset[str], frozenset[str]]:
    """(names, prefixes) of the metrics the code emits: every ``add_metric(...)`` first argument
    under the layer and the functions. A literal is a name (both arms of a conditional
    expression); an f-string is a prefix (``f"WeChatErrcode.{errcode}"`` -> ``WeChatErrcode.``)."""
    names: set[str] = set()
    prefixes: set[str] = set()

    def collect(node: ast.expr) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
        elif isinstance(node, ast.IfExp):
            collect(node.body)
            collect(node.orelse)
        elif isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                prefixes.add(head.value)

    sources = [*(ROOT / "layers/wechat_core/wechat_core").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_metric"
                and node.args
            ):
                collect(node.args[0])
    return frozenset(names), frozenset(prefixes)


def _is_emitted(name: str) -> bool:
    names, prefixes = _emitted()
    return name in names or any(name.startswith(p) and name[len(p) :] for p in prefixes)


def test_the_metric_scan_finds_what_the_code_emits() -> None:
    names, prefixes = _emitted()
    assert {"TicketStored", "TicketIgnoredOlder", "MessagePublished"} <= names
    assert "WeChatErrcode." in prefixes
    assert not _is_emitted("TicketsStored")
    assert not _is_emitted("WeChatErrcode.")


def test_every_function_has_its_errors_and_throttles_alarms() -> None:
    watched: dict[tuple[str, str], str] = {}
    for name, alarm in _alarms().items():
        for metric in _metrics(alarm):
            if metric["Namespace"] == "AWS/Lambda":
                (dimension,) = metric["Dimensions"]
                assert dimension["Name"] == "FunctionName", name
                watched[(dimension["Value"]["Ref"], metric["MetricName"])] = name
    for function in _functions():
        for metric_name in ("Errors", "Throttles"):
            found = watched.get((function, metric_name))
            assert found, f"{function} has no {metric_name} alarm"
            own = _alarms()[found]
            assert (own["Statistic"], own["ComparisonOperator"], own["Threshold"]) == (
                "Sum",
                "GreaterThanOrEqualToThreshold",
                1,
            ), found
            assert own["TreatMissingData"] == "notBreaching", found
    assert {f for f, _ in watched} == set(_functions()), "an alarm on a function that does not exist"


def test_every_function_logs_to_its_own_log_group_with_the_retention_parameter() -> None:
    groups = _resources("AWS::Logs::LogGroup")
    used: set[str] = set()
    for function, resource in _functions().items():
        logging_config = resource["Properties"].get("LoggingConfig", {})
        ref = logging_config.get("LogGroup", {}).get("Ref")
        assert ref in groups, f"{function}: LoggingConfig.LogGroup must name its AWS::Logs::LogGroup"
        assert ref not in used, f"{function} shares {ref}"
        used.add(ref)
        name = groups[ref]["Properties"]["LogGroupName"]
        assert name == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}/{function}"}, function
    for name, group in groups.items():  # the API's access log too
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    parameter = template()["Parameters"]["LogRetentionDays"]
    assert parameter["AllowedValues"] == RETENTION_DAYS
    assert parameter["Default"] in RETENTION_DAYS


def test_service_metric_alarms_watch_the_named_metrics() -> None:
    alarms = _alarms()
    namespace, dimensions = _service()
    for name, expected in SERVICE_METRIC_ALARMS.items():
        assert name in alarms, f"{name} is missing"
        metrics = list(_metrics(alarms[name]))
        assert {m["MetricName"] for m in metrics} == expected, name
        for metric in metrics:
            assert (metric["Namespace"], metric["Dimensions"]) == (namespace, dimensions), name
        absence = name in ABSENCE_ALARMS
        assert alarms[name]["ComparisonOperator"] == (
            "LessThanThreshold" if absence else "GreaterThanOrEqualToThreshold"
        ), name
        assert alarms[name]["TreatMissingData"] == ("breaching" if absence else "notBreaching"), name


def test_no_ticket_for_30_minutes_and_no_token_past_its_lifetime() -> None:
    alarms = _alarms()
    ticket = alarms["TicketMissingAlarm"]
    # None in every 5-minute period of 30 minutes: WeChat pushes every 10 minutes.
    assert ticket["Period"] * ticket["DatapointsToAlarm"] == 30 * 60
    assert ticket["EvaluationPeriods"] == ticket["DatapointsToAlarm"]
    token = alarms["ComponentTokenExpiredAlarm"]
    # Renewed 15 minutes before its 2 hours run out: no fetch for longer than 2 h means expired.
    window = token["Period"] * token["DatapointsToAlarm"]
    assert token["EvaluationPeriods"] == token["DatapointsToAlarm"]
    assert 2 * 3600 < window <= 2 * 3600 + 15 * 60


def test_every_metric_an_alarm_or_the_dashboard_names_is_one_the_code_emits() -> None:
    namespace, _ = _service()
    used = {m["MetricName"] for a in _alarms().values() for m in _metrics(a) if m["Namespace"] == namespace}
    used |= {m[1] for m in _dashboard_metrics() if m[0] == namespace}
    assert used
    missing = sorted(name for name in used if not _is_emitted(name))
    assert not missing, f"no add_metric emits {missing} (renamed or removed? update template.yaml)"


def test_route_5xx_alarms_name_the_routes_and_their_detailed_metrics_are_on() -> None:
    api = template()["Resources"]["Api"]["Properties"]
    routes = {(m, p): name for m, p, name, _ in api_routes()}
    (stage,) = [r for r in iam.translated()["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
    settings = {(s["HttpMethod"], s["ResourcePath"]): s for s in stage["Properties"]["MethodSettings"]}
    for name, (method, path, function) in ROUTE_5XX_ALARMS.items():
        alarm = _alarms()[name]
        assert routes[(method, path)] == function, name
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions == {
            "ApiName": api["Name"],
            "Stage": api["StageName"],
            "Resource": path,
            "Method": method,
        }, name
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
            "AWS/ApiGateway",
            "5XXError",
            "Average",
        ), name
        assert 0 < alarm["Threshold"] < 1, name  # a share of the requests
        assert settings[(method, "/" + path.replace("/", "~1"))].get("MetricsEnabled") is True, name
    # Detailed metrics cost per method: only where an alarm reads them.
    enabled = {k for k, s in settings.items() if s.get("MetricsEnabled")}
    assert enabled == {(m, "/" + p.replace("/", "~1")) for m, p, _ in ROUTE_5XX_ALARMS.values()}


def test_release_dead_letter_queue_alarm_watches_the_release_queues_dead_letter_queue() -> None:
    resources = template()["Resources"]
    redrive = resources["ReleaseQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": "ReleaseDeadLetterQueue.Arn"}
    alarm = _alarms()["ReleaseDeadLetterQueueAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": "ReleaseDeadLetterQueue.QueueName"}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)


def _resolve(value: Any, parameters: dict[str, str]) -> Any:
    """The value CloudFormation makes of ``value`` for these parameters (Ref, If, Not, Equals)."""
    conditions = template()["Conditions"]
    if isinstance(value, list):
        return [v for v in (_resolve(v, parameters) for v in value) if v is not _NO_VALUE]
    if not isinstance(value, dict):
        return value
    if value == {"Ref": "AWS::NoValue"}:
        return _NO_VALUE
    if set(value) == {"Ref"} and value["Ref"] in parameters:
        return parameters[value["Ref"]]
    if set(value) == {"Fn::Equals"}:
        left, right = (_resolve(v, parameters) for v in value["Fn::Equals"])
        return left == right
    if set(value) == {"Fn::Not"}:
        return not _resolve(value["Fn::Not"][0], parameters)
    if set(value) == {"Condition"}:
        return _resolve(conditions[value["Condition"]], parameters)
    if set(value) == {"Fn::If"}:
        condition, then, otherwise = value["Fn::If"]
        chosen = then if _resolve(conditions[condition], parameters) else otherwise
        return _resolve(chosen, parameters)
    return {k: v for k, v in ((k, _resolve(v, parameters)) for k, v in value.items()) if v is not _NO_VALUE}


_NO_VALUE = object()


def test_alarm_actions_follow_the_topic_parameter() -> None:
    parameter = template()["Parameters"]["AlarmTopicArn"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    topic = "arn:aws:sns:us-east-1:123456789012:wechat-alarms"
    assert pattern.fullmatch(topic)
    assert pattern.fullmatch("arn:aws-cn:sns:cn-north-1:123456789012:ops")
    assert pattern.fullmatch("")
    assert not pattern.fullmatch("arn:aws:sqs:us-east-1:123456789012:queue")
    alarms = _alarms()
    assert len(alarms) >= len(SERVICE_METRIC_ALARMS) + len(ROUTE_5XX_ALARMS) + 2 * len(_functions())
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == ACTIONS, name
        assert alarm["OKActions"] == ACTIONS, name
        without = _resolve(alarm, {"AlarmTopicArn": ""})
        assert "AlarmActions" not in without, name
        assert "OKActions" not in without, name
        with_topic = _resolve(alarm, {"AlarmTopicArn": topic})
        assert (with_topic["AlarmActions"], with_topic["OKActions"]) == ([topic], [topic]), name


def test_every_alarm_says_what_it_means_and_what_to_do() -> None:
    for name, alarm in _alarms().items():
        description = alarm["AlarmDescription"]
        text = description["Fn::Sub"] if isinstance(description, dict) else description
        assert isinstance(text, str), name
        assert "What to do:" in text, name
        assert 200 < len(text) <= 1024 - 128, name  # CloudWatch's limit, with room for a stack name


def _dashboard_text() -> str:
    body = template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    assert set(body) == {"Fn::Sub"}
    text = body["Fn::Sub"]
    assert isinstance(text, str)
    return text


def _dashboard() -> dict[str, Any]:
    """The dashboard's JSON with every ${...} substitution replaced by a placeholder of the same name."""
    text = _dashboard_text()
    resources = template()["Resources"]
    for reference in re.findall(r"\$\{([^}]*)\}", text):
        target = reference.split(".")[0]
        assert target in resources or target in ("AWS::Region", "AWS::StackName"), reference
        if "." in reference:
            assert reference.split(".", 1)[1] in ("Arn", "QueueName"), reference
    body: dict[str, Any] = json.loads(re.sub(r"\$\{([^}]*)\}", r"<\1>", text))
    return body


def _dashboard_metrics() -> list[list[Any]]:
    """[namespace, metric name, dimension name, value, ...] of every metric the dashboard draws."""
    metrics = []
    for widget in _dashboard()["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            metrics.append([m for m in metric if not isinstance(m, dict)])
    return metrics


def test_dashboard_shows_every_alarm_and_the_figures_they_watch() -> None:
    widgets = _dashboard()["widgets"]
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    assert set(alarm_widget["properties"]["alarms"]) == {f"<{name}.Arn>" for name in _alarms()}
    drawn = {tuple(m) for m in _dashboard_metrics()}
    for name, alarm in _alarms().items():
        for metric in _metrics(alarm):
            dimensions: list[Any] = []
            for dimension in metric["Dimensions"]:
                value = dimension["Value"]
                if isinstance(value, dict):  # !Ref Function, !GetAtt Queue.QueueName, !Ref AWS::StackName
                    ref = value.get("Ref") or value["Fn::GetAtt"]
                    value = f"<{ref}>"
                dimensions += [dimension["Name"], value]
            assert (metric["Namespace"], metric["MetricName"], *dimensions) in drawn, name
    names = {m[1] for m in drawn}
    assert "ReleaseAccountFailed" in names  # a figure without an alarm


def test_api_access_log_never_holds_query_strings() -> None:
    api = template()["Resources"]["Api"]["Properties"]
    condition, setting, otherwise = api["AccessLogSetting"]["Fn::If"]
    assert (condition, otherwise) == ("AccessLogsEnabled", {"Ref": "AWS::NoValue"})
    # Off by default: a first deployment fails without API Gateway's account-wide log role.
    assert template()["Parameters"]["ApiAccessLogging"]["Default"] == "disabled"
    log_format = setting["Format"]
    fields = json.loads(log_format)
    assert "\n" not in log_format
    assert fields["resource"] == "$context.resourcePath"
    # $context.path is the request's own path (appids, release ids); nothing may carry the query.
    for variable in re.findall(r"\$context\.[A-Za-z.]+", log_format):
        assert variable != "$context.path", variable
        assert "query" not in variable.lower(), variable
        assert not variable.startswith(("$context.requestOverride", "$context.authorizer")), variable
    assert "$input" not in log_format
    assert "$method" not in log_format
    group = template()["Resources"]["ApiAccessLogGroup"]
    assert group["Condition"] == "AccessLogsEnabled"
    arn = setting["DestinationArn"]["Fn::Sub"]
    assert arn.endswith(":log-group:${ApiAccessLogGroup}")


def test_readme_operating_it_names_every_alarm() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Operating it\n(.*?)^## ", readme, flags=re.MULTILINE | re.DOTALL)
    assert match, 'README has no "## Operating it" section'
    section = match.group(1)
    for name in _alarms():
        if name.endswith(("FunctionErrorsAlarm", "FunctionThrottlesAlarm")):
            continue  # one row for every function's Errors and Throttles
        assert name.removesuffix("Alarm") in section, name
    assert "<Function>-Errors" in section


def test_helpers_resolve_conditions() -> None:
    assert _resolve({"Fn::If": ["HasAlarmTopic", 1, 2]}, {"AlarmTopicArn": "x"}) == 1
    assert _resolve({"Fn::If": ["HasAlarmTopic", 1, 2]}, {"AlarmTopicArn": ""}) == 2
    assert _resolve([{"Ref": "AWS::NoValue"}, 3], {}) == [3]
