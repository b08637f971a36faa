//! PyO3 bindings: the `kiwi._kiwi` extension module.
//!
//! Every call that does real work releases the GIL, and every error becomes
//! a Python exception: nothing here panics across the FFI boundary.

mod embedded;

use std::path::PathBuf;

use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;

use crate::config::RuntimeConfig;
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

    /// Whether the server is still running.
    #[getter]
    fn running(&self) -> bool {
        self.inner.lock().is_some()
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
        let state = if self.inner.lock().is_some() {
            "running"
        } else {
            "stopped"
        };
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
#[pyo3(signature = (dir, host = "127.0.0.1".to_string(), port = 0, requirepass = None))]
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
    m.add_class::<embedded::EmbeddedEngine>()?;
    m.add_class::<embedded::EmbeddedConnection>()?;
    m.add_function(wrap_pyfunction!(start_server, m)?)?;
    m.add_function(wrap_pyfunction!(run_server_cli, m)?)?;
    Ok(())
}
