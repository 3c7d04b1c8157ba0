//! `equals-ignore-case` and its prefix/suffix forms, with event-ruler's case model: for each
//! character `c` of the *pattern*, the event may hold either the lower-case or the upper-case
//! form of `c` (Unicode's unconditional mappings, as Java's `Locale.ROOT`). It is not case
//! folding and not symmetric: `straße` matches `STRASSE`, `σ` matches `Σ` but not `ς`, `k` does
//! not match the Kelvin sign. Unlike event-ruler we apply it per character, not per UTF-16 code
//! unit, so a pattern with an emoji still matches its upper-case form (`PATTERNS.md` decision 2).

/// A compiled case-insensitive string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaseFold {
    /// When the pattern is ASCII every alternative is the byte itself or its other case, so a
    /// byte-wise ASCII case-insensitive comparison is exact.
    ascii_lower: Option<Box<[u8]>>,
    /// Per pattern character, its accepted spellings (lower, upper), as UTF-8.
    chars: Vec<[Box<[u8]>; 2]>,
}

/// Where the pattern must sit in the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Whole,
    Prefix,
    Suffix,
}

impl CaseFold {
    pub fn new(pattern: &str) -> CaseFold {
        let ascii_lower = pattern
            .is_ascii()
            .then(|| pattern.to_ascii_lowercase().into_bytes().into_boxed_slice());
        let chars = pattern
            .chars()
            .map(|c| {
                let lower: String = c.to_lowercase().collect();
                let upper: String = c.to_uppercase().collect();
                [
                    lower.into_bytes().into_boxed_slice(),
                    upper.into_bytes().into_boxed_slice(),
                ]
            })
            .collect();
        CaseFold { ascii_lower, chars }
    }

    /// Per pattern character, its two accepted spellings (lower, upper).
    pub(crate) fn spellings(&self) -> &[[Box<[u8]>; 2]] {
        &self.chars
    }

    /// The lower-cased ASCII pattern, when the pattern is ASCII (used as an index key).
    pub fn ascii_key(&self) -> Option<&[u8]> {
        self.ascii_lower.as_deref()
    }

    pub fn matches(&self, value: &[u8], anchor: Anchor) -> bool {
        if let Some(key) = &self.ascii_lower {
            let n = key.len();
            return match anchor {
                Anchor::Whole => value.len() == n && value.eq_ignore_ascii_case(key),
                Anchor::Prefix => value.len() >= n && value[..n].eq_ignore_ascii_case(key),
                Anchor::Suffix => {
                    value.len() >= n && value[value.len() - n..].eq_ignore_ascii_case(key)
                }
            };
        }
        match anchor {
            Anchor::Suffix => self.matches_from_end(value),
            _ => self.matches_from_start(value, anchor == Anchor::Whole),
        }
    }

    /// Walks the pattern forwards keeping every byte offset the event could have reached.
    fn matches_from_start(&self, value: &[u8], whole: bool) -> bool {
        let mut offsets = vec![0usize];
        for alternatives in &self.chars {
            let mut next = Vec::with_capacity(2);
            for &at in &offsets {
                for alt in alternatives {
                    if value[at..].starts_with(alt) && !next.contains(&(at + alt.len())) {
                        next.push(at + alt.len());
                    }
                }
            }
            if next.is_empty() {
                return false;
            }
            offsets = next;
        }
        !whole || offsets.contains(&value.len())
    }

    /// The same walk backwards from the end of the value, for suffixes.
    fn matches_from_end(&self, value: &[u8]) -> bool {
        let mut ends = vec![value.len()];
        for alternatives in self.chars.iter().rev() {
            let mut next = Vec::with_capacity(2);
            for &end in &ends {
                for alt in alternatives {
                    if value[..end].ends_with(alt) && !next.contains(&(end - alt.len())) {
                        next.push(end - alt.len());
                    }
                }
            }
            if next.is_empty() {
                return false;
            }
            ends = next;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(pattern: &str, value: &str) -> bool {
        CaseFold::new(pattern).matches(value.as_bytes(), Anchor::Whole)
    }

    #[test]
    fn the_case_model_is_event_rulers() {
        assert!(eq("élan", "ÉLAN"));
        assert!(eq("straße", "STRASSE"));
        assert!(eq("σ", "Σ"));
        assert!(!eq("σ", "ς"));
        assert!(!eq("k", "\u{212A}"));
        assert!(!eq("i", "İ"));
        assert!(!eq("i", "ı"));
        assert!(eq("😀a", "😀A"));
        assert!(eq("", ""));
        assert!(!eq("", "a"));
        assert!(eq("HyDe", "hyde"));
        assert!(!eq("HyDe", "hydes"));
    }

    #[test]
    fn prefixes_and_suffixes() {
        let p = CaseFold::new("Straße");
        assert!(p.matches("STRASSE 5".as_bytes(), Anchor::Prefix));
        assert!(!p.matches("STRAS".as_bytes(), Anchor::Prefix));
        let s = CaseFold::new("ße");
        assert!(s.matches("GROSSE".as_bytes(), Anchor::Suffix));
        assert!(s.matches("große".as_bytes(), Anchor::Suffix));
        let a = CaseFold::new(".png");
        assert!(a.matches(b"photo.PNG", Anchor::Suffix));
        assert!(!a.matches(b"png", Anchor::Suffix));
    }
}
