//! IP addresses and CIDR ranges, read the way event-ruler reads them (`CIDR.java`).
//!
//! Hand-written rather than `std::net` so the pattern module stays free of networking imports and
//! so the quirks are exactly event-ruler's: an IPv4 octet may have leading zeros and is read as
//! decimal (`10.0.0.010` is `10.0.0.10`); an IPv6 text is only tried when it is made of hex digits
//! and colons (no embedded IPv4, no zone); an IPv4-mapped IPv6 address is an IPv4 address; masks
//! must be below 32 (IPv4) or 128 (IPv6), so `/32` and `/128` are refused.
//!
//! Ranges cover one family: an IPv4 range never matches an IPv6 address. (event-ruler compares
//! hex strings, so `0.0.0.0/0` also matched `::1` in a probe; we do not copy that accident.)

/// An address of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ip {
    V4(u32),
    V6(u128),
}

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    low: Ip,
    high: Ip,
}

impl IpRange {
    /// The one-address range that a plain IP-looking string literal compiles to.
    pub fn single(ip: Ip) -> Self {
        IpRange { low: ip, high: ip }
    }

    /// Parses `address/mask`, with event-ruler's messages for each kind of mistake.
    pub fn parse_cidr(text: &str) -> Result<IpRange, String> {
        // Java's String.split drops trailing empty parts: "a/" has one part.
        let mut parts: Vec<&str> = text.split('/').collect();
        while parts.len() > 1 && parts.last() == Some(&"") {
            parts.pop();
        }
        if parts.len() != 2 {
            return Err("Malformed CIDR, one '/' required".into());
        }
        let mask: i64 =
            parse_java_int(parts[1]).ok_or("Malformed CIDR, mask bits must be an integer")?;
        if mask < 0 {
            return Err("Malformed CIDR, mask bits must not be negative".into());
        }
        let address = parts[0];
        if !looks_like_ip(address) {
            return Err(format!("Nonstandard IP address: {address}"));
        }
        match parse_ip(address) {
            Some(Ip::V4(v)) => {
                if mask > 31 {
                    return Err("IPv4 mask bits must be < 32".into());
                }
                let host = if mask == 0 {
                    u32::MAX
                } else {
                    u32::MAX >> mask
                };
                Ok(IpRange {
                    low: Ip::V4(v & !host),
                    high: Ip::V4(v | host),
                })
            }
            Some(Ip::V6(v)) => {
                if mask > 127 {
                    return Err("IPv6 mask bits must be < 128".into());
                }
                let host = if mask == 0 {
                    u128::MAX
                } else {
                    u128::MAX >> mask
                };
                Ok(IpRange {
                    low: Ip::V6(v & !host),
                    high: Ip::V6(v | host),
                })
            }
            None => Err(format!("Invalid IP address: {address}")),
        }
    }

    #[inline]
    pub fn contains(&self, ip: Ip) -> bool {
        match (self.low, self.high, ip) {
            (Ip::V4(lo), Ip::V4(hi), Ip::V4(v)) => lo <= v && v <= hi,
            (Ip::V6(lo), Ip::V6(hi), Ip::V6(v)) => lo <= v && v <= hi,
            _ => false,
        }
    }
}

/// Java's `Integer.parseInt`: optional sign, ASCII digits, within i32.
fn parse_java_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = text.parse().ok()?;
    (i64::from(i32::MIN)..=i64::from(i32::MAX))
        .contains(&value)
        .then_some(value)
}

/// event-ruler's two regular expressions: `[0-9]+(\.[0-9]+){3}` or `[0-9a-fA-F:]*:[0-9a-fA-F:]*`.
#[inline]
fn looks_like_ip(text: &str) -> bool {
    let b = text.as_bytes();
    let v4 = b.split(|&c| c == b'.').count() == 4
        && b.split(|&c| c == b'.')
            .all(|part| !part.is_empty() && part.iter().all(u8::is_ascii_digit));
    v4 || (b.contains(&b':') && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b':'))
}

/// Parses an address the way event-ruler does; `None` when it is not an IP address.
#[inline]
pub fn parse_ip(text: &str) -> Option<Ip> {
    let b = text.as_bytes();
    if b.is_empty() || b.len() > 45 || !looks_like_ip(text) {
        return None;
    }
    if b.contains(&b'.') {
        parse_v4(b).map(Ip::V4)
    } else {
        parse_v6(b)
    }
}

fn parse_v4(b: &[u8]) -> Option<u32> {
    let mut value = 0u32;
    for part in b.split(|&c| c == b'.') {
        let mut octet = 0u32;
        for &d in part {
            octet = octet * 10 + u32::from(d - b'0');
            if octet > 255 {
                return None;
            }
        }
        value = (value << 8) | octet;
    }
    Some(value)
}

fn parse_v6(b: &[u8]) -> Option<Ip> {
    // Split around a single "::" if present.
    let text = std::str::from_utf8(b).ok()?;
    let (head, tail, compressed) = match text.find("::") {
        Some(i) => {
            if text[i + 2..].contains("::") {
                return None;
            }
            (&text[..i], &text[i + 2..], true)
        }
        None => (text, "", false),
    };
    let groups = |s: &str| -> Option<Vec<u16>> {
        if s.is_empty() {
            return Some(Vec::new());
        }
        s.split(':')
            .map(|g| {
                if g.is_empty() || g.len() > 4 {
                    None
                } else {
                    u16::from_str_radix(g, 16).ok()
                }
            })
            .collect()
    };
    let head = groups(head)?;
    let tail = groups(tail)?;
    let count = head.len() + tail.len();
    if (compressed && count > 7) || (!compressed && count != 8) {
        return None;
    }
    let mut all = [0u16; 8];
    all[..head.len()].copy_from_slice(&head);
    all[8 - tail.len()..].copy_from_slice(&tail);
    let value = all
        .iter()
        .fold(0u128, |acc, &g| (acc << 16) | u128::from(g));
    // ::ffff:a.b.c.d written in hex is an IPv4 address to Java's InetAddress.
    if value >> 32 == 0xffff {
        return Some(Ip::V4(value as u32));
    }
    Some(Ip::V6(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_event_ruler() {
        assert_eq!(parse_ip("10.0.0.1"), Some(Ip::V4(0x0a00_0001)));
        assert_eq!(parse_ip("10.0.0.010"), Some(Ip::V4(0x0a00_000a)));
        assert_eq!(parse_ip("10.0.0.256"), None);
        assert_eq!(
            parse_ip("2001:db8::1"),
            parse_ip("2001:0db8:0000:0000:0000:0000:0000:0001")
        );
        assert_eq!(parse_ip("::ffff:a00:1"), Some(Ip::V4(0x0a00_0001)));
        assert_eq!(parse_ip("::"), Some(Ip::V6(0)));
        for bad in [
            "1:2",
            ":::",
            "1::2::3",
            "12345::",
            "hello",
            "1.2.3",
            "1.2.3.4.5",
            "",
        ] {
            assert_eq!(parse_ip(bad), None, "{bad}");
        }
    }

    #[test]
    fn cidr_errors_have_event_ruler_wording() {
        let err = |t| IpRange::parse_cidr(t).unwrap_err();
        assert_eq!(err("bad-filter"), "Malformed CIDR, one '/' required");
        assert_eq!(err("10.0.0.1"), "Malformed CIDR, one '/' required");
        assert_eq!(
            err("bad-/64filter"),
            "Malformed CIDR, mask bits must be an integer"
        );
        assert_eq!(
            err("10.0.0.0/-1"),
            "Malformed CIDR, mask bits must not be negative"
        );
        assert_eq!(err("xx.11.xx/8"), "Nonstandard IP address: xx.11.xx");
        assert_eq!(err("10.0.0.0/32"), "IPv4 mask bits must be < 32");
        assert_eq!(err("::/128"), "IPv6 mask bits must be < 128");
        assert_eq!(err("10.0.0.300/8"), "Invalid IP address: 10.0.0.300");
    }

    #[test]
    fn ranges_contain_their_addresses_only() {
        let r = IpRange::parse_cidr("10.0.0.7/24").unwrap();
        assert!(r.contains(parse_ip("10.0.0.0").unwrap()));
        assert!(r.contains(parse_ip("10.0.0.255").unwrap()));
        assert!(!r.contains(parse_ip("10.0.1.0").unwrap()));
        let all4 = IpRange::parse_cidr("0.0.0.0/0").unwrap();
        assert!(!all4.contains(parse_ip("::1").unwrap()));
        let v6 = IpRange::parse_cidr("2001:db8:1234:1a00::/64").unwrap();
        assert!(v6.contains(parse_ip("2001:0db8:1234:1a00:0000:0000:0000:0001").unwrap()));
        assert!(!v6.contains(parse_ip("2001:db8:1234:1a01::").unwrap()));
    }
}
