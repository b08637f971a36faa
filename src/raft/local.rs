//! Several Raft nodes in this process, on loopback: what tests and the
//! Python `kiwi.Cluster` use to start, fault, stop and restart a cluster.
//!
//! Node `i` (0-based) has raft id `i + 1`. Every node keeps its RESP and
//! raft ports across [`LocalCluster::stop`] / [`LocalCluster::restart`], so
//! the membership the others hold stays valid. The nodes share a random
//! `raft-secret` (unless given one, or none) and allow `RAFT.FAULT`
//! (`enable-fault-injection yes`): the cluster exists to be tested.

use std::path::PathBuf;
use std::sync::Arc;

use openraft::ServerState;

use crate::config::{FaultInjection, RuntimeConfig};
use crate::raft::{FaultTable, RaftNode, RaftOptions, RaftSecret, RaftTiming};
use crate::server::Server;
use crate::KiwiError;

/// What [`LocalCluster::status`] reports of one running node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: u64,
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<u64>,
    /// At least this index is committed (persisted or applied).
    pub commit: Option<u64>,
    pub applied: Option<u64>,
}

struct Member {
    dir: PathBuf,
    port: u16,
    raft_port: u16,
    server: Option<Server>,
}

/// `n` nodes started on their own directories and initialised together.
pub struct LocalCluster {
    host: String,
    timing: RaftTiming,
    secret: Option<RaftSecret>,
    members: Vec<Member>,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("host", &self.host)
            .field("nodes", &self.members.len())
            .finish()
    }
}

fn start_node(
    cluster: &LocalCluster,
    index: usize,
    dir: &std::path::Path,
    port: u16,
    raft_port: u16,
) -> Result<Server, KiwiError> {
    let host = &cluster.host;
    let mut config = RuntimeConfig::new(dir);
    config.bind = host.to_string();
    config.port = port;
    config.fault_injection = FaultInjection::Yes;
    let mut options = RaftOptions::new(index as u64 + 1, format!("{host}:{raft_port}"));
    options.timing = cluster.timing;
    options.secret = cluster.secret.clone();
    Server::start_raft(config, options)
}

fn raft_port(server: &Server) -> Result<u16, KiwiError> {
    let raft = server
        .raft()
        .ok_or_else(|| KiwiError::Config("node runs without raft".into()))?;
    raft.addr()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| KiwiError::Config(format!("bad raft address {}", raft.addr())))
}

impl LocalCluster {
    /// Start one node per directory on `host` (ports chosen by the OS),
    /// sharing a random raft secret, and initialise the cluster from the
    /// first with every member. Does not wait for a leader.
    pub fn start(
        dirs: Vec<PathBuf>,
        host: &str,
        timing: RaftTiming,
    ) -> Result<LocalCluster, KiwiError> {
        LocalCluster::start_with_secret(dirs, host, timing, Some(RaftSecret::random()))
    }

    /// [`LocalCluster::start`] with this secret (`None`: none, loopback only).
    pub fn start_with_secret(
        dirs: Vec<PathBuf>,
        host: &str,
        timing: RaftTiming,
        secret: Option<RaftSecret>,
    ) -> Result<LocalCluster, KiwiError> {
        let cluster = LocalCluster::start_uninitialised_with_secret(dirs, host, timing, secret)?;
        let members = cluster.members();
        let first = cluster.members[0].server.as_ref().expect("just started");
        let raft = first.raft().expect("raft node").clone();
        // Started again on the directories of an earlier run: already one.
        first
            .block_on(async move {
                match raft.raft().is_initialized().await {
                    Ok(true) => Ok(()),
                    Ok(false) => raft.init(&members).await,
                    Err(e) => Err(e.to_string()),
                }
            })
            .unwrap_or_else(|| Err("node stopped".into()))
            .map_err(KiwiError::Config)?;
        Ok(cluster)
    }

    /// Start the nodes without initialising a cluster (to initialise it
    /// some other way, e.g. `RAFT.CLUSTER INIT` with [`LocalCluster::members`]).
    pub fn start_uninitialised(
        dirs: Vec<PathBuf>,
        host: &str,
        timing: RaftTiming,
    ) -> Result<LocalCluster, KiwiError> {
        LocalCluster::start_uninitialised_with_secret(
            dirs,
            host,
            timing,
            Some(RaftSecret::random()),
        )
    }

    /// [`LocalCluster::start_uninitialised`] with this secret.
    pub fn start_uninitialised_with_secret(
        dirs: Vec<PathBuf>,
        host: &str,
        timing: RaftTiming,
        secret: Option<RaftSecret>,
    ) -> Result<LocalCluster, KiwiError> {
        if dirs.is_empty() {
            return Err(KiwiError::Config(
                "a cluster needs at least one node".into(),
            ));
        }
        let mut cluster = LocalCluster {
            host: host.to_string(),
            timing,
            secret,
            members: Vec::new(),
        };
        for (i, dir) in dirs.into_iter().enumerate() {
            let server = start_node(&cluster, i, &dir, 0, 0)?;
            let port = server.addr().port();
            let raft_port = raft_port(&server)?;
            cluster.members.push(Member {
                dir,
                port,
                raft_port,
                server: Some(server),
            });
        }
        Ok(cluster)
    }

    /// Every member as (raft id, raft address).
    pub fn members(&self) -> Vec<(u64, String)> {
        self.members
            .iter()
            .enumerate()
            .map(|(i, m)| (i as u64 + 1, format!("{}:{}", self.host, m.raft_port)))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The secret the nodes share (to start another node that may join).
    pub fn secret(&self) -> Option<&RaftSecret> {
        self.secret.as_ref()
    }

    fn check(&self, i: usize) -> Result<&Member, KiwiError> {
        self.members
            .get(i)
            .ok_or_else(|| KiwiError::Config(format!("no node {i} in a cluster of {}", self.len())))
    }

    /// Node `i`'s RESP port (kept across restarts).
    pub fn port(&self, i: usize) -> Result<u16, KiwiError> {
        Ok(self.check(i)?.port)
    }

    /// Node `i`'s raft port (kept across restarts).
    pub fn raft_port(&self, i: usize) -> Result<u16, KiwiError> {
        Ok(self.check(i)?.raft_port)
    }

    pub fn dir(&self, i: usize) -> Result<PathBuf, KiwiError> {
        Ok(self.check(i)?.dir.clone())
    }

    pub fn server(&self, i: usize) -> Option<&Server> {
        self.members.get(i).and_then(|m| m.server.as_ref())
    }

    pub fn node(&self, i: usize) -> Option<&Arc<RaftNode>> {
        self.server(i).and_then(|s| s.raft())
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.node(i).is_some()
    }

    fn faults(&self, i: usize) -> Result<&Arc<FaultTable>, KiwiError> {
        self.check(i)?;
        self.node(i)
            .map(|n| n.faults())
            .ok_or_else(|| KiwiError::Config(format!("node {i} is stopped")))
    }

    /// Node `i` drops its messages to node `j` (and, with `both`, those it
    /// receives from `j`).
    pub fn block(&self, i: usize, j: usize, both: bool) -> Result<(), KiwiError> {
        self.check(j)?;
        self.faults(i)?.block(j as u64 + 1, both);
        Ok(())
    }

    /// Clear every fault of node `i` (a stopped node has none).
    pub fn clear(&self, i: usize) -> Result<(), KiwiError> {
        self.check(i)?;
        if let Some(node) = self.node(i) {
            node.faults().clear();
        }
        Ok(())
    }

    /// Cut node `i` off from every other running node, both ways, in both
    /// nodes' tables.
    pub fn isolate(&self, i: usize) -> Result<(), KiwiError> {
        self.faults(i)?;
        for j in 0..self.len() {
            if j != i && self.is_running(j) {
                self.block(i, j, true)?;
                self.block(j, i, true)?;
            }
        }
        Ok(())
    }

    /// Clear the faults of every running node.
    pub fn heal(&self) {
        for i in 0..self.len() {
            let _ = self.clear(i);
        }
    }

    /// What node `i` knows, `None` when it is stopped.
    pub fn status(&self, i: usize) -> Result<Option<NodeStatus>, KiwiError> {
        self.check(i)?;
        let Some(node) = self.node(i) else {
            return Ok(None);
        };
        let m = node.raft().metrics().borrow().clone();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let applied = m.last_applied.map(|l| l.index);
        // The committed index is persisted lazily; what was applied was
        // committed, so the larger of the two is the better lower bound.
        let commit = node.committed_index().max(applied);
        Ok(Some(NodeStatus {
            id: node.id(),
            role,
            term: m.current_term,
            leader: m.current_leader,
            commit,
            applied,
        }))
    }

    /// The running node that leads with the highest term, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.len())
            .filter_map(|i| self.status(i).ok().flatten().map(|s| (i, s)))
            .filter(|(_, s)| s.role == "leader")
            .max_by_key(|(_, s)| s.term)
            .map(|(i, _)| i)
    }

    /// Stop node `i` (its data stays). Idempotent.
    pub fn stop(&mut self, i: usize) -> Result<(), KiwiError> {
        self.check(i)?;
        if let Some(mut server) = self.members[i].server.take() {
            server.stop();
        }
        Ok(())
    }

    /// Start a stopped node `i` again on its directory and its ports.
    /// Does nothing when it runs.
    pub fn restart(&mut self, i: usize) -> Result<(), KiwiError> {
        let m = self.check(i)?;
        if m.server.is_some() {
            return Ok(());
        }
        let server = start_node(self, i, &m.dir, m.port, m.raft_port)?;
        self.members[i].server = Some(server);
        Ok(())
    }

    pub fn stop_all(&mut self) {
        for i in 0..self.len() {
            let _ = self.stop(i);
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}
