//! A throw-away PostgreSQL cluster for tests (feature `test-support`): `initdb` into a
//! temporary folder, the server on a free loopback port, and a fresh database per test.
//!
//! The binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<n>/bin`, or
//! the folder in `BESIKTA_PG_BIN`). `initdb` refuses to run as root, so as root everything
//! runs as the `postgres` system user (`runuser`) in a folder it owns. The server is
//! started under a small shell that waits on a pipe from this process: when the test
//! process ends, however it ends (even SIGKILL), the pipe closes and the shell stops the
//! server and removes the folder, so no cluster outlives its tests.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running cluster; stopped and removed when dropped (or when the process ends).
pub struct PgCluster {
    port: u16,
    dir: PathBuf,
    /// Closing it tells the shell to stop the server.
    stdin: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
    next_db: AtomicUsize,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PgCluster(127.0.0.1:{}, {})",
            self.port,
            self.dir.display()
        )
    }
}

/// The folder of `initdb`, `postgres`: `BESIKTA_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<n>/bin`.
pub fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("BESIKTA_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| {
            format!(
                "no PostgreSQL in /usr/lib/postgresql ({e}): run scripts/setup (installs Debian's \
                 postgresql) or set BESIKTA_PG_BIN to the folder of initdb and postgres"
            )
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no /usr/lib/postgresql/<version>/bin/initdb: run scripts/setup".into())
}

/// Uid and gid of the `postgres` system user, from /etc/passwd.
fn postgres_user() -> Result<(u32, u32), String> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
    passwd
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.first() == Some(&"postgres") && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .ok_or_else(|| {
            "running as root but there is no `postgres` user to run PostgreSQL as: install \
             Debian's postgresql package (scripts/setup)"
                .into()
        })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` run as the `postgres` user when we are root.
fn command(program: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

/// Runs `f` on a thread of its own: the synchronous client must not run inside a tokio
/// runtime, and tests call this from `#[tokio::test]` functions.
fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(f)
        .join()
        .map_err(|_| "the database thread panicked".to_string())?
}

impl PgCluster {
    /// `initdb` and start a cluster; waits until it accepts connections.
    pub fn start() -> Result<PgCluster, String> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let bin = bin_dir()?;
        let root = is_root();
        let dir = std::env::temp_dir().join(format!(
            "besikta-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        // A folder left by a killed run with the same pid would make initdb refuse.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if root {
            let (uid, gid) = postgres_user()?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("cannot give {} to postgres: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let out = command(&bin.join("initdb"), root)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}/initdb: {e}", bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed in {}: {}{}",
                dir.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port()?;
        // Waits for end of input, then stops the server (fast shutdown) and removes the folder.
        let script = r#"
"$1/postgres" -D "$2/data" -p "$3" -k "$2" -c listen_addresses=127.0.0.1 \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c max_connections=400 -c shared_buffers=32MB >"$2/log" 2>&1 &
pid=$!
read -r _ignored
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$2"
"#;
        let mut child = command(Path::new("sh"), root)
            .args(["-c", script, "sh"])
            .arg(&bin)
            .arg(&dir)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}/postgres: {e}", bin.display()))?;
        let stdin = child.stdin.take();
        let cluster = PgCluster {
            port,
            dir,
            stdin: Mutex::new(stdin),
            child: Mutex::new(child),
            next_db: AtomicUsize::new(0),
        };
        cluster.wait_ready(Duration::from_secs(60))?;
        Ok(cluster)
    }

    fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        let url = self.url("postgres");
        loop {
            let url = url.clone();
            let ok = off_runtime(move || {
                postgres::Client::connect(&url, postgres::NoTls)
                    .map(drop)
                    .map_err(|e| e.to_string())
            });
            let error = match ok {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let exited = self
                .child
                .lock()
                .map(|mut c| matches!(c.try_wait(), Ok(Some(_))))
                .unwrap_or(true);
            if exited || start.elapsed() > timeout {
                let mut log = String::new();
                let _ = std::fs::File::open(self.dir.join("log"))
                    .and_then(|mut f| f.read_to_string(&mut log));
                return Err(format!(
                    "PostgreSQL on 127.0.0.1:{} did not start ({error}); its log: {log}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The cluster every test of this process shares (started on first use).
    pub fn shared() -> Result<&'static PgCluster, String> {
        static SHARED: OnceLock<Result<PgCluster, String>> = OnceLock::new();
        SHARED
            .get_or_init(PgCluster::start)
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` in this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a new empty database and returns its URL.
    pub fn fresh_database(&self) -> Result<String, String> {
        let name = format!("test_{}", self.next_db.fetch_add(1, Ordering::Relaxed));
        let admin = self.url("postgres");
        let create = format!("CREATE DATABASE {name}");
        off_runtime(move || {
            let mut c =
                postgres::Client::connect(&admin, postgres::NoTls).map_err(|e| e.to_string())?;
            c.batch_execute(&create).map_err(|e| e.to_string())
        })?;
        Ok(self.url(&name))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Ok(mut stdin) = self.stdin.lock() {
            stdin.take();
        }
        if let Ok(mut child) = self.child.lock() {
            let _ = child.wait();
        }
    }
}
