//! `405 Method Not Allowed` names what is allowed: the `Allow` header lists
//! the methods the OpenAPI document declares for the path (RFC 9110 §15.5.6).
//! The table is read from the document itself, so it cannot drift from the
//! routes.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, StatusCode, header::ALLOW},
};

/// Path templates (`/api/v1/vms/{name}`) and the methods declared on each.
#[derive(Debug, Default)]
pub struct AllowTable {
    routes: Vec<(Vec<Segment>, String)>,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Param,
}

impl AllowTable {
    /// Built from the OpenAPI document's `paths`.
    pub fn from_spec(spec: &str) -> Self {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(spec) else { return Self::default() };
        let Some(paths) = doc["paths"].as_object() else { return Self::default() };
        let routes = paths
            .iter()
            .map(|(template, item)| {
                let segments = split(template)
                    .map(|s| if s.starts_with('{') { Segment::Param } else { Segment::Literal(s.to_owned()) })
                    .collect();
                let mut methods: Vec<String> = item
                    .as_object()
                    .into_iter()
                    .flat_map(|o| o.keys())
                    .filter(|m| matches!(m.as_str(), "get" | "put" | "post" | "delete" | "patch" | "head" | "options"))
                    .map(|m| m.to_uppercase())
                    .collect();
                if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
                    methods.push("HEAD".into());
                }
                methods.sort();
                (segments, methods.join(", "))
            })
            .collect();
        Self { routes }
    }

    /// The `Allow` value for `path`, if the document declares the path.
    pub fn allowed(&self, path: &str) -> Option<&str> {
        let parts: Vec<&str> = split(path).collect();
        self.routes.iter().find_map(|(segments, methods)| {
            let matches = segments.len() == parts.len()
                && segments.iter().zip(&parts).all(|(s, p)| match s {
                    Segment::Param => !p.is_empty(),
                    Segment::Literal(l) => l == p,
                });
            matches.then_some(methods.as_str())
        })
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.trim_end_matches('/').split('/').skip(1)
}

/// Adds `Allow` to every 405.
pub async fn with_allow<E: Endpoint>(next: E, req: Request, table: Arc<AllowTable>) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let mut resp = match next.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(value) = table.allowed(&path).and_then(|m| HeaderValue::from_str(m).ok())
    {
        resp.headers_mut().insert(ALLOW, value);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates_by_segment() {
        let spec = r#"{"paths": {"/api/v1/vms/{name}": {"get": {}}, "/api/v1/vms/{name}/start": {"post": {}},
            "/api/v1/schedules/{id}": {"get": {}, "patch": {}, "delete": {}, "parameters": []}}}"#;
        let t = AllowTable::from_spec(spec);
        assert_eq!(t.allowed("/api/v1/vms/web"), Some("GET, HEAD"));
        assert_eq!(t.allowed("/api/v1/vms/web/start"), Some("POST"));
        assert_eq!(t.allowed("/api/v1/schedules/x/"), Some("DELETE, GET, HEAD, PATCH"));
        assert_eq!(t.allowed("/api/v1/vms"), None);
    }
}
