//! Silences: matchers and a time window that mute notifications. Expiring one
//! ends it now; none is ever deleted, so the history stays.

use sqlx::types::Json;

use super::{Store, read_db, tx::on_tx};
use crate::{
    Error, Result, SilenceId, Timestamp,
    alert::{Matcher, NewSilence, Silence},
};

type SilenceRow = (SilenceId, Json<Vec<Matcher>>, Timestamp, Timestamp, String, String, Timestamp);

fn silence_of(r: SilenceRow) -> Silence {
    Silence { id: r.0, matchers: r.1.0, starts_at: r.2, ends_at: r.3, created_by: r.4, comment: r.5, created_at: r.6 }
}

impl Store {
    /// Silences that have not ended (and, with `expired`, those that have), newest first.
    pub async fn silences(&self, expired: bool) -> Result<Vec<Silence>> {
        let rows: Vec<SilenceRow> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, SilenceRow>(
                "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at FROM silences \
                 WHERE $1 OR ends_at > $2 ORDER BY id DESC LIMIT 1000",
            )
            .bind(expired)
            .bind(self.now())
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(silence_of).collect())
    }
}

impl super::Tx {
    pub async fn create_silence(&mut self, new: &NewSilence) -> Result<Silence> {
        let now = self.now();
        let silence = Silence {
            id: SilenceId::new(),
            matchers: new.matchers.clone(),
            starts_at: new.starts_at.unwrap_or(now),
            ends_at: new.ends_at,
            created_by: new.created_by.clone(),
            comment: new.comment.clone(),
            created_at: now,
        };
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(silence.id)
            .bind(Json(&silence.matchers))
            .bind(silence.starts_at)
            .bind(silence.ends_at)
            .bind(&silence.created_by)
            .bind(&silence.comment)
            .bind(silence.created_at)
            .execute(&mut *c)
            .await
            .map(|_| ())
        })?;
        Ok(silence)
    }

    /// Ends a silence now (it stays in the history).
    pub async fn expire_silence(&mut self, id: SilenceId) -> Result<Silence> {
        let now = self.now();
        let row: Option<SilenceRow> = on_tx!(self, |c, Db| {
            sqlx::query_as::<Db, SilenceRow>(
                "UPDATE silences SET ends_at = CASE WHEN ends_at > $2 THEN $2 ELSE ends_at END WHERE id = $1 \
                 RETURNING id, matchers, starts_at, ends_at, created_by, comment, created_at",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *c)
            .await
        })?;
        row.map(silence_of).ok_or_else(|| Error::not_found("silence_not_found", format!("silence {id}")))
    }
}
