//! A data directory knows whose it is: `kiwi-server` (and the library's
//! `Server`/`LocalCluster`) refuse to serve a directory as anything else —
//! standalone data as a Raft node, a Raft node's data standalone or under
//! another node id — and say why; the flows that must keep working still
//! do (peers started empty join the node that initialises the cluster).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use kiwi::raft::{LocalCluster, RaftTiming};
use kiwi::{RuntimeConfig, Server};

use crate::common::{resp_cmd as cmd, wait_until};

const KIWI_SERVER: &str = env!("CARGO_BIN_EXE_kiwi-server");

/// Run `kiwi-server` to completion (it refuses at once, or is killed
/// after 20 s) and return what it printed.
fn refused_run(args: &[&str]) -> Output {
    crate::common::run_kiwi_server(
        args,
        Duration::from_secs(20),
        "still runs: it should have refused",
    )
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn dir_arg(dir: &Path) -> String {
    dir.display().to_string()
}

/// A directory a standalone server wrote a key to.
fn standalone_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = RuntimeConfig::new(dir.path());
    config.port = 0;
    let mut server = Server::start(config).expect("standalone server");
    assert_eq!(cmd(server.addr().port(), &["SET", "k", "v"]), "+OK");
    server.stop();
    dir
}

/// The directory of node 1 of a one-node cluster that wrote a key.
fn raft_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cluster = LocalCluster::start(
        vec![dir.path().to_path_buf()],
        "127.0.0.1",
        RaftTiming::default(),
    )
    .expect("cluster");
    wait_until("a leader", Duration::from_secs(10), || {
        cluster.leader().is_some()
    });
    assert_eq!(
        cmd(cluster.port(0).expect("port"), &["SET", "k", "v"]),
        "+OK"
    );
    cluster.stop_all();
    dir
}

#[test]
fn standalone_data_is_not_served_as_a_raft_node() {
    let dir = standalone_dir();
    let out = refused_run(&[
        "--dir",
        &dir_arg(dir.path()),
        "--port",
        "0",
        "--node-id",
        "1",
        "--raft-addr",
        "127.0.0.1:0",
        "--raft-init",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("holds data of a standalone server"),
        "{}",
        stderr_of(&out)
    );
    let err = LocalCluster::start(
        vec![dir.path().to_path_buf()],
        "127.0.0.1",
        RaftTiming::default(),
    )
    .expect_err("a cluster on standalone data");
    assert!(err.to_string().contains("standalone"), "{err}");
    // Still a good standalone directory.
    let mut config = RuntimeConfig::new(dir.path());
    config.port = 0;
    let mut server = Server::start(config).expect("standalone again");
    assert_eq!(cmd(server.addr().port(), &["GET", "k"]), "v");
    server.stop();
}

#[test]
fn a_raft_directory_is_not_served_standalone_nor_as_another_node() {
    let dir = raft_dir();
    let path = dir_arg(dir.path());
    let out = refused_run(&["--dir", &path, "--port", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("belongs to raft node 1; start it with --node-id 1"),
        "{}",
        stderr_of(&out)
    );
    let out = refused_run(&[
        "--dir",
        &path,
        "--port",
        "0",
        "--node-id",
        "2",
        "--raft-addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("belongs to raft node 1, not to node 2"),
        "{}",
        stderr_of(&out)
    );
    // The library refuses alike.
    let mut config = RuntimeConfig::new(dir.path());
    config.port = 0;
    let err = Server::start(config).expect_err("standalone on a raft directory");
    assert!(err.to_string().contains("belongs to raft node 1"), "{err}");
    // Its own node id still opens it, with its data.
    let mut cluster = LocalCluster::start(
        vec![dir.path().to_path_buf()],
        "127.0.0.1",
        RaftTiming::default(),
    )
    .expect("node 1 again");
    wait_until("a leader", Duration::from_secs(10), || {
        cluster.leader().is_some()
    });
    assert_eq!(cmd(cluster.port(0).expect("port"), &["GET", "k"]), "v");
    cluster.stop_all();
}

/// A `kiwi-server` process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn peers_started_empty_join_the_node_that_initialises() {
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let raft: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut processes = Vec::new();
    for i in 0..3 {
        let mut args = vec![
            "--dir".to_string(),
            dir_arg(dirs[i].path()),
            "--port".into(),
            ports[i].to_string(),
            "--node-id".into(),
            (i + 1).to_string(),
            "--raft-addr".into(),
            raft[i].clone(),
            "--loglevel".into(),
            "warning".into(),
        ];
        if i == 0 {
            args.push("--raft-init".into());
            args.push("--raft-peer".into());
            args.push(format!("2={}", raft[1]));
            args.push(format!("3={}", raft[2]));
        }
        let child = Command::new(KIWI_SERVER)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kiwi-server");
        processes.push(Process(child));
    }
    let connects = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    wait_until("every node listens", Duration::from_secs(20), || {
        ports.iter().all(|p| connects(*p))
    });
    wait_until("a write through node 3", Duration::from_secs(20), || {
        cmd(ports[2], &["SET", "k", "v"]) == "+OK"
    });
    let info = |port: u16| cmd(port, &["RAFT.INFO"]);
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::to_string)
            .unwrap_or_default()
    };
    wait_until(
        "one cluster id and every member registered",
        Duration::from_secs(20),
        || {
            let infos: Vec<String> = ports.iter().map(|p| info(*p)).collect();
            let id = field(&infos[0], "cluster_id:");
            id != "-"
                && infos
                    .iter()
                    .all(|i| field(i, "cluster_id:") == id && field(i, "registered:") == "1,2,3")
        },
    );
    for port in &ports {
        assert_eq!(cmd(*port, &["GET", "k"]), "v");
    }
    drop(processes);
}
