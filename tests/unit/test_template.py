"""template.yaml and samconfig.toml: least-privilege roles, durable data, alarms and dashboard."""

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from infra.local.resources import load_template
from mail2ticket.observability import ALARMED_METRICS

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("DispatcherFunction", "PollerFunction", "ProcessorFunction", "CleanerFunction", "IntakeFunction")

# What each function's code needs, by logical id. Read-only ones may only be granted read actions.
USES: dict[str, dict[str, str]] = {
    "DispatcherFunction": {
        "InboxesTable": "read",  # its inbox_list index
        "ReplicasTable": "read",  # its held_polls index
        "DispatchQueue": "write",  # the tick sends; the event source receives and deletes with its role
        "PollQueue": "write",
    },
    "PollerFunction": {
        "InboxesTable": "read",
        "ReplicasTable": "write",
        "RawMailBucket": "write",
        "ProcessQueue": "write",
        "PollQueue": "write",  # the event source receives and deletes with the function's role
        "secrets": "read",
    },
    "ProcessorFunction": {
        "InboxesTable": "read",
        "ReplicasTable": "write",
        "TicketsTable": "write",
        "RawMailBucket": "write",
        "ProcessQueue": "write",  # the event source receives and deletes with the function's role
        "EventBus": "write",
        "secrets": "read",
        "ses": "write",
    },
    "CleanerFunction": {
        "InboxesTable": "read",
        "ReplicasTable": "write",
        "TicketsTable": "write",  # a closed ticket's clean-up mark; the raw mail a ticket keeps
        "RawMailBucket": "write",
    },
    "IntakeFunction": {
        "InboxesTable": "read",  # inbox items and the routes of push inboxes
        "ReplicasTable": "write",
        "RawMailBucket": "write",
        "IntakeQueue": "write",  # the event source receives and deletes with the function's role
        "ProcessQueue": "write",
        "EventBus": "write",
    },
}
SERVICE_OF_RESOURCE = {
    "InboxesTable": "dynamodb",
    "ReplicasTable": "dynamodb",
    "TicketsTable": "dynamodb",
    "RawMailBucket": "s3",
    "ProcessQueue": "sqs",
    "PollQueue": "sqs",
    "DispatchQueue": "sqs",
    "IntakeQueue": "sqs",
    "EventBus": "events",
    "secrets": "secretsmanager",
    "ses": "ses",
}
READ_ACTIONS = re.compile(
    r"^(dynamodb:(GetItem|BatchGetItem|Query|Scan|DescribeTable)|s3:(GetObject|ListBucket)"
    r"|secretsmanager:(GetSecretValue|DescribeSecret))$"
)
# The only actions allowed on "*": X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level
# permissions (AWS's service authorization reference lists no resource type for them).
WILDCARD_ONLY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
SECRETS_ARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:mail2ticket/*"
SES_ARN = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SesIdentity}"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def _role_of(template: dict[str, Any], function: str) -> dict[str, Any]:
    role_ref = _resources(template)[function]["Properties"]["Role"]
    logical_id = role_ref["Fn::GetAtt"][0]
    role = _resources(template)[logical_id]
    assert role["Type"] == "AWS::IAM::Role"
    return role


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:  # conditional statement: check the branch that grants something
                statement = statement["Fn::If"][1]
            found.append(statement)
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resource_target(function: str, resource: Any) -> str:
    """The logical id (or 'secrets', 'ses', 'own-logs', '*') a statement's resource points at."""
    if resource == "*":
        return "*"
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        logical_id, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn", resource
        return "own-logs" if logical_id == function.replace("Function", "LogGroup") else logical_id
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        text = resource["Fn::Sub"]
        if text == SECRETS_ARN:
            return "secrets"
        if text == SES_ARN:
            return "ses"
        # the whole resource, its indexes, or its objects under one prefix
        match = re.fullmatch(r"\$\{(\w+)\.Arn\}/(index/\*|\*|[\w-]+/\*)", text)
        if match:
            return match.group(1)
    return f"unrecognised resource {resource!r}"


def violations(template: dict[str, Any]) -> list[str]:
    """Every way a function's role grants more than its code uses."""
    found: list[str] = []
    for function in FUNCTIONS:
        props = _resources(template)[function]["Properties"]
        if "Policies" in props or "Role" not in props:
            found.append(f"{function}: no explicit role, so SAM adds managed policies on '*'")
            continue
        role = _role_of(template, function)
        if role["Properties"].get("ManagedPolicyArns"):
            found.append(f"{function}: managed policies {role['Properties']['ManagedPolicyArns']}")
        uses = USES[function]
        for statement in _statements(role):
            actions = _as_list(statement["Action"])
            if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement:
                found.append(f"{function}: unexpected statement {statement}")
            for action in actions:
                if "*" in action:
                    found.append(f"{function}: wildcard action {action}")
            for resource in _as_list(statement["Resource"]):
                target = _resource_target(function, resource)
                if target == "*":
                    extra = set(actions) - WILDCARD_ONLY_ACTIONS
                    if extra:
                        found.append(f"{function}: {sorted(extra)} on '*'")
                elif target == "own-logs":
                    if set(actions) - {"logs:CreateLogStream", "logs:PutLogEvents"}:
                        found.append(f"{function}: {actions} on its log group")
                elif target not in uses:
                    found.append(f"{function}: {actions} on {target}, which it does not use")
                else:
                    service = SERVICE_OF_RESOURCE[target]
                    for action in actions:
                        if action.split(":")[0] != service:
                            found.append(f"{function}: {action} on {target}")
                        elif uses[target] == "read" and not READ_ACTIONS.match(action):
                            found.append(f"{function}: {action} on {target}, which it only reads")
    return found


# ------------------------------------------------------------------------------------- IAM


def test_every_function_role_grants_only_what_the_function_uses(template: dict[str, Any]) -> None:
    # Given the template's functions and their roles
    # When each statement is checked against what the function's code uses
    found = violations(template)

    # Then nothing is granted beyond it
    assert found == []


@pytest.mark.parametrize(
    ("function", "statement", "expected"),
    [
        ("PollerFunction", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, "on '*'"),
        ("CleanerFunction", {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}, "on '*'"),
        (
            "PollerFunction",
            {
                "Effect": "Allow",
                "Action": "dynamodb:PutItem",
                "Resource": {"Fn::GetAtt": ["InboxesTable", "Arn"]},
            },
            "only reads",
        ),
        (
            "CleanerFunction",
            {
                "Effect": "Allow",
                "Action": "events:PutEvents",
                "Resource": {"Fn::GetAtt": ["EventBus", "Arn"]},
            },
            "does not use",
        ),
        (
            "ProcessorFunction",
            {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
            "wildcard action",
        ),
    ],
)
def test_a_grant_beyond_the_function_needs_is_reported(
    template: dict[str, Any], function: str, statement: dict[str, Any], expected: str
) -> None:
    # Given a role with one statement too many
    doctored = copy.deepcopy(template)
    role = _role_of(doctored, function)
    role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(statement)

    # When the roles are checked
    found = violations(doctored)

    # Then that statement is reported
    assert any(function in v and expected in v for v in found), found


def test_a_function_without_its_own_role_is_reported(template: dict[str, Any]) -> None:
    doctored = copy.deepcopy(template)
    props = _resources(doctored)["CleanerFunction"]["Properties"]
    del props["Role"]
    props["Policies"] = [{"DynamoDBReadPolicy": {"TableName": {"Ref": "InboxesTable"}}}]

    assert any("CleanerFunction: no explicit role" in v for v in violations(doctored))


def test_each_function_logs_to_its_own_log_group_with_retention(template: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        name = _resources(template)[function]["Properties"]["FunctionName"]["Fn::Sub"]
        log_group = _resources(template)[function.replace("Function", "LogGroup")]["Properties"]
        assert log_group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{name}"}
        assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        log_statements = [
            s for s in _statements(_role_of(template, function)) if "logs:PutLogEvents" in s["Action"]
        ]
        assert [_resource_target(function, s["Resource"]) for s in log_statements] == ["own-logs"]


def test_every_function_is_built_by_the_functions_makefile(template: dict[str, Any]) -> None:
    # Given the functions' Makefile (sam build runs `make build-<logical id>` in a copy of its folder)
    makefile = (ROOT / "functions" / "Makefile").read_text(encoding="utf-8")
    functions = {k for k, v in _resources(template).items() if v["Type"] == "AWS::Serverless::Function"}

    # Then each function is built by it (no pip build that looks for a requirements file), and it builds each
    assert functions == set(FUNCTIONS)
    for function in FUNCTIONS:
        assert _resources(template)[function]["Metadata"] == {
            "BuildMethod": "makefile",
            "ContextPath": "functions",
        }
    targets = re.search(r"^FUNCTIONS = (.+)$", makefile, re.MULTILINE)
    assert targets is not None and set(targets.group(1).split()) == functions


# ------------------------------------------------------------------------------------- data and queue


@pytest.mark.parametrize(
    ("function", "queue"),
    [
        ("ProcessorFunction", "ProcessQueue"),
        ("PollerFunction", "PollQueue"),
        ("DispatcherFunction", "DispatchQueue"),
    ],
)
def test_queue_visibility_timeout_is_at_least_six_function_timeouts(
    template: dict[str, Any], function: str, queue: str
) -> None:
    consumer = _resources(template)[function]["Properties"]
    timeout = consumer.get("Timeout", template["Globals"]["Function"]["Timeout"])
    visibility = _resources(template)[queue]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * timeout


def test_a_poll_lease_outlasts_the_poller_timeout(template: dict[str, Any]) -> None:
    # Given the poller's timeout, and the lease a poll takes (the settings' default; the template sets none)
    from mail2ticket.settings import Settings

    poller = _resources(template)["PollerFunction"]["Properties"]
    env = poller["Environment"]["Variables"] | template["Globals"]["Function"]["Environment"]["Variables"]

    # Then no second poll of an inbox can start while an invocation may still be polling it
    assert "POLL_LEASE_SECONDS" not in env
    assert Settings().poll_lease_seconds > poller["Timeout"]


def test_each_poll_request_is_one_invocation_with_the_concurrency_parameter(template: dict[str, Any]) -> None:
    poller = _resources(template)["PollerFunction"]["Properties"]
    [event] = poller["Events"].values()
    assert event["Type"] == "SQS" and event["Properties"]["Queue"] == {"Fn::GetAtt": ["PollQueue", "Arn"]}
    assert event["Properties"]["BatchSize"] == 1
    assert event["Properties"]["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "PollConcurrency"}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    redrive = _resources(template)["PollQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["PollDeadLetterQueue", "Arn"]}


def test_each_shard_is_one_dispatcher_invocation_with_the_shard_count_parameter(
    template: dict[str, Any],
) -> None:
    # Given the dispatcher, which the schedule ticks and the dispatch queue feeds
    dispatcher = _resources(template)["DispatcherFunction"]["Properties"]
    events = dispatcher["Events"]

    # Then each shard message is its own invocation, at most DispatchShards at once, and the tick splits the
    # inboxes into that many shards
    assert set(events) == {"PollSchedule", "DispatchQueueEvent"}
    shards = events["DispatchQueueEvent"]["Properties"]
    assert shards["Queue"] == {"Fn::GetAtt": ["DispatchQueue", "Arn"]} and shards["BatchSize"] == 1
    assert shards["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "DispatchShards"}
    assert dispatcher["Environment"]["Variables"]["DISPATCH_SHARDS"] == {"Ref": "DispatchShards"}
    # and the shard count stays within what a parallel scan and the event source's concurrency take
    parameter = template["Parameters"]["DispatchShards"]
    assert 2 <= parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"] <= 1000
    # and a shard message lives little longer than the tick it serves
    assert _resources(template)["DispatchQueue"]["Properties"]["MessageRetentionPeriod"] <= 900


def test_the_processor_counts_attempts_as_the_queue_does(template: dict[str, Any]) -> None:
    # The processor records the error at the last delivery only if both use the same count.
    processor = _resources(template)["ProcessorFunction"]["Properties"]["Environment"]["Variables"]
    redrive = _resources(template)["ProcessQueue"]["Properties"]["RedrivePolicy"]
    assert processor["MAX_PROCESS_ATTEMPTS"] == redrive["maxReceiveCount"] == {"Ref": "ProcessAttempts"}


def test_the_smtp_relay_is_a_deploy_parameter_whose_secret_the_processor_may_read(
    template: dict[str, Any],
) -> None:
    # Given the processor's environment and the relay's parameters
    processor = _resources(template)["ProcessorFunction"]["Properties"]["Environment"]["Variables"]
    parameters = template["Parameters"]

    # Then each setting of the relay is a parameter, SES (an empty host) by default
    assert processor["SMTP_HOST"] == {"Ref": "SmtpHost"} and parameters["SmtpHost"]["Default"] == ""
    assert processor["SMTP_PORT"] == {"Ref": "SmtpPort"} and parameters["SmtpPort"]["Default"] == 587
    assert processor["SMTP_SECRET_ARN"] == {"Ref": "SmtpSecretArn"}
    # and the only relay secret accepted is one the processor's role may read (under mail2ticket/)
    pattern = re.compile(parameters["SmtpSecretArn"]["AllowedPattern"])
    reads = [s for s in _statements(_role_of(template, "ProcessorFunction")) if s["Sid"] == "ReadRelaySecret"]
    assert reads and reads[0]["Resource"]["Fn::Sub"].endswith(":secret:mail2ticket/*")
    assert pattern.match("") and pattern.match(
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mail2ticket/relay"
    )
    assert not pattern.match("arn:aws:secretsmanager:eu-west-1:123456789012:secret:relay-login")


def test_tables_have_point_in_time_recovery_and_replicas_expire(template: dict[str, Any]) -> None:
    tables = {
        k: v["Properties"] for k, v in _resources(template).items() if v["Type"] == "AWS::DynamoDB::Table"
    }
    assert set(tables) >= {"InboxesTable", "ReplicasTable", "TicketsTable"}
    for props in tables.values():
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert tables["ReplicasTable"]["TimeToLiveSpecification"]["Enabled"] is True


def test_bucket_is_encrypted_private_versioned_with_lifecycle_rules(template: dict[str, Any]) -> None:
    bucket = _resources(template)["RawMailBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(
        bucket["PublicAccessBlockConfiguration"][k] is True
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["LifecycleConfiguration"]["Rules"]


def test_concurrency_and_schedules_are_parameters(template: dict[str, Any]) -> None:
    resources = _resources(template)
    dispatcher, poller, processor = (
        resources["DispatcherFunction"]["Properties"],
        resources["PollerFunction"]["Properties"],
        resources["ProcessorFunction"]["Properties"],
    )
    assert dispatcher["Events"]["PollSchedule"]["Properties"]["Schedule"] == {"Ref": "PollerSchedule"}
    cleaner_events = resources["CleanerFunction"]["Properties"]["Events"]
    assert cleaner_events["CleanSchedule"]["Properties"]["Schedule"] == {"Ref": "CleanerSchedule"}
    assert {"Ref": "ProcessorReservedConcurrency"} in processor["ReservedConcurrentExecutions"]["Fn::If"]
    assert {"Ref": "PollerReservedConcurrency"} in poller["ReservedConcurrentExecutions"]["Fn::If"]
    assert resources["EventBus"]["Type"] == "AWS::Events::EventBus"


# ------------------------------------------------------------------------------------- alarms, dashboard


def _alarms(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in _resources(template).values() if r["Type"] == "AWS::CloudWatch::Alarm"]


def test_alarms_watch_dead_letters_function_errors_polls_and_oauth(template: dict[str, Any]) -> None:
    watched = {
        (a["Namespace"], a["MetricName"], json.dumps(a["Dimensions"], sort_keys=True))
        for a in _alarms(template)
        if "MetricName" in a  # the single-metric alarms; the per-inbox one is a query (below)
    }

    def dims(name: str, value: Any) -> str:
        return json.dumps([{"Name": name, "Value": value}], sort_keys=True)

    for dlq in ("ProcessDeadLetterQueue", "PollDeadLetterQueue"):
        dlq_name = {"Fn::GetAtt": [dlq, "QueueName"]}
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dims("QueueName", dlq_name)) in watched
    for function in FUNCTIONS:
        assert ("AWS/Lambda", "Errors", dims("FunctionName", {"Ref": function})) in watched
    for metric in ("PollFailed", "OAuthTokenFailed"):
        # The code counts these without the inbox dimension too, under the poller's service name.
        assert metric in ALARMED_METRICS
        assert ("mail2ticket", metric, dims("service", "poller")) in watched
    poller_env = _resources(template)["PollerFunction"]["Properties"]["Environment"]["Variables"]
    assert poller_env["POWERTOOLS_SERVICE_NAME"] == "poller"


def test_the_failing_inbox_alarm_names_each_inbox(template: dict[str, Any]) -> None:
    # Given the alarm on InboxFailing, which the dispatcher and the poller count per inbox
    [alarm] = [a for a in _alarms(template) if "InboxFailing" in json.dumps(a.get("Metrics", []))]

    # Then it is one Metrics Insights query grouped by inbox: each inbox is a contributor of its own, whose
    # notifications name it, and the query stays within the 500 series an alarm evaluates
    [query] = alarm["Metrics"]
    expression = " ".join(query["Expression"].split())
    assert "GROUP BY inbox_id" in expression and 'FROM SCHEMA("mail2ticket", inbox_id, service)' in expression
    limit = re.search(r"LIMIT (\d+)", expression)
    assert limit and int(limit.group(1)) <= 500
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] >= 1


def test_every_alarm_notifies_the_alarm_topic(template: dict[str, Any]) -> None:
    for alarm in _alarms(template):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], alarm["AlarmName"]
    subscription = _resources(template)["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_dashboard_shows_each_per_inbox_metric_by_inbox(template: dict[str, Any]) -> None:
    body = _resources(template)["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # Given the body with its ${...} substitutions filled in, as CloudFormation would
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))

    expressions = [
        metric[0]["expression"]
        for widget in dashboard["widgets"]
        for metric in widget.get("properties", {}).get("metrics", [])
        if isinstance(metric[0], dict)
    ]
    for name in (
        "MailReceived",
        "MailCreated",
        "MailUpdated",
        "MailUndesired",
        "MailError",
        "PollDuration",
        "PollFailed",
        "OAuthTokenFailed",
        "InboxFailing",
    ):
        assert f"SEARCH('{{mail2ticket,inbox_id,service}} MetricName=\"{name}\"'" in "\n".join(expressions), (
            name
        )
    plain = json.dumps(dashboard)
    assert "ApproximateNumberOfMessagesVisible" in plain and '"Errors"' in plain and '"Duration"' in plain


# ------------------------------------------------------------------------------------- samconfig


def test_samconfig_has_dev_and_prod_with_known_parameters(template: dict[str, Any]) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    for env in ("dev", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["stack_name"] == f"mail2ticket-{env}"
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"])
        assert overrides["Stage"] == env
        assert set(overrides) <= set(template["Parameters"])
        # and a poller's reservation leaves room for every poll its event source may run at once
        defaults = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
        reserved = int(overrides.get("PollerReservedConcurrency", defaults["PollerReservedConcurrency"]))
        assert reserved == 0 or reserved >= int(overrides.get("PollConcurrency", defaults["PollConcurrency"]))
    # and deploys always name their environment: no `default` one for `sam deploy --guided` to have written
    assert "deploy" not in config["default"]
