//! Pattern text → validated [`Pattern`], checking every rule of `PATTERNS.md` with
//! event-ruler's messages (`JsonRuleCompiler`) and a JSON pointer to the offending place.
//!
//! Members are read in document order with event-ruler's "put" semantics: a later condition
//! list for the same leaf path replaces an earlier one (duplicate keys: last wins), and each
//! `$or` forks the sub-rules built so far, one copy per branch.

use super::ast::{AnythingBut, Bound, Condition, Field, Pattern, Range, SubRule};
use super::casefold::CaseFold;
use super::error::PatternError;
use super::ip::{IpRange, parse_ip};
use super::json::Json;
use super::matcher::MAX_CONDITIONS_PER_SUBRULE;
use super::number;
use super::wildcard::{self, Wildcard};

/// Bounds that keep every accepted pattern cheap to match. Defaults follow AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Pattern text length in bytes (AWS: 4,096 characters).
    pub max_pattern_bytes: usize,
    /// Sub-rules that `$or` may expand to (AWS: 1,000).
    pub max_or_combinations: usize,
    /// Wildcard complexity per field of one rule (AWS refuses 11, accepts 7; event-ruler's README uses 10).
    pub max_wildcard_complexity: usize,
    /// Leaf paths in one sub-rule; the matcher tracks them in a 64-bit set, so at most 64.
    pub max_fields_per_subrule: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pattern_bytes: 4096,
            max_or_combinations: 1000,
            max_wildcard_complexity: 10,
            max_fields_per_subrule: MAX_CONDITIONS_PER_SUBRULE,
        }
    }
}

/// Field names that cannot be used inside `$or` (event-ruler `Constants.java`).
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

/// The message for a wildcard set that is too complex (AWS's wording).
pub const TOO_COMPLEX: &str = "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character";

/// Parses pattern text.
pub fn parse_str(text: &str, limits: &Limits) -> Result<Pattern, PatternError> {
    check_length(text.len(), limits)?;
    let json = Json::parse(text).map_err(|e| PatternError::syntax(&e))?;
    parse_json(&json, limits)
}

/// Refuses pattern text longer than the limit.
pub fn check_length(bytes: usize, limits: &Limits) -> Result<(), PatternError> {
    if bytes > limits.max_pattern_bytes {
        return Err(PatternError::new(
            "",
            format!(
                "Event pattern is {bytes} bytes long; the limit is {}",
                limits.max_pattern_bytes
            ),
        ));
    }
    Ok(())
}

/// Parses an already-read JSON pattern (number text as written).
pub fn parse_json(json: &Json, limits: &Limits) -> Result<Pattern, PatternError> {
    let Json::Object(members) = json else {
        return Err(PatternError::new("", "Filter is not an object"));
    };
    let mut parser = Parser {
        limits,
        subrules: Vec::new(),
        wildcards: Vec::new(),
    };
    parser.object(members, "", None, false)?;
    let Parser {
        subrules,
        wildcards,
        ..
    } = parser;
    // The matcher tracks a sub-rule's fields in a 64-bit set, whatever the configured limit.
    let max_fields = limits
        .max_fields_per_subrule
        .min(MAX_CONDITIONS_PER_SUBRULE);
    for rule in &subrules {
        if rule.len() > max_fields {
            return Err(PatternError::new(
                "",
                format!(
                    "Pattern has {} fields in one branch; the limit is {}",
                    rule.len(),
                    max_fields
                ),
            ));
        }
    }
    check_wildcard_complexity(&wildcards, limits)?;
    Ok(Pattern {
        subrules: subrules
            .into_iter()
            .map(|fields| SubRule {
                fields: fields
                    .into_iter()
                    .map(|(path, conditions)| Field { path, conditions })
                    .collect(),
            })
            .collect(),
    })
}

/// Scores, per leaf path, every `wildcard` condition the pattern uses (not anything-but
/// wildcards, as event-ruler), and refuses the pattern if any path is too complex.
fn check_wildcard_complexity(
    wildcards: &[(String, Wildcard, String)],
    limits: &Limits,
) -> Result<(), PatternError> {
    if wildcards.is_empty() {
        return Ok(());
    }
    let cap = limits.max_wildcard_complexity + 1;
    let score = wildcard::max_field_complexity(
        wildcards.iter().map(|(path, w, _)| (path.as_str(), w)),
        cap,
    );
    if score > limits.max_wildcard_complexity {
        return Err(PatternError::new(wildcards[0].2.clone(), TOO_COMPLEX));
    }
    Ok(())
}

type Fields = Vec<(String, Vec<Condition>)>;

struct Parser<'l> {
    limits: &'l Limits,
    /// The sub-rules built so far (empty until the first field).
    subrules: Vec<Fields>,
    /// Every wildcard with its leaf path and pointer, for the complexity check.
    wildcards: Vec<(String, Wildcard, String)>,
}

fn err<T>(pointer: &str, reason: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError::new(pointer, reason))
}

/// RFC 6901: `~` becomes `~0` and `/` becomes `~1`.
fn pointer_to(base: &str, key: &str) -> String {
    let mut out = String::with_capacity(base.len() + key.len() + 1);
    out.push_str(base);
    out.push('/');
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

fn index_pointer(base: &str, i: usize) -> String {
    format!("{base}/{i}")
}

/// What Jackson's `getText()` shows for a token where a numeric operator was expected.
fn token_text(value: Option<&Json>) -> String {
    match value {
        None => "]".into(),
        Some(Json::Object(_)) => "{".into(),
        Some(Json::Array(_)) => "[".into(),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Number(t)) => t.clone(),
        Some(Json::Bool(b)) => b.to_string(),
        Some(Json::Null) => "null".into(),
    }
}

impl Parser<'_> {
    fn object(
        &mut self,
        members: &[(String, Json)],
        pointer: &str,
        prefix: Option<&str>,
        in_or: bool,
    ) -> Result<(), PatternError> {
        if members.is_empty() {
            return err(pointer, "Empty objects are not allowed");
        }
        for (key, value) in members {
            let here = pointer_to(pointer, key);
            if key == "$or" {
                self.or(value, &here, prefix)?;
                continue;
            }
            if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
                return err(
                    &here,
                    format!("{key} is Ruler reserved fieldName which cannot be used inside $or."),
                );
            }
            let path = match prefix {
                None => key.clone(),
                Some(prefix) => format!("{prefix}.{key}"),
            };
            match value {
                Json::Object(inner) => self.object(inner, &here, Some(&path), in_or)?,
                Json::Array(items) => {
                    let conditions = self.conditions(items, &here, &path)?;
                    self.put(path, conditions);
                }
                _ => return err(&here, format!("\"{key}\" must be an object or an array")),
            }
        }
        Ok(())
    }

    fn or(
        &mut self,
        value: &Json,
        pointer: &str,
        prefix: Option<&str>,
    ) -> Result<(), PatternError> {
        let Json::Array(branches) = value else {
            return err(pointer, "It must be an Array followed with $or.");
        };
        let before = std::mem::take(&mut self.subrules);
        let mut after = Vec::new();
        for (i, branch) in branches.iter().enumerate() {
            let Json::Object(members) = branch else {
                return err(
                    &index_pointer(pointer, i),
                    "Only JSON object is allowed in array of $or relationship.",
                );
            };
            self.subrules = before.clone();
            self.object(members, &index_pointer(pointer, i), prefix, true)?;
            after.append(&mut self.subrules);
            if after.len() > self.limits.max_or_combinations {
                return err(
                    pointer,
                    format!(
                        "The use of $or results in more than {} rule combinations",
                        self.limits.max_or_combinations
                    ),
                );
            }
        }
        if branches.len() < 2 {
            return err(
                pointer,
                "There must have at least 2 Objects in $or relationship.",
            );
        }
        self.subrules = after;
        Ok(())
    }

    /// Sets the condition list of `path` in every current sub-rule (replacing an earlier one).
    fn put(&mut self, path: String, conditions: Vec<Condition>) {
        if self.subrules.is_empty() {
            self.subrules.push(Vec::new());
        }
        for rule in &mut self.subrules {
            match rule.iter_mut().find(|(p, _)| *p == path) {
                Some(slot) => slot.1 = conditions.clone(),
                None => rule.push((path.clone(), conditions.clone())),
            }
        }
    }

    fn conditions(
        &mut self,
        items: &[Json],
        pointer: &str,
        path: &str,
    ) -> Result<Vec<Condition>, PatternError> {
        if items.is_empty() {
            return err(pointer, "Empty arrays are not allowed");
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let here = index_pointer(pointer, i);
            out.push(match item {
                Json::String(s) => match parse_ip(s) {
                    Some(ip) => Condition::IpLiteral(IpRange::single(ip)),
                    None => Condition::Exact(s.clone()),
                },
                Json::Number(text) => Condition::Number {
                    text: text.clone(),
                    value: number::comparable(text),
                },
                Json::Bool(true) => Condition::True,
                Json::Bool(false) => Condition::False,
                Json::Null => Condition::Null,
                Json::Object(members) => self.operator(members, &here, path)?,
                Json::Array(_) => {
                    return err(
                        &here,
                        "Match value must be String, number, true, false, or null",
                    );
                }
            });
        }
        Ok(out)
    }

    fn operator(
        &mut self,
        members: &[(String, Json)],
        pointer: &str,
        path: &str,
    ) -> Result<Condition, PatternError> {
        let Some((name, value)) = members.first() else {
            return err(pointer, "Match expression name not found");
        };
        let here = pointer_to(pointer, name);
        let string = |message: &str| match value {
            Json::String(s) => Ok(s.clone()),
            _ => err(&here, message),
        };
        let only_one_key = "Only one key allowed in match expression";
        let too_many = "Too many elements in numeric expression";
        let (condition, extra_key_message) = match name.as_str() {
            "exactly" => (
                Condition::Exact(string("exact match pattern must be a string")?),
                only_one_key,
            ),
            "prefix" | "suffix" => {
                let suffix = name == "suffix";
                let condition = if let Json::Object(inner) = value {
                    let fold = ignore_case_affix(inner, &here, suffix)?;
                    if suffix {
                        Condition::SuffixIgnoreCase(fold)
                    } else {
                        Condition::PrefixIgnoreCase(fold)
                    }
                } else {
                    let text = string(&format!("{name} match pattern must be a string"))?;
                    if suffix {
                        Condition::Suffix(text)
                    } else {
                        Condition::Prefix(text)
                    }
                };
                (condition, only_one_key)
            }
            "equals-ignore-case" => (
                Condition::EqualsIgnoreCase(CaseFold::new(&string(
                    "equals-ignore-case match pattern must be a string",
                )?)),
                only_one_key,
            ),
            "wildcard" => {
                let text = string("wildcard match pattern must be a string")?;
                let w = Wildcard::parse(&text).or_else(|reason| err(&here, reason))?;
                self.wildcards
                    .push((path.to_owned(), w.clone(), here.clone()));
                (Condition::Wildcard(w), only_one_key)
            }
            "cidr" => {
                // event-ruler's message for a non-string cidr really says "prefix".
                let text = string("prefix match pattern must be a string")?;
                (
                    Condition::Cidr(
                        IpRange::parse_cidr(&text).or_else(|reason| err(&here, reason))?,
                    ),
                    only_one_key,
                )
            }
            "exists" => match value {
                Json::Bool(b) => (Condition::Exists(*b), only_one_key),
                _ => return err(&here, "exists match pattern must be either true or false."),
            },
            "numeric" => match value {
                Json::Array(items) => (Condition::Numeric(numeric(items, &here)?), too_many),
                _ => return err(&here, "Value of numeric must be an array."),
            },
            "anything-but" => (
                Condition::AnythingBut(anything_but(value, &here)?),
                too_many,
            ),
            other => return err(&here, format!("Unrecognized match type {other}")),
        };
        if members.len() > 1 {
            return err(&pointer_to(pointer, &members[1].0), extra_key_message);
        }
        Ok(condition)
    }
}

/// `{"prefix": {"equals-ignore-case": "…"}}` and the suffix twin.
fn ignore_case_affix(
    inner: &[(String, Json)],
    pointer: &str,
    suffix: bool,
) -> Result<CaseFold, PatternError> {
    let (kind, upper) = if suffix {
        ("suffix", "Suffix")
    } else {
        ("prefix", "Prefix")
    };
    let Some((name, value)) = inner.first() else {
        return err(pointer, format!("{upper} expression name not found"));
    };
    let here = pointer_to(pointer, name);
    if name != "equals-ignore-case" {
        return err(&here, format!("Unsupported {kind} pattern: {name}"));
    }
    let Json::String(text) = value else {
        return err(&here, "equals-ignore-case match pattern must be a string");
    };
    if inner.len() > 1 {
        return err(
            &pointer_to(pointer, &inner[1].0),
            "Only one key allowed in match expression",
        );
    }
    Ok(CaseFold::new(text))
}

fn comparable(text: &str, pointer: &str) -> Result<f64, PatternError> {
    number::comparable(text)
        .ok_or_else(|| PatternError::new(pointer, format!("Cannot compare number : {text}")))
}

/// `numeric`: `[op, v]` or `[lowop, v1, highop, v2]`, with event-ruler's checks in its order.
fn numeric(items: &[Json], pointer: &str) -> Result<Range, PatternError> {
    let at = |i: usize| index_pointer(pointer, i);
    let Some(Json::String(op)) = items.first() else {
        return err(
            &at(0),
            format!(
                "Invalid member in numeric match: {}",
                token_text(items.first())
            ),
        );
    };
    let value_of = |i: usize, name: &str| match items.get(i) {
        Some(Json::Number(text)) => Ok(text.as_str()),
        _ => err(&at(i), format!("Value of {name} must be numeric")),
    };
    let bound = |text: &str, i: usize, inclusive: bool| -> Result<Bound, PatternError> {
        Ok(Bound {
            value: comparable(text, &at(i))?,
            inclusive,
        })
    };
    match op.as_str() {
        "=" => {
            let text = value_of(1, "equals")?;
            if items.len() > 2 {
                return err(&at(2), "Too many elements in numeric expression");
            }
            let b = bound(text, 1, true)?;
            Ok(Range {
                low: Some(b),
                high: Some(b),
            })
        }
        ">" | ">=" => {
            let text = value_of(1, op)?;
            let low = Some(bound(text, 1, op == ">=")?);
            let Some(next) = items.get(2) else {
                return Ok(Range { low, high: None });
            };
            let Json::String(high_op) = next else {
                return err(
                    &at(2),
                    format!("Bad value in numeric range: {}", token_text(Some(next))),
                );
            };
            if high_op != "<" && high_op != "<=" {
                return err(&at(2), format!("Bad numeric range operator: {high_op}"));
            }
            let high_text = value_of(3, high_op)?;
            if items.len() > 4 {
                return err(&at(4), "Too many terms in numeric range expression");
            }
            let high = bound(high_text, 3, high_op == "<=")?;
            if low.is_some_and(|l| l.value >= high.value) {
                return err(pointer, "Bottom must be less than top");
            }
            Ok(Range {
                low,
                high: Some(high),
            })
        }
        "<" | "<=" => {
            let text = value_of(1, op)?;
            if items.len() > 2 {
                return err(&at(2), "Too many elements in numeric expression");
            }
            Ok(Range {
                low: None,
                high: Some(bound(text, 1, op == "<=")?),
            })
        }
        other => err(
            &at(0),
            format!("Unrecognized numeric range operator: {other}"),
        ),
    }
}

const ANYTHING_BUT_VALUE: &str =
    "Value of anything-but must be an array or single string/number value.";

fn anything_but(value: &Json, pointer: &str) -> Result<AnythingBut, PatternError> {
    match value {
        Json::Object(inner) => anything_but_operator(inner, pointer),
        Json::String(s) => Ok(AnythingBut::Strings(vec![s.clone()])),
        Json::Number(text) => Ok(AnythingBut::Numbers(vec![comparable(text, pointer)?])),
        Json::Array(items) => {
            let mut strings = Vec::new();
            let mut numbers = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Json::String(s) => strings.push(s.clone()),
                    Json::Number(text) => {
                        numbers.push(comparable(text, &index_pointer(pointer, i))?)
                    }
                    _ => {
                        return err(
                            &index_pointer(pointer, i),
                            "Inside anything but list, start|null|boolean is not supported.",
                        );
                    }
                }
            }
            match (strings.is_empty(), numbers.is_empty()) {
                (false, true) => Ok(AnythingBut::Strings(strings)),
                (true, false) => Ok(AnythingBut::Numbers(numbers)),
                _ => err(
                    pointer,
                    "Inside anything but list, either all values are number or string, mixed type is not supported",
                ),
            }
        }
        _ => err(pointer, ANYTHING_BUT_VALUE),
    }
}

/// `{"anything-but": {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": value or list}}`.
fn anything_but_operator(
    inner: &[(String, Json)],
    pointer: &str,
) -> Result<AnythingBut, PatternError> {
    let Some((name, value)) = inner.first() else {
        return err(pointer, "Anything-But expression name not found");
    };
    let here = pointer_to(pointer, name);
    let wrong_type = match name.as_str() {
        "equals-ignore-case" => {
            "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
        }
        "prefix" | "suffix" => "prefix/suffix match pattern must be a string",
        "wildcard" => "wildcard match pattern must be a string",
        other => return err(&here, format!("Unsupported anything-but pattern: {other}")),
    };
    let (items, single): (&[Json], bool) = match value {
        // An empty exclusion list would match every present leaf: refused like every empty list.
        Json::Array(items) if items.is_empty() => {
            return err(&here, "Empty arrays are not allowed");
        }
        Json::Array(items) => (items, false),
        Json::String(_) | Json::Number(_) => (std::slice::from_ref(value), true),
        _ => return err(&here, ANYTHING_BUT_VALUE),
    };
    let mut texts = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_pointer = if single {
            here.clone()
        } else {
            index_pointer(&here, i)
        };
        let Json::String(text) = item else {
            return err(&item_pointer, wrong_type);
        };
        if text.is_empty() && (name == "prefix" || name == "suffix") {
            return err(&item_pointer, "Null prefix/suffix not allowed");
        }
        texts.push((text.clone(), item_pointer));
    }
    if inner.len() > 1 {
        return err(
            &pointer_to(pointer, &inner[1].0),
            "Too many elements in numeric expression",
        );
    }
    Ok(match name.as_str() {
        "equals-ignore-case" => {
            AnythingBut::EqualsIgnoreCase(texts.iter().map(|(t, _)| CaseFold::new(t)).collect())
        }
        "prefix" => AnythingBut::Prefixes(texts.into_iter().map(|(t, _)| t).collect()),
        "suffix" => AnythingBut::Suffixes(texts.into_iter().map(|(t, _)| t).collect()),
        _ => AnythingBut::Wildcards(
            texts
                .iter()
                .map(|(t, p)| Wildcard::parse(t).or_else(|reason| err(p, reason)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_field_limit_still_stops_at_64() {
        let limits = Limits {
            max_fields_per_subrule: 1000,
            ..Limits::default()
        };
        let fields: Vec<String> = (0..65).map(|i| format!("\"f{i}\":[1]")).collect();
        let err = parse_str(&format!("{{{}}}", fields.join(",")), &limits).unwrap_err();
        assert_eq!(
            err.reason,
            "Pattern has 65 fields in one branch; the limit is 64"
        );
    }
}
