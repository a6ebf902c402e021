//! `/api/v1/schedules`: cron schedules that enqueue operations.

use chrono::{DateTime, FixedOffset, Utc};
use hyperfleet_core::{
    ScheduleId, Timestamp,
    app::Actor,
    operation::{OperationKind, OperationStatus},
    schedule::MissedTicks,
    schedule::ScheduleDef,
    store::{FireRecord, ScheduleRecord},
};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};
use serde_json::json;

use crate::{
    AppState, Tag,
    auth::{AdminAuth, OperatorAuth, ViewerAuth},
    error::ApiResult,
    request_id::current_request_id,
};

pub struct SchedulesApi {
    pub state: AppState,
}

#[derive(Debug, Clone, Object)]
pub struct FireView {
    pub fire_time: DateTime<Utc>,
    pub operation_id: uuid::Uuid,
    pub fired_at: DateTime<Utc>,
    /// The scheduler process (or the token, for a manual trigger) that fired it.
    pub fired_by: String,
    pub manual: bool,
    /// Fired late for ticks missed while no scheduler ran (`missed_ticks: run_once`).
    pub catch_up: bool,
}

impl From<FireRecord> for FireView {
    fn from(f: FireRecord) -> Self {
        Self {
            fire_time: f.fire_time.0,
            operation_id: f.operation_id.0,
            fired_at: f.fired_at.0,
            fired_by: f.fired_by,
            manual: f.manual,
            catch_up: f.catch_up,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct ScheduleView {
    pub id: uuid::Uuid,
    pub name: String,
    /// 5 fields (`min hour dom month dow`) or 6-7 (with seconds, year).
    pub cron: String,
    /// IANA time zone the cron expression is read in.
    pub timezone: String,
    // The operation kind it enqueues.
    pub kind: OperationKind,
    pub params: serde_json::Value,
    #[oai(skip_serializing_if_is_none)]
    pub host: Option<String>,
    pub enabled: bool,
    pub missed_ticks: MissedTicks,
    pub jitter_s: i32,
    #[oai(skip_serializing_if_is_none)]
    pub next_fire_at: Option<DateTime<Utc>>,
    #[oai(skip_serializing_if_is_none)]
    pub last_fire_at: Option<DateTime<Utc>>,
    #[oai(skip_serializing_if_is_none)]
    pub last_operation_id: Option<uuid::Uuid>,
    // Status of the last operation it fired (absent once retention removed it).
    #[oai(skip_serializing_if_is_none)]
    pub last_outcome: Option<OperationStatus>,
    /// The next five fire times, in the schedule's time zone.
    pub upcoming: Vec<DateTime<FixedOffset>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The latest fires, newest first (on `schedule_get` only).
    #[oai(skip_serializing_if_is_none)]
    pub fires: Option<Vec<FireView>>,
}

impl ScheduleView {
    fn new(s: ScheduleRecord, last_outcome: Option<OperationStatus>) -> Self {
        let upcoming = if s.enabled {
            s.spec().map(|spec| spec.upcoming_local(Timestamp::now(), 5)).unwrap_or_default()
        } else {
            Vec::new()
        };
        Self {
            id: s.id.0,
            name: s.name,
            cron: s.cron,
            timezone: s.timezone,
            kind: s.kind,
            params: s.params.0,
            host: s.host,
            enabled: s.enabled,
            missed_ticks: s.missed_ticks,
            jitter_s: s.jitter_s,
            next_fire_at: s.next_fire_at.map(|t| t.0),
            last_fire_at: s.last_fire_at.map(|t| t.0),
            last_operation_id: s.last_operation_id.map(|i| i.0),
            last_outcome,
            upcoming,
            created_by: s.created_by,
            created_at: s.created_at.0,
            updated_at: s.updated_at.0,
            fires: None,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct ScheduleListView {
    pub items: Vec<ScheduleView>,
}

/// A schedule's definition.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// 1-64 characters of A-Z, a-z, 0-9, `.`, `_`, `-`.
    #[oai(validator(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
    pub name: crate::text::Text,
    /// 5 fields (`min hour dom month dow`) or 6-7 (with seconds, year); an
    /// expression cron cannot read is a 422 `invalid_cron`.
    #[oai(validator(min_length = 1, max_length = 256))]
    pub cron: crate::text::Text,
    /// IANA name; default `UTC` (an unknown zone is a 422 `invalid_timezone`).
    #[oai(validator(min_length = 1, max_length = 64))]
    pub timezone: Option<crate::text::Text>,
    pub kind: OperationKind,
    pub params: Option<serde_json::Value>,
    /// Host-bound work goes to this host's worker.
    #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
    pub host: Option<crate::text::Text>,
    /// Default true.
    pub enabled: Option<bool>,
    // Default `skip`.
    pub missed_ticks: Option<MissedTicks>,
    /// Spread each fire over up to this many seconds (default 0).
    #[oai(validator(maximum(value = "3600")))]
    pub jitter_s: Option<u32>,
}

/// Fields to change; absent ones stay.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct SchedulePatch {
    #[oai(validator(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
    pub name: Option<crate::text::Text>,
    #[oai(validator(min_length = 1, max_length = 256))]
    pub cron: Option<crate::text::Text>,
    #[oai(validator(min_length = 1, max_length = 64))]
    pub timezone: Option<crate::text::Text>,
    pub kind: Option<OperationKind>,
    pub params: Option<serde_json::Value>,
    #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
    pub host: Option<crate::text::Text>,
    pub enabled: Option<bool>,
    pub missed_ticks: Option<MissedTicks>,
    #[oai(validator(maximum(value = "3600")))]
    pub jitter_s: Option<u32>,
}

#[derive(Debug, ApiResponse)]
pub enum ScheduleCreated {
    #[oai(status = 201)]
    Created(Json<ScheduleView>, #[oai(header = "Location")] String),
}

#[derive(Debug, ApiResponse)]
pub enum Triggered {
    /// Fired: the operation is queued.
    #[oai(status = 202)]
    Accepted(Json<crate::views::OperationView>, #[oai(header = "Location")] String),
}

fn def_of(r: ScheduleRequest) -> hyperfleet_core::Result<ScheduleDef> {
    Ok(ScheduleDef {
        name: r.name.into(),
        cron: r.cron.into(),
        timezone: r.timezone.map_or_else(|| "UTC".to_owned(), String::from),
        kind: r.kind.as_str().to_owned(),
        params: r.params.unwrap_or_else(|| json!({})),
        host: r.host.map(String::from),
        enabled: r.enabled.unwrap_or(true),
        missed_ticks: r.missed_ticks.unwrap_or(MissedTicks::Skip),
        jitter_s: r.jitter_s.unwrap_or(0),
    })
}

impl SchedulesApi {
    async fn view(&self, s: ScheduleRecord) -> hyperfleet_core::Result<ScheduleView> {
        let outcome = match s.last_operation_id {
            Some(id) => match self.state.app.operation(id).await {
                Ok(op) => Some(op.status),
                // Retention removed it; the schedule stays readable without it.
                Err(hyperfleet_core::Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        Ok(ScheduleView::new(s, outcome))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Schedules")]
impl SchedulesApi {
    /// List schedules.
    #[oai(path = "/schedules", method = "get", operation_id = "schedule_list")]
    async fn list(&self, _auth: ViewerAuth) -> ApiResult<Json<ScheduleListView>> {
        let mut items = Vec::new();
        for s in self.state.app.schedules().await? {
            items.push(self.view(s).await?);
        }
        Ok(Json(ScheduleListView { items }))
    }

    /// Create a schedule. An invalid cron expression or time zone is a 400 naming the problem.
    #[oai(path = "/schedules", method = "post", operation_id = "schedule_create")]
    async fn create(&self, auth: AdminAuth, body: Json<ScheduleRequest>) -> ApiResult<ScheduleCreated> {
        let def = def_of(body.0)?;
        let rid = current_request_id();
        let s = self.state.app.create_schedule(Actor { name: &auth.0.name, request_id: Some(&rid) }, &def).await?;
        let location = format!("/api/v1/schedules/{}", s.id);
        Ok(ScheduleCreated::Created(Json(self.view(s).await?), location))
    }

    /// Get a schedule with its next five fire times and latest fires.
    #[oai(path = "/schedules/:id", method = "get", operation_id = "schedule_get")]
    async fn get(&self, _auth: ViewerAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<ScheduleView>> {
        let id = ScheduleId(id.0);
        let s = self.state.app.schedule(id).await?;
        let mut view = self.view(s).await?;
        view.fires = Some(self.state.app.fires(id, 20).await?.into_iter().map(FireView::from).collect());
        Ok(Json(view))
    }

    /// Change a schedule; its next fire is recomputed from now.
    #[oai(path = "/schedules/:id", method = "patch", operation_id = "schedule_update")]
    async fn update(
        &self,
        auth: AdminAuth,
        id: Path<uuid::Uuid>,
        body: Json<SchedulePatch>,
    ) -> ApiResult<Json<ScheduleView>> {
        let id = ScheduleId(id.0);
        let before = self.state.app.schedule(id).await?;
        let p = body.0;
        let def = def_of(ScheduleRequest {
            name: p.name.unwrap_or_else(|| before.name.clone().into()),
            cron: p.cron.unwrap_or_else(|| before.cron.clone().into()),
            timezone: Some(p.timezone.unwrap_or_else(|| before.timezone.clone().into())),
            kind: p.kind.unwrap_or(before.kind),
            params: Some(p.params.unwrap_or_else(|| before.params.0.clone())),
            host: p.host.or_else(|| before.host.clone().map(Into::into)),
            enabled: Some(p.enabled.unwrap_or(before.enabled)),
            missed_ticks: Some(p.missed_ticks.unwrap_or(before.missed_ticks)),
            jitter_s: Some(p.jitter_s.unwrap_or(before.jitter_s as u32)),
        })?;
        let rid = current_request_id();
        let after =
            self.state.app.update_schedule(Actor { name: &auth.0.name, request_id: Some(&rid) }, id, &def).await?;
        Ok(Json(self.view(after).await?))
    }

    /// Delete a schedule (its fired operations stay in the ledger).
    #[oai(path = "/schedules/:id", method = "delete", operation_id = "schedule_delete")]
    async fn delete(&self, auth: AdminAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<ScheduleView>> {
        let id = ScheduleId(id.0);
        let rid = current_request_id();
        let before = self.state.app.delete_schedule(Actor { name: &auth.0.name, request_id: Some(&rid) }, id).await?;
        Ok(Json(ScheduleView::new(before, None)))
    }

    /// Fire a schedule now (recorded as manual).
    #[oai(path = "/schedules/:id/trigger", method = "post", operation_id = "schedule_trigger")]
    async fn trigger(&self, auth: OperatorAuth, id: Path<uuid::Uuid>) -> ApiResult<Triggered> {
        let id = ScheduleId(id.0);
        let op = self.state.app.trigger_schedule(id, &auth.0.name).await?;
        let location = format!("/api/v1/operations/{}", op.id);
        Ok(Triggered::Accepted(Json(crate::views::OperationView::from(op)), location))
    }
}
