#!/usr/bin/env python3
"""Creates what template.yaml would create, in a moto server, and prints the variables the Lambda
functions need (`eval` them before `cargo lambda watch`).

    target/moto-venv/bin/python scripts/moto_setup.py --endpoint http://127.0.0.1:5000

Run it with the Python of a venv holding `moto[server]` (it brings boto3). Idempotent: what
exists is kept. The table schema is the one tests/template.rs checks in template.yaml; the work
queue is FIFO with explicit deduplication ids and redrives to a FIFO dead-letter queue, as there.
"""
import argparse
import secrets
import shlex

import boto3


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True, help="moto_server URL")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--table", default="discord-connector")
    p.add_argument("--prefix", default="discord-connector/", help="secrets prefix, ends with /")
    p.add_argument("--admin-token", default=None, help="admin bearer token (default: generated)")
    p.add_argument("--queue", default="discord-connector-work", help="work queue name (without .fifo)")
    args = p.parse_args()
    kw = dict(endpoint_url=args.endpoint, region_name=args.region,
              aws_access_key_id="test", aws_secret_access_key="test")

    ddb = boto3.client("dynamodb", **kw)
    if args.table not in ddb.list_tables()["TableNames"]:
        s = lambda name: {"AttributeName": name, "AttributeType": "S"}
        key = lambda h, r: [{"AttributeName": h, "KeyType": "HASH"},
                            {"AttributeName": r, "KeyType": "RANGE"}]
        ddb.create_table(
            TableName=args.table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[s("PK"), s("SK"), s("GSI1PK"), s("GSI1SK")],
            KeySchema=key("PK", "SK"),
            GlobalSecondaryIndexes=[{"IndexName": "GSI1", "KeySchema": key("GSI1PK", "GSI1SK"),
                                     "Projection": {"ProjectionType": "ALL"}}])
        ddb.update_time_to_live(TableName=args.table, TimeToLiveSpecification={
            "AttributeName": "ttl", "Enabled": True})

    sqs = boto3.client("sqs", **kw)
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    dlq_url = sqs.create_queue(QueueName=args.queue + "-dlq.fifo", Attributes=fifo)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    redrive = '{"deadLetterTargetArn": "%s", "maxReceiveCount": "5"}' % dlq_arn
    queue_url = sqs.create_queue(QueueName=args.queue + ".fifo", Attributes={
        **fifo, "VisibilityTimeout": "1800", "RedrivePolicy": redrive})["QueueUrl"]

    sm = boto3.client("secretsmanager", **kw)

    def secret(name, value):
        try:
            return sm.describe_secret(SecretId=name)["ARN"], None
        except sm.exceptions.ResourceNotFoundException:
            return sm.create_secret(Name=name, SecretString=value)["ARN"], value

    admin_arn, admin = secret(args.prefix + "admin-token",
                              args.admin_token or secrets.token_urlsafe(32))
    key_arn, _ = secret(args.prefix + "token-key", secrets.token_urlsafe(48))
    if admin is None:
        admin = sm.get_secret_value(SecretId=admin_arn)["SecretString"]

    env = {
        "AWS_ENDPOINT_URL": args.endpoint, "AWS_REGION": args.region,
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "CONNECTOR_TABLE": args.table, "CONNECTOR_QUEUE_URL": queue_url,
        "CONNECTOR_SECRETS_PREFIX": args.prefix,
        "CONNECTOR_ADMIN_TOKEN_SECRET": admin_arn, "CONNECTOR_TOKEN_KEY_SECRET": key_arn,
        # Local clients talk to the Discord emulator.
        "CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS": "true",
        "ADMIN_TOKEN": admin,
    }
    for k, v in env.items():
        print(f"export {k}={shlex.quote(v)}")


if __name__ == "__main__":
    main()
