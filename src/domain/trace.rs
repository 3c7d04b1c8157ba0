//! W3C Trace Context (hand-written: two header formats of a few fixed-width hex fields; the
//! OpenTelemetry crates would bring a whole SDK for them). A producer's context comes with the
//! ingest request (`traceparent`, `tracestate`) or with an entry (`TraceHeader`, EventBridge's
//! field, as a `traceparent` or as AWS X-Ray's `Root=1-…;Parent=…;Sampled=…`). Each event gets a
//! span of its own, a child of the producer's (or the root of a new trace); each delivery
//! attempt sends a `traceparent` naming a new span, a child of the event's, so the receiver's
//! traces join the producer's.

use rand::RngCore;

use super::EventId;

/// The longest `tracestate` kept (W3C allows 32 members of up to 256 characters; 512 covers
/// what vendors send, and longer ones are dropped rather than cut).
pub const MAX_TRACESTATE: usize = 512;

/// A producer's span: the trace it belongs to and its own id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub trace_id: String,
    pub parent_id: String,
    pub sampled: bool,
}

/// An event's place in a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpan {
    pub trace_id: String,
    /// The event's own span.
    pub span_id: String,
    /// The producer's span; `None` when the event started the trace.
    pub parent_id: Option<String>,
    pub sampled: bool,
    pub tracestate: Option<String>,
}

fn hex(len: usize, text: &str) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn not_zero(text: &str) -> bool {
    text.bytes().any(|b| b != b'0')
}

/// The span id of a delivery's `attempt`-th try (16 hex digits, never all zeros): the first
/// 8 bytes of SHA-256 over the delivery id and the number. Derived, not stored: the exported span
/// of a retry names the try before it ([`crate::otel`]), and a receiver sees a new span per try.
pub fn attempt_span_id(delivery_id: &str, attempt: u32) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(delivery_id.as_bytes())
        .chain_update(attempt.to_be_bytes())
        .finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    if id == [0; 8] {
        id[7] = 1;
    }
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` random bytes (not all zero, which W3C reserves) as lowercase hex. On the ingest path
/// for every event: one buffer, no per-digit formatting.
fn random_hex(bytes: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buffer = [0u8; 16];
    let buffer = &mut buffer[..bytes.min(16)];
    loop {
        rand::rng().fill_bytes(buffer);
        if buffer.iter().any(|b| *b != 0) {
            let mut text = String::with_capacity(buffer.len() * 2);
            for b in buffer.iter() {
                text.push(char::from(DIGITS[usize::from(b >> 4)]));
                text.push(char::from(DIGITS[usize::from(b & 15)]));
            }
            return text;
        }
    }
}

/// A `traceparent` header: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>` (a later
/// version is read by its first four fields, as the spec asks). `None` when it is not one.
pub fn parse_traceparent(text: &str) -> Option<Incoming> {
    let text = text.trim();
    let mut parts = text.splitn(5, '-');
    let (version, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next();
    let valid = hex(2, version)
        && version != "ff"
        && (version != "00" || rest.is_none())
        && hex(32, trace_id)
        && not_zero(trace_id)
        && hex(16, parent_id)
        && not_zero(parent_id)
        && hex(2, flags);
    valid.then(|| Incoming {
        trace_id: trace_id.to_owned(),
        parent_id: parent_id.to_owned(),
        sampled: u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1),
    })
}

/// AWS X-Ray's header, `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>` (fields in any
/// order), as a W3C context: the trace id is the root's two hex parts together.
pub fn parse_xray(text: &str) -> Option<Incoming> {
    let (mut root, mut parent, mut sampled) = (None, None, false);
    for field in text.split(';') {
        match field.trim().split_once('=')? {
            ("Root", value) => root = Some(value),
            ("Parent", value) => parent = Some(value),
            ("Sampled", value) => sampled = value == "1",
            _ => {}
        }
    }
    let mut root_parts = root?.split('-');
    let (one, time, random) = (root_parts.next()?, root_parts.next()?, root_parts.next()?);
    let trace_id = format!("{time}{random}");
    let parent_id = parent?;
    let valid = one == "1"
        && root_parts.next().is_none()
        && hex(8, time)
        && hex(32, &trace_id)
        && not_zero(&trace_id)
        && hex(16, parent_id)
        && not_zero(parent_id);
    valid.then(|| Incoming {
        trace_id,
        parent_id: parent_id.to_owned(),
        sampled,
    })
}

impl EventSpan {
    /// The span of the event `event`: a child of `incoming`, or the root of a new (sampled)
    /// trace named by the event: its id's 32 hex digits are the trace id. A UUID v7 is 6 bytes
    /// of time and 74 random bits, its last 7 bytes all random (what W3C's level 2 asks of a
    /// trace id flagged random; X-Ray's own trace ids begin with the time too). So a trace begun
    /// here is found by its first event's primary key, and the trace index holds only the
    /// traces producers began (migration 0026): one index entry less for such an event.
    pub fn child_of(
        event: EventId,
        incoming: Option<&Incoming>,
        tracestate: Option<&str>,
    ) -> EventSpan {
        match incoming {
            Some(parent) => EventSpan {
                trace_id: parent.trace_id.clone(),
                span_id: random_hex(8),
                parent_id: Some(parent.parent_id.clone()),
                sampled: parent.sampled,
                tracestate: tracestate
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE && s.is_ascii())
                    .map(str::to_owned),
            },
            None => EventSpan {
                trace_id: event.0.simple().to_string(),
                span_id: random_hex(8),
                parent_id: None,
                sampled: true,
                tracestate: None,
            },
        }
    }

    fn flags(&self) -> &'static str {
        if self.sampled { "01" } else { "00" }
    }

    /// The event's own `traceparent`.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags())
    }

    /// The `traceparent` of one delivery attempt: a span of its own in the event's trace,
    /// whose id [`attempt_span_id`] derives from the delivery and the try.
    pub fn attempt_traceparent(&self, delivery_id: &str, attempt: u32) -> String {
        format!(
            "00-{}-{}-{}",
            self.trace_id,
            attempt_span_id(delivery_id, attempt),
            self.flags()
        )
    }

    /// Reads back a stored `traceparent` (the event's own span) with its parent and state.
    pub fn stored(
        traceparent: &str,
        parent_id: Option<String>,
        tracestate: Option<String>,
    ) -> Option<EventSpan> {
        let own = parse_traceparent(traceparent)?;
        Some(EventSpan {
            trace_id: own.trace_id,
            span_id: own.parent_id,
            parent_id,
            sampled: own.sampled,
            tracestate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_read_as_the_spec_says() {
        let ok =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(ok.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ok.parent_id, "00f067aa0ba902b7");
        assert!(ok.sampled);
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some()
        );
    }

    #[test]
    fn xray_headers_become_w3c_contexts() {
        let got = parse_xray(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(got.trace_id, "5759e988bd862e3fe1be46a994272793");
        assert_eq!(got.parent_id, "53995c3f42cd8ad8");
        assert!(got.sampled);
        assert_eq!(
            parse_xray("Root=1-5759e988-bd862e3f;Parent=53995c3f42cd8ad8"),
            None
        );
        assert_eq!(parse_xray("Parent=53995c3f42cd8ad8"), None);
    }

    #[test]
    fn an_event_span_is_a_child_and_an_attempt_a_child_of_it() {
        let parent =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let span =
            EventSpan::child_of(EventId::new(), Some(&parent), Some("rojo=00f067aa0ba902b7"));
        assert_eq!(span.trace_id, parent.trace_id);
        assert_eq!(span.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(span.span_id, "00f067aa0ba902b7");
        let attempt = parse_traceparent(&span.attempt_traceparent("d-1", 1)).unwrap();
        assert_eq!(attempt.trace_id, span.trace_id);
        assert_ne!(attempt.parent_id, span.span_id);
        assert_eq!(attempt.parent_id, attempt_span_id("d-1", 1));
        let retry = parse_traceparent(&span.attempt_traceparent("d-1", 2)).unwrap();
        assert_ne!(
            retry.parent_id, attempt.parent_id,
            "each try is a span of its own"
        );
        let event = EventId::new();
        let fresh = EventSpan::child_of(event, None, None);
        assert!(parse_traceparent(&fresh.traceparent()).is_some());
        assert_eq!(fresh.parent_id, None);
        assert_eq!(fresh.trace_id, event.to_string().replace('-', ""));
    }
}
