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
