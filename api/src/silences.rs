//! `/api/v1/silences`: mute notifications of matching alerts for a while. A
//! silenced alert is still recorded, and its suppressed notifications counted.

use chrono::{DateTime, Utc};
use hyperfleet_core::{
    SilenceId, Timestamp,
    alert::{MatchOp, Matcher, NewSilence, Silence},
    app::Actor,
};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    AppState, Tag,
    auth::{OperatorAuth, ViewerAuth},
    error::ApiResult,
    request_id::current_request_id,
};

pub struct SilencesApi {
    pub state: AppState,
}

/// Selects alerts by `source`, `host`, `severity`, `title`, or a label name.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct MatcherView {
    /// `source`, `host`, `severity`, `title` or a label name.
    #[oai(validator(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"))]
    pub name: crate::text::Text,
    /// `=` (default), `!=`, `=~` or `!~` (regular expressions match the whole
    /// value). A pattern rather than an enum: generators such as progenitor
    /// cannot name enum variants made of symbols.
    #[oai(skip_serializing_if_is_none, validator(pattern = "^(=|!=|=~|!~)$"))]
    pub op: Option<crate::text::Text>,
    /// Up to 512 characters; a regular expression up to 256 bytes (one that is
    /// longer, does not compile, or compiles to more than 1 MiB is a 422 `invalid_matcher`).
    #[oai(validator(max_length = 512))]
    pub value: crate::text::Text,
}

#[derive(Debug, Clone, Object)]
pub struct SilenceView {
    pub id: uuid::Uuid,
    pub matchers: Vec<MatcherView>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub state: SilenceState,
}

/// Whether a silence mutes alerts now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl From<Silence> for SilenceView {
    fn from(s: Silence) -> Self {
        let now = Timestamp::now();
        let state = if s.ends_at <= now {
            SilenceState::Expired
        } else if s.starts_at > now {
            SilenceState::Pending
        } else {
            SilenceState::Active
        };
        Self {
            id: s.id.0,
            matchers: s
                .matchers
                .into_iter()
                .map(|m| MatcherView {
                    name: m.name().to_owned().into(),
                    op: Some(m.op().as_str().to_owned().into()),
                    value: m.value().to_owned().into(),
                })
                .collect(),
            starts_at: s.starts_at.0,
            ends_at: s.ends_at.0,
            created_by: s.created_by,
            comment: s.comment,
            created_at: s.created_at.0,
            state,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct SilenceListView {
    pub items: Vec<SilenceView>,
}

#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct SilenceRequest {
    /// 1-16 matchers; all must match.
    #[oai(validator(min_items = 1, max_items = 16))]
    pub matchers: Vec<MatcherView>,
    /// Default now.
    pub starts_at: Option<DateTime<Utc>>,
    /// Later than `starts_at` and than now (else a 422 `invalid_time_window`).
    pub ends_at: DateTime<Utc>,
    /// Why, in 1-1024 characters (all blank is a 422 `invalid_comment`).
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub comment: crate::text::Text,
}

#[derive(Debug, ApiResponse)]
pub enum SilenceCreated {
    #[oai(status = 201)]
    Created(Json<SilenceView>, #[oai(header = "Location")] String),
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Alerts")]
impl SilencesApi {
    /// List silences that have not ended, newest first (with `expired=true`, all of them).
    #[oai(path = "/silences", method = "get", operation_id = "silence_list")]
    async fn list(&self, _auth: ViewerAuth, expired: Query<Option<bool>>) -> ApiResult<Json<SilenceListView>> {
        let items = self.state.app.silences(expired.0.unwrap_or(false)).await?;
        Ok(Json(SilenceListView { items: items.into_iter().map(SilenceView::from).collect() }))
    }

    /// Create a silence.
    #[oai(path = "/silences", method = "post", operation_id = "silence_create")]
    async fn create(&self, auth: OperatorAuth, body: Json<SilenceRequest>) -> ApiResult<SilenceCreated> {
        let r = body.0;
        let matchers = r
            .matchers
            .into_iter()
            .map(|m| {
                let op = m.op.as_deref().map(MatchOp::parse).transpose()?.unwrap_or(MatchOp::Eq);
                Matcher::new(String::from(m.name), op, String::from(m.value))
            })
            .collect::<hyperfleet_core::Result<Vec<_>>>()?;
        let new = NewSilence {
            matchers,
            starts_at: r.starts_at.map(Timestamp),
            ends_at: Timestamp(r.ends_at),
            comment: r.comment.into(),
            created_by: auth.0.name.clone(),
        };
        let rid = current_request_id();
        let silence = self.state.app.create_silence(Actor { name: &auth.0.name, request_id: Some(&rid) }, &new).await?;
        let location = format!("/api/v1/silences/{}", silence.id);
        Ok(SilenceCreated::Created(Json(silence.into()), location))
    }

    /// Expire a silence now; it stays in the history.
    #[oai(path = "/silences/:id", method = "delete", operation_id = "silence_delete")]
    async fn delete(&self, auth: OperatorAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<SilenceView>> {
        let id = SilenceId(id.0);
        let rid = current_request_id();
        let silence = self.state.app.expire_silence(Actor { name: &auth.0.name, request_id: Some(&rid) }, id).await?;
        Ok(Json(silence.into()))
    }
}
