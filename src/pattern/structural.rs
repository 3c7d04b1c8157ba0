//! Skipping a JSON object or array of text already known to be valid JSON, by its structure
//! alone, 64 bytes at a time.
//!
//! The matcher reads only the parts of an event that some pattern names; the rest still has to
//! be passed over to find where the next member starts. When the text was validated before (at
//! ingest serde_json has read every entry), passing over a container needs only its brackets
//! outside strings: this module finds them the way simdjson's first stage does. Per block of 64
//! bytes it takes bit masks of the quotes, backslashes, openers (`{` `[`) and closers (`}` `]`);
//! the quotes' prefix XOR marks what lies inside strings; the brackets outside strings are
//! counted, and only a block in which the container may close is walked bit by bit. A block with
//! a backslash is walked byte by byte (escapes are rare in events).
//!
//! Hand-written (the pattern module uses `std` only): on x86-64 the masks come from SSE2, which
//! every x86-64 processor has; elsewhere from a plain byte loop with the same result.
//!
//! Nothing here validates: on text that is not valid JSON the answer is some position or
//! [`Skip::Truncated`], never a panic. Nesting deeper than the caller's limit is reported, so the
//! depth limit holds in skipped parts too.

/// Why a container could not be skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// The text ended inside the container.
    Truncated,
    /// Nesting went deeper than the limit, at the value at this position.
    TooDeep(usize),
}

const BLOCK: usize = 64;

/// The masks of one block: bit `i` stands for byte `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
}

/// The position just after the object or array that opens at `start` (`bytes[start]` is `{` or
/// `[`) whose depth is `depth` (the event itself is depth 0). As the validating reader does, a
/// value deeper than `max_depth` is refused, at the position of that value.
pub(crate) fn container_end(
    bytes: &[u8],
    start: usize,
    depth: usize,
    max_depth: usize,
) -> Result<usize, Skip> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the processor has POPCNT, which is all `with_popcnt` adds to the baseline.
        return unsafe { sse2::with_popcnt(bytes, start, depth, max_depth) };
    }
    scan(bytes, start, depth, max_depth)
}

/// [`container_end`]'s work; inlined into each instruction-set variant.
#[inline(always)]
fn scan(bytes: &[u8], start: usize, depth: usize, max_depth: usize) -> Result<usize, Skip> {
    let mut state = State {
        level: 0,
        // A container at level `room` holds values at depth `max_depth + 1`: it must be empty.
        room: (max_depth + 1).saturating_sub(depth),
        in_string: false,
        escaped: false,
    };
    let mut pos = start;
    while pos < bytes.len() {
        let end = (pos + BLOCK).min(bytes.len());
        let block = &bytes[pos..end];
        let masks = masks(block);
        if masks.backslash != 0 || state.escaped {
            // Escapes: this block byte by byte (strings may also end or start in it).
            if let Some(found) = state.walk_bytes(bytes, pos, end)? {
                return Ok(found);
            }
            pos = end;
            continue;
        }
        // Inside a string: from its opening quote up to (not including) its closing one.
        let mut inside = prefix_xor(masks.quote);
        if state.in_string {
            inside = !inside;
        }
        state.in_string = (inside >> (block.len() - 1)) & 1 == 1;
        let open = masks.open & !inside;
        let close = masks.close & !inside;
        let opens = open.count_ones() as usize;
        let closes = close.count_ones() as usize;
        if closes < state.level && state.level + opens < state.room {
            // Neither closes the container nor comes near the depth limit: count and go on.
            state.level = state.level + opens - closes;
        } else {
            let mut brackets = open | close;
            while brackets != 0 {
                let i = brackets.trailing_zeros() as usize;
                brackets &= brackets - 1;
                if let Some(found) = state.bracket(bytes, pos + i, open >> i & 1 == 1)? {
                    return Ok(found);
                }
            }
        }
        pos = end;
    }
    Err(Skip::Truncated)
}

/// Where the walk stands: open levels inside the container, the depth headroom, and whether it
/// is inside a string, just after a backslash in one.
struct State {
    level: usize,
    room: usize,
    in_string: bool,
    escaped: bool,
}

impl State {
    /// A bracket outside strings at `at`: the end of the container when it closes it.
    #[inline]
    fn bracket(&mut self, bytes: &[u8], at: usize, opens: bool) -> Result<Option<usize>, Skip> {
        if opens {
            self.level += 1;
            if self.level >= self.room {
                // Only an empty container fits at the last level the limit allows; the value
                // that is too deep is its first element, or its first member's value.
                let inner = after_space(bytes, at + 1);
                if !matches!(bytes.get(inner), Some(b'}' | b']')) {
                    let value = if bytes[at] == b'{' {
                        member_value(bytes, inner)
                    } else {
                        inner
                    };
                    return Err(Skip::TooDeep(value));
                }
            }
            Ok(None)
        } else {
            self.level = self.level.saturating_sub(1);
            Ok((self.level == 0).then_some(at + 1))
        }
    }

    /// `bytes[from..to]` byte by byte.
    fn walk_bytes(&mut self, bytes: &[u8], from: usize, to: usize) -> Result<Option<usize>, Skip> {
        for (at, &b) in bytes.iter().enumerate().take(to).skip(from) {
            if self.escaped {
                self.escaped = false;
            } else if self.in_string {
                match b {
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' | b'}' | b']' => {
                        if let Some(found) = self.bracket(bytes, at, matches!(b, b'{' | b'['))? {
                            return Ok(Some(found));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(None)
    }
}

/// The first position at or after `at` that is not JSON white space.
fn after_space(bytes: &[u8], at: usize) -> usize {
    at + bytes
        .get(at..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        .count()
}

/// Where the value of the member whose key starts at `key` (its opening quote) starts.
fn member_value(bytes: &[u8], key: usize) -> usize {
    let end = string_end(bytes, key + 1);
    let colon = after_space(bytes, end + 1);
    after_space(bytes, colon + 1)
}

/// The position of the closing quote of the string whose content starts at `from` (the text's
/// length if there is none).
#[inline]
pub(crate) fn string_end(bytes: &[u8], from: usize) -> usize {
    let mut p = from;
    loop {
        p = string_stop(bytes, p);
        match bytes.get(p) {
            None => return bytes.len(),
            Some(b'"') => return p,
            Some(b'\\') => p += 2,
            Some(_) => p += 1,
        }
    }
}

/// The position of the first byte at or after `from` that ends a run of plain string content:
/// a quote, a backslash or a control character (`bytes.len()` when there is none).
#[inline]
pub(crate) fn string_stop(bytes: &[u8], from: usize) -> usize {
    let mut p = from;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    while let Some(chunk) = bytes.get(p..p + 16) {
        let stops = sse2::string_stops(chunk);
        if stops != 0 {
            return p + stops.trailing_zeros() as usize;
        }
        p += 16;
    }
    while let Some(&b) = bytes.get(p) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        p += 1;
    }
    p
}

/// Bit `i` is the XOR of bits `0..=i`: set from an opening quote up to its closing quote.
#[inline]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

#[inline(always)]
fn masks(block: &[u8]) -> Masks {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        if block.len() == BLOCK {
            sse2::masks(block)
        } else {
            // The text's last bytes, padded with spaces (which are in no mask).
            let mut padded = [b' '; BLOCK];
            padded[..block.len()].copy_from_slice(block);
            sse2::masks(&padded)
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    masks_bytes(block)
}

/// The masks by a byte loop (every block off x86-64; the SIMD masks' reference in tests).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn masks_bytes(block: &[u8]) -> Masks {
    let mut m = Masks {
        quote: 0,
        backslash: 0,
        open: 0,
        close: 0,
    };
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        match b {
            b'"' => m.quote |= bit,
            b'\\' => m.backslash |= bit,
            b'{' | b'[' => m.open |= bit,
            b'}' | b']' => m.close |= bit,
            _ => {}
        }
    }
    m
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    use super::{BLOCK, Masks, Skip};

    /// [`super::scan`] where the processor counts bits in one instruction (most x86-64 since
    /// 2008, but not the baseline, which would count them with a dozen shifts and masks).
    #[target_feature(enable = "popcnt")]
    pub(super) fn with_popcnt(
        bytes: &[u8],
        start: usize,
        depth: usize,
        max_depth: usize,
    ) -> Result<usize, Skip> {
        super::scan(bytes, start, depth, max_depth)
    }

    /// Bit `i` set when byte `i` of the 16 is a quote, a backslash or a control character.
    #[inline(always)]
    pub(super) fn string_stops(chunk: &[u8]) -> u32 {
        assert_eq!(chunk.len(), 16);
        // SAFETY: SSE2 is part of the x86-64 baseline; the load reads the 16 bytes of `chunk`.
        unsafe {
            let v: __m128i = _mm_loadu_si128(chunk.as_ptr().cast());
            let control = _mm_set1_epi8(0x1f);
            let stops = _mm_or_si128(
                _mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
                ),
                // max(b, 0x1f) == 0x1f exactly when b <= 0x1f (unsigned).
                _mm_cmpeq_epi8(_mm_max_epu8(v, control), control),
            );
            _mm_movemask_epi8(stops) as u32
        }
    }

    /// The masks of a whole block with SSE2.
    #[inline(always)]
    pub(super) fn masks(block: &[u8]) -> Masks {
        assert_eq!(block.len(), BLOCK);
        let mut m = Masks {
            quote: 0,
            backslash: 0,
            open: 0,
            close: 0,
        };
        // SAFETY: these intrinsics need SSE2, which this module is compiled only with (it is part
        // of the x86-64 baseline); each load reads the 16 bytes of `chunk`, unaligned loads being
        // allowed.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            // `[` | 0x20 is `{` and `]` | 0x20 is `}`; no other byte maps onto either.
            let case = _mm_set1_epi8(0x20);
            let open = _mm_set1_epi8(b'{' as i8);
            let close = _mm_set1_epi8(b'}' as i8);
            for (lane, chunk) in block.chunks_exact(16).enumerate() {
                let v: __m128i = _mm_loadu_si128(chunk.as_ptr().cast());
                let folded = _mm_or_si128(v, case);
                let bits = |x: __m128i| u64::from(_mm_movemask_epi8(x) as u16) << (lane * 16);
                m.quote |= bits(_mm_cmpeq_epi8(v, quote));
                m.backslash |= bits(_mm_cmpeq_epi8(v, backslash));
                m.open |= bits(_mm_cmpeq_epi8(folded, open));
                m.close |= bits(_mm_cmpeq_epi8(folded, close));
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: where the validating reader's skip of the value at 0 ends.
    fn reference(text: &str) -> usize {
        let mut lexer = super::super::json::Lexer::new(text);
        lexer.skip_value(0).expect("valid JSON");
        lexer.position()
    }

    #[test]
    fn brackets_inside_strings_and_escapes_do_not_count() {
        let cases = [
            r#"{}"#,
            r#"[]"#,
            r#"{"a":"}","b":["]",{"c":"\"}"}]}"#,
            r#"{"a":"\\","b":"\\\"]"}"#,
            r#"[[[[1,2],[3]],{"x":"[[["}]]"#,
        ];
        for text in cases {
            assert_eq!(
                container_end(text.as_bytes(), 0, 0, 1000),
                Ok(text.len()),
                "{text}"
            );
        }
    }

    #[test]
    fn strings_and_containers_carry_over_block_boundaries() {
        // A string holding brackets, starting at every offset around the first two boundaries.
        for offset in 0..140 {
            for inside in ["}]", "{[", "}}]]}}", ""] {
                let text = format!(
                    r#"{{"k":"{}{inside}{}","x":[1]}} ,"#,
                    "a".repeat(offset),
                    "b".repeat(offset % 70)
                );
                assert_eq!(
                    container_end(text.as_bytes(), 0, 0, 1000),
                    Ok(text.len() - 2),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn agrees_with_the_validating_skip_across_block_boundaries() {
        // Strings, escapes and brackets placed at every offset around the 64-byte boundaries.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut long = 0;
        for _ in 0..2000 {
            let text = random_json(&mut next, 0);
            let padded = format!("{text} ,1]");
            if !text.starts_with(['{', '[']) {
                continue;
            }
            let end = reference(&padded);
            long += usize::from(end > 2 * BLOCK);
            assert_eq!(
                container_end(padded.as_bytes(), 0, 0, 1000),
                Ok(end),
                "{padded}"
            );
        }
        // Enough of them span several blocks to test the carries between blocks.
        assert!(long > 200, "only {long} texts longer than two blocks");
    }

    fn random_json(next: &mut impl FnMut() -> u64, depth: usize) -> String {
        let pick = next() % if depth > 6 { 4 } else { 7 };
        match pick {
            0 => "12.5e3".to_owned(),
            1 => "true".to_owned(),
            2 => {
                let pieces = [
                    "a", "}", "]", "{", "[", "xyz", "}]", "\\\"", "\\\\", "\\n", "\\u00e9",
                ];
                let n = next() % 12;
                // Escapes in one string of four, so that many blocks have no backslash.
                let kinds = if next().is_multiple_of(4) {
                    pieces.len()
                } else {
                    7
                };
                let body: String = (0..n)
                    .map(|_| pieces[(next() % kinds as u64) as usize])
                    .collect();
                format!("\"{body}\"")
            }
            3 => "null".to_owned(),
            4 | 5 => {
                let n = next() % 6;
                let items: Vec<String> = (0..n).map(|_| random_json(next, depth + 1)).collect();
                format!("[{}]", items.join(", "))
            }
            _ => {
                let n = next() % 6;
                let members: Vec<String> = (0..n)
                    .map(|i| format!("\"k{i}\\\"}}\": {}", random_json(next, depth + 1)))
                    .collect();
                format!("{{{}}}", members.join(","))
            }
        }
    }

    #[test]
    fn the_byte_masks_equal_the_simd_ones() {
        let text: Vec<u8> = (0..64u8).map(|i| b"\"\\{}[]ab"[(i % 8) as usize]).collect();
        let bytes = masks_bytes(&text);
        assert_eq!(masks(&text), bytes);
        assert_eq!(bytes.quote.count_ones(), 8);
        assert_eq!(bytes.open.count_ones(), 16);
    }

    #[test]
    fn string_stops_are_found_at_every_offset() {
        for len in 0..40 {
            for stop in [b'"', b'\\', b'\n', 0x1f] {
                let mut text = vec![b'a'; len];
                text.extend([stop, b'"']);
                text.extend([0xc3, 0xa9, b'x']);
                assert_eq!(string_stop(&text, 0), len, "{len} {stop}");
                assert_eq!(string_stop(&text, len + 2), len + 5);
            }
            // Bytes above 0x7f are content, not stops.
            let text = vec![0xe9; len];
            assert_eq!(string_stop(&text, 0), len);
        }
    }

    #[test]
    fn depth_and_truncation_are_reported() {
        let deep = "[".repeat(20) + &"]".repeat(20);
        assert_eq!(container_end(deep.as_bytes(), 0, 0, 30), Ok(40));
        assert_eq!(
            container_end(deep.as_bytes(), 0, 0, 10),
            Err(Skip::TooDeep(11))
        );
        assert_eq!(
            container_end(deep.as_bytes(), 0, 5, 10),
            Err(Skip::TooDeep(6))
        );
        assert_eq!(
            container_end(b"{\"a\":[1,2", 0, 0, 1000),
            Err(Skip::Truncated)
        );
        assert_eq!(
            container_end(b"{\"a\":\"}", 0, 0, 1000),
            Err(Skip::Truncated)
        );
    }
}
