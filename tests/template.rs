//! template.yaml agrees with the code: schedules with fixtures/schedule.json, binaries with
//! functions/, the table with what the DynamoDB adapter expects, and no function may touch `*`.
//! cfn-lint and `sam validate` check the template's shape; they do not catch these.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use connector::domain::TaskName;
use connector::schedule::{default_schedule, parse_rate};
use serde_json::Value as Json;
use serde_yaml_ng::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml parses (with CloudFormation tags)")
}

/// The value under a CloudFormation tag (`!Ref X` → `X`), or the value itself.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn tag(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(t.tag.to_string()),
        _ => None,
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &untag(v)[*k])
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    untag(get(v, path))
        .as_str()
        .unwrap_or_else(|| panic!("{} is not a string: {v:?}", path.join(".")))
}

fn resources(t: &Value) -> Vec<(String, &Value)> {
    get(t, &["Resources"])
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().expect("logical id").to_owned(), v))
        .collect()
}

fn functions(t: &Value) -> Vec<(String, &Value)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .collect()
}

/// Binary name (= functions/ crate) of a function.
fn binary(f: &Value) -> &str {
    str_at(f, &["Metadata", "BuildProperties", "Binary"])
}

fn events(f: &Value) -> Vec<&Value> {
    get(f, &["Properties", "Events"])
        .as_mapping()
        .map(|m| m.values().collect())
        .unwrap_or_default()
}

fn scheduled_functions(t: &Value) -> BTreeMap<String, Vec<&Value>> {
    functions(t)
        .into_iter()
        .filter_map(|(_, f)| {
            let schedules: Vec<&Value> = events(f)
                .into_iter()
                .filter(|e| matches!(e["Type"].as_str(), Some("Schedule") | Some("ScheduleV2")))
                .collect();
            (!schedules.is_empty()).then(|| (binary(f).to_owned(), schedules))
        })
        .collect()
}

fn schedule_expression(event: &Value) -> &str {
    let props = &event["Properties"];
    untag(&props["Schedule"])
        .as_str()
        .or_else(|| untag(&props["ScheduleExpression"]).as_str())
        .expect("schedule expression")
}

#[test]
fn every_schedule_is_the_one_of_fixtures_schedule_json() {
    let t = template();
    let fixture: BTreeMap<&str, String> = default_schedule()
        .expect("fixtures/schedule.json")
        .into_iter()
        .map(|e| (e.task.as_str(), e.schedule))
        .collect();
    let scheduled = scheduled_functions(&t);

    for (bin, schedules) in &scheduled {
        let task = TaskName::parse(bin)
            .unwrap_or_else(|| panic!("scheduled function {bin} is not a task"));
        let expected = fixture.get(task.as_str()).unwrap_or_else(|| {
            panic!("{task} is scheduled in template.yaml but not in fixtures/schedule.json")
        });
        assert_eq!(schedules.len(), 1, "{bin}: one schedule");
        let expr = schedule_expression(schedules[0]);
        assert_eq!(
            expr, expected,
            "{bin}: template.yaml vs fixtures/schedule.json"
        );
        parse_rate(expr).unwrap_or_else(|e| panic!("{bin}: {e}"));
    }
    let in_template: BTreeSet<&str> = scheduled.keys().map(String::as_str).collect();
    let in_fixture: BTreeSet<&str> = fixture.keys().copied().collect();
    assert_eq!(
        in_template, in_fixture,
        "every task of fixtures/schedule.json has a scheduled function"
    );
}

#[test]
fn every_schedule_sends_its_task_retries_and_keeps_failures() {
    let t = template();
    for (bin, schedules) in scheduled_functions(&t) {
        let props = &schedules[0]["Properties"];
        let input: Json = serde_json::from_str(untag(&props["Input"]).as_str().expect("Input"))
            .unwrap_or_else(|e| panic!("{bin}: Input is not JSON: {e}"));
        assert_eq!(input["task"], bin.as_str(), "{bin}: Input names its task");
        let fixture = root().join(format!("fixtures/events/{bin}.input.json"));
        let committed: Json =
            serde_json::from_str(&std::fs::read_to_string(&fixture).expect("input fixture"))
                .expect("fixture is JSON");
        assert_eq!(input, committed, "{bin}: {}", fixture.display());
        assert!(
            props["RetryPolicy"]["MaximumRetryAttempts"]
                .as_u64()
                .is_some(),
            "{bin}: RetryPolicy"
        );
        assert!(
            !props["DeadLetterConfig"].is_null(),
            "{bin}: DeadLetterConfig"
        );
        let (_, f) = functions(&t)
            .into_iter()
            .find(|(_, f)| binary(f) == bin)
            .expect("function");
        assert!(
            !get(
                f,
                &[
                    "Properties",
                    "EventInvokeConfig",
                    "DestinationConfig",
                    "OnFailure"
                ]
            )
            .is_null(),
            "{bin}: EventInvokeConfig on-failure destination"
        );
        for shape in ["eventbridge-rule", "eventbridge-scheduler"] {
            let path = root().join(format!("fixtures/events/{bin}.{shape}.json"));
            assert!(path.exists(), "{} is committed", path.display());
        }
    }
}

#[test]
fn every_rate_in_the_template_follows_eventbridge_grammar() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let mut seen = 0;
    for (i, _) in text.match_indices("rate(") {
        let expr = &text[i..=i + text[i..].find(')').expect("closing parenthesis")];
        parse_rate(expr).unwrap_or_else(|e| panic!("template.yaml: {e}"));
        seen += 1;
    }
    assert!(seen >= 3, "found {seen} rate expressions");
}

#[test]
fn functions_run_on_provided_al2023_from_the_functions_crates() {
    let t = template();
    let globals = get(&t, &["Globals", "Function"]);
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut built = BTreeSet::new();
    for (id, f) in functions(&t) {
        let props = &f["Properties"];
        let runtime = untag(&props["Runtime"])
            .as_str()
            .or_else(|| untag(&globals["Runtime"]).as_str());
        assert_eq!(runtime, Some("provided.al2023"), "{id}");
        let handler = untag(&props["Handler"])
            .as_str()
            .or_else(|| untag(&globals["Handler"]).as_str());
        assert_eq!(handler, Some("bootstrap"), "{id}");
        assert_eq!(
            str_at(f, &["Metadata", "BuildMethod"]),
            "rust-cargolambda",
            "{id}"
        );
        assert_eq!(
            str_at(f, &["Properties", "CodeUri"]),
            ".",
            "{id}: workspace root"
        );
        let bin = binary(f);
        let manifest = root().join("functions").join(bin).join("Cargo.toml");
        let manifest = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|_| panic!("{id}: Binary {bin} has no crate functions/{bin}"));
        assert!(
            manifest.contains(&format!("name = \"{bin}\"")),
            "{id}: functions/{bin} builds binary {bin}"
        );
        built.insert(bin.to_owned());
    }
    assert_eq!(
        built, crates,
        "every functions/ crate is deployed, and only those"
    );
}

#[test]
fn architecture_defaults_to_arm64_with_x86_64_as_the_alternative() {
    let t = template();
    let arch = get(&t, &["Parameters", "Architecture"]);
    assert_eq!(arch["Default"], "arm64");
    let allowed: BTreeSet<&str> = arch["AllowedValues"]
        .as_sequence()
        .expect("AllowedValues")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, BTreeSet::from(["arm64", "x86_64"]));
    let archs = get(&t, &["Globals", "Function", "Architectures"]);
    assert_eq!(tag(&archs[0]).as_deref(), Some("!Ref"));
    assert_eq!(untag(&archs[0]), "Architecture");
}

#[test]
fn http_routes_reach_the_right_functions() {
    let t = template();
    let mut routes = BTreeSet::new();
    for (_, f) in functions(&t) {
        for e in events(f) {
            if e["Type"] == "HttpApi" {
                let p = &e["Properties"];
                routes.insert((
                    p["Method"].as_str().expect("Method").to_owned(),
                    p["Path"].as_str().expect("Path").to_owned(),
                    binary(f).to_owned(),
                ));
            }
        }
    }
    let expected: BTreeSet<(String, String, String)> = [
        ("GET", "/discord/sso/callback", "sso-callback"),
        ("POST", "/discord/events", "sso-callback"),
        ("ANY", "/api/v1/{proxy+}", "admin-api"),
        ("GET", "/healthz", "admin-api"),
        ("GET", "/admin", "admin-api"),
        ("ANY", "/admin/{proxy+}", "admin-api"),
    ]
    .into_iter()
    .map(|(m, p, b)| (m.into(), p.into(), b.into()))
    .collect();
    assert_eq!(routes, expected);
}

#[test]
fn the_table_is_the_single_table_the_dynamodb_adapter_expects() {
    let t = template();
    let tables: Vec<_> = resources(&t)
        .into_iter()
        .filter(|(_, r)| r["Type"] == "AWS::DynamoDB::Table")
        .collect();
    assert_eq!(tables.len(), 1, "one table");
    let table = tables[0].1;
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(table["UpdateReplacePolicy"], "Retain");
    let p = &table["Properties"];
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    let keys = |schema: &Value| -> Vec<(String, String)> {
        schema
            .as_sequence()
            .expect("KeySchema")
            .iter()
            .map(|k| {
                (
                    k["AttributeName"].as_str().unwrap().to_owned(),
                    k["KeyType"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pair = |a: &str, b: &str| vec![(a.into(), "HASH".into()), (b.into(), "RANGE".into())];
    assert_eq!(keys(&p["KeySchema"]), pair("PK", "SK"));
    let gsis = p["GlobalSecondaryIndexes"].as_sequence().expect("GSIs");
    assert_eq!(gsis.len(), 1);
    assert_eq!(gsis[0]["IndexName"], "GSI1");
    assert_eq!(keys(&gsis[0]["KeySchema"]), pair("GSI1PK", "GSI1SK"));
    assert_eq!(gsis[0]["Projection"]["ProjectionType"], "ALL");
    let attrs: BTreeMap<&str, &str> = p["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap(),
                a["AttributeType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attrs,
        BTreeMap::from([("GSI1PK", "S"), ("GSI1SK", "S"), ("PK", "S"), ("SK", "S")])
    );
    assert_eq!(p["TimeToLiveSpecification"]["AttributeName"], "ttl");
    assert_eq!(p["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
}

#[test]
fn secrets_are_generated_never_written_in_the_template() {
    let t = template();
    let secrets: Vec<_> = resources(&t)
        .into_iter()
        .filter(|(_, r)| r["Type"] == "AWS::SecretsManager::Secret")
        .collect();
    assert_eq!(secrets.len(), 2, "admin token and token key");
    for (id, s) in secrets {
        assert!(s["Properties"]["SecretString"].is_null(), "{id}: no value");
        assert!(
            !s["Properties"]["GenerateSecretString"].is_null(),
            "{id}: generated"
        );
    }
}

/// Every IAM statement a function gets: inline `Statement`s and managed policies of the template.
fn statements_of<'a>(t: &'a Value, f: &'a Value) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for policy in get(f, &["Properties", "Policies"])
        .as_sequence()
        .expect("every function lists its policies")
    {
        // `!If [Cond, a, b]`: the managed policies of either branch.
        let branches: Vec<&Value> = match tag(policy).as_deref() {
            Some("!If") => untag(policy).as_sequence().expect("!If list")[1..]
                .iter()
                .filter(|b| untag(b) != "AWS::NoValue")
                .collect(),
            _ => vec![policy],
        };
        if branches.iter().all(|b| tag(b).as_deref() == Some("!Ref")) {
            for branch in branches {
                let id = untag(branch).as_str().expect("!Ref name");
                let managed = get(t, &["Resources", id]);
                assert_eq!(managed["Type"], "AWS::IAM::ManagedPolicy", "{id}");
                out.extend(
                    get(managed, &["Properties", "PolicyDocument", "Statement"])
                        .as_sequence()
                        .expect("statements"),
                );
            }
        } else if let Some(statements) = policy["Statement"].as_sequence() {
            out.extend(statements);
        } else {
            let template = policy
                .as_mapping()
                .and_then(|m| m.keys().next())
                .and_then(Value::as_str)
                .expect("a SAM policy template");
            assert!(
                matches!(
                    template,
                    "DynamoDBCrudPolicy"
                        | "DynamoDBReadPolicy"
                        | "AWSSecretsManagerGetSecretValuePolicy"
                ),
                "unexpected policy template {template}"
            );
            assert_eq!(
                tag(&policy[template]["TableName"]).as_deref(),
                Some("!Ref"),
                "{template} is scoped to the stack's table"
            );
        }
    }
    out
}

fn resource_list(statement: &Value) -> Vec<&Value> {
    match untag(&statement["Resource"]) {
        Value::Sequence(s) => s.iter().collect(),
        Value::Null => panic!("statement without Resource: {statement:?}"),
        _ => vec![&statement["Resource"]],
    }
}

fn actions(statement: &Value) -> Vec<&str> {
    match &statement["Action"] {
        Value::Sequence(s) => s.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().into_iter().collect(),
    }
}

#[test]
fn no_function_may_act_on_every_resource() {
    let t = template();
    for (id, f) in functions(&t) {
        // A Deny may cover everything: it only takes away.
        for statement in statements_of(&t, f)
            .into_iter()
            .filter(|s| s["Effect"] != "Deny")
        {
            for resource in resource_list(statement) {
                let text = untag(resource).as_str().unwrap_or_default();
                assert!(text != "*" && !text.ends_with(":*"), "{id}: {statement:?}");
            }
            for action in actions(statement) {
                assert!(!action.contains('*'), "{id}: wildcard action {action}");
            }
        }
    }
}

#[test]
fn only_the_admin_api_writes_client_secrets() {
    let t = template();
    for (id, f) in functions(&t) {
        let writes: Vec<&str> = statements_of(&t, f)
            .into_iter()
            .flat_map(actions)
            .filter(|a| {
                a.starts_with("secretsmanager:")
                    && *a != "secretsmanager:GetSecretValue"
                    && *a != "secretsmanager:DescribeSecret"
            })
            .collect();
        if binary(f) == "admin-api" {
            assert!(
                writes.contains(&"secretsmanager:PutSecretValue"),
                "{id}: {writes:?}"
            );
        } else {
            assert!(writes.is_empty(), "{id} may only read secrets: {writes:?}");
        }
    }
}

#[test]
fn reserved_concurrency_is_omitted_unless_asked_for() {
    let t = template();
    assert_eq!(
        get(&t, &["Parameters", "ReservedConcurrency", "Default"]),
        0
    );
    for (bin, _) in scheduled_functions(&t) {
        let (_, f) = functions(&t)
            .into_iter()
            .find(|(_, f)| binary(f) == bin)
            .unwrap();
        let rc = &f["Properties"]["ReservedConcurrentExecutions"];
        assert_eq!(tag(rc).as_deref(), Some("!If"), "{bin}");
        let branches = untag(rc).as_sequence().expect("!If list");
        assert_eq!(branches[0], "HasReservedConcurrency");
        assert_eq!(
            untag(&branches[2]),
            "AWS::NoValue",
            "{bin}: omitted when off"
        );
    }
}

/// The function whose binary is `bin`.
fn function<'a>(t: &'a Value, bin: &str) -> (String, &'a Value) {
    functions(t)
        .into_iter()
        .find(|(_, f)| binary(f) == bin)
        .unwrap_or_else(|| panic!("no function builds {bin}"))
}

/// Whether `v` is `!Ref <id>`, `!GetAtt <id>.<attr>` or a `!Sub` naming `${<id>...}`.
fn refers_to(v: &Value, id: &str) -> bool {
    match (tag(v).as_deref(), untag(v)) {
        (Some("!Ref"), Value::String(s)) => s == id,
        (Some("!GetAtt"), Value::String(s)) => s.split('.').next() == Some(id),
        (Some("!Sub"), Value::String(s)) => {
            s.contains(&format!("${{{id}}}")) || s.contains(&format!("${{{id}."))
        }
        (_, Value::Sequence(items)) => items.iter().any(|i| refers_to(i, id)),
        (_, Value::Mapping(m)) => m.values().any(|i| refers_to(i, id)),
        _ => false,
    }
}

#[test]
fn no_function_may_scan_the_table_and_table_access_is_listed_explicitly() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    assert!(!text.contains("dynamodb:Scan"), "no Scan anywhere");
    assert!(
        !text.contains("DynamoDBCrudPolicy") && !text.contains("DynamoDBReadPolicy"),
        "SAM's DynamoDB policy templates allow Scan: list the actions"
    );
    let t = template();
    for (id, f) in functions(&t) {
        let dynamodb: Vec<&Value> = statements_of(&t, f)
            .into_iter()
            .filter(|s| actions(s).iter().any(|a| a.starts_with("dynamodb:")))
            .collect();
        assert!(!dynamodb.is_empty(), "{id} uses the table");
        for statement in dynamodb {
            for action in actions(statement) {
                assert!(
                    matches!(
                        action,
                        "dynamodb:GetItem"
                            | "dynamodb:PutItem"
                            | "dynamodb:UpdateItem"
                            | "dynamodb:DeleteItem"
                            | "dynamodb:Query"
                            | "dynamodb:BatchGetItem"
                            | "dynamodb:BatchWriteItem"
                            | "dynamodb:ConditionCheckItem"
                    ),
                    "{id}: unexpected {action}"
                );
            }
            for resource in resource_list(statement) {
                assert!(refers_to(resource, "Table"), "{id}: {resource:?}");
            }
        }
    }
}

#[test]
fn only_the_admin_api_reads_the_admin_token() {
    let t = template();
    assert!(
        get(&t, &["Globals", "Function", "Environment", "Variables"])
            ["CONNECTOR_ADMIN_TOKEN_SECRET"]
            .is_null(),
        "not a global variable"
    );
    for (id, f) in functions(&t) {
        let admin = binary(f) == "admin-api";
        let reads_token = statements_of(&t, f).into_iter().any(|s| {
            actions(s).contains(&"secretsmanager:GetSecretValue")
                && resource_list(s)
                    .into_iter()
                    .any(|r| refers_to(r, "AdminTokenSecret"))
        });
        assert_eq!(reads_token, admin, "{id}: may read the admin token");
        let variable =
            &get(f, &["Properties", "Environment", "Variables"])["CONNECTOR_ADMIN_TOKEN_SECRET"];
        assert_eq!(
            !variable.is_null(),
            admin,
            "{id}: CONNECTOR_ADMIN_TOKEN_SECRET"
        );
    }
    // No other resource hands the token out (a managed policy attached elsewhere).
    for (id, r) in resources(&t) {
        if r["Type"] == "AWS::IAM::ManagedPolicy" {
            assert!(
                !refers_to(&r["Properties"], "AdminTokenSecret"),
                "{id} refers to the admin token"
            );
        }
    }
}

#[test]
fn each_function_reads_only_the_secrets_it_uses() {
    let t = template();
    for (id, f) in functions(&t) {
        let reads: Vec<&Value> = statements_of(&t, f)
            .into_iter()
            .filter(|s| actions(s).contains(&"secretsmanager:GetSecretValue"))
            .flat_map(resource_list)
            .collect();
        let token_key = reads.iter().any(|r| refers_to(r, "TokenKeySecret"));
        let clients = reads
            .iter()
            .any(|r| untag(r).as_str().is_some_and(|s| s.ends_with("clients/*")));
        let talks_to_discord = matches!(binary(f), "admin-api" | "sso-callback" | "worker");
        assert_eq!(token_key, talks_to_discord, "{id}: the token key");
        assert_eq!(clients, talks_to_discord, "{id}: the clients' secrets");
        if !talks_to_discord {
            assert!(reads.is_empty(), "a dispatcher reads no secret: {id}");
        }
    }
}

#[test]
fn every_function_knows_the_work_queue_and_may_enqueue() {
    let t = template();
    let url = &get(&t, &["Globals", "Function", "Environment", "Variables"])["CONNECTOR_QUEUE_URL"];
    assert!(refers_to(url, "WorkQueue"), "CONNECTOR_QUEUE_URL: {url:?}");
    for (id, f) in functions(&t) {
        let sends = statements_of(&t, f).into_iter().any(|s| {
            actions(s).contains(&"sqs:SendMessage")
                && resource_list(s)
                    .into_iter()
                    .any(|r| refers_to(r, "WorkQueue"))
        });
        assert!(sends, "{id}: sqs:SendMessage on the WorkQueue");
    }
}

#[test]
fn the_work_queue_is_fifo_with_a_fifo_dead_letter_queue_and_alarms() {
    let t = template();
    let queue = get(&t, &["Resources", "WorkQueue"]);
    assert_eq!(queue["Type"], "AWS::SQS::Queue");
    let p = &queue["Properties"];
    assert_eq!(p["FifoQueue"], true);
    assert_eq!(
        p["ContentBasedDeduplication"], false,
        "dedupe ids come from the job"
    );
    let redrive = &p["RedrivePolicy"];
    assert!(refers_to(
        &redrive["deadLetterTargetArn"],
        "WorkDeadLetterQueue"
    ));
    assert_eq!(redrive["maxReceiveCount"], 5);
    let dlq = get(&t, &["Resources", "WorkDeadLetterQueue"]);
    assert_eq!(dlq["Type"], "AWS::SQS::Queue");
    assert_eq!(
        dlq["Properties"]["FifoQueue"], true,
        "a FIFO queue's DLQ is FIFO"
    );

    let (_, worker) = function(&t, "worker");
    let timeout = worker["Properties"]["Timeout"]
        .as_u64()
        .expect("worker Timeout");
    let visibility = p["VisibilityTimeout"].as_u64().expect("VisibilityTimeout");
    assert!(
        visibility >= 6 * timeout,
        "visibility {visibility} s < 6 × worker timeout {timeout} s"
    );

    for watched in ["WorkDeadLetterQueue", "FailedInvocationsQueue"] {
        let alarmed = resources(&t).into_iter().any(|(_, r)| {
            r["Type"] == "AWS::CloudWatch::Alarm"
                && r["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
                && refers_to(&r["Properties"]["Dimensions"], watched)
        });
        assert!(alarmed, "an alarm on {watched}'s visible messages");
    }
}

#[test]
fn the_worker_reports_batch_item_failures_with_bounded_concurrency() {
    let t = template();
    let (worker_id, worker) = function(&t, "worker");
    // A SAM `SQS` event on the function, or an event source mapping naming it.
    let mut sources: Vec<&Value> = events(worker)
        .into_iter()
        .filter(|e| e["Type"] == "SQS")
        .map(|e| &e["Properties"])
        .collect();
    sources.extend(
        resources(&t)
            .into_iter()
            .filter(|(_, r)| {
                r["Type"] == "AWS::Lambda::EventSourceMapping"
                    && refers_to(&r["Properties"]["FunctionName"], &worker_id)
            })
            .map(|(_, r)| &r["Properties"]),
    );
    assert_eq!(sources.len(), 1, "one event source for the worker");
    let source = sources[0];
    let queue = if source["Queue"].is_null() {
        &source["EventSourceArn"]
    } else {
        &source["Queue"]
    };
    assert!(refers_to(queue, "WorkQueue"), "{queue:?}");
    let response_types: Vec<&str> = source["FunctionResponseTypes"]
        .as_sequence()
        .expect("FunctionResponseTypes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(response_types, ["ReportBatchItemFailures"]);
    let batch = source["BatchSize"].as_u64().expect("BatchSize");
    assert!((1..=5).contains(&batch), "small batches: {batch}");
    let max = &source["ScalingConfig"]["MaximumConcurrency"];
    assert!(refers_to(max, "WorkerMaxConcurrency"), "{max:?}");
    let parameter = get(&t, &["Parameters", "WorkerMaxConcurrency"]);
    assert_eq!(parameter["Default"], 10);
    assert_eq!(
        parameter["MinValue"], 2,
        "SQS event sources accept 2 and up"
    );

    // The poller's permissions are the worker's own, on this queue only.
    let consumes: Vec<&Value> = statements_of(&t, worker)
        .into_iter()
        .filter(|s| actions(s).contains(&"sqs:ReceiveMessage"))
        .collect();
    assert!(
        !consumes.is_empty(),
        "the worker may receive from the queue"
    );
    for s in consumes {
        assert!(resource_list(s)
            .into_iter()
            .all(|r| refers_to(r, "WorkQueue")));
    }
}

#[test]
fn custom_discord_urls_are_off_unless_the_deployment_opts_in() {
    let t = template();
    let parameter = get(&t, &["Parameters", "AllowCustomDiscordUrls"]);
    assert_eq!(parameter["Default"], "false");
    let allowed: Vec<&str> = parameter["AllowedValues"]
        .as_sequence()
        .expect("AllowedValues")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["false", "true"]);
    // Only the admin API configures clients: it alone gets the setting.
    let var = "CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS";
    for (id, f) in functions(&t) {
        let value = &f["Properties"]["Environment"]["Variables"][var];
        if binary(f) == "admin-api" {
            assert!(
                refers_to(value, "AllowCustomDiscordUrls"),
                "{id}: {value:?}"
            );
        } else {
            assert!(
                value.is_null(),
                "{id} does not configure clients: {value:?}"
            );
        }
    }
    let globals = &get(&t, &["Globals", "Function", "Environment", "Variables"])[var];
    assert!(globals.is_null(), "not a global variable: {globals:?}");
}

#[test]
fn every_http_route_is_throttled_by_api_gateway() {
    let t = template();
    let (_, api) = resources(&t)
        .into_iter()
        .find(|(_, r)| r["Type"] == "AWS::Serverless::HttpApi")
        .expect("an HttpApi");
    let settings = &api["Properties"]["DefaultRouteSettings"];
    for (key, parameter) in [
        ("ThrottlingBurstLimit", "ApiThrottlingBurstLimit"),
        ("ThrottlingRateLimit", "ApiThrottlingRateLimit"),
    ] {
        assert!(refers_to(&settings[key], parameter), "{key}: {settings:?}");
        let default = get(&t, &["Parameters", parameter, "Default"])
            .as_u64()
            .unwrap_or_else(|| panic!("{parameter} has a numeric default"));
        assert!(
            (1..=1000).contains(&default),
            "{parameter}: a sane default, got {default}"
        );
    }
}

/// Resources of the template that exist only with `StaticEgressIp=true`.
fn conditional_on_static_egress(t: &Value) -> BTreeMap<String, &Value> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Condition"] == "UseStaticEgressIp")
        .collect()
}

fn of_type<'a>(resources: &BTreeMap<String, &'a Value>, ty: &str) -> Vec<(String, &'a Value)> {
    resources
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .map(|(id, r)| (id.clone(), *r))
        .collect()
}

#[test]
fn a_static_egress_ip_is_off_by_default_and_then_every_function_leaves_through_one_nat() {
    let t = template();
    // Off by default: "false" | "true", and the condition reads it.
    let parameter = get(&t, &["Parameters", "StaticEgressIp"]);
    assert_eq!(parameter["Default"], "false");
    let allowed: Vec<&str> = parameter["AllowedValues"]
        .as_sequence()
        .expect("AllowedValues")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["false", "true"]);
    let condition = get(&t, &["Conditions", "UseStaticEgressIp"]);
    assert_eq!(tag(condition).as_deref(), Some("!Equals"));
    assert!(refers_to(condition, "StaticEgressIp"), "{condition:?}");
    assert_eq!(untag(condition)[1], "true");

    // Every EC2 resource exists only with the option.
    for (id, r) in resources(&t) {
        if r["Type"]
            .as_str()
            .unwrap_or_default()
            .starts_with("AWS::EC2::")
        {
            assert_eq!(r["Condition"], "UseStaticEgressIp", "{id}");
        }
    }
    let vpc = conditional_on_static_egress(&t);
    let [(vpc_id, _)] = &of_type(&vpc, "AWS::EC2::VPC")[..] else {
        panic!("one VPC")
    };
    let subnets = of_type(&vpc, "AWS::EC2::Subnet");
    assert_eq!(subnets.len(), 3, "one public subnet and two private ones");
    for (id, subnet) in &subnets {
        assert!(refers_to(&subnet["Properties"]["VpcId"], vpc_id), "{id}");
    }

    // The public subnet routes to the internet gateway and holds the NAT with the Elastic IP.
    let [(igw, _)] = &of_type(&vpc, "AWS::EC2::InternetGateway")[..] else {
        panic!("one internet gateway")
    };
    assert!(of_type(&vpc, "AWS::EC2::VPCGatewayAttachment")
        .iter()
        .any(
            |(_, a)| refers_to(&a["Properties"]["InternetGatewayId"], igw)
                && refers_to(&a["Properties"]["VpcId"], vpc_id)
        ));
    let [(eip, _)] = &of_type(&vpc, "AWS::EC2::EIP")[..] else {
        panic!("one Elastic IP")
    };
    let [(nat, nat_gateway)] = &of_type(&vpc, "AWS::EC2::NatGateway")[..] else {
        panic!("one NAT gateway")
    };
    assert!(refers_to(&nat_gateway["Properties"]["AllocationId"], eip));
    let public_subnet = subnets
        .iter()
        .find(|(id, _)| refers_to(&nat_gateway["Properties"]["SubnetId"], id))
        .map(|(id, _)| id.clone())
        .expect("the NAT gateway is in one of the subnets");

    // Route tables: which subnet reaches the internet how.
    let routes = of_type(&vpc, "AWS::EC2::Route");
    let default_route_of = |table: &str| {
        routes
            .iter()
            .find(|(_, r)| {
                refers_to(&r["Properties"]["RouteTableId"], table)
                    && r["Properties"]["DestinationCidrBlock"] == "0.0.0.0/0"
            })
            .map(|(_, r)| *r)
    };
    let table_of = |subnet: &str| {
        of_type(&vpc, "AWS::EC2::SubnetRouteTableAssociation")
            .into_iter()
            .find(|(_, a)| refers_to(&a["Properties"]["SubnetId"], subnet))
            .and_then(|(_, a)| {
                let table = untag(&a["Properties"]["RouteTableId"]).as_str()?;
                Some(table.to_owned())
            })
            .unwrap_or_else(|| panic!("{subnet} has a route table"))
    };
    let public_route = default_route_of(&table_of(&public_subnet)).expect("public default route");
    assert!(refers_to(&public_route["Properties"]["GatewayId"], igw));
    let private: Vec<&String> = subnets
        .iter()
        .map(|(id, _)| id)
        .filter(|id| **id != public_subnet)
        .collect();
    let private_table = table_of(private[0]);
    assert_eq!(table_of(private[1]), private_table);
    let private_route = default_route_of(&private_table).expect("private default route");
    assert!(
        refers_to(&private_route["Properties"]["NatGatewayId"], nat),
        "the private subnets leave through the NAT: {private_route:?}"
    );
    let az = |id: &str| format!("{:?}", vpc[id]["Properties"]["AvailabilityZone"]);
    assert_ne!(az(private[0]), az(private[1]), "two availability zones");

    // DynamoDB through a (free) gateway endpoint on the private route table.
    let endpoints = of_type(&vpc, "AWS::EC2::VPCEndpoint");
    assert!(
        endpoints
            .iter()
            .any(|(_, e)| e["Properties"]["VpcEndpointType"] == "Gateway"
                && format!("{:?}", e["Properties"]["ServiceName"]).contains(".dynamodb")
                && refers_to(&e["Properties"]["RouteTableIds"], &private_table)),
        "{endpoints:?}"
    );

    // The functions' security group lets nothing in and only HTTPS out.
    let [(sg, group)] = &of_type(&vpc, "AWS::EC2::SecurityGroup")[..] else {
        panic!("one security group")
    };
    assert!(group["Properties"]["SecurityGroupIngress"].is_null());
    assert!(of_type(&vpc, "AWS::EC2::SecurityGroupIngress").is_empty());
    for rule in group["Properties"]["SecurityGroupEgress"]
        .as_sequence()
        .expect("egress rules")
    {
        assert_eq!(
            (&rule["FromPort"], &rule["ToPort"]),
            (&443.into(), &443.into())
        );
    }

    // Every function runs in the private subnets with that group, only with the option.
    let config = get(&t, &["Globals", "Function", "VpcConfig"]);
    assert_eq!(tag(config).as_deref(), Some("!If"));
    let branches = untag(config).as_sequence().expect("!If list");
    assert_eq!(branches[0], "UseStaticEgressIp");
    assert_eq!(untag(&branches[2]), "AWS::NoValue");
    assert!(refers_to(&branches[1]["SecurityGroupIds"], sg));
    for subnet in &private {
        assert!(refers_to(&branches[1]["SubnetIds"], subnet), "{subnet}");
    }
    assert!(!refers_to(&branches[1]["SubnetIds"], &public_subnet));
    for (id, f) in functions(&t) {
        assert!(
            f["Properties"]["VpcConfig"].is_null(),
            "{id} keeps the global VpcConfig"
        );
    }

    // The address to give Discord (or to allow-list) is an output.
    let output = get(&t, &["Outputs", "EgressIp"]);
    assert_eq!(output["Condition"], "UseStaticEgressIp");
    assert!(refers_to(&output["Value"], eip));
}

#[test]
fn functions_may_manage_network_interfaces_only_with_the_static_egress_ip() {
    // SAM attaches AWSLambdaVPCAccessExecutionRole to any function with a VpcConfig, even an
    // !If that resolves to nothing: without the option, a conditional Deny takes it back.
    let t = template();
    let eni_actions = [
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    ];
    for (id, f) in functions(&t) {
        let policies = get(f, &["Properties", "Policies"])
            .as_sequence()
            .expect("policies");
        let deny = policies
            .iter()
            .find(|p| tag(p).as_deref() == Some("!If"))
            .unwrap_or_else(|| panic!("{id}: a conditional policy"));
        let branches = untag(deny).as_sequence().expect("!If list");
        assert_eq!(branches[0], "UseStaticEgressIp", "{id}");
        assert_eq!(
            untag(&branches[1]),
            "AWS::NoValue",
            "{id}: nothing with the option"
        );
        let policy_id = untag(&branches[2]).as_str().expect("!Ref");
        let policy = get(&t, &["Resources", policy_id]);
        // It exists only without the option: `!Not [!Condition UseStaticEgressIp]`.
        let condition = get(&t, &["Conditions", str_at(policy, &["Condition"])]);
        assert_eq!(tag(condition).as_deref(), Some("!Not"), "{policy_id}");
        let inner = &untag(condition).as_sequence().expect("!Not list")[0];
        assert_eq!(tag(inner).as_deref(), Some("!Condition"), "{policy_id}");
        assert_eq!(untag(inner), "UseStaticEgressIp", "{policy_id}");
        let statements = get(policy, &["Properties", "PolicyDocument", "Statement"])
            .as_sequence()
            .expect("statements");
        let denied: BTreeSet<&str> = statements
            .iter()
            .filter(|s| s["Effect"] == "Deny")
            .flat_map(actions)
            .collect();
        for action in eni_actions {
            assert!(denied.contains(action), "{policy_id} denies {action}");
        }
        assert!(
            statements.iter().all(|s| s["Effect"] == "Deny"),
            "{policy_id} only takes away"
        );
    }
}

#[test]
fn every_function_logs_to_its_own_log_group_with_a_retention() {
    let t = template();
    let parameter = get(&t, &["Parameters", "LogRetentionDays"]);
    assert_eq!(parameter["Default"].as_u64(), Some(30));
    // What CloudWatch Logs accepts as RetentionInDays.
    let valid = [
        1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
        2922, 3288, 3653,
    ];
    let allowed: Vec<u64> = parameter["AllowedValues"]
        .as_sequence()
        .expect("AllowedValues")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(
        !allowed.is_empty() && allowed.iter().all(|d| valid.contains(d)),
        "{allowed:?}"
    );
    let logging = get(&t, &["Globals", "Function", "LoggingConfig"]);
    assert_eq!(logging["LogFormat"], "JSON", "JSON logs for every function");
    let mut groups = BTreeSet::new();
    for (id, f) in functions(&t) {
        let group = &f["Properties"]["LoggingConfig"]["LogGroup"];
        assert_eq!(tag(group).as_deref(), Some("!Ref"), "{id}: {group:?}");
        let group = untag(group).as_str().expect("a logical id").to_owned();
        let resource = get(&t, &["Resources", &group]);
        assert_eq!(resource["Type"], "AWS::Logs::LogGroup", "{id} → {group}");
        assert!(
            refers_to(
                &resource["Properties"]["RetentionInDays"],
                "LogRetentionDays"
            ),
            "{group}: {resource:?}"
        );
        let name = str_at(resource, &["Properties", "LogGroupName"]);
        assert!(
            name.ends_with(&format!("/{}", binary(f))),
            "{group} is named for its function: {name}"
        );
        assert!(groups.insert(group.clone()), "{group} is shared");
    }
    assert_eq!(groups.len(), functions(&t).len());
}

#[test]
fn functions_that_write_runs_and_audit_get_the_retention_parameters() {
    use connector::store::retention::{
        DEFAULT_RETAIN_AUDIT_DAYS, DEFAULT_RETAIN_RUNS_DAYS, RETAIN_AUDIT_DAYS_VAR,
        RETAIN_RUNS_DAYS_VAR,
    };
    let t = template();
    for (parameter, default) in [
        ("RetainRunsDays", DEFAULT_RETAIN_RUNS_DAYS),
        ("RetainAuditDays", DEFAULT_RETAIN_AUDIT_DAYS),
    ] {
        let p = get(&t, &["Parameters", parameter]);
        assert_eq!(p["Type"], "Number", "{parameter}");
        assert_eq!(
            p["Default"].as_u64(),
            Some(u64::from(default)),
            "{parameter}"
        );
        assert_eq!(p["MinValue"].as_u64(), Some(1), "{parameter}");
    }
    // Run reports and audit entries are written by the functions that talk to Discord (the
    // dispatchers only enqueue).
    for bin in ["admin-api", "sso-callback", "worker"] {
        let (id, f) = function(&t, bin);
        let vars = &f["Properties"]["Environment"]["Variables"];
        for (var, parameter) in [
            (RETAIN_RUNS_DAYS_VAR, "RetainRunsDays"),
            (RETAIN_AUDIT_DAYS_VAR, "RetainAuditDays"),
        ] {
            assert!(refers_to(&vars[var], parameter), "{id}.{var}: {vars:?}");
        }
    }
}
