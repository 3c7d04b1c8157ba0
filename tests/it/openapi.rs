//! openapi.yaml is valid, documents exactly the routes the router serves, and says truthfully
//! which routes need a token: every documented `/v1` operation answers 401 without one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{TestApp, app::answer};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn spec() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
    let text = std::fs::read_to_string(&path).expect("openapi.yaml is readable");
    serde_norway::from_str(&text).expect("openapi.yaml is valid YAML")
}

/// (path, method) → whether the operation is open (its `security` is empty).
fn operations(spec: &Value) -> BTreeMap<(String, String), bool> {
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
    let app = TestApp::spawn().await;
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
        let mut argv = vec!["x", "--listen", "127.0.0.1:0"];
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
