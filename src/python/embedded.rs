//! The embedded engine: storage and commands in this process, no network.
//!
//! Python talks to it through redis-py with an in-memory "socket": each
//! connection's packed commands go to [`EmbeddedConnection::send`], run on
//! the engine, and their RESP replies are read back by redis-py's own
//! parser. Replies are therefore typed exactly as redis-py types them for a
//! server, pipelines and transactions included.
//!
//! The asyncio face, [`EmbeddedConnection::execute_async`], runs a batch of
//! requests on tokio's blocking pool (pyo3-async-runtimes' runtime) and
//! resolves an `asyncio.Future` with the reply bytes; the event loop and the
//! GIL are free while the engine works. An asyncio transport (a
//! `redis.asyncio` connection) uses [`EmbeddedConnection::send_async`] and
//! [`EmbeddedConnection::recv_async`] instead: replies and messages then come
//! out of one ordered output, as from a socket.
//!
//! Pub/sub, MONITOR and tracking pushes arrive in the session's mailbox, as
//! for a network client: they are appended to the replies between
//! requests, and [`EmbeddedConnection::recv`] of a session that listens
//! waits for them (up to the socket timeout redis-py set), so redis-py's
//! `PubSub` works on an embedded database.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::BytesMut;
use parking_lot::Mutex;
use pyo3::exceptions::{PyConnectionError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::cmd::Session;
use crate::config::RuntimeConfig;
use crate::engine::Engine;
use crate::resp::RequestDecoder;
use tokio::sync::Notify;

/// An open data directory served in-process.
#[pyclass(name = "EmbeddedEngine", module = "kiwi._kiwi")]
pub struct EmbeddedEngine {
    engine: Mutex<Option<Arc<Engine>>>,
    path: PathBuf,
    /// Every session handed out, so that closing the engine ends them too
    /// (a session keeps the storage open while it lives).
    sessions: Mutex<Vec<SessionHandle>>,
}

/// What [`EmbeddedEngine::close`] needs of a session: its state, to end
/// it, and its wake-up, to tell a waiting reader.
struct SessionHandle {
    state: std::sync::Weak<Mutex<Option<ConnectionState>>>,
    readable: Arc<Notify>,
}

impl SessionHandle {
    fn end(&self) {
        match self.state.upgrade() {
            Some(state) => end_session(&state, &self.readable),
            None => self.readable.notify_one(),
        }
    }
}

/// Disconnect a session (once) and wake its reader.
fn end_session(state: &Mutex<Option<ConnectionState>>, readable: &Notify) {
    let state = state.lock().take();
    if let Some(mut state) = state {
        state.engine.disconnect(&mut state.session);
    }
    readable.notify_one();
}

#[pymethods]
impl EmbeddedEngine {
    /// Open (creating if needed) the data directory at `path`.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let config = RuntimeConfig::new(path.clone());
        let engine = py
            .detach(|| {
                let engine = Engine::open(config).map_err(|e| e.to_string())?;
                // A raft node's directory: writes here would bypass its log.
                crate::raft::identity::check_standalone(engine.storage())
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(engine)
            })
            .map_err(PyRuntimeError::new_err)?;
        Ok(EmbeddedEngine {
            engine: Mutex::new(Some(Arc::new(engine))),
            path,
            sessions: Mutex::new(Vec::new()),
        })
    }

    /// The data directory.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// Whether the engine is open.
    #[getter]
    fn open(&self) -> bool {
        self.engine.lock().is_some()
    }

    /// A new client session (one per redis-py connection).
    fn connect(&self) -> PyResult<EmbeddedConnection> {
        let engine = self.get()?;
        let session = engine.connect("embedded".into(), "embedded".into());
        // Messages reach it: this connection delivers its mailbox.
        session
            .info
            .mailbox
            .attach(tokio_util::sync::CancellationToken::new());
        let max_bulk = engine.config.read().proto_max_bulk_len;
        let connection = EmbeddedConnection {
            state: Arc::new(Mutex::new(Some(ConnectionState {
                engine,
                session,
                decoder: RequestDecoder::new(max_bulk),
                input: BytesMut::new(),
                output: BytesMut::new(),
                closed: false,
            }))),
            readable: Arc::new(Notify::new()),
        };
        let mut sessions = self.sessions.lock();
        sessions.retain(|s| s.state.strong_count() > 0);
        sessions.push(SessionHandle {
            state: Arc::downgrade(&connection.state),
            readable: Arc::clone(&connection.readable),
        });
        Ok(connection)
    }

    /// End every session and close the storage. The directory is released
    /// once no command is running; later calls raise.
    fn close(&self, py: Python<'_>) {
        let engine = self.engine.lock().take();
        let sessions = std::mem::take(&mut *self.sessions.lock());
        py.detach(move || {
            for session in &sessions {
                session.end();
            }
            if let Some(engine) = engine {
                if let Err(e) = engine.storage().flush() {
                    tracing::warn!(error = %e, "flushing the WAL at close failed");
                }
                drop(engine);
            }
        });
    }

    fn __repr__(&self) -> String {
        let state = if self.engine.lock().is_some() {
            "open"
        } else {
            "closed"
        };
        format!("<kiwi EmbeddedEngine {} {state}>", self.path.display())
    }
}

impl EmbeddedEngine {
    fn get(&self) -> PyResult<Arc<Engine>> {
        self.engine
            .lock()
            .clone()
            .ok_or_else(|| PyConnectionError::new_err("the Kiwi database is closed"))
    }
}

struct ConnectionState {
    engine: Arc<Engine>,
    session: Session,
    decoder: RequestDecoder,
    input: BytesMut,
    output: BytesMut,
    /// QUIT or a protocol error: no more requests are read.
    closed: bool,
}

impl ConnectionState {
    /// Move what waits in the mailbox to the output.
    fn deliver(&mut self) {
        let n = self.session.info.mailbox.take(&mut self.output);
        self.session.info.mailbox.written(n);
    }

    /// Whether messages may come without a request (pub/sub, MONITOR).
    fn listens(&self) -> bool {
        self.session.subscriptions.any() || self.engine.monitors.contains(self.session.info.id)
    }

    /// Run every complete request in the input; replies go to the output.
    fn process(&mut self) {
        while !self.closed {
            self.decoder.set_authenticated(self.session.authenticated);
            match self.decoder.parse(&mut self.input) {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => {
                    let listening = self.session.subscriptions.any();
                    let reply = self.engine.execute(&mut self.session, &args);
                    // As a network client: what was published to a listening
                    // client before its reply comes first (a SUBSCRIBE's
                    // confirmation before what it leads to).
                    if listening && !crate::cmd::pubsub::may_subscribe(&args) {
                        self.deliver();
                    }
                    let reply = self.session.filter_reply(reply);
                    reply.encode(self.session.protocol, &mut self.output);
                    self.deliver();
                    self.closed = self.session.quit;
                }
                Ok(None) => break,
                Err(e) => {
                    self.output
                        .extend_from_slice(format!("-ERR {e}\r\n").as_bytes());
                    self.closed = true;
                }
            }
        }
    }
}

/// How long one wait of a listening `recv` lasts before it looks again.
const WAIT_SLICE: std::time::Duration = std::time::Duration::from_millis(100);

/// One client session of an [`EmbeddedEngine`], driven like a socket.
#[pyclass(name = "EmbeddedConnection", module = "kiwi._kiwi")]
pub struct EmbeddedConnection {
    /// Shared with the blocking tasks of [`EmbeddedConnection::execute_async`].
    state: Arc<Mutex<Option<ConnectionState>>>,
    /// Told when a batch of [`EmbeddedConnection::send_async`] produced
    /// output or the session closed; [`EmbeddedConnection::recv_async`]
    /// waits on it.
    readable: Arc<Notify>,
}

/// Run `data`'s complete requests, leaving the replies in the output.
fn run_into_output(state: &Mutex<Option<ConnectionState>>, data: &[u8]) -> PyResult<()> {
    let mut guard = state.lock();
    let state = running(&mut guard)?;
    state.input.extend_from_slice(data);
    state.process();
    Ok(())
}

/// What [`EmbeddedConnection::recv_async`] finds when it looks.
enum Pending {
    Bytes(Vec<u8>),
    /// Nothing yet; the mailbox to wait on, if the session was free to look.
    Nothing(Option<Arc<crate::engine::ClientInfo>>),
}

/// Take up to `max` output bytes without waiting for a running batch.
fn take_output(state: &Mutex<Option<ConnectionState>>, max: usize) -> Pending {
    // A batch holds the lock while it runs; it tells `readable` when done.
    let Some(mut guard) = state.try_lock() else {
        return Pending::Nothing(None);
    };
    let Some(state) = guard.as_mut() else {
        return Pending::Bytes(Vec::new());
    };
    state.deliver();
    if !state.output.is_empty() {
        let n = max.max(1).min(state.output.len());
        return Pending::Bytes(state.output.split_to(n).to_vec());
    }
    if state.closed {
        return Pending::Bytes(Vec::new());
    }
    Pending::Nothing(Some(Arc::clone(&state.session.info)))
}

/// Run `data`'s complete requests on a session and take every pending reply
/// byte; an error when the session is closed.
fn run_batch(state: &Mutex<Option<ConnectionState>>, data: &[u8]) -> PyResult<Vec<u8>> {
    let mut guard = state.lock();
    let state = running(&mut guard)?;
    state.input.extend_from_slice(data);
    state.process();
    Ok(state.output.split().to_vec())
}

/// The session, unless it was closed.
fn running(guard: &mut Option<ConnectionState>) -> PyResult<&mut ConnectionState> {
    match guard.as_mut() {
        Some(state) if !state.closed => Ok(state),
        _ => Err(PyConnectionError::new_err("the connection is closed")),
    }
}

#[pymethods]
impl EmbeddedConnection {
    /// Hand over request bytes; every complete request runs now.
    fn send(&self, py: Python<'_>, data: Vec<u8>) -> PyResult<()> {
        py.detach(|| run_into_output(&self.state, &data))
    }

    /// Run every complete request in `data` on tokio's blocking pool, off
    /// the event loop and without the GIL. Returns an awaitable that
    /// resolves to all pending reply bytes (RESP, one reply per complete
    /// request); it raises `ConnectionError` if the session is closed.
    ///
    /// Cancelling the awaitable does not stop requests already handed to the
    /// engine; their replies are then discarded, so close the session.
    fn execute_async<'py>(&self, py: Python<'py>, data: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
        let state = Arc::clone(&self.state);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            tokio::task::spawn_blocking(move || run_batch(&state, &data))
                .await
                .map_err(|e| PyRuntimeError::new_err(format!("the Kiwi engine task failed: {e}")))?
        })
    }

    /// Run every complete request in `data` on tokio's blocking pool; the
    /// replies join the output that [`EmbeddedConnection::recv_async`]
    /// reads. Resolves to `None` once they ran (`ConnectionError` if the
    /// session is closed).
    fn send_async<'py>(&self, py: Python<'py>, data: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
        let state = Arc::clone(&self.state);
        let readable = Arc::clone(&self.readable);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let ran = tokio::task::spawn_blocking(move || run_into_output(&state, &data))
                .await
                .map_err(|e| PyRuntimeError::new_err(format!("the Kiwi engine task failed: {e}")));
            readable.notify_one();
            ran?
        })
    }

    /// Resolves to the next bytes of output (replies, pub/sub and tracking
    /// messages, in the order a socket would carry them), at most `max`;
    /// empty bytes once the session ended and everything was read.
    fn recv_async<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyAny>> {
        let state = Arc::clone(&self.state);
        let readable = Arc::clone(&self.readable);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            loop {
                let notified = readable.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let info = match take_output(&state, max) {
                    Pending::Bytes(bytes) => return Ok(bytes),
                    Pending::Nothing(info) => info,
                };
                let message = async {
                    match &info {
                        Some(info) => info.mailbox.ready().await,
                        None => std::future::pending().await,
                    }
                };
                // The slice bounds what a missed wake-up could cost.
                tokio::select! {
                    _ = &mut notified => {}
                    _ = message => {}
                    _ = tokio::time::sleep(WAIT_SLICE) => {}
                }
            }
        })
    }

    /// Up to `max` bytes of pending replies; `None` when nothing is pending
    /// (empty bytes once the session ended and everything was read). A
    /// session that listens (pub/sub, MONITOR) waits for a message up to
    /// `timeout` seconds (`None`: until one comes or the session closes).
    #[pyo3(signature = (max, timeout=Some(0.0)), text_signature = "($self, max, timeout=0.0)")]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        max: usize,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let deadline = timeout.map(|t| {
            std::time::Instant::now() + std::time::Duration::from_secs_f64(t.clamp(0.0, 1e9))
        });
        loop {
            let mailbox_owner = {
                let mut guard = self.state.lock();
                let Some(state) = guard.as_mut() else {
                    return Ok(Some(PyBytes::new(py, b"")));
                };
                state.deliver();
                if !state.output.is_empty() {
                    let n = max.max(1).min(state.output.len());
                    let chunk = state.output.split_to(n);
                    return Ok(Some(PyBytes::new(py, &chunk)));
                }
                if state.closed {
                    return Ok(Some(PyBytes::new(py, b"")));
                }
                if !state.listens() {
                    return Ok(None);
                }
                state.session.info.clone()
            };
            let now = std::time::Instant::now();
            if deadline.is_some_and(|d| d <= now) {
                return Ok(None);
            }
            // Wait without the GIL or the session, in slices so that a
            // close from another thread is noticed.
            let slice = deadline.map_or(WAIT_SLICE, |d| d - now).min(WAIT_SLICE);
            py.detach(|| {
                pyo3_async_runtimes::tokio::get_runtime().block_on(async {
                    let _ = tokio::time::timeout(slice, mailbox_owner.mailbox.ready()).await;
                })
            });
        }
    }

    /// End the session.
    fn close(&self, py: Python<'_>) {
        py.detach(|| end_session(&self.state, &self.readable));
    }
}
