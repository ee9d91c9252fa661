use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn dispel() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispel"));
    for var in ["NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "TERM"] {
        cmd.env_remove(var);
    }
    cmd
}

/// A running `dispel serve` writing its JSONL trace to a temporary file.
pub struct Server {
    child: Child,
    /// The server's stdin, when started with `start_with_stdin` (teaching mode reads it).
    pub stdin: Option<std::process::ChildStdin>,
    pub url: String,
    pub addr: String,
    trace: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        Server::spawn(extra, false)
    }

    pub fn start_with_stdin(extra: &[&str]) -> Server {
        Server::spawn(extra, true)
    }

    fn spawn(extra: &[&str], with_stdin: bool) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let trace = dir.path().join("trace.jsonl");
        let mut child = dispel()
            .args(["serve", "--port", "0", "--format", "jsonl", "--out"])
            .arg(&trace)
            .args(extra)
            .stdin(if with_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dispel serve");
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("http://") {
                    let url: String = line[i..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(url);
                }
            }
        });
        let page = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("dispel serve printed no URL");
        let base = page
            .trim_end_matches("/auctions")
            .trim_end_matches('/')
            .to_string();
        let addr = base.trim_start_matches("http://").to_string();
        Server {
            child,
            stdin,
            url: base,
            addr,
            trace,
            _dir: dir,
        }
    }

    /// Waits until the trace written so far satisfies `done` (10 s at most): how a test waits
    /// for the server to have seen something, instead of sleeping.
    pub fn wait_for(&self, what: &str, done: impl Fn(&Trace) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !done(&Trace::read_so_far(&self.trace)) {
            assert!(
                std::time::Instant::now() < deadline,
                "the server never showed {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the server process, in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Stops the server with SIGTERM (as Ctrl-C would) and returns its trace.
    pub fn stop(mut self) -> Trace {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(status.success(), "dispel serve exited with {status}");
                    break;
                }
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    panic!("dispel serve did not stop on SIGTERM");
                }
            }
        }
        Trace::read(&self.trace)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dispel watch` running the real Flask-SocketIO reference app, its JSONL trace in a
/// temporary file.
pub struct Watched {
    child: Child,
    pub addr: String,
    pub url: String,
    trace: PathBuf,
    /// Everything dispel and the app wrote to stderr so far (the app's output passes through).
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Watched {
    /// Starts `dispel watch [extra] -- python tests/flask_app/app.py --port P [app_args]`;
    /// `None` without tests/.venv.
    pub fn start(extra: &[&str], app_args: &[&str]) -> Option<Watched> {
        Watched::start_app("tests/flask_app/app.py", extra, app_args)
    }

    /// The same for another app script of the repository (`tests/student_app/chat.py`).
    pub fn start_app(script: &str, extra: &[&str], app_args: &[&str]) -> Option<Watched> {
        Watched::start_in(".venv", script, extra, app_args)
    }

    /// The same with the Python of another venv of tests/ (`.venv-async` for eventlet).
    pub fn start_in(
        venv: &str,
        script: &str,
        extra: &[&str],
        app_args: &[&str],
    ) -> Option<Watched> {
        let python = repo().join("tests").join(venv).join("bin/python");
        if !python.exists() {
            skip(&format!("tests/{venv}"));
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let trace = dir.path().join("trace.jsonl");
        let port = crate::oracle::free_port();
        let mut child = dispel()
            .args(["watch", "--format", "jsonl", "--out"])
            .arg(&trace)
            .args(extra)
            .arg("--")
            .arg(&python)
            .arg(repo().join(script))
            .args(["--port", &port.to_string()])
            .args(app_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // A process group of its own: dropping it ends dispel and the app it started.
            .process_group(0)
            .spawn()
            .expect("start dispel watch");
        let stderr = child.stderr.take().expect("stderr");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("dispel watch: open http://") {
                    let _ = tx.send(());
                }
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            panic!(
                "dispel watch did not say where it listens:\n{}",
                seen.lock().unwrap()
            );
        }
        let addr = format!("127.0.0.1:{port}");
        Some(Watched {
            child,
            url: format!("http://{addr}"),
            addr,
            trace,
            stderr: seen,
            _dir: dir,
        })
    }

    /// Stops it with SIGTERM (as a terminal's Ctrl-C would, passed on to the app); returns the
    /// exit status and the trace.
    pub fn stop(mut self) -> (std::process::ExitStatus, Trace) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    panic!("dispel watch did not stop on SIGTERM");
                }
            }
        };
        (status, Trace::read(&self.trace))
    }
}

impl Drop for Watched {
    /// Kills the whole process group: dispel watch and the app it started (killing dispel
    /// alone would leave the app running, orphaned).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The committed files under traces/ whose names end with one of `suffixes` (a capture,
/// its golden trace or report), sorted.
pub fn committed(suffixes: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["reference", "flask", "diagnoses", "mq"] {
        let Ok(rd) = std::fs::read_dir(repo().join("traces").join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if suffixes.iter().any(|s| p.to_string_lossy().ends_with(s)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A JSONL trace.
pub struct Trace {
    pub events: Vec<Value>,
}

impl Trace {
    /// The trace as written so far by a running server (the writer flushes whenever its
    /// queue runs empty); a last line still being written is left out.
    pub fn read_so_far(path: &Path) -> Trace {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let events = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Trace { events }
    }

    pub fn read(path: &Path) -> Trace {
        let text = std::fs::read_to_string(path).expect("read trace");
        let events = text
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL line {l:?}: {e}"))
            })
            .collect();
        Trace { events }
    }

    pub fn stage(&self, stage: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["stage"] == stage).collect()
    }

    pub fn conn_stages(&self, conn: u64) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["conn"] == conn)
            .map(|e| e["stage"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Connections that carried a Socket.IO event with this name from the client.
    pub fn conns_sending(&self, event: &str) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .events
            .iter()
            .filter(|e| {
                e["stage"] == "sio.packet" && e["dir"] == "c2s" && e["fields"]["event"] == event
            })
            .filter_map(|e| e["conn"].as_u64())
            .collect();
        v.dedup();
        v
    }

    /// Errors other than python-socketio's known race: on disconnect it can send `41` and `1`
    /// after its own Close frame, which the trace rightly flags (RFC 6455 §5.5.1), and where
    /// the server then notes what Werkzeug would have done (`fidelity`).
    pub fn unexpected_errors(&self) -> Vec<String> {
        self.stage("error")
            .iter()
            .filter(|e| e["fields"]["fidelity"] != true)
            .filter_map(|e| e["summary"].as_str())
            .filter(|e| !e.contains("after this side's Close frame"))
            .map(str::to_string)
            .collect()
    }

    pub fn errors(&self) -> Vec<String> {
        self.stage("error")
            .iter()
            .map(|e| e["summary"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

/// Asserts `expected` appears in `actual` in order (other stages may come between).
#[track_caller]
pub fn assert_in_order(actual: &[String], expected: &[&str]) {
    let mut it = actual.iter();
    for want in expected {
        assert!(
            it.any(|s| s == want),
            "stage {want:?} missing or out of order.\nexpected in order: {expected:?}\nactual: {actual:?}"
        );
    }
}

/// What a test needs besides dispel, installed by tests/setup.sh.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// tests/.venv: Flask-SocketIO, python-socketio and the Python clients.
    Python,
    /// tests/node_modules: socket.io-client, and `node` itself.
    Node,
}

/// Whether what a test needs is here. A plain `cargo test` on a machine without it skips the
/// test with a message; the README's test command (tests/run-all.sh, after tests/setup.sh)
/// sets DISPEL_REQUIRE_ALL=1, and then a missing one fails the test instead.
pub fn have(needs: &[Need]) -> bool {
    for need in needs {
        let (here, what) = match need {
            Need::Python => (
                repo().join("tests/.venv/bin/python").exists(),
                "tests/.venv (Flask-SocketIO, python-socketio)",
            ),
            Need::Node => (
                repo().join("tests/node_modules/socket.io-client").exists()
                    && Command::new("node")
                        .arg("--version")
                        .output()
                        .is_ok_and(|o| o.status.success()),
                "node and tests/node_modules (socket.io-client)",
            ),
        };
        if !here {
            skip(what);
            return false;
        }
    }
    true
}

/// Skips a test for want of `what`, or fails it when every test must run.
pub fn skip(what: &str) {
    assert!(
        std::env::var_os("DISPEL_REQUIRE_ALL").is_none(),
        "{what} is missing, and DISPEL_REQUIRE_ALL asks for every test: run tests/setup.sh"
    );
    eprintln!(
        "SKIP: {what} is missing (tests/setup.sh installs it; the README's test command runs it)"
    );
}

fn venv_python() -> PathBuf {
    let p = repo().join("tests/.venv/bin/python");
    assert!(
        p.exists(),
        "tests/.venv is missing: run tests/setup.sh (the README's test command does)"
    );
    p
}

/// Runs the python-socketio scenario client; panics with its output if it fails.
pub fn py_client(url: &str, scenario: &str, transports: &str) -> Vec<Value> {
    let out = Command::new(venv_python())
        .arg(repo().join("tests/clients/py_client.py"))
        .args([url, "--scenario", scenario, "--transports", transports])
        .output()
        .expect("run py_client.py");
    client_result("py_client", out)
}

/// Runs the npm socket.io-client scenario client.
pub fn node_client(url: &str, scenario: &str, transports: &str) -> Vec<Value> {
    assert!(
        repo().join("tests/node_modules/socket.io-client").exists(),
        "tests/node_modules is missing: run tests/setup.sh"
    );
    let out = Command::new("node")
        .arg(repo().join("tests/clients/node_client.mjs"))
        .args([url, "--scenario", scenario, "--transports", transports])
        .output()
        .expect("run node_client.mjs");
    client_result("node_client", out)
}

fn client_result(name: &str, out: Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Compares `got` with the golden file, or rewrites it under `DISPEL_BLESS=1`. Returns a
/// description of the first difference, if any.
pub fn check_golden(golden: &Path, got: &str) -> Option<String> {
    if std::env::var_os("DISPEL_BLESS").is_some() {
        std::fs::write(golden, got).expect("write golden");
        return None;
    }
    let want = std::fs::read_to_string(golden).unwrap_or_default();
    if want == got {
        return None;
    }
    // A unified diff, cut to a screenful, each line cut to 300 characters (JSONL lines are
    // long).
    const MAX_LINES: usize = 80;
    let diff = similar::TextDiff::from_lines(want.as_str(), got);
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header("golden", "got")
        .to_string();
    let mut shown: Vec<String> = text
        .lines()
        .take(MAX_LINES)
        .map(|l| match l.char_indices().nth(300) {
            Some((i, _)) => format!("{}…", &l[..i]),
            None => l.to_string(),
        })
        .collect();
    let total = text.lines().count();
    if total > MAX_LINES {
        shown.push(format!("... {} more diff lines", total - MAX_LINES));
    }
    Some(format!(
        "{} (want {} lines, got {}):\n{}",
        golden.display(),
        want.lines().count(),
        got.lines().count(),
        shown.join("\n")
    ))
}
