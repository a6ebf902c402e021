//! Silences on the Alerts page: the ones in force, and for operators a
//! form that creates one (one matcher, a lifetime, a comment) and a button
//! that expires one — the API's `silence_create` and `silence_delete`.

use hyperfleet_core::{
    SilenceId,
    alert::{MatchOp, Matcher, NewSilence, Silence},
    app::Actor,
    auth::{Role, parse_token_lifetime},
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    web::{Data, Form, Path},
};

use super::{
    forms::{ActionForm, given, post},
    layout::{csrf_field, time},
    session::UiSession,
};
use crate::{AppState, request_id::current_request_id};

/// The silences table, with Expire for operators, and the form for a new one.
pub fn section(who: &UiSession, silences: &[Silence]) -> Markup {
    html! {
        @if silences.is_empty() {
            p.empty { "No silence is in force." }
        } @else {
            table.silences {
                thead { tr { th { "matchers" } th { "from" } th { "until" } th { "by" } th { "comment" } th {} } }
                tbody {
                    @for s in silences {
                        tr data-silence=(s.id) {
                            td { @for m in &s.matchers { code { (m.name()) (m.op().as_str()) (m.value()) } " " } }
                            td { (time(s.starts_at)) }
                            td { (time(s.ends_at)) }
                            td { (s.created_by) }
                            td { (s.comment) }
                            td {
                                @if who.can(Role::Operator) {
                                    form.inline method="post" action={ "/ui/silences/" (s.id) "/expire" } {
                                        (csrf_field(who))
                                        button type="submit" { "Expire" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if who.can(Role::Operator) {
            form.filters method="post" action="/ui/silences" {
                (csrf_field(who))
                label { "label " input type="text" name="name" required placeholder="host"; }
                select name="op" { @for op in MatchOp::ALL { option value=(op.as_str()) { (op.as_str()) } } }
                label { "value " input type="text" name="value" required; }
                label { "for " input type="text" name="duration" required value="2h" size="5"; }
                label { "comment " input type="text" name="comment" required; }
                button type="submit" { "Silence" }
            }
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct SilenceForm {
    csrf: Option<String>,
    name: Option<String>,
    op: Option<String>,
    value: Option<String>,
    duration: Option<String>,
    comment: Option<String>,
}

#[handler]
pub async fn create(req: &Request, Data(state): Data<&AppState>, form: Option<Form<SilenceForm>>) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    post(req, state, form.csrf.as_deref(), Role::Operator, async |who| {
        let op = given(&form.op).map(|o| MatchOp::parse(&o)).transpose()?.unwrap_or(MatchOp::Eq);
        let matcher = Matcher::new(given(&form.name).unwrap_or_default(), op, form.value.clone().unwrap_or_default())?;
        let lasts = parse_token_lifetime(given(&form.duration).as_deref().unwrap_or_default())?;
        let new = NewSilence {
            matchers: vec![matcher],
            starts_at: None,
            ends_at: state.app.now().plus(lasts),
            comment: form.comment.clone().unwrap_or_default(),
            created_by: who.principal.name.clone(),
        };
        let rid = current_request_id();
        state.app.create_silence(Actor { name: &who.principal.name, request_id: Some(&rid) }, &new).await?;
        Ok("/ui/alerts".to_owned())
    })
    .await
}

#[handler]
pub async fn expire(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
    form: Option<Form<ActionForm>>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    post(req, state, form.csrf.as_deref(), Role::Operator, async |who| {
        let id = SilenceId::parse(&id)?;
        let rid = current_request_id();
        state.app.expire_silence(Actor { name: &who.principal.name, request_id: Some(&rid) }, id).await?;
        Ok("/ui/alerts".to_owned())
    })
    .await
}
