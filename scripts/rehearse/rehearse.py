"""The workshop on AWS, rehearsed without AWS: both CloudFormation stacks
(deploy/hq.yaml, deploy/interstella.yaml) created in moto's server, the
resources they create checked, then the platform run the way the stacks say.

Part 1 (stacks): create both stacks and turn their tasks on by stack updates
as docs/aws.md does (HQ's, then each service's), check the alarms that
makes, ECS task definitions, ELBv2 listener rules (the public /fulfill*
refusal, the internal glue-hook ALB), SNS topics, SSM parameters, the EFS file system, mount
targets and access point of HQ's ledger. What moto accepts without
modelling (SNS subscriptions, scaling targets and policies, an ECS service's
load balancers and platform version, a task definition's volumes, the EFS
file system policy, the Secrets Manager secret) is checked in the template
itself.

Part 2 (run, when BIN_DIR holds hq, monolith, iridium and magnesite): each
container started from its task definition as moto stored it (environment,
secrets resolved from moto's SSM as the ECS agent would, container port),
one HAProxy generated from the ELBv2 listener rules as created (a frontend
per load balancer, rules in priority order, health checks from the target
groups), the subscriptions from the template made on moto's topics, HQ
publishing through the AWS SDK to moto's SNS (HQ_PUBLISH_TO=aws) with its
ledger in a local directory standing in for the EFS mount, and the
platform's API key made through HQ's key portal and read by the monolith
from moto's SSM. Then: an order HQ publishes on each topic goes moto's SNS -> the services -> HQ's API and
is fulfilled in HQ's ledger, reconciled with nothing lost; POST /fulfill/ through
the public listener is refused; the internal listener wants the glue secret;
a genuine message from a topic outside the allow-list is refused;
Strangled=iridium via a stack update; HQ's task replaced, its ledger kept;
a second platform stack created with LaunchType=FARGATE and
CpuArchitecture=ARM64 (real CloudFormation cannot switch those in place:
docs/aws.md).
All traffic stays on 127.0.0.1.

Run through scripts/rehearse-aws.sh, which finds or makes a Python with
moto[server], boto3 and PyYAML.
"""

from __future__ import annotations

import http.server as http_server
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import ClassVar

import boto3
import yaml
from free_ports import free_port

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
HQ_STACK = "interstella-hq"
PLATFORM_STACK = "interstella"
# Services of the platform stack: container name -> (listening port variable
# default, health path). The binaries carry the container's name.
SERVICES = ("monolith", "iridium", "magnesite")
# Where the first platform stack's alarms are mailed (the second has none).
ALARM_EMAIL = "operations@example.com"
# Generous: CI machines are shared, and debug builds answer slowly under load.
DEADLINE_S = 60.0

passed = 0
failed = 0


def check(what: str, ok: bool, detail: object = "") -> bool:
    """Counts and prints one check."""
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}" + (f": {detail}" if detail != "" else ""))
    return ok


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def wait_until(what: str, probe, deadline_s: float = DEADLINE_S):
    """Polls probe() until it returns a truthy value or the deadline passes."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            last = probe()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - a probe failing is "not yet"
            last = e
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not within {deadline_s:.0f} s (last: {last!r})")


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    """One request; returns (status, body text). Never raises on a status."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def post_json(url: str, value: object):
    return http("POST", url, json.dumps(value).encode(), {"Content-Type": "application/json"})


# ----------------------------------------------------------- the templates
class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) as the long form."""


def _cfn_tag(loader: CfnLoader, suffix: str, node: yaml.Node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def template(name: str) -> dict:
    return yaml.load((ROOT / "deploy" / name).read_text(), Loader=CfnLoader)


# ------------------------------------------------------------------ moto
class Moto:
    """moto's server, in this process on its own threads, on 127.0.0.1, and
    boto3 clients to it."""

    def __init__(self, workdir: Path):
        import logging
        import warnings

        from moto.server import ThreadedMotoServer

        # moto logs every request and warns of each resource it does not
        # model (the template checks cover those): keep the output readable.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module="moto")

        patch_moto_task_definition_update()
        patch_moto_efs_attributes()
        patch_moto_alarms()
        patch_moto_conditions_on_update()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        wait_until("moto listening", lambda: http("GET", f"{self.url}/moto-api/")[0] == 200)

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> None:
        self.server.stop()


def patch_moto_task_definition_update() -> None:
    """moto 5 registers the task definition of a stack *update* with the
    template's PascalCase keys, which its ECS model does not read: the new
    revision comes out with no environment and no ports. Its create path
    converts them; do the same on update."""
    from moto.core.utils import pascal_to_camelcase, remap_nested_keys
    from moto.ecs.models import TaskDefinition

    update = TaskDefinition.update_from_cloudformation_json.__func__

    def converted(cls, *args, cloudformation_json, **kwargs):
        props = dict(cloudformation_json["Properties"])
        for key in ("ContainerDefinitions", "Volumes"):
            props[key] = remap_nested_keys(props.get(key, []), pascal_to_camelcase)
        json_ = {**cloudformation_json, "Properties": props}
        return update(cls, *args, cloudformation_json=json_, **kwargs)

    TaskDefinition.update_from_cloudformation_json = classmethod(converted)


def patch_moto_conditions_on_update() -> None:
    """moto 5's stack update adds only resources new to the template: one
    whose `Condition` turned true (a service's alarms, once its desired
    count is raised from 0, as the labs do) is never made. CloudFormation
    makes it; so, after moto's update, make every resource not made yet
    (moto makes nothing for one whose condition is still false). The other
    way, a resource whose condition turned false, is not taught: moto keeps
    it, and the rehearsal turns nothing off."""
    from moto.cloudformation.parsing import ResourceMap

    update = ResourceMap.update

    def update_then_make_the_rest(self, *args, **kwargs):
        update(self, *args, **kwargs)
        for name in list(self._resource_json_map):
            if name not in self._parsed_resources:
                _ = self[name]  # moto's own way to make a resource

    ResourceMap.update = update_then_make_the_rest


def patch_moto_efs_attributes() -> None:
    """moto 5 creates EFS file systems and access points from a template but
    answers neither `!GetAtt X.Arn` nor (access points) `!Ref X`, which AWS
    does: give them what AWS documents (the ARN; the id)."""
    from moto.efs.models import AccessPoint, FileSystem

    def file_system_attr(self, name: str) -> str:
        return {"Arn": self.file_system_arn, "FileSystemId": self.file_system_id}[name]

    def access_point_attr(self, name: str) -> str:
        return {"Arn": self.access_point_arn, "AccessPointId": self.access_point_id}[name]

    FileSystem.get_cfn_attribute = file_system_attr
    AccessPoint.get_cfn_attribute = access_point_attr
    AccessPoint.physical_resource_id = property(lambda self: self.access_point_id)


def patch_moto_alarms() -> None:
    """moto 5 does not make `AWS::CloudWatch::Alarm` from a template (it
    skips the resource), nor answer `!GetAtt` of an ALB's or a target
    group's full name, the dimensions the alarms name. Make them as AWS
    does: the alarm through moto's own PutMetricAlarm, the names from the
    ARNs (`app/<name>/<id>`, `targetgroup/<name>/<id>`)."""
    from moto.cloudformation import parsing
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.common_models import CloudFormationModel
    from moto.elbv2.models import FakeLoadBalancer, FakeTargetGroup

    lb_attr = FakeLoadBalancer.get_cfn_attribute

    def load_balancer_attr(self, name: str):
        return self.arn.split(":loadbalancer/", 1)[1] if name == "LoadBalancerFullName" else lb_attr(self, name)

    def target_group_attr(self, name: str):
        if name != "TargetGroupFullName":
            raise NotImplementedError(name)
        return self.arn.rsplit(":", 1)[1]

    FakeLoadBalancer.get_cfn_attribute = load_balancer_attr
    FakeTargetGroup.get_cfn_attribute = target_group_attr

    class TemplateAlarm(CloudFormationModel):
        # moto's models say which service they belong to by their module.
        __module__ = "moto.cloudwatch.models"

        def __init__(self, name: str):
            self.name = name

        @staticmethod
        def cloudformation_name_type() -> str:
            return "AlarmName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudWatch::Alarm"

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            props = cloudformation_json["Properties"]
            name = props.get("AlarmName", resource_name)
            cloudwatch_backends[account_id][region_name].put_metric_alarm(
                name=name,
                namespace=props["Namespace"],
                metric_name=props["MetricName"],
                comparison_operator=props["ComparisonOperator"],
                evaluation_periods=int(props["EvaluationPeriods"]),
                period=int(props["Period"]),
                threshold=float(props["Threshold"]),
                statistic=props["Statistic"],
                description=props.get("AlarmDescription", ""),
                dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in props.get("Dimensions", [])],
                alarm_actions=props.get("AlarmActions", []),
                ok_actions=props.get("OKActions", []),
                treat_missing_data=props.get("TreatMissingData"),
            )
            return cls(name)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
            # None: moto made no alarm before (its condition was false).
            if original_resource is not None:
                cls.delete_from_cloudformation_json(original_resource.name, cloudformation_json, account_id, region_name)
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])

        def is_created(self) -> bool:
            return True

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


# CloudFormation takes a template of at most 51,200 bytes in the request
# (TemplateBody) and a larger one only from S3 (TemplateURL), where `aws
# cloudformation deploy --s3-bucket` puts it (docs/aws.md). moto has no such
# limit, so the rehearsal keeps it: a template over it goes through moto's S3.
TEMPLATE_BODY_MAX = 51_200
TEMPLATE_BUCKET = "interstella-templates-rehearsal"


def template_source(moto: "Moto", path: str) -> dict[str, str]:
    """The template as AWS would take it: in the request, or from S3."""
    text = (ROOT / "deploy" / path).read_text()
    if len(text.encode()) <= TEMPLATE_BODY_MAX:
        return {"TemplateBody": text}
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=TEMPLATE_BUCKET)  # us-east-1: making it again is no error
    s3.put_object(Bucket=TEMPLATE_BUCKET, Key=path, Body=text.encode())
    return {"TemplateURL": f"https://s3.amazonaws.com/{TEMPLATE_BUCKET}/{path}"}


def stack_op(moto: "Moto", op: str, name: str, path: str, params: dict[str, str], previous=()) -> dict:
    """create_stack / update_stack, then waits for it to settle."""
    cfn = moto.client("cloudformation")
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()]
    parameters += [{"ParameterKey": k, "UsePreviousValue": True} for k in previous]
    getattr(cfn, op)(
        StackName=name,
        **template_source(moto, path),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=parameters,
    )
    stack = wait_until(
        f"stack {name} settled",
        lambda: (
            (s := cfn.describe_stacks(StackName=name)["Stacks"][0])
            and not s["StackStatus"].endswith("IN_PROGRESS")
            and s
        ),
        120,
    )
    want = "CREATE_COMPLETE" if op == "create_stack" else "UPDATE_COMPLETE"
    reasons = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
        for e in cfn.describe_stack_events(StackName=name)["StackEvents"]
        if "FAILED" in e["ResourceStatus"]
    ]
    check(f"stack {name}: {want}", stack["StackStatus"] == want, f"{stack['StackStatus']} {reasons}")
    return stack


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def physical_ids(cfn, name: str) -> dict[str, str]:
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=name)["StackResources"]
        if "PhysicalResourceId" in r  # moto leaves some unmodelled ones without
    }


def task_definition(ecs, family: str) -> dict:
    """The latest revision. moto stores a definition registered by a stack
    update with the template's PascalCase keys: normalised to the API's."""
    td = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    td["containerDefinitions"] = [camel_keys(c) for c in td["containerDefinitions"]]
    return td


def camel_keys(value):
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


def container_env(td: dict) -> dict[str, str]:
    # `if e`: moto keeps an !If ... AWS::NoValue list entry as null; ECS drops it.
    return {e["name"]: e["value"] for e in td["containerDefinitions"][0].get("environment", []) if e}


def container_secrets(td: dict) -> dict[str, str]:
    # .get: moto resolves a Secrets Manager secret it did not create to nothing.
    return {s["name"]: s.get("valueFrom", "") for s in td["containerDefinitions"][0].get("secrets", []) if s}


# -------------------------------------------------------------- part 1
def part1(moto: Moto, glue_secret: str) -> dict:
    cfn = moto.client("cloudformation")
    ssm = moto.client("ssm")
    step("the glue hook's secret, created before the stack (docs/aws.md)")
    ssm.put_parameter(
        Name="/interstella/glueHookSecret", Type="SecureString", Value=glue_secret, Overwrite=True
    )

    step(f"admin stack {HQ_STACK} (deploy/hq.yaml)")
    hq_out = outputs(stack_op(moto, "create_stack", HQ_STACK, "hq.yaml", {}))
    # Its task turned on as docs/aws.md does it (push-and-roll.sh --services
    # hq -- HqDesiredCount=1), which makes HQ's alarms.
    step(f"HqImageTag and HqDesiredCount=1 by a stack update of {HQ_STACK}")
    stack_op(moto, "update_stack", HQ_STACK, "hq.yaml", {"HqImageTag": "rehearsal", "HqDesiredCount": "1"})
    check_hq_alarms(moto, hq_out["PortalUrl"])
    # As the labs do it (docs/aws.md): made with no task, each service then
    # turned on by an update, which makes its service, alarms, listener
    # rules and subscription; so updates that add resources are rehearsed.
    step(f"platform stack {PLATFORM_STACK} (deploy/interstella.yaml), no task yet")
    platform_params = {
        "AcceptUnsignedOrders": "false",
        "GatherDelayMs": "0",
        "AlarmEmail": ALARM_EMAIL,
    }
    stack_op(moto, "create_stack", PLATFORM_STACK, "interstella.yaml", platform_params)
    for service, lab in (("Monolith", "Lab 2"), ("Iridium", "Lab 4"), ("Magnesite", "Lab 4")):
        step(f"{lab}: {service}DesiredCount=1 by a stack update")
        previous = list(platform_params)
        platform_params[f"{service}DesiredCount"] = "1"
        pf_stack = stack_op(
            moto, "update_stack", PLATFORM_STACK, "interstella.yaml", {f"{service}DesiredCount": "1"}, previous
        )
    pf_out = outputs(pf_stack)
    topics = {
        "orders": hq_out.get("OrdersTopicArn"),
        "iridium": hq_out.get("IridiumTopicArn"),
        "magnesite": hq_out.get("MagnesiteTopicArn"),
    }

    step("SNS topics, SSM parameters, the ledger's EFS file system")
    sns = moto.client("sns")
    existing = {t["TopicArn"] for t in sns.list_topics()["Topics"]}
    for name, arn in topics.items():
        check(f"topic {name} exists ({arn})", arn in existing, sorted(existing))
    endpoint = ssm.get_parameter(Name="/interstella/apiEndpoint")["Parameter"]["Value"]
    check(
        "/interstella/apiEndpoint is the admin stack's API (imported)",
        endpoint == hq_out.get("ApiEndpoint") and endpoint.endswith("/receiving/"),
        endpoint,
    )
    glue = ssm.get_parameter(Name="/interstella/glueHookSecret", WithDecryption=True)["Parameter"]
    check("glue hook secret is a SecureString", glue["Type"] == "SecureString", glue["Type"])
    check_ledger_file_system(moto, hq_out.get("LedgerFileSystemId", ""))
    check_image_lifecycles(moto)

    step("ECS task definitions")
    ecs = moto.client("ecs")
    internal_dns = pf_out["InternalLoadBalancerDns"]
    public_dns = pf_out["LoadBalancerDns"]
    own_topic = {"monolith": "orders", "iridium": "iridium", "magnesite": "magnesite"}
    log_filter = template("interstella.yaml")["Parameters"]["LogFilter"]["Default"]
    log_format = template("interstella.yaml")["Parameters"]["LogFormat"]["Default"]
    for svc in SERVICES:
        td = task_definition(ecs, f"interstella-{svc}")
        env, sec = container_env(td), container_secrets(td)
        check(
            f"{svc}: SNS_TOPIC_ARNS is exactly its topic",
            env.get("SNS_TOPIC_ARNS") == topics[own_topic[svc]],
            env.get("SNS_TOPIC_ARNS"),
        )
        check(
            f"{svc}: GLUE_HOOK_SECRET from the SSM parameter",
            sec.get("GLUE_HOOK_SECRET", "").endswith(":parameter/interstella/glueHookSecret"),
            sec,
        )
        check(
            f"{svc}: ACCEPT_UNSIGNED_ORDERS from the parameter",
            env.get("ACCEPT_UNSIGNED_ORDERS") == "false",
            env,
        )
        check(f"{svc}: RUST_LOG is LogFilter's default", env.get("RUST_LOG") == log_filter, env.get("RUST_LOG"))
        check(f"{svc}: LOG_FORMAT is LogFormat's default", env.get("LOG_FORMAT") == log_format, env.get("LOG_FORMAT"))
        ports = td["containerDefinitions"][0]["portMappings"]
        check(
            f"{svc}: no fixed host port (dynamic)",
            all(p.get("hostPort", 0) == 0 for p in ports),
            ports,
        )
        linux = td["containerDefinitions"][0].get("linuxParameters") or {}
        check(f"{svc}: every Linux capability dropped", linux.get("capabilities", {}).get("drop") == ["ALL"], linux)
        if svc != "monolith":
            check(
                f"{svc}: monolithUrl is the internal ALB",
                env.get("monolithUrl") == internal_dns,
                env.get("monolithUrl"),
            )
    hq_td = task_definition(ecs, "interstella-hq-hq")
    hq_env = container_env(hq_td)
    check(
        "hq: HQ_SNS_TOPIC_ARNS names the three topics",
        hq_env.get("HQ_SNS_TOPIC_ARNS")
        == f"orders={topics['orders']},iridium={topics['iridium']},magnesite={topics['magnesite']}",
        hq_env.get("HQ_SNS_TOPIC_ARNS"),
    )
    check("hq: publishes to AWS", hq_env.get("HQ_PUBLISH_TO") == "aws", hq_env)
    mounts = hq_td["containerDefinitions"][0].get("mountPoints", [])
    check(
        "hq: HQ_DATA_DIR is the ledger volume's mount, in rollback-journal mode (NFS)",
        [(m.get("sourceVolume"), m.get("containerPath")) for m in mounts] == [("data", hq_env.get("HQ_DATA_DIR"))]
        and hq_env.get("HQ_JOURNAL_MODE") == "delete",
        (mounts, hq_env),
    )
    check("hq: HQ_ADMIN_TOKEN from Secrets", "HQ_ADMIN_TOKEN" in container_secrets(hq_td), hq_td)
    check(
        "hq: RUST_LOG is LogFilter's default",
        hq_env.get("RUST_LOG") == template("hq.yaml")["Parameters"]["LogFilter"]["Default"],
        hq_env.get("RUST_LOG"),
    )

    step("ELBv2: listeners and rules as created")
    elb = moto.client("elbv2")
    lbs = {lb["DNSName"]: lb for lb in elb.describe_load_balancers()["LoadBalancers"]}
    check("public ALB is internet-facing", lbs[public_dns]["Scheme"] == "internet-facing")
    check("glue-hook ALB is internal", lbs[internal_dns]["Scheme"] == "internal")
    public_rules = listener_rules(elb, lbs[public_dns]["LoadBalancerArn"])
    first = public_rules[0] if public_rules else {}
    check(
        "public listener: /fulfill* answered 403 by the first rule",
        first.get("paths") == ["/fulfill*"]
        and first.get("action", {}).get("Type") == "fixed-response"
        and first["action"]["FixedResponseConfig"]["StatusCode"] == "403",
        public_rules,
    )
    check(
        "public listener: no rule forwards /fulfill*",
        not any(
            r["action"]["Type"] == "forward" and any(p.startswith("/fulfill") for p in r["paths"])
            for r in public_rules
        ),
    )
    internal_rules = listener_rules(elb, lbs[internal_dns]["LoadBalancerArn"])
    check(
        "internal listener: /fulfill* forwarded, anything else 404",
        [r["paths"] for r in internal_rules] == [["/fulfill*"], []]
        and internal_rules[0]["action"]["Type"] == "forward"
        and internal_rules[1]["action"]["Type"] == "fixed-response"
        and internal_rules[1]["action"]["FixedResponseConfig"]["StatusCode"] == "404",
        internal_rules,
    )

    check_alarms(moto, "interstella", pf_out["LoadBalancerDns"], ALARM_EMAIL)

    step("in the template (moto accepts these without modelling them)")
    check_template_only(topics)
    return {"hq": hq_out, "platform": pf_out, "topics": topics, "params": platform_params}


def check_image_lifecycles(moto: Moto) -> None:
    """Every image repository has its template's lifecycle policy, one ECR
    takes: moto's CloudFormation makes the repositories without it, so the
    text is put on them here, through moto's ECR (which refuses a malformed
    policy, though not all that ECR refuses: the rules' order is checked
    here)."""
    ecr, cfn = moto.client("ecr"), moto.client("cloudformation")
    for stack, name in ((HQ_STACK, "hq.yaml"), (PLATFORM_STACK, "interstella.yaml")):
        tpl = template(name)
        ids = physical_ids(cfn, stack)
        for logical, resource in tpl["Resources"].items():
            if resource["Type"] != "AWS::ECR::Repository":
                continue
            given = resource["Properties"].get("LifecyclePolicy", {}).get("LifecyclePolicyText", {})
            path = given.get("Fn::FindInMap") if isinstance(given, dict) else None
            text = tpl["Mappings"][path[0]][path[1]][path[2]] if path else given
            try:
                ecr.put_lifecycle_policy(repositoryName=ids[logical], lifecyclePolicyText=text)
                rules = json.loads(ecr.get_lifecycle_policy(repositoryName=ids[logical])["lifecyclePolicyText"])[
                    "rules"
                ]
            except Exception as error:  # noqa: BLE001 (ECR's refusal is the finding)
                rules = [f"{type(error).__name__}: {error}"]
            selections = [rule.get("selection", {}) if isinstance(rule, dict) else {} for rule in rules]
            priorities = [rule.get("rulePriority") if isinstance(rule, dict) else None for rule in rules]
            # ECR wants distinct priorities, and a rule for any tag the last.
            for_any = [p for p, sel in zip(priorities, selections) if sel.get("tagStatus") == "any"]
            others = [p for p, sel in zip(priorities, selections) if sel.get("tagStatus") != "any"]
            in_order = (
                None not in priorities
                and len(set(priorities)) == len(priorities)
                and all(other < last for other in others for last in for_any)
            )
            check(
                f"{name} {logical}: ECR takes its lifecycle; untagged images expire, and all but the last 50 images",
                in_order
                and {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}
                in selections
                and {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50} in selections,
                rules,
            )


def check_ledger_file_system(moto: Moto, fs_id: str) -> None:
    """HQ's ledger volume as moto created it: encrypted, a mount target in
    each subnet admitting NFS from HQ's tasks only, the access point."""
    efs, ec2 = moto.client("efs"), moto.client("ec2")
    systems = efs.describe_file_systems()["FileSystems"]
    fs = next((f for f in systems if f["FileSystemId"] == fs_id), {})
    check("ledger file system exists, encrypted", fs.get("Encrypted") is True, systems)
    targets = efs.describe_mount_targets(FileSystemId=fs_id)["MountTargets"] if fs else []
    check(
        "ledger file system: a mount target in each of two subnets",
        len({t["SubnetId"] for t in targets}) == 2,
        targets,
    )
    task_sg = physical_ids(moto.client("cloudformation"), HQ_STACK).get("TaskSecurityGroup")
    for target in targets:
        groups = efs.describe_mount_target_security_groups(MountTargetId=target["MountTargetId"])
        perms = [
            p
            for g in ec2.describe_security_groups(GroupIds=groups["SecurityGroups"])["SecurityGroups"]
            for p in g["IpPermissions"]
        ]
        check(
            f"mount target in {target['SubnetId']}: NFS 2049 from HQ's task security group only",
            [(p.get("FromPort"), p.get("ToPort"), [u["GroupId"] for u in p.get("UserIdGroupPairs", [])], p.get("IpRanges"))
             for p in perms]
            == [(2049, 2049, [task_sg], [])],
            perms,
        )
    points = efs.describe_access_points(FileSystemId=fs_id)["AccessPoints"] if fs else []
    check(
        "ledger access point: uid/gid 65534, root /hq made 0700",
        len(points) == 1
        and int(points[0]["PosixUser"]["Uid"]) == 65534
        and int(points[0]["PosixUser"]["Gid"]) == 65534
        and points[0]["RootDirectory"]["Path"] == "/hq"
        and points[0]["RootDirectory"]["CreationInfo"]["Permissions"] == "0700",
        points,
    )


# Each alarm's settings as made; the templates say why each is so.
NO_HEALTHY_TASK = {
    "Namespace": "AWS/ApplicationELB",
    "Period": 60,
    "EvaluationPeriods": 3,
    "Threshold": 1.0,
    "MetricName": "HealthyHostCount",
    "Statistic": "Maximum",
    "ComparisonOperator": "LessThanThreshold",
    "TreatMissingData": "notBreaching",
}
ANY_IN_5_MINUTES = {
    "Namespace": "AWS/ApplicationELB",
    "Period": 300,
    "EvaluationPeriods": 1,
    "Threshold": 1.0,
    "Statistic": "Sum",
    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    "TreatMissingData": "notBreaching",
}
TARGET_5XX = {**ANY_IN_5_MINUTES, "MetricName": "HTTPCode_Target_5XX_Count"}


def load_balancer_names(moto: Moto, dns: str) -> tuple[str, dict[str, str]]:
    """The full name of the load balancer at `dns` and of each of its target
    groups (by name), as alarms name them."""
    elb = moto.client("elbv2")
    lb = next(lb for lb in elb.describe_load_balancers()["LoadBalancers"] if lb["DNSName"] == dns)
    groups = {
        tg["TargetGroupName"]: tg["TargetGroupArn"].rsplit(":", 1)[1]
        for tg in elb.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"]
    }
    return lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1], groups


def check_hq_alarms(moto: Moto, portal_url: str) -> None:
    """HQ's two alarms, made once its task runs: no healthy task and 5xx,
    on its target group behind its ALB, notifying no one (no AlarmEmail)."""
    step(f"CloudWatch alarms of {HQ_STACK} (AlarmEmail empty)")
    lb_name, groups = load_balancer_names(moto, portal_url.split("/")[2])
    group = {"LoadBalancer": lb_name, "TargetGroup": groups.get(f"{HQ_STACK}-hq")}
    check_alarm_set(
        moto,
        HQ_STACK,
        "",
        {"no-healthy-task": (NO_HEALTHY_TASK, group), "5xx": (TARGET_5XX, group)},
        "HQ's own ALB",
    )


def check_alarms(moto: Moto, env_name: str, public_dns: str, email: str) -> None:
    """The stack's alarms, as made: each service's no-healthy-task and 5xx
    alarms on its own target group behind the public ALB, the ALB's own
    502 and 504, orders-undelivered on the dead-letter queue, and with an
    AlarmEmail each notifying the stack's topic, which mails it."""
    step(f"CloudWatch alarms of {env_name} (AlarmEmail {email or 'empty'})")
    lb_name, groups = load_balancer_names(moto, public_dns)
    want = {}
    for svc in SERVICES:
        group = {"LoadBalancer": lb_name, "TargetGroup": groups.get(f"{env_name}-{svc}")}
        want[f"{svc}-no-healthy-task"] = (NO_HEALTHY_TASK, group)
        want[f"{svc}-5xx"] = (TARGET_5XX, group)
    for code in ("502", "504"):
        want[f"load-balancer-{code}"] = (
            {**ANY_IN_5_MINUTES, "MetricName": f"HTTPCode_ELB_{code}_Count"},
            {"LoadBalancer": lb_name},
        )
    want["orders-undelivered"] = (
        {
            **ANY_IN_5_MINUTES,
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Statistic": "Maximum",
        },
        {"QueueName": f"{env_name}-undelivered-orders"},
    )
    topic = check_alarm_set(moto, env_name, email, want, "the public ALB")
    sns = moto.client("sns")
    sqs = moto.client("sqs")
    queue = sqs.get_queue_url(QueueName=f"{env_name}-undelivered-orders")["QueueUrl"]
    kept = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["MessageRetentionPeriod", "SqsManagedSseEnabled"])
    check(
        "the queue of deliveries SNS gave up on keeps them 14 days, encrypted",
        kept["Attributes"] == {"MessageRetentionPeriod": "1209600", "SqsManagedSseEnabled": "true"},
        kept["Attributes"],
    )
    subscriptions = [
        (s["Protocol"], s["Endpoint"])
        for s in sns.list_subscriptions()["Subscriptions"]
        if s["TopicArn"] == topic
    ]
    check(
        f"alarm topic mails {email}" if email else "no alarm subscription",
        subscriptions == ([("email", email)] if email else []),
        subscriptions,
    )


def check_alarm_set(moto: Moto, env_name: str, email: str, want: dict, alb: str) -> str | None:
    """The alarms named `<env_name>-<name>` for each of `want`'s names, each
    with its settings and dimensions and notifying the stack's alarm topic
    (made with an AlarmEmail alone), and no other; the topic's ARN. `alb`
    names the stack's load balancer in the checks' lines."""
    cw, sns = moto.client("cloudwatch"), moto.client("sns")
    alarms = {
        a["AlarmName"]: a
        for a in cw.describe_alarms(AlarmNamePrefix=f"{env_name}-")["MetricAlarms"]
        # HQ's stack's name starts as the platform's does.
        if env_name == HQ_STACK or not a["AlarmName"].startswith(f"{HQ_STACK}-")
    }
    dims = lambda a: {d["Name"]: d["Value"] for d in a.get("Dimensions", [])}
    topic = next(
        (t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(f":{env_name}-alarms")), None
    )
    check(f"alarm topic {'made' if email else 'not made'}", (topic is not None) == bool(email), topic)
    actions = [topic] if email else []
    for name, (settings, dimensions) in want.items():
        alarm = alarms.get(f"{env_name}-{name}", {})
        made = {k: alarm.get(k) for k in settings}
        of = (
            f"of its target group behind {alb}" if "TargetGroup" in dimensions
            else "of the queue of deliveries SNS gave up on" if "QueueName" in dimensions
            else f"of {alb}"
        )
        check(
            f"alarm {name}: {settings['MetricName']} ({settings['Statistic']}, {settings['Period']} s) {of}",
            made == settings and dims(alarm) == dimensions and None not in dimensions.values(),
            (made, dims(alarm), dimensions),
        )
        check(
            f"alarm {name} notifies {'the alarm topic' if email else 'no one'}, going off and back",
            alarm.get("AlarmActions") == actions and alarm.get("OKActions") == actions,
            alarm,
        )
    check("no other alarm", sorted(alarms) == sorted(f"{env_name}-{n}" for n in want), sorted(alarms))
    return topic


def listener_rules(elb, lb_arn: str) -> list[dict]:
    """The rules of a load balancer's (one) listener in evaluation order."""
    (listener,) = elb.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]
    rules = elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    rules.sort(
        key=lambda r: (r["Priority"] == "default", int(r["Priority"]) if r["Priority"] != "default" else 0)
    )
    return [
        {
            "priority": r["Priority"],
            "paths": [
                v
                for c in r["Conditions"]
                for v in c.get("PathPatternConfig", {}).get("Values", c.get("Values", []))
            ],
            "action": r["Actions"][0],
        }
        for r in rules
    ]


def default_drain_timeout_ms() -> str:
    """DRAIN_TIMEOUT_MS when a task does not set it, as the Rust code says."""
    source = (ROOT / "crates/platform/src/server/limits.rs").read_text()
    found = re.search(r"pub const DEFAULT_DRAIN_TIMEOUT_MS: u64 = ([0-9_]+);", source)
    if not found:
        raise RuntimeError("DEFAULT_DRAIN_TIMEOUT_MS not found in crates/platform/src/server/limits.rs")
    return found.group(1).replace("_", "")


def check_template_only(topics: dict[str, str]) -> None:
    platform = template("interstella.yaml")["Resources"]
    # The EC2 instances' launch template, as written.
    devices = platform["LaunchTemplate"]["Properties"]["LaunchTemplateData"].get("BlockDeviceMappings", [])
    check(
        "interstella.yaml: on EC2, the instances' root volume (/dev/xvda) is encrypted",
        any(d.get("DeviceName") == "/dev/xvda" and d.get("Ebs", {}).get("Encrypted") is True for d in devices),
        devices,
    )
    hq_template = template("hq.yaml")
    hq = hq_template["Resources"]
    # moto's stacks here have no certificate: read what one changes. The
    # admin credential must not cross the internet in clear.
    https = hq.get("HttpsListener", {})
    plain = json.dumps(hq["Listener"]["Properties"]["DefaultActions"])
    urls = json.dumps([hq_template["Outputs"][name]["Value"] for name in ("ApiEndpoint", "PortalUrl")])
    check(
        "hq.yaml: with CertificateArn, HTTPS on 443 with HSTS, port 80 redirects to it, and the URLs it gives are https://DomainName/",
        https.get("Condition") == "HasCertificate"
        and https["Properties"]["Port"] == 443
        and {"Key": "routing.http.response.strict_transport_security.header_value", "Value": "max-age=31536000"}
        in https["Properties"].get("ListenerAttributes", [])
        and '"Protocol": "HTTPS", "Port": "443"' in plain
        and urls.count("https://${DomainName}/") == 2
        and "https://${DomainName}/" in json.dumps(hq["TaskDefinition"]["Properties"]["ContainerDefinitions"]),
        (https, plain, urls),
    )
    # moto makes no topic policy: read it. Teams in other accounts may only
    # subscribe, over HTTP(S), and the owner keeps what SNS' default gave it.
    # moto's HQ runs no task (HqDesiredCount 0): its alarms, made while HQ
    # runs, are read. Each on HQ's own target group, mailing AlarmEmail.
    hq_alarms = {
        name: hq.get(name, {}).get("Properties", {})
        for name in ("NoHealthyTaskAlarm", "ServerErrorsAlarm")
    }
    group = [
        {"Name": "LoadBalancer", "Value": {"Fn::GetAtt": ["LoadBalancer", "LoadBalancerFullName"]}},
        {"Name": "TargetGroup", "Value": {"Fn::GetAtt": ["TargetGroup", "TargetGroupFullName"]}},
    ]
    mails = {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}
    check(
        "hq.yaml: while HQ runs, alarms on no healthy task (3 minutes) and on any 5xx (5 minutes) "
        "of its target group, mailing AlarmEmail",
        all(hq.get(name, {}).get("Condition") == "HqRuns" for name in hq_alarms)
        and (hq_alarms["NoHealthyTaskAlarm"].get("MetricName"), hq_alarms["NoHealthyTaskAlarm"].get("Period"),
             hq_alarms["NoHealthyTaskAlarm"].get("EvaluationPeriods")) == ("HealthyHostCount", 60, 3)
        and (hq_alarms["ServerErrorsAlarm"].get("MetricName"), hq_alarms["ServerErrorsAlarm"].get("Period"))
        == ("HTTPCode_Target_5XX_Count", 300)
        and all(a.get("Dimensions") == group and a.get("AlarmActions") == mails and a.get("OKActions") == mails
                for a in hq_alarms.values()),
        hq_alarms,
    )
    policy = hq.get("TeamAccountsSubscribe", {})
    statements = {st.get("Sid"): st for st in policy.get("Properties", {}).get("PolicyDocument", {}).get("Statement", [])}
    topics_ref = [{"Ref": "OrdersTopic"}, {"Ref": "IridiumTopic"}, {"Ref": "MagnesiteTopic"}]
    teams = statements.get("TeamAccountsSubscribeOverHttp", {})
    check(
        "hq.yaml: accounts in SubscriberAccountIds may subscribe the three topics over HTTP(S), nothing more",
        policy.get("Condition") == "HasSubscriberAccounts"
        and policy["Properties"]["Topics"] == topics_ref
        and teams.get("Principal") == {"AWS": {"Ref": "SubscriberAccountIds"}}
        and teams.get("Action") == "sns:Subscribe"
        and teams.get("Condition") == {"StringEquals": {"sns:Protocol": ["http", "https"]}}
        and "sns:Publish" in statements.get("OwnerAccount", {}).get("Action", []),
        policy,
    )
    # moto keeps no cluster settings from a template: read the template.
    for name in ("interstella.yaml", "hq.yaml"):
        whole = template(name)
        check(
            f"{name}: Container Insights is the ContainerInsights parameter, off by default (it bills custom metrics)",
            whole["Parameters"]["ContainerInsights"]["Default"] == "disabled"
            and whole["Resources"]["Cluster"]["Properties"]["ClusterSettings"]
            == [{"Name": "containerInsights", "Value": {"Ref": "ContainerInsights"}}],
            whole["Resources"]["Cluster"]["Properties"],
        )
    # A value CloudFormation takes but the service's own parser refuses
    # stops every task at start: each pattern against what the parser takes.
    for name, param, takes, refuses in [
        (
            "hq.yaml",
            "GeneratorRates",
            ["orders=0,iridium=0,magnesite=0", "orders=1,iridium=0.5", "magnesite=1000", "orders=999.99"],
            ["orders=1000.5", "orders=5000", "gold=1", "orders=1.2.3", "orders=1,", "orders=-1", ""],
        ),
        ("interstella.yaml", "GatherDelayMs", ["0", "1000", "2999", "3000"], ["1.5", "3001", "-1", "10000", ""]),
        # What ECS, EC2 Auto Scaling and Application Auto Scaling take: whole
        # counts, each desired count within ServiceMaxCount's range.
        *(
            ("interstella.yaml", param, ["0", "1", "9", "10", "20"], ["1.5", "-1", "21", "1e1", ""])
            for param in ("MonolithDesiredCount", "IridiumDesiredCount", "MagnesiteDesiredCount")
        ),
        ("interstella.yaml", "ServiceMaxCount", ["1", "4", "20"], ["0", "4.5", "21", ""]),
        ("interstella.yaml", "InstanceCount", ["1", "2", "6"], ["0", "2.5", "7", ""]),
        ("hq.yaml", "HqDesiredCount", ["0", "1"], ["0.5", "2", "-1", ""]),
        # HQ_MAX_QUANTITY: 1 to 1,000,000, or blank for HQ's default (blank
        # is no value to HQ's settings).
        ("hq.yaml", "MaxQuantity", ["", "1", "3", "999999", "1000000"], ["0", "1.5", "1000001", "-3", " "]),
        # Names AWS takes: load balancer, target group and ECR names refuse a
        # hyphen at the end or two in a row, and a load balancer's "internal-"
        # first (the internal ALB is "<name>-internal"); SSM a parameter path
        # starting "aws" or "ssm" (/<name>/apiEndpoint).
        ("interstella.yaml", "EnvironmentName", ["interstella", "graviton", "a1-b2", "x" * 19, "internals", "lab-aws"],
         ["lab-", "a--b", "internal-x", "internal", "aws-workshop", "awsdemo", "ssm-lab", "1abc", "Abc", "x" * 20, ""]),
        ("hq.yaml", "EnvironmentName", ["interstella-hq", "x" * 20], ["hq-", "a--b", "internal-hq", "x" * 21]),
        # URLs and ARNs the services parse at start (platform::settings):
        # a value they refuse would stop every task, found only after ECS'
        # circuit breaker rolls the stack back.
        ("interstella.yaml", "ApiEndpoint",
         ["", "http://hq.example.com/receiving/", "https://10.0.0.1:4000/receiving/", "http://hq.example.com",
          "HTTPS://hq.example.com/receiving/", "http://[::1]:4000/", "http://hq.example.com?x=1"],
         ["hq.example.com/receiving/", "localhost:4000/", "ftp://hq.example.com/", " ", "http:// x"]),
        *(
            ("interstella.yaml", param,
             ["", "arn:aws:sns:us-east-1:123456789012:interstella-hq-orders", "arn:aws-cn:sns:cn-north-1:123456789012:t_1"],
             ["interstella-hq-orders", "arn:aws:sqs:us-east-1:123456789012:q", "arn:aws:sns:us-east-1:1234:t", " "])
            for param in ("OrdersTopicArn", "IridiumTopicArn", "MagnesiteTopicArn")
        ),
        *(
            (name, "DomainName", ["", "orders.example.com", "a-b.example.co.uk"],
             ["https://orders.example.com", "orders.example.com/", "orders", "*.example.com", "-a.example.com"])
            for name in ("interstella.yaml", "hq.yaml")
        ),
        # HQ_ALLOWED_HOSTS: DNS names or *, as HQ's reader (hosts.rs) takes them.
        ("hq.yaml", "AllowedHosts",
         ["", "hq.example.com", "hq.example.com,*", "*", "HQ.Example.com.", "localhost", "a" * 63 + ".example.com",
          ".".join(["a" * 63] * 3) + "." + "a" * 61],
         [",", "a,,b", "hq.example.com,", "hq:4000", "http://hq.example.com/", "-a", "a..b", "*.example.com",
          "a" * 64 + ".example.com", ".".join(["a" * 63] * 4)]),
        # Image tags as docker and push-and-roll.sh write them; an empty one
        # names no image, and every task would fail to pull it.
        *(
            (name, param, ["latest", "v1.2.3", "33865fc", "33865fc-dirty", "_x", "a" * 128],
             ["", "-rc1", ".hidden", "v1/2", "a b", "v1:2", "a" * 129])
            for name, param in (("hq.yaml", "HqImageTag"), ("interstella.yaml", "MonolithImageTag"),
                                ("interstella.yaml", "IridiumImageTag"), ("interstella.yaml", "MagnesiteImageTag"))
        ),
        # One address: an SNS email subscription takes one.
        *(
            (name, "AlarmEmail", ["", "ops@example.com", "first.last+alarms@mail.example.co.uk", "o'neil@example.com"],
             ["ops", "ops@example", "a@b.com,c@d.com", "a@b.com;c@d.com", "a@b.com c@d.com", "<a@b.com>",
              "Ops <a@b.com>", "a@b..com", "a@@b.com", "a..b@example.com", ".a@example.com", "a.@example.com",
              "a@-x.com", "a@x-.com"])
            for name in ("interstella.yaml", "hq.yaml")
        ),
        # STRANGLED: resource names, any order (the monolith's own list).
        ("interstella.yaml", "Strangled", ["", "iridium", "magnesite", "iridium,magnesite", "magnesite,iridium"],
         ["gold", "iridium;magnesite", "iridium,gold"]),
    ]:
        parameter = template(name)["Parameters"][param]
        if "AllowedPattern" in parameter:
            allows = lambda value, pattern=parameter["AllowedPattern"], most=parameter.get("MaxLength"): (  # noqa: E731
                bool(re.fullmatch(pattern, value)) and (most is None or len(value) <= int(most))
            )
        elif "AllowedValues" in parameter:
            # Each allowed value is text in CloudFormation's API (ParameterConstraints).
            allows = lambda value, listed=parameter["AllowedValues"]: value in map(str, listed)  # noqa: E731
        else:
            allows = lambda value: True  # noqa: E731 (unconstrained: CloudFormation takes anything)
        wrong = [v for v in takes if not allows(v)] + [v for v in refuses if allows(v)]
        check(f"{name}: {param} takes what its reader takes, and nothing it refuses", not wrong, wrong)
    # moto does not apply a template's Rules: the account list's, evaluated
    # here for lists as CloudFormation splits them (a comma too many leaves
    # an empty entry, which would be a principal SNS refuses).
    def rule_value(expr, params):
        if isinstance(expr, dict):
            ((fn, args),) = expr.items()
            if fn == "Ref":
                return params[args]
            args = [rule_value(a, params) for a in args]
            if fn == "Fn::Not":
                return not args[0]
            if fn == "Fn::Contains":
                return args[1] in args[0]
            if fn == "Fn::EachMemberEquals":
                return all(member == args[1] for member in args[0])
            if fn == "Fn::Equals":
                return args[0] == args[1]
            if fn == "Fn::Join":
                return args[0].join(args[1])
            raise ValueError(f"no evaluator for {fn}")
        return expr

    hq_whole = template("hq.yaml")
    whole = hq_whole["Rules"]["SubscriberAccountIdsWhole"]
    has_accounts = hq_whole["Conditions"]["HasSubscriberAccounts"]
    def accounts_taken(text):
        params = {"SubscriberAccountIds": text.split(",")}
        taken = not rule_value(whole["RuleCondition"], params) or all(
            rule_value(a["Assert"], params) for a in whole["Assertions"])
        # Taken with an empty entry, it must make no topic policy.
        return taken and not (rule_value(has_accounts, params) and "" in params["SubscriberAccountIds"])
    taken = ["", ",", "111122223333", "111122223333,444455556666"]
    refused = ["111122223333,", ",111122223333", "111122223333,,444455556666"]
    wrong = [t for t in taken if not accounts_taken(t)] + [r for r in refused if accounts_taken(r)]
    check("hq.yaml: SubscriberAccountIds takes account lists, and none with an empty entry among accounts", not wrong, wrong)
    subs = {k: v for k, v in platform.items() if v["Type"] == "AWS::SNS::Subscription"}
    for name, path, export, runs in [
        ("OrdersSubscription", "/order/", "OrdersTopicArn", "MonolithRuns"),
        ("IridiumSubscription", "/iridium/", "IridiumTopicArn", "IridiumRuns"),
        ("MagnesiteSubscription", "/magnesite/", "MagnesiteTopicArn", "MagnesiteRuns"),
    ]:
        sub = subs.get(name, {})
        text = json.dumps(sub)
        check(
            f"{name}: {path} on the public ALB, topic {export} imported, while its service runs",
            f"http://${{LoadBalancer.DNSName}}{path}" in text
            and f"${{HqStackName}}-{export}" in text
            and sub.get("Condition") == runs
            and sub.get("DependsOn", "").endswith("Service"),
            text,
        )
    redrives = {name: sub["Properties"].get("RedrivePolicy") for name, sub in sorted(subs.items())}
    check(
        "each subscription sends a delivery SNS gave up on to the undelivered-orders queue",
        set(map(json.dumps, redrives.values())) == {json.dumps({"deadLetterTargetArn": {"Fn::GetAtt": ["UndeliveredOrders", "Arn"]}})},
        redrives,
    )
    (dead_letters,) = platform["UndeliveredOrdersPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    # The topics of the subscriptions themselves, not a list of them: a
    # subscription added without its topic here would lose what SNS gives up on.
    sources = sorted(map(json.dumps, dead_letters["Condition"]["ArnEquals"]["aws:SourceArn"]))
    subscribed = sorted(json.dumps(sub["Properties"]["TopicArn"]) for sub in subs.values())
    check(
        f"SNS may send to that queue for the {len(subscribed)} subscribed topics only",
        dead_letters["Principal"] == {"Service": "sns.amazonaws.com"}
        and dead_letters["Action"] == "sqs:SendMessage"
        and len(subscribed) == 3
        and sources == subscribed,
        (sources, subscribed),
    )
    # SNS' limits on a delivery policy, and what this one promises: retries
    # for at least 10 minutes (a task or HQ being replaced misses nothing),
    # inside SNS' 3,600 s cap even if every attempt timed out (15 s).
    for name, sub in sorted(subs.items()):
        retry = sub["Properties"]["DeliveryPolicy"]["healthyRetryPolicy"]
        retries, low, high = retry["numRetries"], retry["minDelayTarget"], retry["maxDelayTarget"]
        phases = retry["numNoDelayRetries"] + retry["numMinDelayRetries"] + retry["numMaxDelayRetries"]
        backoff = retries - phases
        least = retry["numMinDelayRetries"] * low + backoff * low + retry["numMaxDelayRetries"] * high
        most = (retries + 1) * 15 + retries * high
        check(
            f"{name}: a delivery policy SNS takes, retrying for at least 10 minutes ({least} s) "
            f"and within SNS' 3,600 s ({most} s at most)",
            0 <= retries <= 100 and 1 <= low <= high <= 3600 and 0 <= phases <= retries
            and least >= 600 and most <= 3600,
            retry,
        )
    for svc in ("Monolith", "Iridium", "Magnesite"):
        deployment = platform[f"{svc}Service"]["Properties"]["DeploymentConfiguration"]
        check(
            f"{svc}: a rollout starts each new task before it stops an old one (100% healthy, 200% at most)",
            deployment["MinimumHealthyPercent"] == 100 and deployment["MaximumPercent"] == 200,
            deployment,
        )
    for svc in ("Monolith", "Iridium", "Magnesite"):
        target = platform.get(f"{svc}ScalableTarget", {}).get("Properties", {})
        policy = platform.get(f"{svc}ScalingPolicy", {}).get("Properties", {})
        requests = platform.get(f"{svc}RequestScalingPolicy", {}).get("Properties", {})
        tracked = requests.get("TargetTrackingScalingPolicyConfiguration", {})
        metric = tracked.get("PredefinedMetricSpecification", {})
        check(
            f"{svc}: scalable target (desired count .. ServiceMaxCount), tracking CPU and the requests "
            f"per task of its internet-facing target group (an order waiting for its gather holds a "
            f"connection, not CPU)",
            target.get("MinCapacity") == {"Ref": f"{svc}DesiredCount"}
            and target.get("MaxCapacity") == {"Ref": "ServiceMaxCount"}
            and policy.get("PolicyType") == "TargetTrackingScaling"
            and requests.get("PolicyType") == "TargetTrackingScaling"
            and requests.get("ScalingTargetId") == {"Ref": f"{svc}ScalableTarget"}
            and metric.get("PredefinedMetricType") == "ALBRequestCountPerTarget"
            and metric.get("ResourceLabel")
            == {"Fn::Sub": f"${{LoadBalancer.LoadBalancerFullName}}/${{{svc}TargetGroup.TargetGroupFullName}}"}
            and tracked.get("TargetValue") == {"Ref": "RequestsPerTaskTarget"},
            (target, policy, requests),
        )
    # moto registers a template's task definition with its containers only
    # (no network mode, compatibilities, size, runtime platform).
    for svc in ("Monolith", "Iridium", "Magnesite"):
        props = platform[f"{svc}TaskDefinition"]["Properties"]
        check(
            f"{svc}: bridge on EC2, awsvpc + 256/512 + CpuArchitecture on Fargate",
            props["NetworkMode"] == {"Fn::If": ["IsFargate", "awsvpc", "bridge"]}
            and props["RequiresCompatibilities"] == [{"Ref": "LaunchType"}]
            and props["Cpu"] == {"Fn::If": ["IsFargate", "256", {"Ref": "AWS::NoValue"}]}
            and props["Memory"] == {"Fn::If": ["IsFargate", "512", {"Ref": "AWS::NoValue"}]}
            and props["RuntimePlatform"]["Fn::If"][1]["CpuArchitecture"] == {"Ref": "CpuArchitecture"},
            props,
        )
        service = platform[f"{svc}Service"]["Properties"]
        check(
            f"{svc}: service on LaunchType, awsvpc configuration on Fargate only",
            service["LaunchType"] == {"Ref": "LaunchType"}
            and service["NetworkConfiguration"]["Fn::If"][0] == "IsFargate",
            service,
        )
    log_options = {
        name: props["Properties"]["ContainerDefinitions"][0]["LogConfiguration"]["Options"]
        for name, props in [
            *((f"{svc}TaskDefinition", platform[f"{svc}TaskDefinition"]) for svc in ("Monolith", "Iridium", "Magnesite")),
            ("HQ TaskDefinition", hq["TaskDefinition"]),
        ]
    }
    check(
        "every task logs through awslogs without blocking, with an 8 MB buffer (not the account's default)",
        all(o.get("mode") == "non-blocking" and o.get("max-buffer-size") == "8m" for o in log_options.values()),
        log_options,
    )
    hq_props = hq["TaskDefinition"]["Properties"]
    check(
        "HQ: Fargate, awsvpc, 256/512, CpuArchitecture",
        (hq_props["NetworkMode"], hq_props["RequiresCompatibilities"], hq_props["Cpu"], hq_props["Memory"])
        == ("awsvpc", ["FARGATE"], "256", "512")
        and hq_props["RuntimePlatform"]["CpuArchitecture"] == {"Ref": "CpuArchitecture"},
        hq_props,
    )
    monolith_lbs = platform["MonolithService"]["Properties"]["LoadBalancers"]
    check(
        "monolith service registers with the public and the internal target group",
        [lb["TargetGroupArn"] for lb in monolith_lbs]
        == [{"Ref": "MonolithTargetGroup"}, {"Ref": "MonolithInternalTargetGroup"}],
        monolith_lbs,
    )
    reserved_cpu = {
        name: [c.get("Cpu") for c in platform[name]["Properties"]["ContainerDefinitions"]]
        for name in ("MonolithTaskDefinition", "IridiumTaskDefinition", "MagnesiteTaskDefinition")
    }
    check(
        "each service's container reserves 256 CPU units on either launch type (CPU utilization, "
        "which auto scaling tracks, is use over reservation)",
        all(cpus == [256] for cpus in reserved_cpu.values()),
        reserved_cpu,
    )
    signatures = {name: hq[name]["Properties"].get("SignatureVersion") for name in ("OrdersTopic", "IridiumTopic", "MagnesiteTopic")}
    check(
        "HQ's topics sign with SHA256 (SignatureVersion 2), not the default SHA1",
        set(signatures.values()) == {"2"},
        signatures,
    )
    task_roles = {
        name: platform[name]["Properties"].get("TaskRoleArn")
        for name in ("MonolithTaskDefinition", "IridiumTaskDefinition", "MagnesiteTaskDefinition")
    }
    check(
        "only the monolith's tasks have a task role: the microservices call no AWS API",
        task_roles
        == {
            "MonolithTaskDefinition": {"Fn::GetAtt": ["MonolithTaskRole", "Arn"]},
            "IridiumTaskDefinition": None,
            "MagnesiteTaskDefinition": None,
        },
        task_roles,
    )
    (monolith_reads,) = [
        statement
        for policy in platform["MonolithTaskRole"]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if "ssm" in json.dumps(statement.get("Action"))
    ]
    monolith_env = {
        e["Name"]: e["Value"]
        for e in platform["MonolithTaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Environment"]
        if "Name" in e  # not the Fn::If entries
    }
    check(
        "the monolith is told the API key's parameter by name, the one its role may read",
        monolith_env.get("SSM_API_KEY_PARAM") == "/interstella/apiKey"
        and platform["ApiKeyParameter"]["Properties"]["Name"] == monolith_env.get("SSM_API_KEY_PARAM"),
        monolith_env.get("SSM_API_KEY_PARAM"),
    )
    check(
        "the monolith's task role reads exactly the API key and the API endpoint parameters",
        monolith_reads["Action"] == "ssm:GetParameters"
        and [json.dumps(r) for r in monolith_reads["Resource"]]
        == [
            json.dumps({"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/interstella/apiKey"}),
            json.dumps({"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${ApiEndpointParameter}"}),
        ]
        and "*" not in json.dumps(monolith_reads["Resource"]),
        monolith_reads,
    )
    instance_role = platform["InstanceRole"]["Properties"]
    instance_actions = [
        action
        for policy in instance_role.get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    ]
    check(
        "the EC2 instances' role reads no SSM parameter (the ECS agent's policy and Session "
        "Manager's shell only, not AmazonSSMManagedInstanceCore)",
        "SSMManagedInstanceCore" not in json.dumps(instance_role.get("ManagedPolicyArns"))
        and not any(a.startswith("ssm:GetParameter") or a in ("ssm:*", "*") for a in instance_actions)
        and "ssmmessages:OpenDataChannel" in instance_actions,
        (instance_role.get("ManagedPolicyArns"), instance_actions),
    )
    exec_policy = json.dumps(platform["TaskExecutionRole"]["Properties"]["Policies"])
    check(
        "execution role may read the glue secret (ssm:GetParameters, kms:Decrypt via SSM)",
        "ssm:GetParameters" in exec_policy
        and "kms:Decrypt" in exec_policy
        and "GlueHookSecretParameter" in exec_policy,
        exec_policy,
    )
    check(
        "HQ's admin token is generated by Secrets Manager",
        "GenerateSecretString" in hq["AdminTokenSecret"]["Properties"],
    )
    task_policy = json.dumps(hq["TaskRole"]["Properties"]["Policies"])
    topics_ref = '[{"Ref": "OrdersTopic"}, {"Ref": "IridiumTopic"}, {"Ref": "MagnesiteTopic"}]'
    check(
        "HQ's task role publishes to, subscribes to (over HTTP(S) only) and lists exactly its three topics",
        f'"Action": "sns:Publish", "Resource": {topics_ref}' in task_policy
        and f'"Action": "sns:ListSubscriptionsByTopic", "Resource": {topics_ref}' in task_policy
        and f'"Action": "sns:Subscribe", "Resource": {topics_ref}, '
        '"Condition": {"StringEquals": {"sns:Protocol": ["http", "https"]}}' in task_policy,
        task_policy,
    )
    check(
        "HQ's task role mounts and writes the ledger file system through its access point only",
        '"Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"], '
        '"Resource": {"Fn::GetAtt": ["LedgerFileSystem", "Arn"]}' in task_policy
        and '"elasticfilesystem:AccessPointArn": {"Fn::GetAtt": ["LedgerAccessPoint", "Arn"]}' in task_policy
        and "dynamodb" not in json.dumps(hq),
        task_policy,
    )
    (volume,) = hq_props["Volumes"]
    check(
        "HQ's data volume: EFS through the access point, TLS in transit, IAM authorization",
        volume["Name"] == "data"
        and volume["EFSVolumeConfiguration"]
        == {
            "FilesystemId": {"Ref": "LedgerFileSystem"},
            "TransitEncryption": "ENABLED",
            "AuthorizationConfig": {"AccessPointId": {"Ref": "LedgerAccessPoint"}, "IAM": "ENABLED"},
        },
        volume,
    )
    fs = hq["LedgerFileSystem"]["Properties"]
    check(
        "ledger file system: encrypted, backed up, TLS-only policy",
        fs["Encrypted"] is True
        and fs["BackupPolicy"] == {"Status": "ENABLED"}
        and fs["FileSystemPolicy"]["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}},
        fs,
    )
    container = hq["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    check(
        "HQ: every Linux capability dropped",
        container.get("LinuxParameters") == {"Capabilities": {"Drop": ["ALL"]}},
        container.get("LinuxParameters"),
    )
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    drain_ms = int(env.get("DRAIN_TIMEOUT_MS", default_drain_timeout_ms()))
    stop_s = int(env["HQ_DRAIN_SECS"]) + drain_ms / 1000
    check(
        f"HQ's stop (its feed's drain, then its requests': {stop_s:g} s) fits its StopTimeout",
        stop_s < container["StopTimeout"],
        (env.get("HQ_DRAIN_SECS"), container["StopTimeout"]),
    )
    service = hq["Service"]
    check(
        "HQ's service: one writer (MaximumPercent 100), Fargate LATEST (>= 1.4, mounts EFS), after the mount targets",
        service["Properties"]["DeploymentConfiguration"]["MaximumPercent"] == 100
        and service["Properties"]["PlatformVersion"] == "LATEST"
        and {"LedgerMountTarget1", "LedgerMountTarget2"} <= set(service["DependsOn"]),
        service,
    )


# -------------------------------------------------------------- part 2
class Platform:
    """The containers as local processes, the load balancers as one HAProxy."""

    def __init__(self, moto: Moto, bin_dir: Path, workdir: Path, state: dict):
        self.moto, self.bin_dir, self.workdir, self.state = moto, bin_dir, workdir, state
        self.cfn, self.ecs, self.elb = moto.client("cloudformation"), moto.client("ecs"), moto.client("elbv2")
        self.procs: dict[str, subprocess.Popen] = {}
        self.env: dict[str, dict[str, str]] = {}  # container -> the environment it was started with
        self.ports: dict[str, int] = {}  # container -> its local port (the "host port")
        self.lb_ports: dict[str, int] = {}  # load balancer DNS name -> local frontend port
        self.haproxy: subprocess.Popen | None = None
        self.api_key = ""  # the platform's, from HQ's key portal (part2)

    def local(self, value: str) -> str:
        """A load balancer's DNS name, as the tasks see it, mapped to its local frontend."""
        for dns, port in self.lb_ports.items():
            if value == dns:
                return f"http://127.0.0.1:{port}"
            value = value.replace(f"http://{dns}", f"http://127.0.0.1:{port}")
        return value

    def lb_url(self, dns: str) -> str:
        return f"http://127.0.0.1:{self.lb_ports[dns]}"

    def start(self, container: str, family: str, extra: dict[str, str]) -> None:
        """Starts a container from its task definition (latest revision)."""
        self.stop(container)
        td = task_definition(self.ecs, family)
        env = {k: self.local(v) for k, v in container_env(td).items()}
        ssm = self.moto.client("ssm")
        for name, arn in container_secrets(td).items():
            if ":parameter/" in arn:  # what the ECS agent does with the execution role
                param = "/" + arn.split(":parameter/", 1)[1]
                env[name] = ssm.get_parameter(Name=param, WithDecryption=True)["Parameter"]["Value"]
            else:  # moto creates no Secrets Manager secret from a template
                env[name] = "rehearsal-" + secrets.token_hex(16)
        port = td["containerDefinitions"][0]["portMappings"][0]["containerPort"]
        # The rehearsal moves every service to a free port; on ECS the
        # service must listen on the port the task definition maps.
        if "HQ_LISTEN" in env:  # HQ takes an address, not PORT
            listens = int(env["HQ_LISTEN"].rsplit(":", 1)[1])
        else:
            listens = int(env.get("PORT", {"monolith": 5000}.get(container, 80)))
        check(f"{container} listens on its task definition's container port {port}", listens == port, listens)
        self.ports.setdefault(container, free_port())
        env.update(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PORT": str(self.ports[container]),
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_ENDPOINT_URL": self.moto.url,
                # moto signs the deliveries and serves its certificate: the
                # services fetch it from moto, as from their SNS stand-in.
                "AWS_ENDPOINT_URL_SNS": self.moto.url,
            }
        )
        # The task definition's own filter (LogFilter), unless asked otherwise.
        if "RUST_LOG" in os.environ:
            env["RUST_LOG"] = os.environ["RUST_LOG"]
        env.update(extra)
        self.env[container] = env
        log = open(self.workdir / f"{container}.log", "a")
        print(
            f"   {container}: task definition {td['family']}:{td['revision']}, container port {port} -> 127.0.0.1:{self.ports[container]}"
        )
        self.procs[container] = subprocess.Popen(
            [str(self.bin_dir / container)], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, container: str) -> None:
        proc = self.procs.pop(container, None)
        if proc:
            proc.terminate()
            proc.wait(timeout=25)

    def write_haproxy(self) -> Path:
        """One frontend per load balancer, from its listener rules as created."""
        ids = physical_ids(self.cfn, PLATFORM_STACK) | physical_ids(self.cfn, HQ_STACK)
        # target group ARN -> containers registered with it (the services'
        # LoadBalancers, which moto does not keep: read from the templates)
        members: dict[str, list[str]] = {}
        for tpl in ("interstella.yaml", "hq.yaml"):
            for res in template(tpl)["Resources"].values():
                if res["Type"] == "AWS::ECS::Service":
                    for lb in res["Properties"]["LoadBalancers"]:
                        tg_arn = ids[lb["TargetGroupArn"]["Ref"]]
                        members.setdefault(tg_arn, []).append(lb["ContainerName"])
        lines = [
            "global",
            "  maxconn 256",
            "defaults",
            "  mode http",
            "  timeout connect 2s",
            "  timeout client 30s",
            "  timeout server 30s",
            "  timeout check 5s",
        ]
        backends: set[str] = set()
        for lb in self.elb.describe_load_balancers()["LoadBalancers"]:
            name = re.sub(r"\W", "_", lb["LoadBalancerName"])
            lines += [f"frontend {name}", f"  bind 127.0.0.1:{self.lb_ports[lb['DNSName']]}"]
            # The first matching rule in priority order wins (ALB): pick it,
            # then act on it.
            selects, answers, forwards = [], [], []
            for i, rule in enumerate(listener_rules(self.elb, lb["LoadBalancerArn"])):
                cond = f"{{ var(txn.rule) -m str {i} }}"
                match = ""
                if rule["paths"]:  # no paths: the default action
                    match = " { path_reg " + "|".join(alb_path_regex(p) for p in rule["paths"]) + " }"
                selects.append(
                    f"  http-request set-var(txn.rule) str({i}) if !{{ var(txn.rule) -m found }}{match}"
                )
                action = rule["action"]
                if action["Type"] == "fixed-response":
                    fixed = action["FixedResponseConfig"]
                    body = fixed.get("MessageBody", "").replace('"', '\\"')
                    answers.append(
                        f'  http-request return status {fixed["StatusCode"]} content-type "{fixed.get("ContentType", "text/plain")}" string "{body}" if {cond}'
                    )
                elif action["Type"] == "forward":
                    tg = action["TargetGroupArn"]
                    forwards.append(f"  use_backend tg_{tg.rsplit('/', 2)[1]} if {cond}")
                    backends.add(tg)
                else:
                    raise SystemExit(f"rehearsal: no local stand-in for action {action['Type']}")
            lines += selects + answers + forwards
        for tg in self.elb.describe_target_groups()["TargetGroups"]:
            if tg["TargetGroupArn"] not in backends:
                continue
            lines += [
                f"backend tg_{tg['TargetGroupName']}",
                f"  option httpchk GET {tg.get('HealthCheckPath', '/')}",
                f"  http-check expect status {tg.get('Matcher', {}).get('HttpCode', '200')}",
            ]
            for c in members.get(tg["TargetGroupArn"], []):
                lines.append(f"  server {c} 127.0.0.1:{self.ports[c]} check inter 1s fall 5 rise 1")
        path = self.workdir / "haproxy.cfg"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_haproxy(self) -> None:
        cfg = self.write_haproxy()
        subprocess.run(["haproxy", "-c", "-q", "-f", str(cfg)], check=True)
        log = open(self.workdir / "haproxy.log", "a")
        self.haproxy = subprocess.Popen(
            ["haproxy", "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT
        )

    def stop_all(self) -> None:
        for c in list(self.procs):
            self.stop(c)
        if self.haproxy:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)


def alb_path_regex(pattern: str) -> str:
    """An ALB path pattern (case-sensitive, * and ?) as an anchored regex."""
    out = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return f"^{out}$"


class Capture(http_server.BaseHTTPRequestHandler):
    """An HTTP endpoint that keeps what SNS posts to it."""

    bodies: ClassVar[list[bytes]] = []

    def do_POST(self):  # the name http.server calls
        Capture.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def part2(moto: Moto, bin_dir: Path, workdir: Path, state: dict) -> None:
    pf, hq_out, topics = state["platform"], state["hq"], state["topics"]
    plat = Platform(moto, bin_dir, workdir, state)
    hq_dns = hq_out["PortalUrl"].split("/")[2]
    for dns in (pf["LoadBalancerDns"], pf["InternalLoadBalancerDns"], hq_dns):
        plat.lb_ports[dns] = free_port()
    public, internal, hq = (
        plat.lb_url(d) for d in (pf["LoadBalancerDns"], pf["InternalLoadBalancerDns"], hq_dns)
    )
    sns = moto.client("sns")
    try:
        step("the containers from their task definitions, the ALBs from their listener rules")
        # HQ runs its task definition (HQ_PUBLISH_TO=aws, the topic ARNs,
        # HQ_JOURNAL_MODE=delete); a local directory stands in for the EFS
        # access point mounted at HQ_DATA_DIR, and HQ's SDK calls go to moto.
        data_dir = workdir / "hq-data"
        data_dir.mkdir(exist_ok=True)

        def start_hq() -> None:
            plat.start(
                "hq",
                "interstella-hq-hq",
                {
                    "HQ_LISTEN": f"127.0.0.1:{free_port_for(plat, 'hq')}",
                    "HQ_DATA_DIR": str(data_dir),
                    "AWS_ENDPOINT_URL_SNS": moto.url,
                },
            )

        start_hq()
        # The platform's key, as docs/aws.md makes it: from HQ's key portal
        # (POST /keys, the admin credential), into SSM as a SecureString,
        # which the monolith reads at start (SSM_API_KEY_PARAM).
        hq_task = f"http://127.0.0.1:{plat.ports['hq']}"
        wait_until("HQ's task answering", lambda: http("GET", f"{hq_task}/")[0] == 200)
        status, body = http(
            "POST",
            f"{hq_task}/keys",
            json.dumps({"owner": "rehearsal"}).encode(),
            {"Authorization": f"Bearer {plat.env['hq']['HQ_ADMIN_TOKEN']}"},
        )
        check("HQ's key portal makes the platform's key (POST /keys)", status == 201, (status, body[:200]))
        plat.api_key = json.loads(body)["api_key"]
        ssm = moto.client("ssm")
        ssm.put_parameter(Name="/interstella/apiKey", Type="SecureString", Value=plat.api_key, Overwrite=True)
        endpoint = ssm.get_parameter(Name="/interstella/apiEndpoint")["Parameter"]["Value"]
        # The endpoint is HQ's load balancer by its DNS name, which resolves
        # to nothing here: given as its local frontend, in place of SSM's.
        def start_monolith() -> None:
            plat.start("monolith", "interstella-monolith", {"INTERSTELLA_API_ENDPOINT": plat.local(endpoint)})

        start_monolith()
        for svc in ("iridium", "magnesite"):
            plat.start(svc, f"interstella-{svc}", {})
        plat.start_haproxy()
        health_urls = (f"{hq}/", f"{public}/", f"{public}/iridium/", f"{public}/magnesite/")
        for url in health_urls:
            wait_until(f"GET {url} healthy through the proxy", lambda u=url: http("GET", u)[0] == 200)
        check(
            "HQ and the three services healthy behind their load balancers",
            all(http("GET", url)[0] == 200 for url in health_urls),
        )

        step("subscriptions from the template, on moto's topics")
        for name, path, topic in [
            ("OrdersSubscription", "/order/", "orders"),
            ("IridiumSubscription", "/iridium/", "iridium"),
            ("MagnesiteSubscription", "/magnesite/", "magnesite"),
        ]:
            url = plat.local(f"http://{pf['LoadBalancerDns']}{path}")
            sns.subscribe(TopicArn=topics[topic], Protocol="http", Endpoint=url)
            print(f"   {name}: {topics[topic]} -> {url}")

        def publish(topic: str, order: dict) -> None:
            """Publishes through HQ's admin API: HQ calls SNS Publish with the SDK."""
            token = plat.env["hq"]["HQ_ADMIN_TOKEN"]
            status, body = http(
                "POST",
                f"{hq}/topics/{topic}/publish",
                json.dumps(order).encode(),
                {"Authorization": f"Bearer {token}"},
            )
            check(f"HQ published {json.dumps(order)} on {topic} through SNS", status == 201, (status, body[:300]))

        def reconciliation() -> dict:
            status, body = http("GET", f"{hq}/reconciliation")
            if status != 200:
                raise RuntimeError(f"GET /reconciliation: {status} {body[:200]}")
            return json.loads(body)

        def totals() -> dict:
            status, body = http("GET", f"{hq}/receiving/", headers={"x-api-key": plat.api_key})
            if status != 200:
                raise RuntimeError(f"GET /receiving/: {status} {body[:200]}")
            return json.loads(body)

        status, body = http("GET", f"{hq}/topics")
        listed = {t["topicArn"]: t["subscriptions"] for t in json.loads(body)["topics"]} if status == 200 else {}
        check(
            "HQ lists SNS' subscriptions of its topics (ListSubscriptionsByTopic)",
            all(len(listed.get(arn, [])) == 1 for arn in topics.values()),
            (status, body[:500]),
        )

        step("an order HQ publishes on each topic: SNS -> the services -> HQ's API -> the ledger")
        base = totals()
        publish("orders", {"bundle": 1})
        publish("iridium", {"iridium": 2})
        publish("magnesite", {"magnesite": 3})
        want = (base["iridium"] + 3, base["magnesite"] + 4)
        try:
            got = wait_until(
                "ledger",
                lambda: (t := totals()) and (t["iridium"], t["magnesite"]) == want and t,
            )
            check("bundle 1 + iridium 2 + magnesite 3 fulfilled (iridium +3, magnesite +4)", True)
        except TimeoutError as e:
            check(
                "bundle 1 + iridium 2 + magnesite 3 fulfilled (iridium +3, magnesite +4)",
                False,
                f"{e}; the services said: {last_warnings(workdir)}",
            )
            got = totals()
        rec = reconciliation()
        check(
            "HQ's reconciliation: 3 published, 3 fulfilled, 0 lost, 0 duplicated",
            (rec["published"], rec["fulfilled"], rec["lost"], rec["duplicated"]) == (3, 3, 0, 0),
            rec,
        )

        step("the glue hook: refused on the internet, secret-bound inside")
        status, body = post_json(f"{public}/fulfill/", {"iridium": 1})
        check(
            "POST /fulfill/ through the public listener: 403 from the listener",
            status == 403 and "internal" in body,
            (status, body),
        )
        status, body = post_json(f"{public}/fulfill", {"iridium": 1})
        check("POST /fulfill (no slash) through the public listener: 403", status == 403, (status, body))
        status, body = post_json(f"{internal}/fulfill/", {"iridium": 1})
        check(
            "POST /fulfill/ on the internal listener without GLUE_HOOK_SECRET: 401",
            status == 401,
            (status, body[:200]),
        )
        status, _ = post_json(f"{internal}/order/", {"Message": {"bundle": 1}})
        check("internal listener serves /fulfill* only: /order/ 404", status == 404, status)
        check("nothing fulfilled by those", totals()["iridium"] == got["iridium"], totals())
        got = totals()

        step("a genuine message from a topic outside the allow-list")
        rogue = sns.create_topic(Name="someone-elses-iridium")["TopicArn"]
        capture_port = free_port()
        server = http_server.HTTPServer(("127.0.0.1", capture_port), Capture)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        sns.subscribe(TopicArn=rogue, Protocol="http", Endpoint=f"http://127.0.0.1:{capture_port}/")
        sns.publish(TopicArn=rogue, Message=json.dumps({"iridium": 5}))
        envelope = wait_until(
            "moto's delivery to the capture endpoint", lambda: Capture.bodies and Capture.bodies[-1]
        )
        server.shutdown()
        status, body = http(
            "POST",
            f"{public}/iridium/",
            envelope,
            {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"},
        )
        check("signed by SNS but from another topic: 403", status == 403, (status, body[:200]))
        check("and not fulfilled", totals()["iridium"] == got["iridium"], totals())

        step("Lab 4: Strangled=iridium by a stack update")
        cfn = moto.client("cloudformation")
        previous = [p for p in state["params"] if p != "Strangled"]
        stack_op(moto, "update_stack", PLATFORM_STACK, "interstella.yaml", {"Strangled": "iridium"}, previous)
        state["params"]["Strangled"] = "iridium"
        td = task_definition(plat.ecs, "interstella-monolith")
        check(
            "monolith's new task definition has STRANGLED=iridium",
            container_env(td).get("STRANGLED") == "iridium",
            container_env(td),
        )
        start_monolith()
        wait_until("monolith healthy again", lambda: http("GET", f"{public}/")[0] == 200)
        before = totals()
        publish("orders", {"bundle": 2})
        try:
            after = wait_until(
                "ledger", lambda: (t := totals())["magnesite"] == before["magnesite"] + 2 and t
            )
            check(
                "bundle 2 after strangling: magnesite +2, iridium +0",
                after["iridium"] == before["iridium"],
                after,
            )
        except TimeoutError as e:
            check(
                "bundle 2 after strangling: magnesite +2, iridium +0",
                False,
                f"{e}; the services said: {last_warnings(workdir)}",
            )

        step("HQ's task replaced: the ledger on its volume is kept")
        before = totals()
        plat.stop("hq")
        start_hq()
        wait_until("HQ healthy again", lambda: http("GET", f"{hq}/")[0] == 200)
        after = totals()
        check(
            "the new HQ task finds every fulfillment on the volume",
            (after["fulfillments"], after["iridium"], after["magnesite"])
            == (before["fulfillments"], before["iridium"], before["magnesite"]),
            (before, after),
        )
        check(
            "no write-ahead log beside the ledger (rollback journal, as on EFS)",
            not (data_dir / "hq-ledger.sqlite3-wal").exists(),
            sorted(p.name for p in data_dir.iterdir()),
        )
    finally:
        plat.stop_all()


def last_warnings(workdir: Path) -> list[str]:
    """HQ's and the services' last warning each, to say why an order was not fulfilled."""
    said = []
    for svc in ("hq", *SERVICES):
        lines = [
            line
            for line in (workdir / f"{svc}.log").read_text().splitlines()
            if any(level in line for level in (" WARN ", " ERROR ", '"WARN"', '"ERROR"'))
        ]
        if lines:
            said.append(f"{svc}: {lines[-1][-300:]}")
    return said


def free_port_for(plat: Platform, container: str) -> int:
    """HQ listens on HQ_LISTEN rather than PORT: reserve its port first."""
    plat.ports.setdefault(container, free_port())
    return plat.ports[container]


def fargate(moto: Moto, state: dict) -> None:
    # A new stack, as docs/aws.md says: switching an existing one would
    # replace its custom-named target groups and services, which real
    # CloudFormation refuses (moto does not).
    step("a second platform stack with LaunchType=FARGATE, CpuArchitecture=ARM64")
    cfn, ecs = moto.client("cloudformation"), moto.client("ecs")
    stack_op(
        moto,
        "create_stack",
        f"{PLATFORM_STACK}-graviton",
        "interstella.yaml",
        {**state["params"], "EnvironmentName": "graviton", "LaunchType": "FARGATE", "CpuArchitecture": "ARM64", "AlarmEmail": ""},
    )
    check_alarms(moto, "graviton", outputs(cfn.describe_stacks(StackName=f"{PLATFORM_STACK}-graviton")["Stacks"][0])["LoadBalancerDns"], "")
    for svc in SERVICES:
        td = task_definition(ecs, f"graviton-{svc}")
        ports = td["containerDefinitions"][0].get("portMappings", [])
        check(f"{svc}: no host port under awsvpc", all("hostPort" not in p for p in ports), ports)
    # moto keeps a target group's TargetType through an update (AWS replaces
    # the group): checked in the template.
    resources = template("interstella.yaml")["Resources"]
    tgs = [k for k, v in resources.items() if v["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup"]
    check(
        "target groups register task IPs on Fargate, instances on EC2",
        len(tgs) == 4
        and all(
            resources[k]["Properties"]["TargetType"] == {"Fn::If": ["IsFargate", "ip", "instance"]}
            for k in tgs
        ),
        tgs,
    )


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="interstella-rehearse-"))
    print(f"logs and generated files: {workdir}")
    moto = Moto(workdir)
    try:
        state = part1(moto, secrets.token_hex(32))
        bin_dir = os.environ.get("BIN_DIR")
        if bin_dir and all((Path(bin_dir) / b).is_file() for b in ("hq", *SERVICES)):
            if not shutil.which("haproxy"):
                check("haproxy installed (part 2 needs it)", False, "apt-get install haproxy")
            else:
                part2(moto, Path(bin_dir), workdir, state)
        elif bin_dir:
            # Named but empty: a wrong path must not pass as a skipped part.
            check(f"BIN_DIR={bin_dir!r} holds hq, {', '.join(SERVICES)} (part 2 runs them)", False)
        else:
            print("\n(part 2 skipped: no BIN_DIR, so no binaries to run the stacks with)")
        fargate(moto, state)
    finally:
        moto.stop()
    print(f"\n{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
