//! Text for people: aligned tables, times, and the one-line summaries of an
//! operation that `vm`, `ops` and `schedules` share.

use chrono::{DateTime, Utc};
use hyperfleet_client::types::{OperationStatus, OperationView};

/// Prints `rows` under `header`, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A time to the second, in UTC.
pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn opt_time(t: Option<&DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), time)
}

/// `vm.start test on hv1`, `health.run on hv1`, `ledger.prune`.
pub fn what(op: &OperationView) -> String {
    let mut out = op.kind.to_string();
    if let Some(vm) = &op.vm {
        out.push(' ');
        out.push_str(vm);
    }
    if let Some(host) = &op.host {
        out.push_str(" on ");
        out.push_str(host);
    }
    out
}

/// `running, attempt 1 of 5`.
pub fn progress(op: &OperationView) -> String {
    match op.status {
        OperationStatus::Queued if op.attempt_count == 0 => "queued".to_owned(),
        _ => format!("{}, attempt {} of {}", op.status, op.attempt_count, op.max_attempts),
    }
}

pub fn is_finished(status: OperationStatus) -> bool {
    matches!(status, OperationStatus::Succeeded | OperationStatus::Failed | OperationStatus::Cancelled)
}

/// How long it ran, from the first attempt's start (or its creation) to its end.
pub fn took(op: &OperationView) -> Option<String> {
    let end = op.finished_at?;
    let start = op.started_at.unwrap_or(op.created_at);
    let ms = (end - start).num_milliseconds().max(0);
    Some(format!("{:.1} s", ms as f64 / 1000.0))
}

/// The line that says why a finished operation did not succeed.
pub fn failure_line(op: &OperationView) -> String {
    let why = match op.status {
        OperationStatus::Cancelled => match &op.cancelled_by {
            Some(by) => format!("cancelled by {by}"),
            None => "cancelled".to_owned(),
        },
        _ => {
            let class = op.error_class.map_or_else(|| "error".to_owned(), |c| c.to_string());
            let message = op.last_error.as_deref().unwrap_or("no message");
            format!("failed: {class}: {}", message.split_whitespace().collect::<Vec<_>>().join(" "))
        }
    };
    format!("{why} ({}, attempt {} of {}, operation {})", what(op), op.attempt_count, op.max_attempts, op.id)
}

/// The line that says a finished operation succeeded, and its result.
pub fn success_lines(op: &OperationView) -> Vec<String> {
    let attempts =
        if op.attempt_count == 1 { "1 attempt".to_owned() } else { format!("{} attempts", op.attempt_count) };
    let took = took(op).map(|t| format!(", {t}")).unwrap_or_default();
    let mut lines = vec![format!("succeeded: {} ({attempts}{took}, operation {})", what(op), op.id)];
    if let Some(result) = op.result.as_ref().filter(|r| !r.is_null()) {
        lines.push(format!("result: {result}"));
    }
    for w in &op.warnings {
        lines.push(format!("warning: {w}"));
    }
    lines
}
