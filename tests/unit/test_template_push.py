"""template.yaml's push intake: off by default, and whole and lint-clean when switched on."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.local.resources import conditions, load_template
from mail2ticket.observability import ALARMED_METRICS

ROOT = Path(__file__).resolve().parents[2]
INTAKE = {
    "IntakeFunction",
    "IntakeLogGroup",
    "IntakeRole",
    "IntakeQueue",
    "IntakeDeadLetterQueue",
    "IntakeQueuePolicy",
    "IntakeErrorsAlarm",
    "IntakeDeadLetterQueueAlarm",
    "MailUnroutedAlarm",
    "IntakeMailSkippedAlarm",
}
SES = {"PushReceiptRule"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _created(template: dict[str, Any], parameters: dict[str, str]) -> set[str]:
    holds = conditions(template, parameters)
    return {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if "Condition" not in resource or holds[resource["Condition"]]
    }


@pytest.mark.parametrize(
    ("parameters", "intake", "ses", "own_rule_set"),
    [
        ({}, False, False, False),
        ({"PushIntake": "s3"}, True, False, False),
        ({"PushIntake": "ses"}, True, True, True),
        ({"PushIntake": "ses", "PushRuleSetName": "active-set"}, True, True, False),
    ],
)
def test_push_parts_exist_only_when_switched_on(
    template: dict[str, Any], parameters: dict[str, str], intake: bool, ses: bool, own_rule_set: bool
) -> None:
    # Given the template's parameters / When its conditions are evaluated
    created = _created(template, parameters)

    # Then the intake, SES receiving and the rule set exist as asked, nothing of them by default
    assert created >= INTAKE if intake else not INTAKE & created
    assert (created >= SES) is ses
    assert ("PushRuleSet" in created) is own_rule_set
    holds = conditions(template, parameters)
    assert holds["PushIntakeOn"] is intake and holds["SesReceiving"] is ses


def test_every_resource_that_names_the_intake_exists_with_it(template: dict[str, Any]) -> None:
    # A Ref or GetAtt to a resource that does not exist fails the deployment: with the intake off, only
    # Fn::If branches may name it.
    off = _created(template, {})

    def names(value: Any) -> set[str]:
        if isinstance(value, list):
            return {n for item in value for n in names(item)}
        if not isinstance(value, dict):
            return set()
        if "Fn::If" in value:
            return set()
        found: set[str] = set()
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str):
                found.add(argument)
            elif key == "Fn::GetAtt":
                found.add(argument[0])
            else:
                found |= names(argument)
        return found

    for logical_id in off:
        resource = template["Resources"][logical_id]
        named = names(resource.get("Properties", {})) | names(resource.get("Metadata", {}))
        assert not (named & INTAKE), (logical_id, named & INTAKE)


def test_ses_may_write_only_inbound_mail_for_the_stacks_own_rule(template: dict[str, Any]) -> None:
    statements = template["Resources"]["RawMailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (ses,) = [s["Fn::If"][1] for s in statements if "Fn::If" in s]
    assert ses["Principal"] == {"Service": "ses.amazonaws.com"} and ses["Action"] == "s3:PutObject"
    assert ses["Resource"] == {"Fn::Sub": "${RawMailBucket.Arn}/inbound/*"}
    condition = ses["Condition"]["StringEquals"]
    assert condition["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    source, variables = condition["aws:SourceArn"]["Fn::Sub"]
    rule = template["Resources"]["PushReceiptRule"]["Properties"]
    assert source.endswith(":receipt-rule/${AWS::StackName}-push")
    assert rule["Rule"]["Name"] == {"Fn::Sub": "${AWS::StackName}-push"}
    own = template["Resources"]["PushRuleSet"]["Properties"]["RuleSetName"]
    assert variables["RuleSet"]["Fn::If"][1] == own
    # and the rule stores under the prefix the bucket's event and the policy name, scanning for verdicts
    (action,) = rule["Rule"]["Actions"]
    assert action["S3Action"]["ObjectKeyPrefix"] == "inbound/" and rule["Rule"]["ScanEnabled"] is True
    notification = template["Resources"]["RawMailBucket"]["Properties"]["NotificationConfiguration"]
    (queue,) = notification["Fn::If"][1]["QueueConfigurations"]
    assert queue["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "inbound/"}]


def test_intake_queue_outlasts_the_intake_and_ends_in_a_watched_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    timeout = resources["IntakeFunction"]["Properties"].get(
        "Timeout", template["Globals"]["Function"]["Timeout"]
    )
    queue = resources["IntakeQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["IntakeDeadLetterQueue", "Arn"]}
    alarm = resources["IntakeDeadLetterQueueAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["IntakeDeadLetterQueue", "QueueName"]}}
    ]
    unrouted = resources["MailUnroutedAlarm"]["Properties"]
    assert "MailUnrouted" in ALARMED_METRICS and unrouted["MetricName"] == "MailUnrouted"
    env = resources["IntakeFunction"]["Properties"]["Environment"]["Variables"]
    assert unrouted["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
    # and a pushed mail recorded only as a skip record (counted under the intake's service) raises an alarm
    skipped = resources["IntakeMailSkippedAlarm"]["Properties"]
    assert "MailSkipped" in ALARMED_METRICS and skipped["MetricName"] == "MailSkipped"
    assert skipped["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]


@pytest.mark.parametrize(
    "parameters",
    [
        ["PushIntake=s3"],
        ["PushIntake=ses", "PushRecipients=support@example.com,help.example.org"],
        ["PushIntake=ses", "PushRuleSetName=active-set"],
    ],
)
def test_template_lints_clean_with_push_intake_on(parameters: list[str]) -> None:
    # Given the template with push intake switched on / When cfn-lint reads it with those parameters
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "template.yaml", "--parameters", *parameters],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    # Then it finds nothing
    assert lint.returncode == 0, lint.stdout + lint.stderr
