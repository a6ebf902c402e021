//! A throwaway PostgreSQL cluster of the test's own, on a free port, that a
//! test may restart and stop at will without disturbing the shared server
//! the other tests use. Needs the server binaries (`initdb`, `pg_ctl`) and
//! root (it runs them as the `postgres` user).

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use sqlx::Connection;

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

impl Cluster {
    /// Initialises and starts a cluster; `None` (with the reason on stderr) when it cannot.
    pub fn start() -> Option<Self> {
        let bin = server_bin().or_else(|| {
            eprintln!("no PostgreSQL server binaries under /usr/lib/postgresql");
            None
        })?;
        let dir = tempfile::tempdir().ok()?;
        let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().ok()?;
        if !chown.success() {
            eprintln!("cannot hand a directory to the postgres user");
            return None;
        }
        let cluster = Self { dir, bin, port: crate::helpers::free_port() };
        let data = cluster.data();
        let init = cluster.as_postgres("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"]);
        if !init {
            eprintln!("initdb failed");
            return None;
        }
        cluster.start_server().then_some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) -> bool {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn options(&self) -> String {
        format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display())
    }

    fn log(&self) -> String {
        self.dir.path().join("server.log").display().to_string()
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) -> bool {
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-o", &self.options(), "-l", &self.log(), "-w", "start"])
    }

    /// Stops the server (`fast`: disconnect clients, clean shutdown).
    pub fn stop_server(&self) -> bool {
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"])
    }

    /// Restarts the server with shutdown `mode` (`immediate` is a crash and recovery).
    pub fn restart(&self, mode: &str) -> bool {
        let data = self.data();
        let (options, log) = (self.options(), self.log());
        self.as_postgres("pg_ctl", &["-D", &data, "-m", mode, "-o", &options, "-l", &log, "-w", "restart"])
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub async fn database(&self, name: &str) -> String {
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", self.admin_url())).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
        format!("{}/{name}", self.admin_url())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }
}
