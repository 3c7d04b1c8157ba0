//! Names with EventBridge's character sets and lengths.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

fn check(value: &str, what: &str, max: usize, extra: &[u8]) -> Result<(), NameError> {
    if value.is_empty() || value.len() > max {
        return Err(NameError(format!(
            "{what} must be 1 to {max} characters long"
        )));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || c.is_ascii() && extra.contains(&(*c as u8))))
    {
        let allowed: String = extra.iter().map(|b| *b as char).collect();
        return Err(NameError(format!(
            "{what} may only contain letters, digits and `{allowed}`; found {bad:?}"
        )));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $extra:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<$name, NameError> {
                check(value, $what, $max, $extra)?;
                Ok($name(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

name_type!(
    /// An event bus name: 1–256 of `A-Z a-z 0-9 . - _ /` (EventBridge's `EventBusName`).
    BusName, "a bus name", 256, b"._-/"
);
name_type!(
    /// A rule name, unique on its bus: 1–64 of `A-Z a-z 0-9 . - _` (EventBridge's `RuleName`).
    RuleName, "a rule name", 64, b"._-"
);
name_type!(
    /// An archive name, unique on its bus: 1–48 of `A-Z a-z 0-9 . - _` (EventBridge's
    /// `ArchiveName`).
    ArchiveName, "an archive name", 48, b"._-"
);
name_type!(
    /// A replay name: 1–64 of `A-Z a-z 0-9 . - _` (EventBridge's `ReplayName`).
    ReplayName, "a replay name", 64, b"._-"
);
name_type!(
    /// A target id, unique in its rule: 1–64 of `A-Z a-z 0-9 . - _` (EventBridge's `TargetId`).
    TargetId, "a target id", 64, b"._-"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_eventbridge_charsets_and_lengths() {
        assert!(BusName::parse("orders/eu-west.prod_1").is_ok());
        assert!(RuleName::parse("orders/eu").is_err());
        assert!(RuleName::parse(&"r".repeat(64)).is_ok());
        assert!(RuleName::parse(&"r".repeat(65)).is_err());
        assert!(BusName::parse("").is_err());
        assert!(TargetId::parse("ü").is_err());
        let err = RuleName::parse("a b").unwrap_err();
        assert_eq!(
            err.0,
            "a rule name may only contain letters, digits and `._-`; found ' '"
        );
    }
}
