//! What an operation is linked to, for its page: the operations retrying it
//! and the alerts it raised or resolved.

use sqlx::AssertSqlSafe;

use super::{
    Store,
    alerts::{ALERT_COLUMNS, AlertRow},
    read_db,
    rows::{OPERATION_COLUMNS, OperationRow},
};
use crate::{OperationId, Result, alert::Alert, operation::Operation};

impl Store {
    /// The operations created to retry `id`, oldest first.
    pub async fn retries_of(&self, id: OperationId) -> Result<Vec<Operation>> {
        let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE retry_of = $1 ORDER BY id");
        let rows: Vec<OperationRow> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, OperationRow>(AssertSqlSafe(sql)).bind(id).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The alerts with an event recorded for operation `id`, newest first.
    pub async fn alerts_of_operation(&self, id: OperationId) -> Result<Vec<Alert>> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE id IN \
             (SELECT alert_id FROM alert_events WHERE operation_id = $1) ORDER BY last_seen DESC LIMIT 50"
        );
        let rows: Vec<AlertRow> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, AlertRow>(AssertSqlSafe(sql)).bind(id).fetch_all(pool).await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
