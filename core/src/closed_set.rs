//! Closed sets — status, kind, class, state, severity, role — are Rust enums
//! from the row to the spec. [`closed_set!`] defines one with its text form
//! and gives it, once:
//! - `as_str`, `parse` (an input error naming the known values) and `ALL`;
//! - serde and `Display` in the same text form;
//! - sqlx encoding and decoding as text on both backends, where a stored value
//!   the code does not know fails the read loudly (naming the value and what it
//!   should have been; sqlx adds the column) instead of falling back to a default;
//! - with the `openapi` feature, a `poem_openapi::Enum`, so the OpenAPI document
//!   and every generated client see the closed set, not a bare string.

/// The sqlx decode error of a stored value outside its closed set.
#[derive(Debug, thiserror::Error)]
#[error("stored value `{value}` is not {what}")]
pub struct UnknownValue {
    pub value: String,
    pub what: &'static str,
}

macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident, $code:literal, $what:literal {
        $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
        pub enum $name {
            $(
                $(#[$vdoc])*
                #[serde(rename = $text)]
                #[cfg_attr(feature = "openapi", oai(rename = $text))]
                $variant
            ),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Reads a stored value; an unknown one is the loud decode error.
            fn from_stored(text: &str) -> Result<Self, sqlx::error::BoxDynError> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text).ok_or_else(|| {
                    Box::new($crate::closed_set::UnknownValue { value: text.to_owned(), what: $what }) as _
                })
            }

            /// Parses input text; an unknown value is an input error (400) naming the known ones.
            pub fn parse(text: &str) -> $crate::Result<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text).ok_or_else(|| {
                    let known: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    $crate::Error::invalid($code, format!("`{text}` is not {}; use one of: {}", $what, known.join(", ")))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::Error;

            fn from_str(text: &str) -> $crate::Result<Self> {
                Self::parse(text)
            }
        }

        impl sqlx::Type<sqlx::Sqlite> for $name {
            fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
                <&str as sqlx::Type<sqlx::Sqlite>>::type_info()
            }

            fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Sqlite>>::compatible(ty)
            }
        }

        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Sqlite as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Sqlite>>::encode(self.as_str(), buf)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Postgres as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Sqlite> for $name {
            fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Self::from_stored(<&str as sqlx::Decode<'r, sqlx::Sqlite>>::decode(value)?)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $name {
            fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Self::from_stored(<&str as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?)
            }
        }
    };
}
pub(crate) use closed_set;
