//! The reference evaluator: one pattern, one event, by direct recursion, written to be obviously
//! right rather than fast. Tests use it as the oracle for the compiled matcher.
//!
//! Array consistency is taken literally: a *world* of the event picks one object or array element
//! of every array (recursively), and holds every plain value of the arrays it passes through; a
//! sub-rule matches if, in some world, every one of its fields has a leaf that satisfies one of
//! its conditions. `exists: false` alone looks at the whole event. Arrays
//! holding nothing at a path the sub-rule names are left out of the worlds, since they cannot
//! change the answer.
//!
//! Which leaf satisfies which condition is written here again ([`satisfies`]), by the plainest
//! means (a backtracking wildcard, a case match that tries every spelling at every position),
//! rather than taken from the matcher's `Condition::matches_leaf`. It shares only the value
//! models: which number texts are comparable (`number.rs`), how IP addresses read and what a
//! CIDR range holds (`ip.rs`), and which spellings a character has in the case model
//! (`casefold.rs`); those have their own unit tests and spec cases.

use super::ast::{AnythingBut, Condition, Leaf, Pattern, Range, SubRule};
use super::casefold::CaseFold;
use super::error::EventError;
use super::ip::{IpRange, parse_ip};
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
                    .any(|(p, leaf)| *p == field.path && satisfies(condition, *leaf)),
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

/// Whether one leaf satisfies one condition (`exists: false` never: only absence does).
fn satisfies(condition: &Condition, leaf: Leaf<'_>) -> bool {
    match (condition, leaf) {
        (Condition::Exists(present), _) => *present,
        (Condition::AnythingBut(excluded), leaf) => !excluded_by(excluded, leaf),
        (Condition::Exact(s), Leaf::Str(v)) => s == v,
        (Condition::Number { text, value }, Leaf::Num(t, v)) => {
            text == t || (value.is_some() && value == &v)
        }
        (Condition::True, Leaf::True)
        | (Condition::False, Leaf::False)
        | (Condition::Null, Leaf::Null) => true,
        (Condition::Prefix(p), Leaf::Str(v)) => {
            v.len() >= p.len() && &v.as_bytes()[..p.len()] == p.as_bytes()
        }
        (Condition::Suffix(s), Leaf::Str(v)) => {
            v.len() >= s.len() && &v.as_bytes()[v.len() - s.len()..] == s.as_bytes()
        }
        (Condition::EqualsIgnoreCase(c), Leaf::Str(v)) => case_match(c, v.as_bytes(), true, true),
        (Condition::PrefixIgnoreCase(c), Leaf::Str(v)) => case_match(c, v.as_bytes(), true, false),
        (Condition::SuffixIgnoreCase(c), Leaf::Str(v)) => case_match(c, v.as_bytes(), false, true),
        (Condition::Wildcard(w), Leaf::Str(v)) => glob(w.parts(), v.as_bytes(), true),
        (Condition::Numeric(range), Leaf::Num(_, Some(v))) => in_range(range, v),
        (Condition::IpLiteral(range) | Condition::Cidr(range), Leaf::Str(v)) => {
            in_ip_range(range, v)
        }
        _ => false,
    }
}

/// Whether an `anything-but` excludes this leaf. A number is excluded only by an equal number,
/// a string only by the string forms; booleans and `null` never.
fn excluded_by(excluded: &AnythingBut, leaf: Leaf<'_>) -> bool {
    match (excluded, leaf) {
        (AnythingBut::Numbers(values), Leaf::Num(_, v)) => v.is_some_and(|v| values.contains(&v)),
        (AnythingBut::Strings(list), Leaf::Str(v)) => list.iter().any(|s| s == v),
        (AnythingBut::Prefixes(list), Leaf::Str(v)) => {
            list.iter().any(|p| v.starts_with(p.as_str()))
        }
        (AnythingBut::Suffixes(list), Leaf::Str(v)) => list.iter().any(|s| v.ends_with(s.as_str())),
        (AnythingBut::EqualsIgnoreCase(list), Leaf::Str(v)) => {
            list.iter().any(|c| case_match(c, v.as_bytes(), true, true))
        }
        (AnythingBut::Wildcards(list), Leaf::Str(v)) => {
            list.iter().any(|w| glob(w.parts(), v.as_bytes(), true))
        }
        _ => false,
    }
}

fn in_range(range: &Range, v: f64) -> bool {
    let above = range.low.is_none_or(|b| {
        if b.inclusive {
            v >= b.value
        } else {
            v > b.value
        }
    });
    let below = range.high.is_none_or(|b| {
        if b.inclusive {
            v <= b.value
        } else {
            v < b.value
        }
    });
    above && below
}

fn in_ip_range(range: &IpRange, text: &str) -> bool {
    parse_ip(text).is_some_and(|ip| range.contains(ip))
}

/// Whether the pattern's characters, each in one of its spellings, spell `value` from its start
/// (`anchored_start`) to its end (`anchored_end`); unanchored ends try every position.
fn case_match(pattern: &CaseFold, value: &[u8], anchored_start: bool, anchored_end: bool) -> bool {
    fn spell(chars: &[[Box<[u8]>; 2]], rest: &[u8], to_end: bool) -> bool {
        match chars.split_first() {
            None => !to_end || rest.is_empty(),
            Some((spellings, more)) => spellings
                .iter()
                .any(|s| rest.starts_with(s) && spell(more, &rest[s.len()..], to_end)),
        }
    }
    let chars = pattern.spellings();
    if anchored_start {
        return spell(chars, value, anchored_end);
    }
    (0..=value.len()).any(|start| spell(chars, &value[start..], anchored_end))
}

/// Whether the literal runs, separated by `*`, match `value`: by trying every length for every
/// star (exponential in the worst case; the property test's inputs are short).
fn glob(parts: &[Vec<u8>], value: &[u8], first: bool) -> bool {
    match parts.split_first() {
        None => value.is_empty(),
        Some((part, rest)) if first => {
            value.starts_with(part) && glob(rest, &value[part.len()..], false)
        }
        // After a star: the star takes `skip` bytes, then this part must follow.
        Some((part, rest)) => (0..=value.len()).any(|skip| {
            let after = &value[skip..];
            after.starts_with(part)
                && (!rest.is_empty() || after.len() == part.len())
                && glob(rest, &after[part.len()..], false)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::wildcard::Wildcard;
    use super::*;

    #[test]
    fn the_plain_glob_agrees_with_the_wildcard_rules() {
        let m = |w: &str, v: &str| glob(Wildcard::parse(w).unwrap().parts(), v.as_bytes(), true);
        assert!(m("a*b", "ab") && m("a*b", "axxb") && !m("a*b", "axxbc"));
        assert!(m("*", "") && m("*", "anything") && m("", "") && !m("", "x"));
        assert!(m("*x*y*", "axbyc") && !m("*x*y*", "ayxb"));
        assert!(m("a\\*b", "a*b") && !m("a\\*b", "axb"));
    }

    #[test]
    fn the_case_match_tries_every_spelling() {
        let c = CaseFold::new("Straße");
        assert!(case_match(&c, "STRASSE".as_bytes(), true, true));
        assert!(case_match(&c, "STRASSE 5".as_bytes(), true, false));
        assert!(
            !case_match(&c, b"strasse", true, true),
            "ß is ß or SS, not ss"
        );
        assert!(case_match(
            &CaseFold::new("ße"),
            "GROSSE".as_bytes(),
            false,
            true
        ));
        assert!(!case_match(&c, "STRAS".as_bytes(), true, false));
    }
}
