//! The validated form of a pattern, and what one condition says about one event leaf.
//!
//! [`Condition`] is the single list of what the language supports. A pattern is kept as its
//! sub-rules (one per combination of `$or` branches), each a set of leaf paths with the condition
//! list for that path, which is also how event-ruler holds it.

use super::casefold::{Anchor, CaseFold};
use super::ip::{Ip, IpRange, parse_ip};
use super::number;
use super::wildcard::Wildcard;

/// A validated event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub(crate) subrules: Vec<SubRule>,
}

impl Pattern {
    /// The number of sub-rules this pattern expands to (1 unless it uses `$or`).
    pub fn subrule_count(&self) -> usize {
        self.subrules.len()
    }

    /// Every leaf path the pattern names (keys joined with `.`), once, in order, with the JSON
    /// types its conditions compare the leaf with: what a schema is checked against.
    pub fn field_uses(&self) -> Vec<FieldUse> {
        let mut uses: Vec<FieldUse> = Vec::new();
        for field in self.subrules.iter().flat_map(|s| &s.fields) {
            let expects = field.conditions.iter().filter_map(Condition::expects);
            match uses.iter_mut().find(|u| u.path == field.path) {
                Some(known) => known.expects.extend(expects),
                None => uses.push(FieldUse {
                    path: field.path.clone(),
                    expects: expects.collect(),
                }),
            }
        }
        for known in &mut uses {
            known.expects.sort_unstable();
            known.expects.dedup();
        }
        uses
    }

    /// The strings `path` must equal exactly in every sub-rule (`detail-type`, `source`); `None`
    /// when some sub-rule lets any other value through.
    pub fn exact_values(&self, path: &str) -> Option<Vec<String>> {
        let mut values = Vec::new();
        for subrule in &self.subrules {
            let field = subrule.fields.iter().find(|f| f.path == path)?;
            for condition in &field.conditions {
                match condition {
                    Condition::Exact(value) => values.push(value.clone()),
                    _ => return None,
                }
            }
        }
        values.sort_unstable();
        values.dedup();
        Some(values)
    }
}

/// A leaf path a pattern names and the JSON types it compares it with (`string`, `number`,
/// `boolean`, `null`; none for `exists` alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldUse {
    pub path: String,
    pub expects: Vec<&'static str>,
}

/// One `$or` combination: every field must be satisfied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SubRule {
    pub(crate) fields: Vec<Field>,
}

/// A leaf path (keys joined with `.`) and its condition list (any one may match).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub(crate) path: String,
    pub(crate) conditions: Vec<Condition>,
}

/// One element of a condition list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    /// A string literal (or `{"exactly": …}`): byte-exact equality with a string leaf.
    Exact(String),
    /// A string literal that reads as an IP address: equal as an address (`10.0.0.1` = `10.0.0.01`).
    IpLiteral(IpRange),
    /// A number literal: numerically equal (when comparable) or the identical text.
    Number {
        text: String,
        value: Option<f64>,
    },
    True,
    False,
    Null,
    Prefix(String),
    Suffix(String),
    PrefixIgnoreCase(CaseFold),
    SuffixIgnoreCase(CaseFold),
    EqualsIgnoreCase(CaseFold),
    Wildcard(Wildcard),
    Numeric(Range),
    Cidr(IpRange),
    /// `exists: true` is satisfied by any leaf; `exists: false` by the path having no leaf.
    Exists(bool),
    AnythingBut(AnythingBut),
}

impl Condition {
    /// The JSON type of leaf this condition can be satisfied by, when only one can.
    fn expects(&self) -> Option<&'static str> {
        match self {
            Condition::Exact(_)
            | Condition::IpLiteral(_)
            | Condition::Prefix(_)
            | Condition::Suffix(_)
            | Condition::PrefixIgnoreCase(_)
            | Condition::SuffixIgnoreCase(_)
            | Condition::EqualsIgnoreCase(_)
            | Condition::Wildcard(_)
            | Condition::Cidr(_) => Some("string"),
            Condition::Number { .. } | Condition::Numeric(_) => Some("number"),
            Condition::True | Condition::False => Some("boolean"),
            Condition::Null => Some("null"),
            // `exists` and `anything-but` are satisfied by leaves of any type.
            Condition::Exists(_) | Condition::AnythingBut(_) => None,
        }
    }
}

/// The `anything-but` family: satisfied by a leaf that is *not* one of these.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AnythingBut {
    Strings(Vec<String>),
    /// Comparable values; a number leaf qualifies unless it equals one of them.
    Numbers(Vec<f64>),
    Prefixes(Vec<String>),
    Suffixes(Vec<String>),
    EqualsIgnoreCase(Vec<CaseFold>),
    Wildcards(Vec<Wildcard>),
}

/// A numeric interval; either end may be open or absent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Range {
    pub(crate) low: Option<Bound>,
    pub(crate) high: Option<Bound>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bound {
    pub(crate) value: f64,
    pub(crate) inclusive: bool,
}

impl Range {
    #[inline]
    pub(crate) fn contains(&self, v: f64) -> bool {
        let above = match self.low {
            None => true,
            Some(b) => v > b.value || (b.inclusive && v == b.value),
        };
        let below = match self.high {
            None => true,
            Some(b) => v < b.value || (b.inclusive && v == b.value),
        };
        above && below
    }
}

/// One leaf of an event, as the conditions see it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Leaf<'a> {
    Str(&'a str),
    /// The number's text and, if it is comparable, its value.
    Num(&'a str, Option<f64>),
    True,
    False,
    Null,
}

impl<'a> Leaf<'a> {
    /// Builds a number leaf from its text.
    pub(crate) fn number(text: &'a str) -> Leaf<'a> {
        Leaf::Num(text, number::comparable(text))
    }
}

impl Condition {
    /// Whether this condition is satisfied by this one leaf. `exists: false` never is: it is
    /// satisfied by absence, which only the whole event can tell.
    pub(crate) fn matches_leaf(&self, leaf: Leaf<'_>) -> bool {
        match (self, leaf) {
            (Condition::Exact(s), Leaf::Str(v)) => s == v,
            (Condition::IpLiteral(range) | Condition::Cidr(range), Leaf::Str(v)) => {
                parse_ip(v).is_some_and(|ip: Ip| range.contains(ip))
            }
            (Condition::Number { text, value }, Leaf::Num(t, v)) => {
                text == t || matches!((value, v), (Some(a), Some(b)) if a == &b)
            }
            (Condition::True, Leaf::True)
            | (Condition::False, Leaf::False)
            | (Condition::Null, Leaf::Null) => true,
            (Condition::Prefix(p), Leaf::Str(v)) => v.as_bytes().starts_with(p.as_bytes()),
            (Condition::Suffix(s), Leaf::Str(v)) => v.as_bytes().ends_with(s.as_bytes()),
            (Condition::PrefixIgnoreCase(c), Leaf::Str(v)) => {
                c.matches(v.as_bytes(), Anchor::Prefix)
            }
            (Condition::SuffixIgnoreCase(c), Leaf::Str(v)) => {
                c.matches(v.as_bytes(), Anchor::Suffix)
            }
            (Condition::EqualsIgnoreCase(c), Leaf::Str(v)) => {
                c.matches(v.as_bytes(), Anchor::Whole)
            }
            (Condition::Wildcard(w), Leaf::Str(v)) => w.matches(v.as_bytes()),
            (Condition::Numeric(range), Leaf::Num(_, Some(v))) => range.contains(v),
            (Condition::Exists(present), _) => *present,
            (Condition::AnythingBut(ab), leaf) => ab.matches_leaf(leaf),
            _ => false,
        }
    }
}

impl AnythingBut {
    pub(crate) fn matches_leaf(&self, leaf: Leaf<'_>) -> bool {
        let Leaf::Str(v) = leaf else {
            // Numbers, booleans and null qualify for every form except the numeric one, where
            // a number must differ from every excluded value. A number no double holds exactly
            // (`1e400`, `9007199254740993`) differs from all of them: they are comparable.
            return match (self, leaf) {
                (AnythingBut::Numbers(list), Leaf::Num(_, value)) => {
                    value.is_none_or(|v| !list.contains(&v))
                }
                _ => true,
            };
        };
        let bytes = v.as_bytes();
        match self {
            AnythingBut::Strings(list) => !list.iter().any(|s| s == v),
            AnythingBut::Numbers(_) => true,
            AnythingBut::Prefixes(list) => !list.iter().any(|p| bytes.starts_with(p.as_bytes())),
            AnythingBut::Suffixes(list) => !list.iter().any(|s| bytes.ends_with(s.as_bytes())),
            AnythingBut::EqualsIgnoreCase(list) => {
                !list.iter().any(|c| c.matches(bytes, Anchor::Whole))
            }
            AnythingBut::Wildcards(list) => !list.iter().any(|w| w.matches(bytes)),
        }
    }
}
