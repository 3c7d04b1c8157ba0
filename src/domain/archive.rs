//! An archive as a validated value, parsed from `PUT /v1/buses/{bus}/archives/{archive}`:
//! a description, an optional event pattern (without one, every event of the bus is kept) and
//! a retention in days (0 keeps events for ever). Every problem with its JSON pointer.

use super::fields::{FieldError, Fields, ValidationErrors, check_text};
use super::rule::{MAX_DESCRIPTION, integer_in, parse_pattern};

/// The longest an archive keeps events: a hundred years (0 is for ever).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub description: String,
    /// Compact JSON text, numbers as written; `None` keeps every event.
    pub event_pattern: Option<String>,
    pub retention_days: u32,
}

pub fn parse_archive(text: &str) -> Result<Archive, ValidationErrors> {
    let mut errors = Vec::new();
    let archive = Fields::parse(text, "", &mut errors).and_then(|mut fields| {
        let description = fields
            .take_string("description", &mut errors)
            .unwrap_or_default();
        if let Err(why) = check_text(&description, MAX_DESCRIPTION) {
            errors.push(FieldError::new("/description", why));
        }
        let event_pattern = match fields.take("event_pattern") {
            Some(raw) => parse_pattern(raw.get(), &mut errors).map(Some),
            None => Some(None),
        };
        let retention_days = match fields.take("retention_days") {
            Some(raw) => integer_in(
                raw.get(),
                0,
                MAX_RETENTION_DAYS,
                "/retention_days",
                &mut errors,
            ),
            None => Some(0),
        };
        fields.refuse_unknown(&mut errors);
        Some(Archive {
            description,
            event_pattern: event_pattern?,
            retention_days: retention_days?,
        })
    });
    ValidationErrors::finish(archive, errors, "archive")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_keeps_everything_for_ever_unless_told() {
        let archive = parse_archive("{}").unwrap();
        assert_eq!(archive.event_pattern, None);
        assert_eq!(archive.retention_days, 0);
        let archive =
            parse_archive(r#"{"event_pattern": "{\"source\": [\"a\"]}", "retention_days": 7}"#)
                .unwrap();
        assert_eq!(
            archive.event_pattern.as_deref(),
            Some(r#"{"source":["a"]}"#)
        );
        assert_eq!(archive.retention_days, 7);
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = parse_archive(
            r#"{"event_pattern": {"source": "a"}, "retention_days": -1, "description": "a\u0000", "x": 1}"#,
        )
        .unwrap_err();
        let pointers: Vec<&str> = errors.0.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/description",
                "/event_pattern/source",
                "/retention_days",
                "/x"
            ]
        );
    }
}
