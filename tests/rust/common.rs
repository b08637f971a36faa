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
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
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
