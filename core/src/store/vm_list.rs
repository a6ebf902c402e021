//! The VM inventory a page at a time: ordered by name then host, filtered by
//! host, state and a part of the name, keyset-paginated on (name, host).

use sqlx::AssertSqlSafe;

use super::{Page, Store, VmRecord, inventory::VM_COLUMNS, read_db};
use crate::{Error, Result, vm::VmState};

/// Where a page of VMs starts: after this (name, host). Written `name@host`;
/// neither part can hold an `@`, so the text is unambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmCursor {
    pub name: String,
    pub host: String,
}

impl VmCursor {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::invalid("invalid_cursor", "`cursor` must be the `next_cursor` of a previous page");
        let (name, host) = text.split_once('@').ok_or_else(bad)?;
        let name = crate::vm::VmName::parse(name).map_err(|_| bad())?;
        let host = crate::vm::HostName::parse(host).map_err(|_| bad())?;
        Ok(Self { name: name.as_str().to_owned(), host: host.into_string() })
    }
}

impl std::fmt::Display for VmCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.host)
    }
}

#[derive(Debug, Clone, Default)]
pub struct VmFilter {
    pub host: Option<String>,
    pub state: Option<VmState>,
    /// VMs whose name contains this, ignoring ASCII case.
    pub name: Option<String>,
    pub cursor: Option<VmCursor>,
    pub limit: u32,
}

/// `text` as a LIKE pattern matching it anywhere, with `\` escaping the
/// pattern characters (VM names may hold `_`).
fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl Store {
    /// A page of the inventory; `limit` is clamped to 1-500.
    pub async fn list_vms(&self, f: &VmFilter) -> Result<Page<VmRecord, VmCursor>> {
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        let mut push = |clause: &str, values: &[&str]| {
            let mut clause = clause.to_owned();
            for v in values {
                binds.push((*v).to_owned());
                clause = clause.replacen('?', &format!("${}", binds.len()), 1);
            }
            clauses.push(clause);
        };
        if let Some(h) = &f.host {
            push("host = ?", &[h]);
        }
        if let Some(s) = f.state {
            push("state = ?", &[s.as_str()]);
        }
        let pattern = f.name.as_deref().map(contains_pattern);
        if let Some(p) = &pattern {
            push("LOWER(name) LIKE ? ESCAPE '\\'", &[p]);
        }
        if let Some(c) = &f.cursor {
            push("(name > ? OR (name = ? AND host > ?))", &[&c.name, &c.name, &c.host]);
        }
        let where_sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let limit = f.limit.clamp(1, 500);
        let sql = format!("SELECT {VM_COLUMNS} FROM vms {where_sql} ORDER BY name, host LIMIT {}", limit + 1);
        let rows: Vec<VmRecord> = read_db!(self, |pool, Db| {
            // Planned for its values each time, as `list_operations` is.
            let mut q = sqlx::query_as::<Db, VmRecord>(AssertSqlSafe(sql.as_str())).persistent(false);
            for b in binds {
                q = q.bind(b);
            }
            q.fetch_all(pool).await
        })?;
        Ok(Page::of(rows, limit, |v| VmCursor { name: v.name.clone(), host: v.host.clone() }))
    }
}

impl Store {
    /// How many VMs each host has in each state (hosts with none are absent).
    pub async fn vm_state_counts(&self) -> Result<Vec<(String, VmState, i64)>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, VmState, i64)>(
                "SELECT host, state, COUNT(*) FROM vms GROUP BY host, state ORDER BY host, state",
            )
            .fetch_all(pool)
            .await
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_anything_else() {
        let c = VmCursor { name: "web-1".into(), host: "hv2".into() };
        assert_eq!(VmCursor::parse(&c.to_string()).unwrap(), c);
        for bad in ["web-1", "@hv2", "web-1@", "a@b@c", "we b@hv"] {
            assert!(VmCursor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_patterns_escape_like_wildcards() {
        assert_eq!(contains_pattern("Web_1"), "%web\\_1%");
        assert_eq!(contains_pattern("a.b-c"), "%a.b-c%");
    }
}
