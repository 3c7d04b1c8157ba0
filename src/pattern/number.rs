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
    let decimal = Decimal::parse(text)?;
    // Fast path: at most 15 significant digits within the normal range always round-trip
    // (DBL_DIG), so the nearest double's shortest spelling has the same value.
    if decimal.digits.len() <= 15 && (-300..=300).contains(&decimal.exponent) {
        return Some(value);
    }
    let mut buf = StackString::default();
    // `{:e}` prints the shortest digits that read back as the same double.
    write!(buf, "{value:e}").ok()?;
    let shortest = Decimal::parse(buf.as_str())?;
    if shortest == decimal {
        return Some(value);
    }
    // Java (event-ruler's `Double.toString`) prints at least two significant digits, the two
    // nearest the exact value: the smallest subnormal is `4.9e-324` there and `5e-324` here.
    // Both spellings name the same double.
    if shortest.digits.len() == 1 {
        let mut two = StackString::default();
        write!(two, "{value:.1e}").ok()?;
        let java = Decimal::parse(two.as_str())?;
        if java == decimal && two.as_str().parse::<f64>().ok() == Some(value) {
            return Some(value);
        }
    }
    None
}

/// The key under which comparable numbers are indexed for equality (`-0` and `0` are one key).
#[inline]
pub fn key(value: f64) -> u64 {
    if value == 0.0 { 0 } else { value.to_bits() }
}

/// A decimal number normalised for exact comparison: sign, significant digits without leading or
/// trailing zeros, and the power of ten of the last digit. Zero has no digits and no sign.
#[derive(Debug, PartialEq, Eq)]
struct Decimal<'a> {
    negative: bool,
    digits: DigitString<'a>,
    exponent: i64,
}

/// The significant digits of a number text, possibly spread over its integer and fraction parts.
#[derive(Debug)]
struct DigitString<'a> {
    int: &'a [u8],
    frac: &'a [u8],
}

impl DigitString<'_> {
    fn len(&self) -> usize {
        self.int.len() + self.frac.len()
    }
    fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.int.iter().chain(self.frac.iter()).copied()
    }
}

impl PartialEq for DigitString<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
impl Eq for DigitString<'_> {}

impl<'a> Decimal<'a> {
    /// Parses `-?digits(.digits)?([eE][+-]?digits)?`; `None` for anything else.
    fn parse(text: &'a str) -> Option<Decimal<'a>> {
        let bytes = text.as_bytes();
        let (negative, rest) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            _ => (false, bytes),
        };
        let mantissa_end = rest
            .iter()
            .position(|&b| b == b'e' || b == b'E')
            .unwrap_or(rest.len());
        let (mantissa, exp_part) = rest.split_at(mantissa_end);
        let mut exponent: i64 = if exp_part.is_empty() {
            0
        } else {
            let exp_text = std::str::from_utf8(&exp_part[1..]).ok()?;
            // Exponents beyond this are far outside the double range either way.
            exp_text.parse::<i64>().ok()?.clamp(-1_000_000, 1_000_000)
        };
        let (mut int, mut frac) = match mantissa.iter().position(|&b| b == b'.') {
            Some(dot) => (&mantissa[..dot], &mantissa[dot + 1..]),
            None => (mantissa, &mantissa[mantissa.len()..]),
        };
        if int.is_empty() || !int.iter().chain(frac.iter()).all(u8::is_ascii_digit) {
            return None;
        }
        exponent -= frac.len() as i64;
        // Strip leading zeros (across the dot) and trailing zeros (across the dot).
        while let Some((&b'0', tail)) = int.split_first() {
            int = tail;
        }
        if int.is_empty() {
            while let Some((&b'0', tail)) = frac.split_first() {
                frac = tail;
            }
        }
        while let Some((&b'0', head)) = frac.split_last() {
            frac = head;
            exponent += 1;
        }
        if frac.is_empty() {
            while let Some((&b'0', head)) = int.split_last() {
                int = head;
                exponent += 1;
            }
        }
        let digits = DigitString { int, frac };
        if digits.len() == 0 {
            return Some(Decimal {
                negative: false,
                digits,
                exponent: 0,
            });
        }
        Some(Decimal {
            negative,
            digits,
            exponent,
        })
    }
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
