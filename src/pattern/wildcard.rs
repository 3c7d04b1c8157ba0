//! The `wildcard` operator: parsing with event-ruler's escapes and messages, matching, and the
//! complexity score that refuses patterns too non-deterministic to match quickly.

use std::collections::{HashMap, HashSet, VecDeque};

/// A parsed wildcard: literal byte runs separated by `*` (so `parts.len()` is stars + 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Wildcard {
    parts: Vec<Vec<u8>>,
}

impl Wildcard {
    /// Parses a wildcard value. `\*` is a literal star and `\\` a literal backslash; any other
    /// escape, a trailing backslash, or two stars in a row is refused. Positions in messages
    /// count UTF-8 bytes from 1, as event-ruler's (which counts the opening quote) do.
    pub fn parse(text: &str) -> Result<Wildcard, String> {
        let bytes = text.as_bytes();
        let mut parts = vec![Vec::new()];
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'*' => {
                    if bytes.get(i + 1) == Some(&b'*') {
                        return Err(format!("Consecutive wildcard characters at pos {}", i + 1));
                    }
                    parts.push(Vec::new());
                }
                b'\\' => match bytes.get(i + 1) {
                    Some(&next @ (b'*' | b'\\')) => {
                        push_last(&mut parts, next);
                        i += 1;
                    }
                    _ => return Err(format!("Invalid escape character at pos {}", i + 1)),
                },
                b => push_last(&mut parts, b),
            }
            i += 1;
        }
        Ok(Wildcard { parts })
    }

    /// Whether the whole of `value` matches (anchored at both ends; `*` spans any bytes).
    #[inline]
    pub fn matches(&self, value: &[u8]) -> bool {
        let (first, rest) = match self.parts.split_first() {
            Some(split) => split,
            None => return value.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            return value == first.as_slice();
        };
        if value.len() < first.len() + last.len()
            || !value.starts_with(first)
            || !value.ends_with(last)
        {
            return false;
        }
        // Leftmost-first placement of each middle part is optimal for `*`-only globs.
        let mut window = &value[first.len()..value.len() - last.len()];
        for part in middle {
            match find(window, part) {
                Some(at) => window = &window[at + part.len()..],
                None => return false,
            }
        }
        true
    }

    /// The literal runs between the stars, in order.
    pub(crate) fn parts(&self) -> &[Vec<u8>] {
        &self.parts
    }

    fn tokens(&self) -> Vec<Option<u8>> {
        let mut tokens = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                tokens.push(None);
            }
            tokens.extend(part.iter().map(|&b| Some(b)));
        }
        tokens
    }
}

fn push_last(parts: &mut [Vec<u8>], b: u8) {
    if let Some(last) = parts.last_mut() {
        last.push(b);
    }
}

#[inline]
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    let first = needle[0];
    let last_start = haystack.len().checked_sub(needle.len())?;
    (0..=last_start).find(|&i| haystack[i] == first && &haystack[i..i + needle.len()] == needle)
}

/// The complexity of a set of wildcards on one field: the largest number of automaton
/// transitions that some input keeps alive at once, summed over the wildcards, modelled on
/// event-ruler's `MachineComplexityEvaluator` (a transition into a literal, a star's loop, and
/// a star reachable right after a literal each count). Evaluation stops at `cap`.
///
/// On AWS's recorded verdicts this scores `*:*:*:*:*:event-bus/*` above 10 (refused) and
/// `/Users/*/dir/dir/dir/dir/dir/doc.txt`, `arn:aws:events:us-east-1:*:event-bus/*`, `*/dir/*` and
/// `["*/init/*", "*/dir/*"]` at or below it (accepted); the unit tests pin those five.
pub fn complexity(wildcards: &[&Wildcard], cap: usize) -> usize {
    let machines: Vec<Vec<Option<u8>>> = wildcards.iter().map(|w| w.tokens()).collect();
    // Input bytes that make a difference: every literal byte, plus one byte none of them uses.
    let mut alphabet: Vec<u8> = machines
        .iter()
        .flatten()
        .flatten()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    alphabet.sort_unstable();
    if let Some(other) = (0u8..=255).find(|b| !alphabet.contains(b)) {
        alphabet.push(other);
    }
    // One set of active positions per machine; a position p means p tokens consumed.
    type State = Vec<Vec<usize>>;
    let start: State = machines.iter().map(|m| closure(m, vec![0])).collect();
    let mut seen: HashSet<State> = HashSet::from([start.clone()]);
    let mut queue = VecDeque::from([start]);
    let mut worst = 0;
    // Bound the exploration itself; a set this large is not worth accepting anyway.
    let mut budget = 20_000usize;
    while let Some(state) = queue.pop_front() {
        for &byte in &alphabet {
            let mut score = 0;
            let next: State = machines
                .iter()
                .zip(&state)
                .map(|(m, active)| {
                    let (positions, s) = step(m, active, byte);
                    score += s;
                    positions
                })
                .collect();
            worst = worst.max(score);
            if worst >= cap || budget == 0 {
                return cap;
            }
            if next.iter().any(|p| !p.is_empty()) && seen.insert(next.clone()) {
                budget -= 1;
                queue.push_back(next);
            }
        }
    }
    worst
}

/// Adds the positions reachable by letting stars match nothing.
fn closure(tokens: &[Option<u8>], mut positions: Vec<usize>) -> Vec<usize> {
    let mut i = 0;
    while i < positions.len() {
        let p = positions[i];
        if p < tokens.len() && tokens[p].is_none() && !positions.contains(&(p + 1)) {
            positions.push(p + 1);
        }
        i += 1;
    }
    positions.sort_unstable();
    positions.dedup();
    positions
}

/// Consumes one byte; returns the new active positions and how many transitions that byte used.
fn step(tokens: &[Option<u8>], active: &[usize], byte: u8) -> (Vec<usize>, usize) {
    let mut literal_into = Vec::new();
    let mut star_loops = Vec::new();
    for &p in active {
        match tokens.get(p) {
            Some(None) => star_loops.push(p),
            Some(Some(b)) if *b == byte => literal_into.push(p + 1),
            _ => {}
        }
    }
    let mut score = literal_into.len() + star_loops.len();
    // A literal landing just before a star also keeps that star's loop in play.
    score += literal_into
        .iter()
        .filter(|&&p| tokens.get(p) == Some(&None) && !star_loops.contains(&p))
        .count();
    let mut next = literal_into;
    next.extend(star_loops);
    (closure(tokens, next), score)
}

/// Per-field complexity of all wildcards a pattern uses, for the limit check in `parse`.
pub fn max_field_complexity<'a>(
    by_field: impl IntoIterator<Item = (&'a str, &'a Wildcard)>,
    cap: usize,
) -> usize {
    let mut fields: HashMap<&str, Vec<&Wildcard>> = HashMap::new();
    for (field, w) in by_field {
        let list = fields.entry(field).or_default();
        if !list.contains(&w) {
            list.push(w);
        }
    }
    fields
        .values()
        .map(|ws| complexity(ws, cap))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str) -> Wildcard {
        Wildcard::parse(text).unwrap()
    }

    #[test]
    fn parse_errors_name_the_byte_position() {
        assert_eq!(
            Wildcard::parse("arn:aws:events:us-east-1:**:event-bus/*").unwrap_err(),
            "Consecutive wildcard characters at pos 26"
        );
        assert_eq!(
            Wildcard::parse("a\\b").unwrap_err(),
            "Invalid escape character at pos 2"
        );
        assert_eq!(
            Wildcard::parse("ab\\").unwrap_err(),
            "Invalid escape character at pos 3"
        );
    }

    #[test]
    fn matching_is_anchored_and_escapes_are_literal() {
        assert!(w("*").matches(b""));
        assert!(w("").matches(b""));
        assert!(!w("").matches(b"a"));
        assert!(w("a*b*c").matches(b"abc"));
        assert!(w("a*b*c").matches(b"axxbyyc"));
        assert!(!w("a*b*c").matches(b"axxbyy"));
        assert!(!w("a*a").matches(b"a"));
        assert!(w("a\\*b").matches(b"a*b"));
        assert!(!w("a\\*b").matches(b"axb"));
        assert!(w("a\\\\b").matches(b"a\\b"));
        assert!(w("2*0*1*7").matches(b"2607117"));
    }

    #[test]
    fn complexity_agrees_with_aws_verdicts() {
        let score = |ws: &[&str]| {
            let parsed: Vec<Wildcard> = ws.iter().map(|t| w(t)).collect();
            complexity(&parsed.iter().collect::<Vec<_>>(), 100)
        };
        assert!(score(&["*:*:*:*:*:event-bus/*"]) > 10);
        assert!(score(&["/Users/*/dir/dir/dir/dir/dir/doc.txt"]) <= 10);
        assert_eq!(score(&["arn:aws:events:us-east-1:*:event-bus/*"]), 3);
        assert_eq!(score(&["*/dir/*"]), 4);
        assert!(score(&["*/init/*", "*/dir/*"]) <= 10);
        assert!(score(&["no-stars-at-all"]) <= 1);
    }
}
