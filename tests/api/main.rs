#![allow(clippy::unwrap_used)] // a panic is how a test fails
//! End-to-end tests of Hyperfleet: the real app, real databases (SQLite and
//! PostgreSQL), libvirt's test driver, and real worker processes.

mod alert_crash;
mod alert_history;
mod alert_policy;
mod alerts;
mod audit;
mod auth_limits;
mod backends;
mod backups;
mod backups_qemu;
mod bad_input;
mod cli;
mod crash;
mod crash_safety;
mod dedup;
mod disk_full;
mod fleet;
mod health;
mod helpers;
mod hosts;
mod ledger;
mod lows;
mod openapi;
mod outage;
mod pg_cluster;
mod qemu;
mod receivers;
mod reconcilers;
mod retention;
mod retries;
mod schedules;
mod schema;
mod security;
mod silences;
mod slots;
mod slow_clients;
mod stop;
mod token_lifetimes;
mod typed_records;
mod vm_power;
