//! EventBridge's number model (event-ruler's `ComparableNumber`).
//!
//! A JSON number is *comparable* when the decimal value of its text equals, exactly, the
//! IEEE-754 double nearest to it, i.e. when the text is the shortest round-trip spelling of a
//! double or numerically equal to one (or Java's two-digit spelling where the shortest has one
//! digit: `4.9e-324` as well as `5e-324`) (`5`, `5.0`, `5e0`, `0.1`, `-122.42916360922355`). Comparable
//! numbers compare by value over the whole double range. Others (`37.807807921694092`,
//! `9007199254740993`, `1e400`) can only match a literal with the identical text, and a `numeric`
//! or numeric `anything-but` pattern that uses one is refused with `Cannot compare number : <text>`.

use std::fmt::Write as _;

/// Returns the value of a JSON number text if the number is comparable.
#[inline]
pub fn comparable(text: &str) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    let bytes = text.as_bytes();
    // Integers of up to 15 digits are doubles exactly.
    let magnitude = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if magnitude.len() <= 15 && magnitude.iter().all(u8::is_ascii_digit) {
        return Some(value);
    }
    let mut buf = StackString::default();
    shortest(&mut buf, value)?;
    // Most texts are their double's shortest spelling letter for letter.
    if buf.as_bytes() == bytes {
        return Some(value);
    }
    let decimal = Decimal::parse(bytes)?;
    // At most 15 significant digits within the normal range always round-trip (DBL_DIG), so
    // the nearest double's shortest spelling has the same value.
    if decimal.len <= 15 && (-300..=300).contains(&decimal.exponent) {
        return Some(value);
    }
    let shortest = Decimal::parse(buf.as_bytes())?;
    if shortest == decimal {
        return Some(value);
    }
    // Java (event-ruler's `Double.toString`) prints at least two significant digits, the two
    // nearest the exact value: the smallest subnormal is `4.9e-324` there and `5e-324` here.
    // Both spellings name the same double.
    if shortest.len == 1 {
        let mut two = StackString::default();
        write!(two, "{value:.1e}").ok()?;
        let java = Decimal::parse(two.as_bytes())?;
        if java == decimal && two.as_str().parse::<f64>().ok() == Some(value) {
            return Some(value);
        }
    }
    None
}

/// Writes the shortest digits that read back as `value` (serde_json's float formatter, several
/// times faster than `{:e}`). Where two spellings of that length are equally near the exact
/// value, it takes the one with the even last digit, as Java's `Double.toString` (which
/// event-ruler's model uses) does since JDK 19; `{:e}` takes the upper one.
#[inline]
fn shortest(buf: &mut StackString, value: f64) -> Option<()> {
    let number = serde_json::Number::from_f64(value)?;
    write!(buf, "{number}").ok()
}

/// The key under which comparable numbers are indexed for equality (`-0` and `0` are one key).
#[inline]
pub fn key(value: f64) -> u64 {
    if value == 0.0 { 0 } else { value.to_bits() }
}

/// The most significant digits a comparable number can have: a double's shortest spelling
/// never needs more.
const MAX_DIGITS: usize = 17;

/// A decimal number normalised for exact comparison: sign, the significant digits without
/// leading or trailing zeros as an integer and their count, and the power of ten of the last
/// digit. Zero has no digits and no sign.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    mantissa: u64,
    len: usize,
    exponent: i64,
}

const POW10: [u64; MAX_DIGITS + 1] = {
    let mut table = [1u64; MAX_DIGITS + 1];
    let mut i = 1;
    while i <= MAX_DIGITS {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

impl Decimal {
    /// Parses `-?digits(.digits?)?([eE][+-]?digits)?` in one pass; `None` for anything else,
    /// and for a number of more than [`MAX_DIGITS`] significant digits (never comparable).
    fn parse(text: &[u8]) -> Option<Decimal> {
        let negative = text.first() == Some(&b'-');
        let mut i = usize::from(negative);
        let mut mantissa: u64 = 0;
        let mut len = 0;
        // Zeros after the last nonzero digit, not yet in the mantissa.
        let mut zeros = 0;
        let mut int_digits = 0;
        let mut frac_digits: i64 = 0;
        let mut in_frac = false;
        while let Some(&b) = text.get(i) {
            match b {
                b'0' => zeros += usize::from(len > 0),
                b'1'..=b'9' => {
                    len += zeros + 1;
                    if len > MAX_DIGITS {
                        return None;
                    }
                    mantissa = mantissa * POW10[zeros + 1] + u64::from(b - b'0');
                    zeros = 0;
                }
                b'.' if !in_frac && int_digits > 0 => {
                    in_frac = true;
                    i += 1;
                    continue;
                }
                _ => break,
            }
            if in_frac {
                frac_digits += 1;
            } else {
                int_digits += 1;
            }
            i += 1;
        }
        if int_digits == 0 {
            return None;
        }
        let exponent = match &text[i..] {
            [] => 0,
            [b'e' | b'E', exp @ ..] => exponent(exp)?,
            _ => return None,
        };
        if len == 0 {
            return Some(Decimal {
                negative: false,
                mantissa: 0,
                len: 0,
                exponent: 0,
            });
        }
        Some(Decimal {
            negative,
            mantissa,
            len,
            exponent: exponent - frac_digits + zeros as i64,
        })
    }
}

/// An exponent's `[+-]?digits`, clamped far outside the double range (either way it is).
fn exponent(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = (value * 10 + i64::from(b - b'0')).min(1_000_000);
    }
    Some(if negative { -value } else { value })
}

/// A fixed buffer for formatting one double without allocating.
struct StackString {
    buf: [u8; 40],
    len: usize,
}

impl Default for StackString {
    fn default() -> Self {
        StackString {
            buf: [0; 40],
            len: 0,
        }
    }
}

impl StackString {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackString {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_normalised() {
        let d = |t: &str| {
            Decimal::parse(t.as_bytes()).map(|d| (d.negative, d.mantissa, d.len, d.exponent))
        };
        assert_eq!(d("-122.4200"), Some((true, 12242, 5, -2)));
        assert_eq!(d("0.000120e3"), Some((false, 12, 2, -2)));
        assert_eq!(d("1200"), Some((false, 12, 2, 2)));
        assert_eq!(d("10.01"), Some((false, 1001, 4, -2)));
        assert_eq!(d("-0.0e5"), Some((false, 0, 0, 0)));
        assert_eq!(d("5."), Some((false, 5, 1, 0)));
        assert_eq!(
            d("1.2345678901234567"),
            Some((false, 12345678901234567, 17, -16))
        );
        assert_eq!(d("1.23456789012345678"), None);
        for bad in ["", "-", ".5", "1e", "1e+", "1x", "1.2.3", "--1"] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_fast_shortest_digits_are_those_of_the_standard_library() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut ties = 0;
        for i in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Every bit pattern, and decimal-looking values such as coordinates.
            let value = if i % 2 == 0 {
                f64::from_bits(seed)
            } else {
                (seed % 1_000_000_000) as f64 / 1e7 - 50.0
            };
            if !value.is_finite() {
                continue;
            }
            let mut fast = StackString::default();
            shortest(&mut fast, value).unwrap();
            let mut std = StackString::default();
            write!(std, "{value:e}").unwrap();
            let (a, b) = (
                Decimal::parse(fast.as_bytes()).unwrap(),
                Decimal::parse(std.as_bytes()).unwrap(),
            );
            assert_eq!(fast.as_str().parse::<f64>().unwrap(), value);
            if a != b {
                // Only a tie may differ: two spellings of the same length equally near the
                // exact value, where serde_json's formatter (and Java's `Double.toString` since JDK 19) takes the
                // even last digit and the standard library the upper one.
                assert_eq!(a.len, b.len, "{value:e}");
                assert_eq!(a.exponent, b.exponent, "{value:e}");
                ties += 1;
            }
        }
        assert!(ties < 100, "{ties} ties");
    }

    #[test]
    fn comparable_numbers_are_those_whose_double_is_exact() {
        for text in [
            "0",
            "-0",
            "5",
            "5.0",
            "5e0",
            "0.1",
            "1e300",
            "-122.42916360922355",
            "9007199254740992",
            "300.0",
            "1.7976931348623157e308",
            "5e-324",
            "4.9e-324",
            "4.9E-324",
            "1e-323",
            "9.9e-324",
            "100",
            "0.000001",
        ] {
            assert!(comparable(text).is_some(), "{text} should be comparable");
        }
        for text in [
            "37.807807921694092",
            "9007199254740993",
            "1e400",
            "-1e400",
            "0.10000000000000001",
            "4.94e-324",
            "4.8e-324",
            "1.4e-323",
        ] {
            assert!(
                comparable(text).is_none(),
                "{text} should not be comparable"
            );
        }
    }

    #[test]
    fn equal_values_share_a_key() {
        let k = |t| key(comparable(t).unwrap());
        assert_eq!(k("5"), k("5.0"));
        assert_eq!(k("5"), k("5e0"));
        assert_eq!(k("-0"), k("0"));
        assert_ne!(k("5"), k("-5"));
    }
}
