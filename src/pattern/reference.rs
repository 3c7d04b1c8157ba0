//! The reference evaluator: one pattern, one event, by direct recursion, written to be obviously
//! right rather than fast. Tests use it as the oracle for the compiled matcher.
//!
//! Array consistency is taken literally: a *world* of the event picks one object or array element
//! of every array (recursively), and holds every plain value of the arrays it passes through; a
//! sub-rule matches if, in some world, every one of its fields has a leaf that satisfies one of
//! its conditions. `exists: false` alone looks at the whole event. Arrays
//! holding nothing at a path the sub-rule names are left out of the worlds, since they cannot
//! change the answer.

use super::ast::{Condition, Leaf, Pattern, SubRule};
use super::error::EventError;
use super::json::Json;

/// Whether `pattern` matches `event`.
pub fn matches(pattern: &Pattern, event: &Json) -> Result<bool, EventError> {
    if !matches!(event, Json::Object(_)) {
        return Err(EventError::NotAnObject);
    }
    Ok(pattern
        .subrules
        .iter()
        .any(|sub| subrule_matches(sub, event)))
}

type Leaves<'a> = Vec<(String, Leaf<'a>)>;

fn subrule_matches(sub: &SubRule, event: &Json) -> bool {
    let paths: Vec<&str> = sub.fields.iter().map(|f| f.path.as_str()).collect();
    let everywhere = all_leaves(event, None);
    worlds(event, None, &paths).iter().any(|world| {
        sub.fields.iter().all(|field| {
            field.conditions.iter().any(|condition| match condition {
                Condition::Exists(false) => !everywhere.iter().any(|(p, _)| *p == field.path),
                _ => world
                    .iter()
                    .any(|(p, leaf)| *p == field.path && condition.matches_leaf(*leaf)),
            })
        })
    })
}

fn join(prefix: Option<&str>, key: &str) -> String {
    match prefix {
        None => key.to_owned(),
        Some(p) => format!("{p}.{key}"),
    }
}

fn leaf(value: &Json) -> Option<Leaf<'_>> {
    Some(match value {
        Json::String(s) => Leaf::Str(s),
        Json::Number(t) => Leaf::number(t),
        Json::Bool(true) => Leaf::True,
        Json::Bool(false) => Leaf::False,
        Json::Null => Leaf::Null,
        Json::Array(_) | Json::Object(_) => return None,
    })
}

/// Every leaf of the event with its path (arrays transparent).
fn all_leaves<'a>(value: &'a Json, path: Option<&str>) -> Leaves<'a> {
    match value {
        Json::Object(members) => members
            .iter()
            .flat_map(|(k, v)| all_leaves(v, Some(&join(path, k))))
            .collect(),
        Json::Array(items) => items.iter().flat_map(|v| all_leaves(v, path)).collect(),
        scalar => leaf(scalar)
            .map(|l| (path.unwrap_or_default().to_owned(), l))
            .into_iter()
            .collect(),
    }
}

/// Whether anything under `path` could be one of `paths`.
fn relevant(path: Option<&str>, paths: &[&str]) -> bool {
    match path {
        None => true,
        Some(p) => paths
            .iter()
            .any(|f| *f == p || (f.starts_with(p) && f.as_bytes().get(p.len()) == Some(&b'.'))),
    }
}

/// The leaves of every world of `value`.
fn worlds<'a>(value: &'a Json, path: Option<&str>, paths: &[&str]) -> Vec<Leaves<'a>> {
    if !relevant(path, paths) {
        return vec![Vec::new()];
    }
    match value {
        Json::Object(members) => {
            let mut product: Vec<Leaves<'a>> = vec![Vec::new()];
            for (key, member) in members {
                let options = worlds(member, Some(&join(path, key)), paths);
                product = product
                    .iter()
                    .flat_map(|partial| {
                        options
                            .iter()
                            .map(move |option| partial.iter().chain(option).cloned().collect())
                    })
                    .collect();
            }
            product
        }
        Json::Array(items) => {
            // Plain values are in every world; a world picks one object or array element.
            let (nested, plain): (Vec<&Json>, Vec<&Json>) = items
                .iter()
                .partition(|item| matches!(item, Json::Object(_) | Json::Array(_)));
            let plain: Leaves<'a> = plain
                .into_iter()
                .filter_map(|item| Some((path.unwrap_or_default().to_owned(), leaf(item)?)))
                .collect();
            if nested.is_empty() {
                return vec![plain];
            }
            nested
                .into_iter()
                .flat_map(|item| worlds(item, path, paths))
                .map(|world| plain.iter().cloned().chain(world).collect())
                .collect()
        }
        scalar => vec![
            leaf(scalar)
                .map(|l| (path.unwrap_or_default().to_owned(), l))
                .into_iter()
                .collect(),
        ],
    }
}
