//! PyO3 bindings: the `kiwi._kiwi` extension module.
//!
//! Every call that does real work releases the GIL, and every error becomes
//! a Python exception: nothing here panics across the FFI boundary.

mod checker;
mod embedded;

use std::path::PathBuf;

use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::config::RuntimeConfig;
use crate::raft::{LocalCluster, RaftSecret, RaftTiming};
use crate::server::Server;
use crate::KiwiError;

fn to_py_err(e: KiwiError) -> PyErr {
    match e {
        KiwiError::Bind(..) | KiwiError::Io(_) => PyOSError::new_err(e.to_string()),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// A Kiwi server running on background threads of this process.
#[pyclass(name = "ServerHandle", module = "kiwi._kiwi")]
struct PyServerHandle {
    inner: Mutex<Option<Server>>,
    host: String,
    port: u16,
    dir: PathBuf,
}

#[pymethods]
impl PyServerHandle {
    /// The address the server listens on.
    #[getter]
    fn host(&self) -> String {
        self.host.clone()
    }

    /// The TCP port the server listens on.
    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    #[getter]
    fn dir(&self) -> String {
        self.dir.display().to_string()
    }

    /// Whether the server is still running (not stopped, and no client's
    /// SHUTDOWN stopped it).
    #[getter]
    fn running(&self) -> bool {
        self.inner
            .lock()
            .as_ref()
            .is_some_and(|s| !s.shutdown_requested())
    }

    /// Stop the server: close connections, end its threads, close storage.
    fn stop(&self, py: Python<'_>) {
        py.detach(|| {
            let server = self.inner.lock().take();
            if let Some(mut server) = server {
                server.stop();
            }
        });
    }

    fn __repr__(&self) -> String {
        let state = if self.running() { "running" } else { "stopped" };
        format!(
            "<kiwi ServerHandle {}:{} {} dir={}>",
            self.host,
            self.port,
            state,
            self.dir.display()
        )
    }
}

/// Start a server on `host:port` (port 0 picks a free one) with its data
/// in `dir`.
#[pyfunction]
// PyO3 shows a computed default as `...`; spell it out for help() and stubtest.
#[pyo3(
    signature = (dir, host = "127.0.0.1".to_string(), port = 0, requirepass = None),
    text_signature = "(dir, host='127.0.0.1', port=0, requirepass=None)"
)]
fn start_server(
    py: Python<'_>,
    dir: PathBuf,
    host: String,
    port: u16,
    requirepass: Option<String>,
) -> PyResult<PyServerHandle> {
    let mut config = RuntimeConfig::new(dir.clone());
    config.bind = host.clone();
    config.port = port;
    config.requirepass = requirepass.filter(|p| !p.is_empty());
    let server = py.detach(|| Server::start(config)).map_err(to_py_err)?;
    let port = server.addr().port();
    Ok(PyServerHandle {
        inner: Mutex::new(Some(server)),
        host,
        port,
        dir,
    })
}

/// Raft nodes running on background threads of this process, on loopback.
/// Node `i` (0-based) has raft id `i + 1`.
#[pyclass(name = "ClusterHandle", module = "kiwi._kiwi")]
struct PyClusterHandle {
    inner: Mutex<LocalCluster>,
    host: String,
    size: usize,
}

#[pymethods]
impl PyClusterHandle {
    /// The address every node listens on.
    #[getter]
    fn host(&self) -> String {
        self.host.clone()
    }

    /// How many nodes the cluster has (running or not).
    #[getter]
    fn size(&self) -> usize {
        self.size
    }

    /// Node `i`'s RESP port (kept across restarts).
    fn port(&self, i: usize) -> PyResult<u16> {
        self.inner.lock().port(i).map_err(to_py_err)
    }

    /// Node `i`'s raft port (kept across restarts).
    fn raft_port(&self, i: usize) -> PyResult<u16> {
        self.inner.lock().raft_port(i).map_err(to_py_err)
    }

    /// Node `i`'s data directory.
    fn dir(&self, i: usize) -> PyResult<String> {
        Ok(self
            .inner
            .lock()
            .dir(i)
            .map_err(to_py_err)?
            .display()
            .to_string())
    }

    /// Whether node `i` runs.
    fn running(&self, i: usize) -> bool {
        self.inner.lock().is_running(i)
    }

    /// Node `i`'s raft state: a dict of id, role, term, leader, commit and
    /// applied (`None` for an unknown value), or `None` when it is stopped.
    fn status<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Option<Bound<'py, PyDict>>> {
        let status = self.inner.lock().status(i).map_err(to_py_err)?;
        let Some(s) = status else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("id", s.id)?;
        d.set_item("role", s.role)?;
        d.set_item("term", s.term)?;
        d.set_item("leader", s.leader)?;
        d.set_item("commit", s.commit)?;
        d.set_item("applied", s.applied)?;
        Ok(Some(d))
    }

    /// The index of the running node that leads (highest term), or `None`.
    fn leader(&self) -> Option<usize> {
        self.inner.lock().leader()
    }

    /// Node `i` drops its raft messages to node `j` (and, with `both`, the
    /// ones it receives from `j`).
    #[pyo3(signature = (i, j, both = true))]
    fn fault_block(&self, i: usize, j: usize, both: bool) -> PyResult<()> {
        self.inner.lock().block(i, j, both).map_err(to_py_err)
    }

    /// Clear every fault of node `i`.
    fn fault_clear(&self, i: usize) -> PyResult<()> {
        self.inner.lock().clear(i).map_err(to_py_err)
    }

    /// Cut node `i` off from every other node, both ways.
    fn isolate(&self, i: usize) -> PyResult<()> {
        self.inner.lock().isolate(i).map_err(to_py_err)
    }

    /// Clear the faults of every node.
    fn heal(&self) {
        self.inner.lock().heal();
    }

    /// Stop node `i`; its data stays for `restart`.
    fn stop(&self, py: Python<'_>, i: usize) -> PyResult<()> {
        py.detach(|| self.inner.lock().stop(i)).map_err(to_py_err)
    }

    /// Start a stopped node `i` again on its directory and ports.
    fn restart(&self, py: Python<'_>, i: usize) -> PyResult<()> {
        py.detach(|| self.inner.lock().restart(i))
            .map_err(to_py_err)
    }

    /// Stop every node.
    fn stop_all(&self, py: Python<'_>) {
        py.detach(|| self.inner.lock().stop_all());
    }

    fn __repr__(&self) -> String {
        let c = self.inner.lock();
        let running = (0..c.len()).filter(|&i| c.is_running(i)).count();
        format!(
            "<kiwi ClusterHandle {} nodes on {}, {} running>",
            self.size, self.host, running
        )
    }
}

/// Start one raft node per directory in `dirs` on `host` (ports chosen by
/// the OS) and initialise the cluster from the first with every member.
/// The nodes share `raft_secret` (a random one when `None`; `""` for none,
/// which only a loopback `host` allows) and allow `RAFT.FAULT`.
#[pyfunction]
#[pyo3(
    signature = (dirs, host = "127.0.0.1".to_string(), raft_secret = None),
    text_signature = "(dirs, host='127.0.0.1', raft_secret=None)"
)]
fn start_cluster(
    py: Python<'_>,
    dirs: Vec<PathBuf>,
    host: String,
    raft_secret: Option<String>,
) -> PyResult<PyClusterHandle> {
    let size = dirs.len();
    let secret = match raft_secret {
        None => Some(RaftSecret::random()),
        Some(text) => RaftSecret::new(text),
    };
    let cluster = py
        .detach(|| LocalCluster::start_with_secret(dirs, &host, RaftTiming::default(), secret))
        .map_err(to_py_err)?;
    Ok(PyClusterHandle {
        inner: Mutex::new(cluster),
        host,
        size,
    })
}

/// Run `kiwi-server` with these arguments (argv[0] first) until SIGINT or
/// SIGTERM; returns the exit code.
#[pyfunction]
fn run_server_cli(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| crate::cli::run(argv))
}

#[pymodule]
#[pyo3(name = "_kiwi")]
fn kiwi_extension(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", crate::version())?;
    m.add("REDIS_VERSION", crate::cmd::REDIS_VERSION)?;
    m.add_class::<PyServerHandle>()?;
    m.add_class::<PyClusterHandle>()?;
    m.add_class::<embedded::EmbeddedEngine>()?;
    m.add_class::<embedded::EmbeddedConnection>()?;
    m.add_function(wrap_pyfunction!(start_server, m)?)?;
    m.add_function(wrap_pyfunction!(start_cluster, m)?)?;
    m.add_function(wrap_pyfunction!(run_server_cli, m)?)?;
    m.add_function(wrap_pyfunction!(checker::check_history, m)?)?;
    Ok(())
}
