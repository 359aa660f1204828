"""Create the local stack's AWS resources (moto server) from the resource definitions in template.yaml.

boto3 reaches the local endpoint through the ``AWS_ENDPOINT_URL`` environment variable; nothing here
passes an ``endpoint_url``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH: Path = REPO_ROOT / "template.yaml"

DEFAULT_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account

TABLE = "AWS::DynamoDB::Table"
BUCKET = "AWS::S3::Bucket"
QUEUE = "AWS::SQS::Queue"
EVENT_BUS = "AWS::Events::EventBus"
SUPPORTED_TYPES = (TABLE, BUCKET, QUEUE, EVENT_BUS)

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


# ---------------------------------------------------------------------------------------------- template


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form intrinsic function tags."""


def _construct_intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(
            None, None, f"unexpected node for !{tag_suffix}", node.start_mark
        )
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Load a CloudFormation/SAM template, turning ``!Ref``/``!GetAtt``/``!Sub``... into their long forms."""
    with path.open(encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=_CfnLoader)  # SafeLoader subclass: no arbitrary objects
    if not isinstance(template, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return template


# ---------------------------------------------------------------------------------------------- resolving


def _parameter_values(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    """Each parameter's value: the one given, else its default; a CommaDelimitedList is a list."""
    values: dict[str, Any] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        if not isinstance(spec, Mapping) or (name not in given and "Default" not in spec):
            continue
        value = str(given.get(name, spec.get("Default")))
        values[name] = value.split(",") if spec.get("Type") == "CommaDelimitedList" else value
    unknown = set(given) - set(values)
    if unknown:
        raise KeyError(f"no such template parameters: {sorted(unknown)}")
    return values


# `Ref: AWS::NoValue`: the property or list item that holds it is left out.
_NO_VALUE = object()


def _pseudo_parameters(region: str, stack_name: str) -> dict[str, Any]:
    return {
        "AWS::Region": region,
        "AWS::AccountId": LOCAL_ACCOUNT_ID,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack_name,
        "AWS::NoValue": _NO_VALUE,
    }


class _Resolver:
    """Resolves the intrinsic functions the local resources need (Ref, GetAtt, Sub, Join, If and the
    condition functions), with the template's parameters at their defaults or the values given."""

    def __init__(
        self,
        template: Mapping[str, Any],
        region: str,
        stack_name: str,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.values: dict[str, Any] = {
            **_pseudo_parameters(region, stack_name),
            **_parameter_values(template, parameters or {}),
        }
        self.attributes: dict[str, dict[str, str]] = {}
        self.conditions: Mapping[str, Any] = template.get("Conditions") or {}

    def condition(self, name: str) -> bool:
        """The value of one of the template's conditions."""
        try:
            return bool(self._evaluate(self.conditions[name]))
        except KeyError:
            raise KeyError(f"no condition {name!r} in the template") from None

    def _evaluate(self, value: Any) -> bool:
        ((key, argument),) = value.items()
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::Equals":
            first, second = (self.resolve(item) for item in argument)
            return bool(str(first) == str(second))
        if key == "Fn::Not":
            return not self._evaluate(argument[0])
        if key == "Fn::And":
            return all(self._evaluate(item) for item in argument)
        if key == "Fn::Or":
            return any(self._evaluate(item) for item in argument)
        raise ValueError(f"unsupported condition function {key}")

    def ref(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise KeyError(f"cannot resolve Ref {name!r}: not a parameter or a created resource") from None

    def get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attributes[logical_id][attribute]
        except KeyError:
            raise KeyError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute}") from None

    def _sub(self, template_string: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return _SUB_VARIABLE.sub(replace, template_string).replace("${!", "${")

    def resolve(self, value: Any) -> Any:
        """Return ``value`` with every supported intrinsic function replaced by its value."""
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not _NO_VALUE]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                if isinstance(argument, str):
                    return self._sub(argument, {})
                template_string, variables = argument
                return self._sub(template_string, variables)
            if key == "Fn::Join":
                delimiter, items = argument
                return delimiter.join(str(item) for item in self.resolve(items))
            if key.startswith("Fn::"):
                raise ValueError(f"unsupported intrinsic function {key} in the local resources")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}


def _references(value: Any) -> set[str]:
    """Names that ``value`` refers to through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _references(item)
    elif isinstance(value, Mapping):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str):
                found.add(argument)
            elif key == "Fn::GetAtt":
                found.add(argument.split(".", 1)[0] if isinstance(argument, str) else argument[0])
            elif key == "Fn::Sub":
                template_string = argument if isinstance(argument, str) else argument[0]
                found |= {
                    m.group(1).strip().split(".", 1)[0] for m in _SUB_VARIABLE.finditer(template_string)
                }
                if not isinstance(argument, str):
                    found |= _references(argument[1])
            else:
                found |= _references(argument)
    return found


def _creation_order(resources: Mapping[str, Any], resolver: _Resolver) -> list[str]:
    """Logical ids of the supported resources whose condition holds, every one after those it depends on."""
    supported = {
        logical_id
        for logical_id, resource in resources.items()
        if isinstance(resource, Mapping)
        and resource.get("Type") in SUPPORTED_TYPES
        and ("Condition" not in resource or resolver.condition(resource["Condition"]))
    }
    graph: dict[str, set[str]] = {}
    for logical_id in sorted(supported):
        resource = resources[logical_id]
        depends_on = resource.get("DependsOn", [])
        depends_on = [depends_on] if isinstance(depends_on, str) else depends_on
        dependencies = _references(resource.get("Properties", {})) | set(depends_on)
        graph[logical_id] = dependencies & supported
    return list(TopologicalSorter(graph).static_order())


# ---------------------------------------------------------------------------------------------- creators


def _is_error(error: ClientError, *codes: str) -> bool:
    return error.response.get("Error", {}).get("Code") in codes


def _create_table(session: boto3.Session, region: str, name: str, props: Mapping[str, Any]) -> dict[str, str]:
    client = session.client("dynamodb", region_name=region)
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if "ProvisionedThroughput" in props:
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(index_kind):
            allowed = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
            request[index_kind] = [
                {k: v for k, v in index.items() if k in allowed} for index in props[index_kind]
            ]
    sse = props.get("SSESpecification")
    if sse:
        request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled", False))}
        if "SSEType" in sse:
            request["SSESpecification"]["SSEType"] = sse["SSEType"]
        if "KMSMasterKeyId" in sse:
            request["SSESpecification"]["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
    stream = props.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}

    try:
        description = client.create_table(**request)["TableDescription"]
    except ClientError as error:
        if not _is_error(error, "ResourceInUseException"):
            raise
        description = client.describe_table(TableName=name)["Table"]
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        current = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr and pitr.get("PointInTimeRecoveryEnabled"):
        client.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    attributes = {"Arn": description["TableArn"]}
    if description.get("LatestStreamArn"):
        attributes["StreamArn"] = description["LatestStreamArn"]
    return attributes


def _create_bucket(
    session: boto3.Session, region: str, name: str, props: Mapping[str, Any]
) -> dict[str, str]:
    client = session.client("s3", region_name=region)
    request: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**request)
    except ClientError as error:
        if not _is_error(error, "BucketAlreadyOwnedByYou"):
            raise
    versioning = props.get("VersioningConfiguration")
    if versioning:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["Status"]})
    encryption = props.get("BucketEncryption")
    if encryption:
        rules = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            for rule in encryption["ServerSideEncryptionConfiguration"]
            if "ServerSideEncryptionByDefault" in rule
        ]
        client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    public_access_block = props.get("PublicAccessBlockConfiguration")
    if public_access_block:
        client.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=dict(public_access_block))
    notification = props.get("NotificationConfiguration")
    if notification:
        queues = [
            {
                "QueueArn": entry["Queue"],
                "Events": [entry["Event"]],
                "Filter": {"Key": {"FilterRules": entry["Filter"]["S3Key"]["Rules"]}},
            }
            for entry in notification.get("QueueConfigurations", [])
        ]
        client.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"QueueConfigurations": queues}
        )
    return {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}


_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


def _queue_attribute_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return json.dumps(value)
    return str(value)


def _create_queue(session: boto3.Session, region: str, name: str, props: Mapping[str, Any]) -> dict[str, str]:
    client = session.client("sqs", region_name=region)
    if props.get("FifoQueue") and not name.endswith(".fifo"):
        name = f"{name}.fifo"
    attributes = {key: _queue_attribute_value(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    try:
        url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except ClientError as error:
        if not _is_error(error, "QueueAlreadyExists", "QueueNameExists"):
            raise
        # Exists with other attributes (a template edit since the last run): bring them up to date.
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
        client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = queue_arn(session, url, region)
    return {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}


def queue_arn(session: boto3.Session, queue_url: str, region: str = DEFAULT_REGION) -> str:
    """ARN of the queue at ``queue_url``."""
    client = session.client("sqs", region_name=region)
    response = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(response["Attributes"]["QueueArn"])


def _create_event_bus(
    session: boto3.Session, region: str, name: str, props: Mapping[str, Any]
) -> dict[str, str]:
    client = session.client("events", region_name=region)
    name = props.get("Name", name)
    request: dict[str, Any] = {"Name": name}
    if props.get("Description"):
        request["Description"] = props["Description"]
    try:
        arn = client.create_event_bus(**request)["EventBusArn"]
    except ClientError as error:
        if not _is_error(error, "ResourceAlreadyExistsException"):
            raise
        arn = client.describe_event_bus(Name=name)["Arn"]
    return {"Ref": name, "Arn": arn, "Name": name}


_Creator = Callable[[boto3.Session, str, str, Mapping[str, Any]], dict[str, str]]
_CREATORS: dict[str, _Creator] = {
    TABLE: _create_table,
    BUCKET: _create_bucket,
    QUEUE: _create_queue,
    EVENT_BUS: _create_event_bus,
}


def _physical_name(prefix: str, logical_id: str, resource_type: str) -> str:
    name = f"{prefix}-{logical_id}"
    return name.lower() if resource_type == BUCKET else name


# ---------------------------------------------------------------------------------------------- public API


def create_resources(
    template: dict[str, Any],
    prefix: str = "mail2ticket-local",
    session: boto3.Session | None = None,
    parameters: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Create the template's tables, buckets, queues and event buses; return logical id -> ``!Ref`` value.

    `parameters` override the template parameters' defaults (they decide its conditions). Safe to call
    again, on a fresh (reset) endpoint or on one where the resources already exist.
    """
    session = session or boto3.Session()
    region = session.region_name or DEFAULT_REGION
    resources: dict[str, Any] = template.get("Resources") or {}
    resolver = _Resolver(template, region, stack_name=prefix, parameters=parameters)
    refs: dict[str, str] = {}
    for logical_id in _creation_order(resources, resolver):
        resource = resources[logical_id]
        resource_type = resource["Type"]
        props = resolver.resolve(resource.get("Properties") or {})
        name = _physical_name(prefix, logical_id, resource_type)
        attributes = _CREATORS[resource_type](session, region, name, props)
        ref = attributes.pop("Ref", name)
        refs[logical_id] = resolver.values[logical_id] = ref
        resolver.attributes[logical_id] = attributes
    return refs


def conditions(template: dict[str, Any], parameters: Mapping[str, str] | None = None) -> dict[str, bool]:
    """Every condition of the template, evaluated with these parameters (the others at their defaults)."""
    resolver = _Resolver(template, DEFAULT_REGION, "mail2ticket-local", parameters)
    return {name: resolver.condition(name) for name in template.get("Conditions") or {}}


def function_environment(template: dict[str, Any], refs: dict[str, str], function_id: str) -> dict[str, str]:
    """Environment of ``function_id``: Globals.Function variables merged with its own, all resolved."""
    resources: dict[str, Any] = template.get("Resources") or {}
    if function_id not in resources:
        raise KeyError(f"no resource {function_id!r} in the template")
    global_env = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    own_env = (resources[function_id].get("Properties") or {}).get("Environment") or {}
    variables = {**(global_env.get("Variables") or {}), **(own_env.get("Variables") or {})}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    resolver = _Resolver(template, region, stack_name="mail2ticket-local")
    resolver.values.update(refs)
    return {name: str(resolver.resolve(value)) for name, value in variables.items()}
