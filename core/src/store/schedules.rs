//! Schedules and their fires as stored. A tick fires exactly once, however
//! many schedulers run: the `schedule_fires` row keyed by (schedule, fire
//! time) and its operations are written in one transaction, and a second
//! scheduler's insert of the same tick does nothing. Which ticks are due is
//! decided in `crate::schedule`.

use serde_json::Value;
use sqlx::types::Json;

use super::{
    Store, read_db,
    tx::{Links, on_tx},
};
use crate::{
    Error, OperationId, Result, ScheduleId, Timestamp,
    operation::NewOperation,
    schedule::{CronSpec, MissedTicks, ScheduleDef},
};

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct ScheduleRecord {
    pub id: ScheduleId,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub kind: crate::operation::OperationKind,
    pub params: Json<Value>,
    pub host: Option<String>,
    pub enabled: bool,
    pub missed_ticks: MissedTicks,
    pub jitter_s: i32,
    pub next_fire_at: Option<Timestamp>,
    pub last_fire_at: Option<Timestamp>,
    pub last_operation_id: Option<OperationId>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ScheduleRecord {
    pub fn spec(&self) -> Result<CronSpec> {
        CronSpec::parse(&self.cron, &self.timezone)
    }
}

/// One fired tick.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct FireRecord {
    pub schedule_id: ScheduleId,
    pub fire_time: Timestamp,
    pub operation_id: OperationId,
    pub fired_at: Timestamp,
    pub fired_by: String,
    pub manual: bool,
    pub catch_up: bool,
}

const COLUMNS: &str = "id, name, cron, timezone, kind, params, host, enabled, missed_ticks, jitter_s, next_fire_at, \
    last_fire_at, last_operation_id, created_by, created_at, updated_at";

impl Store {
    /// Enabled schedules whose next fire is due at `now`, soonest first.
    pub async fn due_schedules(&self, now: Timestamp) -> Result<Vec<ScheduleRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM schedules WHERE enabled AND next_fire_at <= $1 ORDER BY next_fire_at LIMIT 100"
        );
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, ScheduleRecord>(sqlx::AssertSqlSafe(sql.as_str())).bind(now).fetch_all(pool).await
        })?)
    }

    pub async fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM schedules ORDER BY name");
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, ScheduleRecord>(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(pool).await
        })?)
    }

    pub async fn schedule(&self, id: ScheduleId) -> Result<ScheduleRecord> {
        let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = $1");
        let found: Option<ScheduleRecord> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, ScheduleRecord>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await
        })?;
        found.ok_or_else(|| Error::not_found("schedule_not_found", format!("schedule {id}")))
    }

    /// The schedule's fires, newest first.
    pub async fn fires(&self, id: ScheduleId, limit: u32) -> Result<Vec<FireRecord>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, FireRecord>(
                "SELECT schedule_id, fire_time, operation_id, fired_at, fired_by, manual, catch_up FROM schedule_fires \
                 WHERE schedule_id = $1 ORDER BY fire_time DESC LIMIT $2",
            )
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?)
    }
}

/// One tick to fire: the fire row names `operations[0]`; the others (a fan-out
/// over hosts) share its schedule and time.
#[derive(Debug, Clone)]
pub struct Fire {
    pub fire_time: Timestamp,
    pub catch_up: bool,
    pub operations: Vec<NewOperation>,
}

impl super::Tx {
    /// Writes schedule `id` (new or replacing); `next_fire_at` as decided by the caller.
    pub async fn save_schedule(
        &mut self,
        id: ScheduleId,
        def: &ScheduleDef,
        spec: &CronSpec,
        next_fire_at: Option<Timestamp>,
        created_by: &str,
    ) -> Result<ScheduleRecord> {
        let now = self.now();
        let sql = format!(
            "INSERT INTO schedules ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, $12, $13, $13) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, cron = excluded.cron, timezone = excluded.timezone, \
             kind = excluded.kind, params = excluded.params, host = excluded.host, enabled = excluded.enabled, \
             missed_ticks = excluded.missed_ticks, jitter_s = excluded.jitter_s, next_fire_at = excluded.next_fire_at, \
             updated_at = excluded.updated_at RETURNING {COLUMNS}"
        );
        let saved = on_tx!(self, |c, Db| {
            sqlx::query_as::<Db, ScheduleRecord>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(&def.name)
                .bind(spec.expr())
                .bind(spec.timezone())
                .bind(def.kind.as_str())
                .bind(Json(&def.params))
                .bind(&def.host)
                .bind(def.enabled)
                .bind(def.missed_ticks.as_str())
                .bind(def.jitter_s as i32)
                .bind(next_fire_at)
                .bind(created_by)
                .bind(now)
                .fetch_one(&mut *c)
                .await
        });
        match saved {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(Error::conflict("schedule_name_taken", format!("a schedule named `{}` already exists", def.name)))
            }
            other => Ok(other?),
        }
    }

    pub async fn delete_schedule(&mut self, id: ScheduleId) -> Result<()> {
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>("DELETE FROM schedules WHERE id = $1")
                .bind(id)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Writes each planned fire once (the `(schedule, fire time)` key
    /// arbitrates between schedulers) with its operations, and moves the
    /// schedule's `next_fire_at` on — only if it still is `was_next` (a
    /// manual fire leaves it alone). Returns the operations created.
    pub async fn record_fires(
        &mut self,
        s: &ScheduleRecord,
        fires: &[Fire],
        was_next: Timestamp,
        next: Option<Timestamp>,
        fired_by: &str,
        manual: bool,
    ) -> Result<Vec<OperationId>> {
        let now = self.now();
        let mut created = Vec::new();
        for fire in fires {
            let Some(first) = fire.operations.first() else { continue };
            let id = OperationId::new();
            let claimed = on_tx!(self, |c, Db| {
                sqlx::query::<Db>(
                    "INSERT INTO schedule_fires (schedule_id, fire_time, operation_id, fired_at, fired_by, manual, catch_up) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (schedule_id, fire_time) DO NOTHING",
                )
                .bind(s.id)
                .bind(fire.fire_time)
                .bind(id)
                .bind(now)
                .bind(fired_by)
                .bind(manual)
                .bind(fire.catch_up)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
            })?;
            if claimed == 0 {
                continue; // another scheduler fired this tick
            }
            let links = |id| Links { id: Some(id), retry_of: None, schedule_id: Some(s.id) };
            created.push(self.insert_operation(first, links(id)).await?.id);
            for new in &fire.operations[1..] {
                created.push(self.insert_operation(new, links(OperationId::new())).await?.id);
            }
        }
        let last = created.last().copied();
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "UPDATE schedules SET next_fire_at = CASE WHEN $5 THEN next_fire_at ELSE $2 END, \
                 last_fire_at = CASE WHEN $3 IS NULL THEN last_fire_at ELSE $4 END, \
                 last_operation_id = COALESCE($3, last_operation_id) \
                 WHERE id = $1 AND ($5 OR next_fire_at = $6)",
            )
            .bind(s.id)
            .bind(next)
            .bind(last)
            .bind(now)
            .bind(manual)
            .bind(was_next)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(created)
    }
}
