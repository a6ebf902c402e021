//! [`Timestamp`]: UTC instants stored as `timestamptz` on PostgreSQL and as
//! fixed-width RFC 3339 text (microseconds, `Z`) on SQLite, so that text order
//! is time order and the same SQL compares them on both backends.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        // Microsecond precision on both backends: PostgreSQL keeps no more.
        let now = Utc::now();
        let micros = now.timestamp_micros();
        Self(DateTime::from_timestamp_micros(micros).unwrap_or(now))
    }

    /// `self + d`, saturating at the latest time chrono can hold (never a panic).
    pub fn plus(self, d: std::time::Duration) -> Self {
        let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        Self(self.0.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC))
    }

    pub fn minus(self, d: std::time::Duration) -> Self {
        Self(self.0 - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero()))
    }

    /// Milliseconds from `earlier` to `self` (negative when `self` is earlier).
    pub fn millis_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
    }

    fn to_sqlite_text(self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(value: DateTime<Utc>) -> Self {
        Self(value)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_sqlite_text())
    }
}

impl Type<Sqlite> for Timestamp {
    fn type_info() -> <Sqlite as sqlx::Database>::TypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &<Sqlite as sqlx::Database>::TypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Timestamp {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.to_sqlite_text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Timestamp {
    fn decode(value: <Sqlite as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        // Not `parse_from_rfc3339`: years past 9999 are written `+10245-…`,
        // which RFC 3339 cannot say, and such a row must still be readable.
        Ok(Self(text.parse::<DateTime<chrono::FixedOffset>>()?.with_timezone(&Utc)))
    }
}

impl Type<Postgres> for Timestamp {
    fn type_info() -> <Postgres as sqlx::Database>::TypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl<'q> Encode<'q, Postgres> for Timestamp {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <DateTime<Utc> as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Timestamp {
    fn decode(value: <Postgres as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Self(<DateTime<Utc> as Decode<'r, Postgres>>::decode(value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_text_sorts_like_time() {
        let a = Timestamp::now();
        let b = a.plus(std::time::Duration::from_micros(1));
        let c = a.plus(std::time::Duration::from_secs(1));
        assert!(a.to_sqlite_text() < b.to_sqlite_text());
        assert!(b.to_sqlite_text() < c.to_sqlite_text());
        assert_eq!(a.to_sqlite_text().len(), c.to_sqlite_text().len());
    }

    #[test]
    fn far_futures_saturate_and_read_back() {
        let far = Timestamp::now().plus(std::time::Duration::from_secs(u64::MAX));
        assert_eq!(far.0, DateTime::<Utc>::MAX_UTC);
        let text = far.to_sqlite_text();
        assert!(text.starts_with('+'), "{text}");
        let read = text.parse::<DateTime<chrono::FixedOffset>>().unwrap().with_timezone(&Utc);
        assert_eq!(Timestamp(read).to_sqlite_text(), text);
    }
}

/// Where "now" comes from. Every part of one process reads the same clock
/// through its [`crate::store::Store`]: the system clock in production; tests
/// move an adjustable one forward to see what happens days later instead of
/// rewriting timestamps in the database.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Microseconds added to the system clock; `None` for the plain system clock.
    offset_us: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that starts at the system's time and can be moved forward.
    pub fn adjustable() -> Self {
        Self { offset_us: Some(std::sync::Arc::default()) }
    }

    pub fn now(&self) -> Timestamp {
        let now = Timestamp::now();
        match &self.offset_us {
            None => now,
            Some(offset) => {
                let us = offset.load(std::sync::atomic::Ordering::Relaxed);
                Timestamp(now.0 + chrono::Duration::microseconds(us))
            }
        }
    }

    /// Moves an adjustable clock forward (the system clock cannot be moved).
    pub fn advance(&self, by: std::time::Duration) {
        match &self.offset_us {
            Some(offset) => {
                let us = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
                offset.fetch_add(us, std::sync::atomic::Ordering::Relaxed);
            }
            None => tracing::error!("the system clock cannot be moved"),
        }
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_forward_and_the_system_clock_does_not() {
        let day = std::time::Duration::from_secs(86_400);
        let clock = Clock::adjustable();
        clock.advance(day * 100);
        assert!(clock.now().millis_since(Timestamp::now()) >= (day * 100).as_millis() as f64 - 1_000.0);
        let system = Clock::system();
        system.advance(day);
        assert!(system.now().millis_since(Timestamp::now()).abs() < 1_000.0);
    }
}
