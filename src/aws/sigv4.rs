//! AWS Signature Version 4, the server's side: reads a request's `Authorization` header and
//! checks its signature with the secret of the access key it names.
//!
//! Hand-written on `hmac` and `sha2` (already in the build): a verifier must rebuild the
//! canonical request from exactly the headers the client listed in `SignedHeaders`, which the
//! `aws-sigv4` crate (a signer, with the smithy runtime behind it) does not offer. The tests
//! hold it to AWS's published example and, over HTTP, to the official SDK's signatures
//! (`tests/it/aws.rs`).
//!
//! What is checked, as AWS does: the algorithm (`AWS4-HMAC-SHA256`), the credential scope (the
//! request's date, the configured region, service `events`, `aws4_request`), the `X-Amz-Date`
//! timestamp within five minutes of now, `host` among the signed headers, and the signature over
//! the canonical request with the body's SHA-256. The signature is compared in constant time.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

type HmacSha256 = hmac::Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's timestamp may be from now, either way (AWS's limit).
pub const MAX_SKEW: time::Duration = time::Duration::minutes(5);

/// Why a request's signature is not accepted. Each maps to the error AWS answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Authorization` header at all.
    #[error("Missing Authentication Token")]
    Missing,
    /// The header is there but incomplete or not SigV4.
    #[error("{0}")]
    Incomplete(String),
    /// The timestamp is too far from now.
    #[error("Signature expired: {stamp} is now earlier than {earliest} ({now} - 5 min.)")]
    Expired {
        stamp: String,
        earliest: String,
        now: String,
    },
    #[error("Signature not yet current: {stamp} is still later than {latest} ({now} + 5 min.)")]
    NotYetCurrent {
        stamp: String,
        latest: String,
        now: String,
    },
    /// The scope names another region or service, or another day than the timestamp.
    #[error("{0}")]
    Scope(String),
    /// The signature is not the one the secret gives.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
    )]
    Mismatch,
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
/// Signature=…` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case names, as the client listed them.
    pub signed_headers: Vec<String>,
    /// The signature's bytes.
    pub signature: Vec<u8>,
}

impl Authorization {
    pub fn parse(header: &str) -> Result<Authorization, SignatureError> {
        let incomplete = |what: &str| SignatureError::Incomplete(what.to_owned());
        let rest = header
            .strip_prefix(ALGORITHM)
            .filter(|rest| rest.starts_with(' '))
            .ok_or_else(|| {
                incomplete(&format!(
                    "Authorization header requires the {ALGORITHM} algorithm."
                ))
            })?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(value) = part.strip_prefix("Credential=") {
                credential = Some(value);
            } else if let Some(value) = part.strip_prefix("SignedHeaders=") {
                signed = Some(value);
            } else if let Some(value) = part.strip_prefix("Signature=") {
                signature = Some(value);
            }
        }
        let missing: Vec<&str> = [
            ("Credential", credential.is_none()),
            ("SignedHeaders", signed.is_none()),
            ("Signature", signature.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        if !missing.is_empty() {
            return Err(incomplete(&format!(
                "Authorization header requires '{}' parameter(s). Authorization={header}",
                missing.join("', '")
            )));
        }
        let (credential, signed, signature) = (
            credential.unwrap_or_default(),
            signed.unwrap_or_default(),
            signature.unwrap_or_default(),
        );
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, terminal] = scope[..] else {
            return Err(incomplete(&format!(
                "Credential should have five parts (access key id/date/region/service/aws4_request); got {credential:?}"
            )));
        };
        if terminal != "aws4_request" {
            return Err(SignatureError::Scope(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminal}'."
            )));
        }
        if access_key_id.is_empty() {
            return Err(incomplete("Credential names no access key id."));
        }
        let signature = decode_hex(signature)
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| incomplete("Signature must be 64 hexadecimal digits."))?;
        let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
        if signed_headers.iter().any(String::is_empty) {
            return Err(incomplete("SignedHeaders must not contain an empty name."));
        }
        Ok(Authorization {
            access_key_id: access_key_id.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers,
            signature,
        })
    }
}

/// A request as the signature covers it.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent, still percent-encoded.
    pub path: &'a str,
    /// The query string as sent (without `?`), still percent-encoded.
    pub query: &'a str,
    /// Every header (name, value); several with one name are joined as AWS does.
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

impl Request<'_> {
    fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    }
}

/// What a request must be signed for.
pub struct Expect<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub now: OffsetDateTime,
}

/// Checks the scope and the timestamp of `auth` against `request` before any secret is looked
/// up: a request that cannot be valid costs no database read. Returns the request's timestamp
/// text (`X-Amz-Date`).
pub fn check_scope<'r>(
    auth: &Authorization,
    request: &'r Request<'r>,
    expect: &Expect<'_>,
) -> Result<String, SignatureError> {
    let stamp = request
        .header_values("x-amz-date")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            SignatureError::Incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .to_owned(),
            )
        })?;
    let at = time::PrimitiveDateTime::parse(&stamp, AMZ_DATE)
        .map_err(|_| {
            SignatureError::Incomplete(format!(
                "X-Amz-Date must be in the ISO 8601 basic format YYYYMMDD'T'HHMMSS'Z'; got {stamp:?}"
            ))
        })?
        .assume_utc();
    if at < expect.now - MAX_SKEW {
        return Err(SignatureError::Expired {
            stamp,
            earliest: amz_date(expect.now - MAX_SKEW),
            now: amz_date(expect.now),
        });
    }
    if at > expect.now + MAX_SKEW {
        return Err(SignatureError::NotYetCurrent {
            stamp,
            latest: amz_date(expect.now + MAX_SKEW),
            now: amz_date(expect.now),
        });
    }
    if !stamp.starts_with(&auth.date) || auth.date.len() != 8 {
        return Err(SignatureError::Scope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{stamp}'.",
            auth.date,
            &stamp[..stamp.len().min(8)]
        )));
    }
    if auth.region != expect.region {
        return Err(SignatureError::Scope(format!(
            "Credential should be scoped to a valid region, not '{}'. This endpoint's region is '{}'.",
            auth.region, expect.region
        )));
    }
    if auth.service != expect.service {
        return Err(SignatureError::Scope(format!(
            "Credential should be scoped to correct service: '{}'.",
            expect.service
        )));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SignatureError::Incomplete(
            "'Host' must be a signed header.".to_owned(),
        ));
    }
    for name in &auth.signed_headers {
        if request.header_values(name).is_empty() {
            return Err(SignatureError::Incomplete(format!(
                "The signed header {name:?} is not in the request."
            )));
        }
    }
    Ok(stamp)
}

/// Verifies the signature of `request` with `secret`, after [`check_scope`].
pub fn verify(
    auth: &Authorization,
    request: &Request<'_>,
    stamp: &str,
    secret: &str,
) -> Result<(), SignatureError> {
    signer(auth, request, stamp, secret)
        .verify_slice(&auth.signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// The signature a client with `secret` would send (for tests and benches).
pub fn sign(auth: &Authorization, request: &Request<'_>, stamp: &str, secret: &str) -> String {
    hex(&signer(auth, request, stamp, secret).finalize().into_bytes())
}

/// The `Authorization` header a client with `secret` would send: `auth`'s credential scope and
/// signed headers, signed (its `signature` is not used).
pub fn authorization_header(
    auth: &Authorization,
    request: &Request<'_>,
    stamp: &str,
    secret: &str,
) -> String {
    format!(
        "{ALGORITHM} Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={}",
        auth.access_key_id,
        auth.date,
        auth.region,
        auth.service,
        auth.signed_headers.join(";"),
        sign(auth, request, stamp, secret)
    )
}

/// A time as `X-Amz-Date` writes it (ISO 8601 basic: `YYYYMMDD'T'HHMMSS'Z'`).
pub fn amz_date(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(AMZ_DATE)
        .unwrap_or_else(|_| "an unprintable time".to_owned())
}

const AMZ_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// The HMAC of the string to sign under the request's signing key, not yet finalised.
fn signer(auth: &Authorization, request: &Request<'_>, stamp: &str, secret: &str) -> HmacSha256 {
    let canonical = canonical_request(auth, request);
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{stamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(secret, &auth.date, &auth.region, &auth.service);
    let mut mac = hmac_of(&key);
    mac.update(string_to_sign.as_bytes());
    mac
}

fn canonical_request(auth: &Authorization, request: &Request<'_>) -> String {
    let mut canonical = String::with_capacity(256 + request.query.len());
    canonical.push_str(request.method);
    canonical.push('\n');
    canonical.push_str(&canonical_path(request.path));
    canonical.push('\n');
    canonical.push_str(&canonical_query(request.query));
    canonical.push('\n');
    for name in &auth.signed_headers {
        canonical.push_str(name);
        canonical.push(':');
        let values: Vec<String> = request
            .header_values(name)
            .into_iter()
            .map(|v| trim_value(&String::from_utf8_lossy(v)))
            .collect();
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&auth.signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(&hex(&Sha256::digest(request.body)));
    canonical
}

/// Leading and trailing spaces removed, runs of spaces made one.
fn trim_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The path normalised (`.` and `..` segments resolved, empty path `/`) and each segment
/// encoded again, as every service but S3 signs it.
fn canonical_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let encoded: Vec<String> = segments.iter().map(|s| uri_encode(s, true)).collect();
    format!("/{}", encoded.join("/"))
}

/// The query's pairs decoded, encoded the one way AWS does, sorted by name then value.
fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(name), true),
                uri_encode(&percent_decode(value), true),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 encoding of everything but the unreserved characters (`/` kept when asked not to).
pub(crate) fn uri_encode(text: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hmac_of(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

fn hmac_bytes(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac_of(key);
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_bytes(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac_bytes(&k_date, region);
    let k_service = hmac_bytes(&k_region, service);
    hmac_bytes(&k_service, "aws4_request")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // AWS's published example (the SigV4 test suite's `get-vanilla-query-order-key-case` and
    // `post-vanilla`): secret, date, region and service as AWS gives them.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const STAMP: &str = "20150830T123600Z";

    fn auth(signature: &str, signed: &str) -> Authorization {
        Authorization::parse(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={signed}, Signature={signature}"
        ))
        .unwrap()
    }

    fn expect() -> Expect<'static> {
        Expect {
            region: "us-east-1",
            service: "service",
            now: OffsetDateTime::from_unix_timestamp(1_440_938_160).unwrap(),
        }
    }

    #[test]
    fn aws_published_examples_verify_and_a_changed_byte_does_not() {
        let headers: [(&str, &[u8]); 2] = [
            ("Host", b"example.amazonaws.com"),
            ("X-Amz-Date", STAMP.as_bytes()),
        ];
        // get-vanilla-query-order-key-case
        let get = Request {
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &headers,
            body: b"",
        };
        let good = auth(
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            "host;x-amz-date",
        );
        assert_eq!(check_scope(&good, &get, &expect()).unwrap(), STAMP);
        verify(&good, &get, STAMP, SECRET).unwrap();
        // post-vanilla
        let post = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let good_post = auth(
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            "host;x-amz-date",
        );
        verify(&good_post, &post, STAMP, SECRET).unwrap();
        assert_eq!(
            sign(&good_post, &post, STAMP, SECRET),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
        // The header a client sends reads back as the same authorization, and verifies.
        let header = authorization_header(&good_post, &post, STAMP, SECRET);
        assert_eq!(Authorization::parse(&header).unwrap(), good_post);
        assert_eq!(amz_date(expect().now), STAMP);
        // Another body, another secret, another query: refused.
        let changed = Request {
            body: b"{}",
            ..post
        };
        assert_eq!(
            verify(&good_post, &changed, STAMP, SECRET),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&good_post, &post, STAMP, "another secret"),
            Err(SignatureError::Mismatch)
        );
        let reordered = Request {
            query: "Param1=value2&Param2=value1",
            ..get
        };
        assert_eq!(
            verify(&good, &reordered, STAMP, SECRET),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_scope_and_the_clock_are_checked_before_any_secret() {
        let headers: [(&str, &[u8]); 2] = [("Host", b"h"), ("X-Amz-Date", STAMP.as_bytes())];
        let request = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let sig = "00".repeat(32);
        let mut late = expect();
        late.now += time::Duration::minutes(6);
        assert!(matches!(
            check_scope(&auth(&sig, "host;x-amz-date"), &request, &late),
            Err(SignatureError::Expired { .. })
        ));
        let mut early = expect();
        early.now -= time::Duration::minutes(6);
        assert!(matches!(
            check_scope(&auth(&sig, "host;x-amz-date"), &request, &early),
            Err(SignatureError::NotYetCurrent { .. })
        ));
        let other_region = Expect {
            region: "eu-west-1",
            ..expect()
        };
        assert!(matches!(
            check_scope(&auth(&sig, "host;x-amz-date"), &request, &other_region),
            Err(SignatureError::Scope(m)) if m.contains("region")
        ));
        assert!(matches!(
            check_scope(&auth(&sig, "x-amz-date"), &request, &expect()),
            Err(SignatureError::Incomplete(m)) if m.contains("Host")
        ));
        assert!(matches!(
            check_scope(&auth(&sig, "host;x-amz-date;x-amz-target"), &request, &expect()),
            Err(SignatureError::Incomplete(m)) if m.contains("x-amz-target")
        ));
    }

    #[test]
    fn malformed_headers_are_named() {
        for (header, says) in [
            ("Bearer x", "AWS4-HMAC-SHA256"),
            (
                "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request",
                "SignedHeaders",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=00",
                "five parts",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=zz",
                "hexadecimal",
            ),
        ] {
            let error = Authorization::parse(header).unwrap_err().to_string();
            assert!(error.contains(says), "{header}: {error}");
        }
    }

    #[test]
    fn paths_and_queries_are_canonical() {
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_path("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_path("/a%20b"), "/a%2520b");
        assert_eq!(canonical_query("b=2&a=%7E&a=1"), "a=1&a=~&b=2");
        assert_eq!(canonical_query("x=a b"), "x=a%20b");
        assert_eq!(trim_value("  a   b  "), "a b");
    }
}
