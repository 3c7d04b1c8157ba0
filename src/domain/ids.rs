//! Identifiers that are all UUIDs underneath and easy to confuse: each has its own type, so an
//! event id cannot be passed where a delivery id is wanted. On the wire and in Postgres they are
//! plain UUIDs (`serde(transparent)`, `sqlx(transparent)`).
//!
//! A target has two identities: [`TargetRef`], the UUID of its stored row (what deliveries point
//! at), and [`super::TargetId`], the name an operator gave it inside its rule (what people read).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new id, ordered by creation time (UUID v7).
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map($name)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                $name(id)
            }
        }
    };
}

uuid_id!(
    /// An accepted event.
    EventId
);
uuid_id!(
    /// One event on its way to one target; also the `webhook-id` of every try.
    DeliveryId
);
uuid_id!(
    /// The stored row of a target (stable while the rule keeps a target of that id).
    TargetRef
);
