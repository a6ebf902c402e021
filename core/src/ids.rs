//! Typed identifiers. UUID v7, so ids sort by creation time on both backends
//! (native `uuid` on PostgreSQL, lowercase hyphenated text on SQLite).

use serde::{Deserialize, Serialize};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use uuid::Uuid;

use crate::Error;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $invalid:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn parse(text: &str) -> Result<Self, Error> {
                Uuid::parse_str(text).map(Self).map_err(|_| Error::invalid($invalid, format!("`{text}` is not a UUID")))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Type<Sqlite> for $name {
            fn type_info() -> <Sqlite as sqlx::Database>::TypeInfo {
                <String as Type<Sqlite>>::type_info()
            }
        }

        impl<'q> Encode<'q, Sqlite> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as Encode<'q, Sqlite>>::encode(self.0.hyphenated().to_string(), buf)
            }
        }

        impl<'r> Decode<'r, Sqlite> for $name {
            fn decode(value: <Sqlite as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(Self(Uuid::parse_str(<&str as Decode<'r, Sqlite>>::decode(value)?)?))
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> <Postgres as sqlx::Database>::TypeInfo {
                <Uuid as Type<Postgres>>::type_info()
            }
        }

        impl<'q> Encode<'q, Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <Uuid as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: <Postgres as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(Self(<Uuid as Decode<'r, Postgres>>::decode(value)?))
            }
        }
    };
}

typed_id!(
    /// An operation in the ledger.
    OperationId,
    "invalid_operation_id"
);
typed_id!(
    /// An API token.
    TokenId,
    "invalid_token_id"
);
typed_id!(
    /// A cron schedule.
    ScheduleId,
    "invalid_schedule_id"
);
typed_id!(
    /// An alert: one incident, from first firing to resolved.
    AlertId,
    "invalid_alert_id"
);
typed_id!(
    /// One entry of an alert's history (fired, repeated, escalated, resolved, acknowledged).
    AlertEventId,
    "invalid_alert_event_id"
);
typed_id!(
    /// One notification of one alert event to one channel, sent or suppressed.
    NotificationId,
    "invalid_notification_id"
);
typed_id!(
    /// A silence: matchers and a time window that mute notifications.
    SilenceId,
    "invalid_silence_id"
);
typed_id!(
    /// A backup: one VM at one point in time (the id of the `backup.create` operation that made it).
    BackupId,
    "invalid_backup_id"
);
