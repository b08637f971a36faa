#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! `metrics-port`: INFO's figures, and Raft's on a cluster node, in
//! Prometheus's text exposition format at `GET /metrics` (plain HTTP/1.1,
//! one request per connection).
//!
//! Every numeric INFO field becomes a gauge named `kiwi_<field>`; text
//! fields become labels of one `kiwi_info` sample; `dbN`, `cmdstat_*`,
//! `errorstat_*` and `latency_percentiles_usec_*` lines become labelled
//! families (`kiwi_db_keys{db="0"}`, `kiwi_command_calls{cmd="get"}`…).
//! Rendering reads the same figures INFO does without being a command, so
//! a scrape shows in no command statistic, client list or MONITOR.
//!
//! The listener is reachable by whoever reaches the bind address: requests
//! are bounded in size and time, and nothing but the figures is served.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, Shared};
use crate::raft::RaftNode;

/// The most a request's head may take; beyond it the answer is 431.
const REQUEST_MAX: usize = 8 * 1024;
/// A client that takes longer to send its request or read the answer is
/// dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve scrapes until `shutdown`.
pub(super) async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: CancellationToken,
    raft: Option<Arc<RaftNode>>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let engine = engine.clone();
                let raft = raft.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = answer(stream, &engine, raft.as_deref()) => {}
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Read one request head and answer it; any I/O failure just ends it.
async fn answer(mut stream: TcpStream, engine: &Shared, raft: Option<&RaftNode>) {
    let head = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        _ => return,
    };
    let (status, body) = match head {
        Head::TooLarge => ("431 Request Header Fields Too Large", String::new()),
        Head::Complete(line) => route(&line, || render(engine, raft)),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(IO_TIMEOUT, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

enum Head {
    /// The request line.
    Complete(String),
    TooLarge,
}

/// Read until the blank line that ends a request head.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Head> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n").or_else(|| find(&buf, b"\n\n")) {
            let head = buf.get(..end).unwrap_or_default();
            let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
            return Ok(Head::Complete(
                String::from_utf8_lossy(line).trim_end().to_string(),
            ));
        }
        if buf.len() > REQUEST_MAX {
            return Ok(Head::TooLarge);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The status and body for a request line; `metrics` renders the figures.
fn route(line: &str, metrics: impl FnOnce() -> String) -> (&'static str, String) {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return ("400 Bad Request", String::new());
    };
    if !version.starts_with("HTTP/1.") {
        return ("400 Bad Request", String::new());
    }
    if method != "GET" {
        return ("405 Method Not Allowed", String::new());
    }
    let path = target.split('?').next().unwrap_or_default();
    match path {
        "/metrics" | "/" => ("200 OK", metrics()),
        _ => ("404 Not Found", "see /metrics\n".into()),
    }
}

/// One sample: its labels (name, value) and its value.
type Sample = (Vec<(String, String)>, f64);

/// Samples by family name, in the order added.
#[derive(Default)]
struct Exposition {
    families: BTreeMap<String, Vec<Sample>>,
}

impl Exposition {
    fn add(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels = labels
            .iter()
            .map(|(k, v)| (sanitize(k), v.to_string()))
            .collect();
        self.families
            .entry(format!("kiwi_{}", sanitize(name)))
            .or_default()
            .push((labels, value));
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for (name, samples) in &self.families {
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (labels, value) in samples {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", number(*value));
            }
        }
        out
    }
}

/// A metric or label name from an INFO field: `[a-zA-Z0-9_]`, not
/// starting with a digit.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' => c,
            _ => '_',
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}

/// `k=v,k=v` pairs with numeric values.
fn pairs(value: &str) -> impl Iterator<Item = (&str, f64)> {
    value.split(',').filter_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        Some((k, v.parse::<f64>().ok()?))
    })
}

/// The exposition of INFO's text.
fn from_info(text: &str, out: &mut Exposition) {
    let mut info: Vec<(&str, &str)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let Some(cmd) = name.strip_prefix("cmdstat_") {
            for (k, v) in pairs(value) {
                out.add(&format!("command_{k}"), &[("cmd", cmd)], v);
            }
        } else if let Some(code) = name.strip_prefix("errorstat_") {
            for (_, v) in pairs(value) {
                out.add("errors", &[("error", code)], v);
            }
        } else if let Some(cmd) = name.strip_prefix("latency_percentiles_usec_") {
            for (k, v) in pairs(value) {
                let quantile = k.trim_start_matches('p');
                out.add(
                    "latency_percentiles_usec",
                    &[("cmd", cmd), ("percentile", quantile)],
                    v,
                );
            }
        } else if let Some(db) = name
            .strip_prefix("db")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            for (k, v) in pairs(value) {
                out.add(&format!("db_{k}"), &[("db", db)], v);
            }
        } else if let Ok(v) = value.parse::<f64>() {
            out.add(name, &[], v);
        } else {
            info.push((name, value));
        }
    }
    out.add("info", &info, 1.0);
}

/// Raft's figures of a cluster node.
fn from_raft(node: &RaftNode, out: &mut Exposition) {
    let f = node.figures();
    out.add("raft_node_id", &[], f.node_id as f64);
    out.add("raft_role", &[("role", f.role)], 1.0);
    out.add("raft_term", &[], f.term as f64);
    if let Some(leader) = f.leader {
        out.add("raft_leader_id", &[], leader as f64);
    }
    for (name, value) in [
        ("raft_commit_index", f.commit_index),
        ("raft_applied_index", f.applied_index),
        ("raft_last_log_index", f.last_log_index),
        ("raft_snapshot_index", f.snapshot_index),
    ] {
        if let Some(v) = value {
            out.add(name, &[], v as f64);
        }
    }
    out.add("raft_leader_changes", &[], f.leader_changes as f64);
    for (peer, lag) in f.replication_lag {
        out.add(
            "raft_replication_lag_entries",
            &[("peer", &peer.to_string())],
            lag as f64,
        );
    }
}

/// The whole exposition: INFO everything, and Raft's figures.
pub fn render(engine: &Shared, raft: Option<&RaftNode>) -> String {
    let mut out = Exposition::default();
    match crate::cmd::info_text(engine, vec!["everything".into()]) {
        Ok(text) => from_info(&text, &mut out),
        Err(e) => tracing::warn!(error = %e, "metrics: INFO failed"),
    }
    if let Some(node) = raft {
        from_raft(node, &mut out);
    }
    out.text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lines_become_families() {
        let mut out = Exposition::default();
        from_info(
            "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:12\r\n\
             # Stats\r\ninstantaneous_input_kbps:0.25\r\n\
             cmdstat_get:calls=3,usec=30,usec_per_call=10.00,rejected_calls=0,failed_calls=1\r\n\
             errorstat_ERR:count=2\r\n\
             latency_percentiles_usec_get:p50=1.003,p99.9=5.001\r\n\
             # Keyspace\r\ndb0:keys=5,expires=1,avg_ttl=0\r\n\
             executable:/tmp/a \"b\"\r\n",
            &mut out,
        );
        let text = out.text();
        for line in [
            "kiwi_uptime_in_seconds 12",
            "kiwi_instantaneous_input_kbps 0.25",
            "kiwi_command_calls{cmd=\"get\"} 3",
            "kiwi_command_failed_calls{cmd=\"get\"} 1",
            "kiwi_errors{error=\"ERR\"} 2",
            "kiwi_latency_percentiles_usec{cmd=\"get\",percentile=\"99.9\"} 5.001",
            "kiwi_db_keys{db=\"0\"} 5",
            "kiwi_db_expires{db=\"0\"} 1",
            "kiwi_info{redis_version=\"7.0.15\",executable=\"/tmp/a \\\"b\\\"\"} 1",
            "# TYPE kiwi_db_keys gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // One TYPE line per family, its samples right after it.
        assert_eq!(text.matches("# TYPE kiwi_command_calls ").count(), 1);
    }

    #[test]
    fn routes_only_get_metrics() {
        let ok = || "figures".to_string();
        assert_eq!(
            route("GET /metrics HTTP/1.1", ok),
            ("200 OK", "figures".into())
        );
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0", ok).0, "200 OK");
        assert_eq!(route("GET /other HTTP/1.1", ok).0, "404 Not Found");
        assert_eq!(
            route("POST /metrics HTTP/1.1", ok).0,
            "405 Method Not Allowed"
        );
        assert_eq!(route("GET /metrics", ok).0, "400 Bad Request");
        assert_eq!(route("GET /metrics SPDY/3", ok).0, "400 Bad Request");
        assert_eq!(route("", ok).0, "400 Bad Request");
        assert_eq!(sanitize("9x-y"), "_9x_y");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}
