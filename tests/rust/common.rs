//! Helpers shared by the integration tests.

use bytes::Bytes;
use kiwi::cmd::Session;
use kiwi::resp::Reply;
use kiwi::{Engine, RuntimeConfig};

/// An engine on a temporary directory that lives as long as the value.
pub struct TestEngine {
    pub engine: Engine,
    pub session: Session,
    _dir: tempfile::TempDir,
}

impl TestEngine {
    pub fn new() -> TestEngine {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(RuntimeConfig::new(dir.path())).expect("open engine");
        let session = engine.local_session();
        TestEngine {
            engine,
            session,
            _dir: dir,
        }
    }

    /// An engine already opened on `dir`, which it keeps alive.
    pub fn wrap(engine: Engine, dir: tempfile::TempDir) -> TestEngine {
        let session = engine.local_session();
        TestEngine {
            engine,
            session,
            _dir: dir,
        }
    }

    /// Run a command given as words; returns the reply.
    pub fn run(&mut self, words: &[&str]) -> Reply {
        let args: Vec<Bytes> = words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        self.engine.execute(&mut self.session, &args)
    }
}

/// One request on a new connection to `port`, its reply as text: `+OK`,
/// `-ERR …`, `:1`, the bulk's contents, `(nil)`, or `*N` for an array
/// (whose elements are left unread).
pub fn resp_cmd(port: u16, args: &[&str]) -> String {
    resp_cmd_within(port, args, std::time::Duration::from_secs(30))
}

/// [`resp_cmd`] for a request that may take up to `timeout` to answer
/// (`RAFT.NODE ADD` waits for the new node to catch up).
pub fn resp_cmd_within(port: u16, args: &[&str], timeout: std::time::Duration) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    stream.write_all(&out).expect("send");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read");
    let line = line.trim_end().to_string();
    match line.strip_prefix('$') {
        Some("-1") => "(nil)".into(),
        Some(n) => {
            let n: usize = n.parse().expect("bulk length");
            let mut buf = vec![0; n + 2];
            reader.read_exact(&mut buf).expect("bulk");
            buf.truncate(n);
            String::from_utf8(buf).expect("utf8")
        }
        None => line,
    }
}

/// Poll `done` every 20 ms until it holds; fail the test after `timeout`.
pub fn wait_until(what: &str, timeout: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {timeout:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The timing of the small Raft clusters the tests start: elections in
/// 300–600 ms, clients answered within 2 s.
pub fn raft_timing() -> kiwi::raft::RaftTiming {
    kiwi::raft::RaftTiming {
        heartbeat_ms: 50,
        election_min_ms: 300,
        election_max_ms: 600,
        client_timeout: std::time::Duration::from_secs(2),
        ..kiwi::raft::RaftTiming::default()
    }
}

/// `n` nodes on fresh directories, initialised, with a leader elected:
/// the directories (kept alive by the caller), the cluster, the leader.
pub fn start_cluster(n: usize) -> (Vec<tempfile::TempDir>, kiwi::raft::LocalCluster, usize) {
    let dirs: Vec<tempfile::TempDir> = (0..n)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let cluster = kiwi::raft::LocalCluster::start(
        dirs.iter().map(|d| d.path().to_path_buf()).collect(),
        "127.0.0.1",
        raft_timing(),
    )
    .expect("start cluster");
    let mut leader = None;
    wait_until("a leader", std::time::Duration::from_secs(10), || {
        leader = cluster.leader();
        leader.is_some()
    });
    let leader = leader.expect("leader");
    (dirs, cluster, leader)
}

/// `kiwi-server ARGS` run to completion and what it printed; killed, and
/// the test failed with `why`, if it still runs after `within`.
pub fn run_kiwi_server(
    args: &[&str],
    within: std::time::Duration,
    why: &str,
) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiwi-server"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kiwi-server");
    let deadline = std::time::Instant::now() + within;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("kiwi-server {args:?} {why}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}
