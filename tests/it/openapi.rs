//! openapi.yaml is valid, documents exactly the routes the router serves, and says truthfully
//! which routes need a token: every documented `/v1` operation answers 401 without one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{TestApp, app::answer};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

pub(crate) fn spec() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
    let text = std::fs::read_to_string(&path).expect("openapi.yaml is readable");
    serde_norway::from_str(&text).expect("openapi.yaml is valid YAML")
}

/// (path, method) → whether the operation is open (its `security` is empty).
pub(crate) fn operations(spec: &Value) -> BTreeMap<(String, String), bool> {
    let mut ops = BTreeMap::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let open = op
                    .get("security")
                    .is_some_and(|s| s.as_array().is_some_and(Vec::is_empty));
                ops.insert((path.clone(), method.to_owned()), open);
            }
        }
    }
    ops
}

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

#[test]
fn the_spec_is_well_formed_and_every_reference_resolves() {
    let spec = spec();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1."));
    assert!(spec["info"]["title"].is_string() && spec["info"]["version"].is_string());
    assert!(spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
    let mut ids = BTreeSet::new();
    for ((path, method), _) in operations(&spec) {
        let op = &spec["paths"][&path][&method];
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path}: no responses"
        );
        for param in path
            .split('{')
            .skip(1)
            .map(|p| p.split('}').next().unwrap())
        {
            let declared = [&spec["paths"][&path]["parameters"], &op["parameters"]]
                .iter()
                .filter_map(|p| p.as_array())
                .flatten()
                .any(|p| {
                    let p = match p.get("$ref").and_then(Value::as_str) {
                        Some(r) => resolve(&spec, r).unwrap_or(&Value::Null),
                        None => p,
                    };
                    p["name"] == param && p["in"] == "path"
                });
            assert!(
                declared,
                "{method} {path}: path parameter {param} is not declared"
            );
        }
    }
    let mut all = Vec::new();
    refs(&spec, &mut all);
    assert!(!all.is_empty());
    for target in all {
        assert!(
            resolve(&spec, target).is_some(),
            "$ref {target} does not resolve"
        );
    }
}

fn resolve<'a>(spec: &'a Value, reference: &str) -> Option<&'a Value> {
    spec.pointer(reference.strip_prefix('#')?)
}

/// Every path given to `.route(` in src/api, as served (resources nest under /v1).
fn routes_in_source() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let top_level = entry.file_name() == "health.rs";
        for piece in text.split(".route(").skip(1) {
            let piece = piece.trim_start();
            let Some(rest) = piece.strip_prefix('"') else {
                continue;
            };
            let path = &rest[..rest.find('"').unwrap()];
            routes.insert(if top_level {
                path.to_owned()
            } else {
                format!("/v1{path}")
            });
        }
    }
    routes
}

fn concrete(path: &str) -> String {
    path.replace("{bus}", "default")
        .replace("{rule}", "some-rule")
        .replace("{target}", "some-target")
        .replace("{id}", "0191b1f4-0000-7000-8000-000000000000")
}

#[test]
fn every_route_in_the_router_is_documented() {
    let documented: BTreeSet<String> = spec()["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let served = routes_in_source();
    assert!(served.len() >= 8, "found only {served:?}");
    let undocumented: Vec<&String> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.yaml: {undocumented:?}"
    );
    let unserved: Vec<&String> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented paths the router does not serve: {unserved:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_exists_and_requires_a_token_unless_open() {
    // Every operation gets a wrong token: more than the throttle allows one address.
    let app = TestApp::spawn_with(&["--auth-failures-per-minute", "0"]).await;
    let spec = spec();
    let ops = operations(&spec);
    for ((path, method), open) in &ops {
        let url = format!("{}{}", app.base, concrete(path));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let anonymous = answer(
            app.client
                .request(method.clone(), &url)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let forged = answer(
            app.client
                .request(method.clone(), &url)
                .bearer_auth("sy_not-a-real-token")
                .send()
                .await
                .unwrap(),
        )
        .await;
        if *open {
            assert_eq!(
                anonymous.status,
                StatusCode::OK,
                "{method} {path} is documented as open"
            );
            continue;
        }
        for (who, got) in [("no token", &anonymous), ("a wrong token", &forged)] {
            assert_eq!(
                got.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {who}: {got:?}"
            );
            assert_eq!(got.content_type, "application/problem+json");
        }
        assert!(
            path.starts_with("/v1/"),
            "{path}: only /v1 routes need a token"
        );
        let authed = app.call(method.clone(), &concrete(path), None).await;
        assert_ne!(
            authed.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is not routed"
        );
        assert_ne!(
            authed.body["type"], "urn:switchyard:problem:no-route",
            "{method} {path} is not routed"
        );
        assert_ne!(
            authed.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} refuses the admin token"
        );
    }
    // Methods a documented path does not list are not served either.
    let paths: BTreeSet<&String> = ops.keys().map(|(p, _)| p).collect();
    for path in paths {
        for method in METHODS {
            if ops.contains_key(&(path.clone(), method.to_owned())) {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let got = app.call(method.clone(), &concrete(path), None).await;
            assert_eq!(
                got.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is served but not documented"
            );
            assert_eq!(got.content_type, "application/problem+json");
        }
    }
}

#[tokio::test]
async fn the_first_start_without_an_admin_token_makes_exactly_one() {
    let db = crate::support::postgres::fresh_database().await;
    let config = |args: &[&str]| {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Args {
            #[command(flatten)]
            serve: switchyard::config::ServeArgs,
        }
        let mut argv = vec![
            "x",
            "--listen",
            "127.0.0.1:0",
            "--secret-key",
            crate::support::SECRET_KEY,
        ];
        argv.extend_from_slice(args);
        Args::parse_from(argv).serve.validate().unwrap()
    };
    let mut first = switchyard::app::Application::build(config(&[]), db.options.clone())
        .await
        .unwrap();
    let token = first
        .take_generated_token()
        .expect("a token at the first start");
    let mut second = switchyard::app::Application::build(config(&[]), db.options.clone())
        .await
        .unwrap();
    assert!(
        second.take_generated_token().is_none(),
        "only the first start makes a token"
    );
    let base = format!("http://{}", first.local_addr());
    tokio::spawn(first.run_until_stopped(std::future::pending()));
    let client = crate::support::http_client();
    let ok = client
        .get(format!("{base}/v1/buses"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_sha256 FROM api_tokens")
        .fetch_all(second.pool())
        .await
        .unwrap();
    assert_eq!(
        stored,
        vec![switchyard::auth::sha256(&token).to_vec()],
        "only the digest is stored"
    );
}

/// Where `value` departs from `schema` (OpenAPI 3.1 / JSON Schema), strictly: an object whose
/// schema lists `properties` may hold no other key unless `additionalProperties` allows it, so a
/// field named differently in the code and in the spec is caught either way round.
fn mismatches(spec: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(target) => resolve(spec, target).expect("$ref resolves"),
        None => schema,
    };
    if let Some(branches) = schema.get("allOf").and_then(Value::as_array) {
        // One object schema holding every branch's properties and requirements.
        let mut merged = serde_json::Map::new();
        let (mut properties, mut required) = (serde_json::Map::new(), Vec::new());
        for branch in branches {
            let branch = match branch.get("$ref").and_then(Value::as_str) {
                Some(target) => resolve(spec, target).expect("$ref resolves"),
                None => branch,
            };
            // As JSON Schema has it, a branch closed by `additionalProperties: false` refuses
            // the other branches' properties too.
            if branch.get("additionalProperties") == Some(&Value::Bool(false)) {
                mismatches(spec, branch, value, at, out);
            }
            if let Some(p) = branch["properties"].as_object() {
                properties.extend(p.clone());
            }
            if let Some(r) = branch["required"].as_array() {
                required.extend(r.iter().cloned());
            }
        }
        merged.insert("type".into(), "object".into());
        merged.insert("properties".into(), Value::Object(properties));
        merged.insert("required".into(), Value::Array(required));
        return mismatches(spec, &Value::Object(merged), value, at, out);
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(branches) = schema.get(combinator).and_then(Value::as_array) {
            let fits = branches.iter().filter(|branch| {
                let mut inner = Vec::new();
                mismatches(spec, branch, value, at, &mut inner);
                inner.is_empty()
            });
            if fits.count() == 0 {
                out.push(format!("{at}: {value} fits no branch of {combinator}"));
            }
            return;
        }
    }
    if let Some(types) = schema.get("type") {
        let name = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = allowed.contains(&name) || (name == "integer" && allowed.contains(&"number"));
        if !fits {
            out.push(format!("{at}: a {name}, documented as {types}"));
            return;
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array)
        && !choices.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {choices:?}"));
    }
    match value {
        Value::Object(members) => {
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                if !members.contains_key(name) {
                    out.push(format!("{at}: required `{name}` is missing"));
                }
            }
            let properties = schema["properties"].as_object();
            for (key, member) in members {
                let here = format!("{at}/{key}");
                match (
                    properties.and_then(|p| p.get(key)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(property), _) => mismatches(spec, property, member, &here, out),
                    (None, Some(Value::Bool(false))) => out.push(format!("{here}: not documented")),
                    (None, Some(extra)) if extra.is_object() => {
                        mismatches(spec, extra, member, &here, out)
                    }
                    (None, Some(_)) => {}
                    (None, None) if properties.is_some() => {
                        out.push(format!("{here}: not documented"))
                    }
                    (None, None) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    mismatches(spec, item_schema, item, &format!("{at}/{i}"), out);
                }
            }
        }
        _ => {}
    }
}

/// The schema documented for this operation's answer with this status and content type.
fn documented_schema<'a>(
    spec: &'a Value,
    template: &str,
    method: &Method,
    got: &crate::support::app::Answer,
) -> &'a Value {
    let operation = &spec["paths"][template][method.as_str().to_lowercase()];
    let mut response = &operation["responses"][got.status.as_str()];
    if let Some(target) = response.get("$ref").and_then(Value::as_str) {
        response = resolve(spec, target).expect("$ref resolves");
    }
    assert!(
        response.is_object(),
        "{method} {template} answered {} which is not documented: {:?}",
        got.status,
        got.body
    );
    let content_type = got.content_type.split(';').next().unwrap_or_default();
    let schema = &response["content"][content_type]["schema"];
    assert!(
        schema.is_object(),
        "{method} {template} {}: content type {content_type} is not documented",
        got.status
    );
    schema
}

#[tokio::test]
async fn every_answer_has_exactly_the_documented_shape() {
    use crate::support::sink::{Reply, Sink};
    use serde_json::json;

    let spec = spec();
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Status(400));
    let rule = json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "hook", "url": sink.url}]});
    let posted = app
        .post_events(
            "default",
            json!({"entries": [{"source": "shop", "detail-type": "Order Placed", "detail": {}}, {"source": ""}]}),
        )
        .await;
    assert_eq!(posted["failed_entry_count"], 1);
    app.put_rule("default", "orders", rule.clone()).await;
    let accepted = app
        .post_events(
            "default",
            json!({"source": "shop", "detail-type": "Order Placed", "detail": {"n": 1}}),
        )
        .await;
    let event = accepted["entries"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dead: String =
        crate::support::wait_for("the dead letter", Duration::from_secs(15), || async {
            let page = app.get("/v1/dead-letters").await;
            page.body["items"][0]["id"].as_str().map(str::to_owned)
        })
        .await;
    let token = app
        .post("/v1/tokens", json!({"name": "to revoke", "scope": "read"}))
        .await;
    let token = token.body["id"].as_str().expect("a token id").to_owned();

    let calls: Vec<(Method, &str, String, Option<Value>)> = vec![
        (Method::GET, "/healthz", "/healthz".into(), None),
        (
            Method::POST,
            "/v1/tokens",
            "/v1/tokens".into(),
            Some(json!({"name": "ci", "scope": "publish", "buses": ["default"]})),
        ),
        (
            Method::POST,
            "/v1/tokens",
            "/v1/tokens".into(),
            Some(json!({"name": "", "scope": "root"})),
        ),
        (Method::GET, "/v1/tokens", "/v1/tokens".into(), None),
        (Method::GET, "/v1/audit", "/v1/audit?limit=2".into(), None),
        (
            Method::GET,
            "/v1/audit",
            "/v1/audit?action=nope".into(),
            None,
        ),
        (
            Method::DELETE,
            "/v1/tokens/{id}",
            format!("/v1/tokens/{token}"),
            None,
        ),
        (Method::GET, "/readyz", "/readyz".into(), None),
        (Method::GET, "/v1/buses", "/v1/buses".into(), None),
        (
            Method::PUT,
            "/v1/buses/{bus}",
            "/v1/buses/extra".into(),
            Some(json!({"description": "x"})),
        ),
        (
            Method::GET,
            "/v1/buses/{bus}",
            "/v1/buses/extra".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/buses/{bus}",
            "/v1/buses/nope".into(),
            None,
        ),
        (
            Method::PUT,
            "/v1/buses/{bus}/rules/{rule}",
            "/v1/buses/default/rules/orders".into(),
            Some(rule),
        ),
        (
            Method::PUT,
            "/v1/buses/{bus}/rules/{rule}",
            "/v1/buses/default/rules/bad".into(),
            Some(json!({"event_pattern": {"a": []}, "targets": []})),
        ),
        (
            Method::GET,
            "/v1/buses/{bus}/rules/{rule}",
            "/v1/buses/default/rules/orders".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/buses/{bus}/rules",
            "/v1/buses/default/rules".into(),
            None,
        ),
        (
            Method::POST,
            "/v1/buses/{bus}/rules/{rule}/targets/{target}/rotate-secret",
            "/v1/buses/default/rules/orders/targets/hook/rotate-secret".into(),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/v1/buses/{bus}/rules/{rule}/targets/{target}/enable",
            "/v1/buses/default/rules/orders/targets/hook/enable".into(),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/v1/buses/{bus}/events",
            "/v1/buses/default/events".into(),
            Some(json!({"entries": [{"source": "a", "detail-type": "b", "detail": {}}, {}]})),
        ),
        (
            Method::GET,
            "/v1/events/{id}",
            format!("/v1/events/{event}"),
            None,
        ),
        (
            Method::GET,
            "/v1/dead-letters",
            "/v1/dead-letters".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/dead-letters",
            "/v1/dead-letters?dead_reason=nope".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/dead-letters/{id}",
            format!("/v1/dead-letters/{dead}"),
            None,
        ),
        (
            Method::POST,
            "/v1/test-event-pattern",
            "/v1/test-event-pattern".into(),
            Some(json!({"event_pattern": {"source": ["shop"]}, "event": {"source": "shop"}})),
        ),
        (
            Method::POST,
            "/v1/dead-letters/redrive",
            "/v1/dead-letters/redrive".into(),
            Some(json!({"ids": [dead]})),
        ),
        (
            Method::POST,
            "/v1/dead-letters/discard",
            "/v1/dead-letters/discard".into(),
            Some(json!({"filter": {"dead_reason": "final_status"}})),
        ),
    ];
    let mut problems = Vec::new();
    let mut dead_letter_detail = Value::Null;
    for (method, template, path, body) in calls {
        let got = app.call(method.clone(), &path, body).await;
        let schema = documented_schema(&spec, template, &method, &got);
        mismatches(&spec, schema, &got.body, "", &mut problems);
        problems.iter_mut().for_each(|p| {
            if !p.starts_with('[') {
                *p = format!("[{method} {path} {}] {p}", got.status);
            }
        });
        if template == "/v1/dead-letters/{id}" {
            dead_letter_detail = got.body;
        }
    }
    assert!(
        problems.is_empty(),
        "answers that differ from openapi.yaml:\n{}",
        problems.join("\n")
    );

    // The check itself can fail: the dead letter with `reason` for `dead_reason` is refused.
    let mut renamed = dead_letter_detail.clone();
    let object = renamed.as_object_mut().unwrap();
    let reason = object.remove("dead_reason").expect("a dead reason");
    object.insert("reason".into(), reason);
    let schema = resolve(&spec, "#/components/schemas/DeadLetterDetail").unwrap();
    let mut found = Vec::new();
    mismatches(&spec, schema, &renamed, "", &mut found);
    assert!(
        found.iter().any(|p| p.contains("/reason: not documented")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("`dead_reason` is missing")),
        "{found:?}"
    );
}
