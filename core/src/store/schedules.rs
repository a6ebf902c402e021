//! Schedules and their fires. A tick fires exactly once, however many
//! schedulers run: the `schedule_fires` row keyed by (schedule, fire time), the
//! operation and its first job are written in one transaction, and a second
//! scheduler's insert of the same tick does nothing.

use serde_json::Value;
use sqlx::types::Json;

use super::{
    Store, read_db,
    rows::OperationRow,
    tx::{LedgerTx, NewRow},
    with_db,
};
use crate::{
    Error, OperationId, Result, ScheduleId, Timestamp,
    operation::NewOperation,
    queue::queue_for,
    schedule::{CronSpec, MISSED_AFTER, MissedTicks, schedulable},
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

/// A schedule as a caller defines it; validated by [`ScheduleDef::check`].
#[derive(Debug, Clone)]
pub struct ScheduleDef {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub kind: String,
    pub params: Value,
    pub host: Option<String>,
    pub enabled: bool,
    pub missed_ticks: MissedTicks,
    pub jitter_s: u32,
}

impl ScheduleDef {
    pub fn check(&self) -> Result<CronSpec> {
        let ok_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok_name {
            return Err(Error::invalid(
                "invalid_schedule_name",
                "schedule names are 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'",
            ));
        }
        if self.jitter_s > 3600 {
            return Err(Error::invalid("invalid_jitter", "`jitter_s` must be 0-3600"));
        }
        if !self.params.is_object() {
            return Err(Error::invalid("invalid_parameters", "`params` must be a JSON object"));
        }
        let kind = schedulable(&self.kind)?;
        if kind == crate::operation::OperationKind::Noop {
            serde_json::from_value::<crate::operation::NoopParams>(self.params.clone())
                .map_err(|e| Error::invalid("invalid_parameters", e))?
                .validate()?;
        }
        if let Some(h) = &self.host {
            crate::vm::VmName::parse(h).map_err(|_| Error::invalid("invalid_host_name", "invalid host name"))?;
        }
        CronSpec::parse(&self.cron, &self.timezone)
    }
}

const COLUMNS: &str = "id, name, cron, timezone, kind, params, host, enabled, missed_ticks, jitter_s, next_fire_at, \
    last_fire_at, last_operation_id, created_by, created_at, updated_at";

/// A tick's jitter: the same for every scheduler, so they agree when it is due.
fn jitter(id: ScheduleId, fire_time: Timestamp, jitter_s: i32) -> std::time::Duration {
    if jitter_s <= 0 {
        return std::time::Duration::ZERO;
    }
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{id}{fire_time}").as_bytes());
    let n = u64::from_le_bytes(h[..8].try_into().unwrap_or_default());
    std::time::Duration::from_millis(n % (jitter_s as u64 * 1000))
}

impl Store {
    pub async fn create_schedule(&self, def: &ScheduleDef, actor: &str) -> Result<ScheduleRecord> {
        self.save_schedule(ScheduleId::new(), def, actor).await
    }

    /// Replaces a schedule's definition; the next fire is recomputed from now.
    pub async fn update_schedule(&self, id: ScheduleId, def: &ScheduleDef) -> Result<ScheduleRecord> {
        let existing = self.schedule(id).await?;
        self.save_schedule(id, def, &existing.created_by).await
    }

    /// Writes `def` as schedule `id` (new or replacing); its next fire is computed from now.
    async fn save_schedule(&self, id: ScheduleId, def: &ScheduleDef, created_by: &str) -> Result<ScheduleRecord> {
        let spec = def.check()?;
        let now = Timestamp::now();
        let next = def.enabled.then(|| spec.next_after(now)).flatten();
        let sql = format!(
            "INSERT INTO schedules ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, $12, $13, $13) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, cron = excluded.cron, timezone = excluded.timezone, \
             kind = excluded.kind, params = excluded.params, host = excluded.host, enabled = excluded.enabled, \
             missed_ticks = excluded.missed_ticks, jitter_s = excluded.jitter_s, next_fire_at = excluded.next_fire_at, \
             updated_at = excluded.updated_at RETURNING {COLUMNS}"
        );
        let saved = with_db!(self, |pool, Db| {
            sqlx::query_as::<Db, ScheduleRecord>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(&def.name)
                .bind(spec.expr())
                .bind(spec.timezone())
                .bind(&def.kind)
                .bind(Json(&def.params))
                .bind(&def.host)
                .bind(def.enabled)
                .bind(def.missed_ticks.as_str())
                .bind(def.jitter_s as i32)
                .bind(next)
                .bind(created_by)
                .bind(now)
                .fetch_one(pool)
                .await
        });
        match saved {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(Error::conflict("schedule_name_taken", format!("a schedule named `{}` already exists", def.name)))
            }
            other => Ok(other?),
        }
    }

    pub async fn delete_schedule(&self, id: ScheduleId) -> Result<ScheduleRecord> {
        let before = self.schedule(id).await?;
        with_db!(self, |pool, Db| {
            sqlx::query::<Db>("DELETE FROM schedules WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(before)
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

    /// Fires every due tick of every enabled schedule; returns the operations created.
    pub async fn fire_due(&self, scheduler: &str) -> Result<Vec<OperationId>> {
        let now = Timestamp::now();
        let sql = format!(
            "SELECT {COLUMNS} FROM schedules WHERE enabled AND next_fire_at <= $1 ORDER BY next_fire_at LIMIT 100"
        );
        let due: Vec<ScheduleRecord> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, ScheduleRecord>(sqlx::AssertSqlSafe(sql.as_str())).bind(now).fetch_all(pool).await
        })?;
        let mut fired = Vec::new();
        for s in due {
            let Some(was_next) = s.next_fire_at else { continue };
            let spec = match s.spec() {
                Ok(spec) => spec,
                Err(e) => {
                    tracing::error!(schedule = s.name, error = %e, "stored schedule no longer parses");
                    continue;
                }
            };
            // Every tick due by now, oldest first (was_next included).
            let ticks = spec.between(was_next.minus(std::time::Duration::from_micros(1)), now, 100_000);
            let Some(&latest) = ticks.last() else { continue };
            if latest.plus(jitter(s.id, latest, s.jitter_s)) > now {
                continue; // its jitter has not passed yet
            }
            let current = latest.plus(MISSED_AFTER) >= now;
            let missed: Vec<Timestamp> = if current { ticks[..ticks.len() - 1].to_vec() } else { ticks.clone() };
            let mut plan: Vec<(Timestamp, bool)> = Vec::new();
            if let (MissedTicks::RunOnce, Some(&last_missed)) = (s.missed_ticks, missed.last()) {
                plan.push((last_missed, true));
            }
            if current {
                plan.push((latest, false));
            }
            if !missed.is_empty() {
                tracing::warn!(
                    schedule = s.name,
                    missed = missed.len(),
                    policy = s.missed_ticks.as_str(),
                    "ticks were missed while no scheduler ran"
                );
            }
            let next = spec.next_after(latest);
            fired.extend(self.fire(&s, &plan, was_next, next, scheduler, false).await?);
        }
        Ok(fired)
    }

    /// Fires `s` now, outside its cron times (recorded as manual).
    pub async fn trigger(&self, id: ScheduleId, actor: &str) -> Result<OperationId> {
        let s = self.schedule(id).await?;
        let plan = [(Timestamp::now(), false)];
        let fired =
            self.fire(&s, &plan, s.next_fire_at.unwrap_or_else(Timestamp::now), s.next_fire_at, actor, true).await?;
        fired.into_iter().next().ok_or_else(|| Error::conflict("already_fired", "that instant was already fired"))
    }

    /// Writes the planned fires (each once: the primary key arbitrates), their
    /// operations and wake-ups, and moves `next_fire_at` on, in one transaction.
    async fn fire(
        &self,
        s: &ScheduleRecord,
        plan: &[(Timestamp, bool)],
        was_next: Timestamp,
        next: Option<Timestamp>,
        fired_by: &str,
        manual: bool,
    ) -> Result<Vec<OperationId>> {
        let kind = schedulable(s.kind.as_str())?;
        // A health run without a host means every host whose worker has not stopped.
        let targets: Vec<Option<String>> = if kind == crate::operation::OperationKind::HealthRun && s.host.is_none() {
            let hosts: Vec<Option<String>> =
                self.hosts().await?.into_iter().filter(|h| h.stopped_at.is_none()).map(|h| Some(h.name)).collect();
            if hosts.is_empty() { vec![None] } else { hosts }
        } else {
            vec![s.host.clone()]
        };
        let news: Vec<(NewOperation, String, String)> = targets
            .into_iter()
            .map(|host| {
                let new = NewOperation {
                    kind,
                    host,
                    vm: None,
                    params: s.params.0.clone(),
                    requested_by: format!("schedule:{}", s.name),
                    request_id: None,
                    idempotency_key: None,
                    max_attempts: NewOperation::DEFAULT_MAX_ATTEMPTS,
                };
                let (hash, queue) = (new.request_hash(), queue_for(new.host.as_deref()));
                (new, hash, queue)
            })
            .collect();
        let now = Timestamp::now();
        let fired: Vec<OperationId> = with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            let mut fired = Vec::new();
            for &(fire_time, catch_up) in plan {
                let id = OperationId::new();
                let claimed = sqlx::query::<Db>(
                    "INSERT INTO schedule_fires (schedule_id, fire_time, operation_id, fired_at, fired_by, manual, catch_up) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (schedule_id, fire_time) DO NOTHING",
                )
                .bind(s.id)
                .bind(fire_time)
                .bind(id)
                .bind(now)
                .bind(fired_by)
                .bind(manual)
                .bind(catch_up)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    continue; // another scheduler fired this tick
                }
                for (i, (new, hash, queue)) in news.iter().enumerate() {
                    // The fire row names the first operation; the others share its schedule and time.
                    let op_id = if i == 0 { id } else { OperationId::new() };
                    let row = NewRow { id: op_id, new, hash, queue, retry_of: None, schedule_id: Some(s.id), now };
                    let _: OperationRow = tx.insert_operation(row).await?;
                    tx.announce(queue).await?;
                    fired.push(op_id);
                }
            }
            let last = fired.last().copied();
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
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            fired
        });
        if !fired.is_empty() {
            for (_, _, queue) in &news {
                self.wakes.notify(queue);
            }
        }
        Ok(fired)
    }
}
