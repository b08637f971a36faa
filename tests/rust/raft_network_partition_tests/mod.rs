//! Raft clusters of three and five nodes in one process, real TCP between the
//! real RESP clients, under injected network faults. Every scenario checks
//! the data on every node, not just that something answered.
//!
//! Waits poll with deadlines; everything runs on loopback; every node is
//! stopped at the end (`LocalCluster`'s Drop). The scenarios run one at a time
//! (a module lock) so their election timing does not compete.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kiwi::raft::{LocalCluster, RaftTiming};
use kiwi::resp::Reply;
use kiwi::Server;
use tempfile::TempDir;

/// The client-facing bound of the test clusters.
const BOUND: Duration = Duration::from_secs(2);

/// What a node cut off from the quorum may take beyond [`BOUND`] to answer.
const SLACK: Duration = Duration::from_secs(1);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------ RESP client

#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        Client::try_connect(port).expect("connect")
    }

    fn try_connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    fn cmd(&mut self, args: &[&str]) -> Resp {
        self.try_cmd(args).expect("RESP exchange")
    }

    /// Send one command and read its reply; an I/O error (connection lost,
    /// no answer within the read timeout) leaves the connection unusable.
    fn try_cmd(&mut self, args: &[&str]) -> std::io::Result<Resp> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.writer.write_all(&out)?;
        self.read()
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if !line.ends_with("\r\n") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("connection closed: {line:?}"),
            ));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read(&mut self) -> std::io::Result<Resp> {
        let line = self.line()?;
        let (tag, rest) = line.split_at(1);
        Ok(match tag {
            "+" => Resp::Status(rest.into()),
            "-" => Resp::Error(rest.into()),
            ":" => Resp::Int(rest.parse().expect("int")),
            "$" => {
                let n: i64 = rest.parse().expect("len");
                if n < 0 {
                    return Ok(Resp::Bulk(None));
                }
                let mut buf = vec![0; n as usize + 2];
                self.reader.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Resp::Bulk(Some(buf))
            }
            "*" => {
                let n: i64 = rest.parse().expect("len");
                if n < 0 {
                    return Ok(Resp::Array(None));
                }
                let items = (0..n).map(|_| self.read()).collect::<Result<_, _>>()?;
                Resp::Array(Some(items))
            }
            other => panic!("unexpected reply type {other:?}"),
        })
    }
}

fn is_ok(r: &Resp) -> bool {
    *r == Resp::Status("OK".into())
}

fn is_cluster_error(r: &Resp) -> bool {
    matches!(r, Resp::Error(e) if e.starts_with("CLUSTERDOWN") || e.starts_with("TRYAGAIN"))
}

// ---------------------------------------------------------------- cluster

/// The shared in-process cluster ([`LocalCluster`]) with its temporary
/// directories; node `i` has raft id `i + 1`.
struct Cluster {
    inner: LocalCluster,
    _dirs: Vec<TempDir>,
}

fn timing() -> RaftTiming {
    RaftTiming {
        heartbeat_ms: 50,
        election_min_ms: 300,
        election_max_ms: 600,
        client_timeout: BOUND,
        ..RaftTiming::default()
    }
}

impl Cluster {
    /// `n` nodes (ids 1..=n), initialised through `RAFT.CLUSTER INIT` on
    /// the first, with a leader elected.
    fn start(n: usize) -> Cluster {
        Cluster::start_with(n, timing())
    }

    fn start_with(n: usize, timing: RaftTiming) -> Cluster {
        let dirs: Vec<TempDir> = (0..n)
            .map(|_| tempfile::tempdir().expect("temp dir"))
            .collect();
        let paths = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        let inner =
            LocalCluster::start_uninitialised(paths, "127.0.0.1", timing).expect("start nodes");
        let cluster = Cluster { inner, _dirs: dirs };
        let mut init = vec!["RAFT.CLUSTER".to_string(), "INIT".to_string()];
        for (id, addr) in cluster.inner.members() {
            init.push(id.to_string());
            init.push(addr);
        }
        let init: Vec<&str> = init.iter().map(String::as_str).collect();
        assert!(is_ok(&cluster.client(0).cmd(&init)));
        cluster.wait_for_leader(&(0..n).collect::<Vec<_>>(), Duration::from_secs(10));
        cluster
    }

    fn server(&self, i: usize) -> &Server {
        self.inner.server(i).expect("node is running")
    }

    fn client(&self, i: usize) -> Client {
        Client::connect(self.server(i).addr().port())
    }

    fn is_leader(&self, i: usize) -> bool {
        self.inner.node(i).is_some_and(|r| r.is_leader())
    }

    /// The node among `among` that leads and that the others in `among`
    /// follow, waiting up to `timeout`.
    fn wait_for_leader(&self, among: &[usize], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let leaders: Vec<usize> = among
                .iter()
                .copied()
                .filter(|&i| self.is_leader(i))
                .collect();
            if let [l] = leaders[..] {
                let id = l as u64 + 1;
                let agreed = among
                    .iter()
                    .all(|&i| self.server(i).raft().and_then(|r| r.leader()) == Some(id));
                if agreed {
                    return l;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no leader among {among:?} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Cut node `i` off from every other node, both ways, in both tables.
    fn isolate(&self, i: usize) {
        self.inner.isolate(i).expect("isolate");
    }

    fn faults(&self, i: usize) -> &kiwi::raft::FaultTable {
        self.inner.node(i).expect("raft").faults()
    }

    fn heal(&self) {
        self.inner.heal();
    }

    /// Cut every link between a node of `a` and a node of `b`, both ways,
    /// in both nodes' tables.
    fn split(&self, a: &[usize], b: &[usize]) {
        for &i in a {
            for &j in b {
                self.inner.block(i, j, true).expect("block");
                self.inner.block(j, i, true).expect("block");
            }
        }
    }

    /// Node `i`'s openraft metrics.
    fn metrics(&self, i: usize) -> openraft::RaftMetrics<u64, openraft::BasicNode> {
        let node = self.inner.node(i).expect("node is running");
        let m = node.raft().metrics().borrow().clone();
        m
    }

    fn kill(&mut self, i: usize) {
        self.inner.stop(i).expect("stop");
    }

    /// GET on node `i`'s own keyspace, without a read barrier.
    fn local_get(&self, i: usize, key: &str) -> Option<Vec<u8>> {
        let engine = self.server(i).engine().expect("engine");
        let mut session = engine.local_session();
        let args = [
            Bytes::from_static(b"GET"),
            Bytes::copy_from_slice(key.as_bytes()),
        ];
        let reply = engine.execute_local(&mut session, &args);
        engine.disconnect(&mut session);
        match reply {
            Reply::Bulk(b) => Some(b.to_vec()),
            Reply::Nil => None,
            other => panic!("GET answered {other:?}"),
        }
    }

    /// Any command on node `i`'s own keyspace, without a read barrier.
    fn local(&self, i: usize, args: &[&str]) -> Reply {
        let engine = self.server(i).engine().expect("engine");
        let mut session = engine.local_session();
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let reply = engine.execute_local(&mut session, &args);
        engine.disconnect(&mut session);
        reply
    }

    /// Node `i`'s whole keyspace (database 0): every key with its type,
    /// its absolute expiry (`PEXPIRETIME`, -1 for none) and its contents.
    fn dump(&self, i: usize) -> BTreeMap<String, String> {
        let keys = match self.local(i, &["KEYS", "*"]) {
            Reply::Array(keys) => keys,
            other => panic!("KEYS answered {other:?}"),
        };
        let mut out = BTreeMap::new();
        for key in keys {
            let key = match key {
                Reply::Bulk(b) => String::from_utf8(b.to_vec()).expect("utf8 key"),
                other => panic!("KEYS listed {other:?}"),
            };
            let kind = match self.local(i, &["TYPE", &key]) {
                Reply::Status(t) => t.to_string(),
                Reply::StatusOwned(t) => t,
                other => panic!("TYPE {key} answered {other:?}"),
            };
            let expiry = match self.local(i, &["PEXPIRETIME", &key]) {
                Reply::Int(ms) => ms,
                other => panic!("PEXPIRETIME {key} answered {other:?}"),
            };
            let contents = match kind.as_str() {
                "string" => self.local(i, &["GET", &key]),
                "hash" => self.local(i, &["HGETALL", &key]),
                "list" => self.local(i, &["LRANGE", &key, "0", "-1"]),
                "set" => self.local(i, &["SMEMBERS", &key]),
                "zset" => self.local(i, &["ZRANGE", &key, "0", "-1", "WITHSCORES"]),
                // A key that expired or went away between KEYS and TYPE.
                other => Reply::Error(format!("type {other}")),
            };
            out.insert(key, format!("{kind} {expiry} {contents:?}"));
        }
        out
    }

    /// Wait until every running node has applied the same index and holds
    /// exactly the same keyspace; returns that keyspace.
    fn wait_identical(&self, timeout: Duration) -> BTreeMap<String, String> {
        let deadline = Instant::now() + timeout;
        let running: Vec<usize> = (0..self.inner.len())
            .filter(|&i| self.inner.is_running(i))
            .collect();
        loop {
            let applied: Vec<_> = running.iter().map(|&i| self.applied(i)).collect();
            let mut diff = String::new();
            if applied.windows(2).all(|w| w[0] == w[1]) {
                let dumps: Vec<_> = running.iter().map(|&i| self.dump(i)).collect();
                let again: Vec<_> = running.iter().map(|&i| self.applied(i)).collect();
                match first_difference(&running, &dumps) {
                    None if again == applied => {
                        return dumps.into_iter().next().unwrap_or_default()
                    }
                    None => diff = format!("applied moved to {again:?} while reading"),
                    Some(d) => diff = d,
                }
            }
            assert!(
                Instant::now() < deadline,
                "keyspaces not identical within {timeout:?}: applied {applied:?}; {diff}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn applied(&self, i: usize) -> Option<u64> {
        let r = self.server(i).raft().expect("raft");
        let m = r.raft().metrics().borrow().clone();
        m.last_applied.map(|l| l.index)
    }

    /// Wait until every running node has applied as far as the leader and
    /// holds `expected` (key, value) exactly, and none of `absent`.
    fn wait_converged(&self, expected: &[(String, String)], absent: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let running: Vec<usize> = (0..self.inner.len())
            .filter(|&i| self.inner.is_running(i))
            .collect();
        loop {
            let applied: Vec<_> = running.iter().map(|&i| self.applied(i)).collect();
            let same_applied = applied.windows(2).all(|w| w[0] == w[1]);
            let mut missing = Vec::new();
            for &i in &running {
                for (k, v) in expected {
                    if self.local_get(i, k).as_deref() != Some(v.as_bytes()) {
                        missing.push((i, k.clone()));
                    }
                }
                for k in absent {
                    assert_eq!(
                        self.local_get(i, k),
                        None,
                        "node {i} holds {k}, which was never acknowledged as written"
                    );
                }
            }
            if same_applied && missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not converged: applied {applied:?}, missing (node, key) {:?}",
                &missing[..missing.len().min(10)]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// SET through node `i`, many keys; returns what was acknowledged.
fn write_all(c: &Cluster, i: usize, prefix: &str, n: usize) -> Vec<(String, String)> {
    let mut client = c.client(i);
    (0..n)
        .map(|j| {
            let (k, v) = (format!("{prefix}{j}"), format!("v-{prefix}{j}"));
            let reply = client.cmd(&["SET", &k, &v]);
            assert!(is_ok(&reply), "SET {k} through node {i}: {reply:?}");
            (k, v)
        })
        .collect()
}

/// The first key on which two dumps differ, described; `None` if all agree.
fn first_difference(nodes: &[usize], dumps: &[BTreeMap<String, String>]) -> Option<String> {
    let (first, rest) = dumps.split_first()?;
    for (d, dump) in rest.iter().enumerate() {
        if dump == first {
            continue;
        }
        let keys: BTreeSet<&String> = first.keys().chain(dump.keys()).collect();
        for k in keys {
            if first.get(k) != dump.get(k) {
                return Some(format!(
                    "{} keys on node {} vs {} on node {}; first difference {k}: {:?} vs {:?}",
                    first.len(),
                    nodes[0],
                    dump.len(),
                    nodes[d + 1],
                    first.get(k),
                    dump.get(k)
                ));
            }
        }
    }
    None
}

/// Send `cmd` through node `i`; it must fail with CLUSTERDOWN/TRYAGAIN
/// within the bound.
fn assert_rejected_in_bound(c: &Cluster, i: usize, cmd: &[&str]) {
    let mut client = c.client(i);
    let started = Instant::now();
    let reply = client.cmd(cmd);
    let took = started.elapsed();
    assert!(
        is_cluster_error(&reply),
        "{cmd:?} through node {i} answered {reply:?}"
    );
    assert!(
        took < BOUND + SLACK,
        "{cmd:?} through node {i} took {took:?}"
    );
}

/// `clients` connections to node `i` each send a SET at the same time;
/// every one must fail with CLUSTERDOWN/TRYAGAIN within the bound. Returns
/// the keys sent.
fn assert_concurrent_rejected_in_bound(
    c: &Cluster,
    i: usize,
    clients: usize,
    prefix: &str,
) -> Vec<String> {
    let port = c.server(i).addr().port();
    let keys: Vec<String> = (0..clients).map(|j| format!("{prefix}{j}")).collect();
    let threads: Vec<_> = keys
        .iter()
        .cloned()
        .map(|key| {
            std::thread::spawn(move || {
                let mut client = Client::connect(port);
                let started = Instant::now();
                let reply = client.cmd(&["SET", &key, "x"]);
                (key, reply, started.elapsed())
            })
        })
        .collect();
    for t in threads {
        let (key, reply, took) = t.join().expect("client thread");
        assert!(
            is_cluster_error(&reply),
            "SET {key} through node {i} answered {reply:?}"
        );
        assert!(
            took < BOUND + SLACK,
            "SET {key} through node {i}, one of {clients} at once, took {took:?}"
        );
    }
    keys
}

fn others(i: usize, n: usize) -> Vec<usize> {
    (0..n).filter(|&j| j != i).collect()
}

// -------------------------------------------------------------- scenarios

#[test]
fn replicates_writes_and_forwards_from_followers() {
    let _serial = serial();
    let c = Cluster::start(3);
    let leader = c.wait_for_leader(&[0, 1, 2], Duration::from_secs(5));
    let mut acked = Vec::new();
    for i in 0..3 {
        acked.extend(write_all(&c, i, &format!("n{i}-"), 20));
    }
    // MULTI/EXEC is one entry; MSET applies whole.
    let follower = others(leader, 3)[0];
    let mut client = c.client(follower);
    assert!(is_ok(&client.cmd(&["MULTI"])));
    assert_eq!(
        client.cmd(&["SET", "tx1", "a"]),
        Resp::Status("QUEUED".into())
    );
    assert_eq!(client.cmd(&["INCR", "tx2"]), Resp::Status("QUEUED".into()));
    assert_eq!(
        client.cmd(&["EXEC"]),
        Resp::Array(Some(vec![Resp::Status("OK".into()), Resp::Int(1)]))
    );
    assert!(is_ok(&client.cmd(&["MSET", "m1", "x", "m2", "y"])));
    // A linearizable read on a follower sees the write just acknowledged.
    assert_eq!(client.cmd(&["GET", "m2"]), Resp::Bulk(Some(b"y".to_vec())));
    acked.extend([
        ("tx1".into(), "a".into()),
        ("tx2".into(), "1".into()),
        ("m1".into(), "x".into()),
        ("m2".into(), "y".into()),
    ]);
    c.wait_converged(&acked, &[]);
    // RAFT.INFO names the leader everywhere.
    let info = match c.client(follower).cmd(&["RAFT.INFO"]) {
        Resp::Bulk(Some(b)) => String::from_utf8(b).expect("utf8"),
        other => panic!("RAFT.INFO answered {other:?}"),
    };
    assert!(info.contains("role:follower"), "{info}");
    assert!(info.contains(&format!("leader:{}", leader + 1)), "{info}");
    // The leader's commit index counts the 60 SETs, each its own entry (it
    // once showed the committing leader's node id instead).
    let info = match c.client(leader).cmd(&["RAFT.INFO"]) {
        Resp::Bulk(Some(b)) => String::from_utf8(b).expect("utf8"),
        other => panic!("RAFT.INFO answered {other:?}"),
    };
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no number {name} in {info}"))
    };
    assert!(field("commit_index:") >= 60, "{info}");
    assert!(field("commit_index:") <= field("last_log_index:"), "{info}");
}

#[test]
fn isolated_leader_is_replaced_and_converges_after_heal() {
    let _serial = serial();
    let c = Cluster::start(3);
    let old = c.wait_for_leader(&[0, 1, 2], Duration::from_secs(5));
    let mut acked = write_all(&c, old, "before-", 20);

    let old_term = c.metrics(old).current_term;
    c.isolate(old);
    // The old leader cannot commit: it answers an error within the bound.
    assert_rejected_in_bound(&c, old, &["SET", "lost", "x"]);

    // The majority elects a new leader that accepts writes, directly and
    // forwarded from the other follower.
    let majority = others(old, 3);
    let new = c.wait_for_leader(&majority, Duration::from_secs(10));
    assert_ne!(new, old);
    acked.extend(write_all(&c, new, "during-", 20));
    let other = majority.iter().copied().find(|&i| i != new).expect("other");
    acked.extend(write_all(&c, other, "during-fwd-", 20));
    // The isolated node does not have them.
    assert_eq!(c.local_get(old, "during-0"), None);

    c.heal();
    let leader = c.wait_for_leader(&[0, 1, 2], Duration::from_secs(10));
    assert_ne!(
        leader, old,
        "the stale leader must not win back with a shorter log"
    );
    acked.extend(write_all(&c, old, "after-", 20));
    c.wait_converged(&acked, &["lost".to_string()]);
    // The old leader took the new term (whoever leads by now: a later
    // election may legitimately pick it, once it holds the whole log).
    assert!(c.metrics(old).current_term > old_term);
}

#[test]
fn minority_rejects_writes_and_reads_within_the_bound() {
    let _serial = serial();
    let c = Cluster::start(3);
    let leader = c.wait_for_leader(&[0, 1, 2], Duration::from_secs(5));
    let follower = others(leader, 3)[0];
    let mut acked = write_all(&c, follower, "pre-", 10);

    c.isolate(follower);
    assert_rejected_in_bound(&c, follower, &["SET", "minority", "x"]);
    assert_rejected_in_bound(&c, follower, &["GET", "pre-0"]);
    // The majority goes on.
    acked.extend(write_all(&c, leader, "majority-", 20));

    c.heal();
    c.wait_for_leader(&[0, 1, 2], Duration::from_secs(10));
    c.wait_converged(&acked, &["minority".to_string()]);
}

#[test]
fn one_way_link_loss_keeps_acknowledged_writes() {
    let _serial = serial();
    let c = Cluster::start(3);
    let leader = c.wait_for_leader(&[0, 1, 2], Duration::from_secs(5));
    let follower = others(leader, 3)[0];
    let mut acked = write_all(&c, leader, "a-", 10);

    // The leader's messages to one follower are lost; the follower's
    // messages (votes, replies) still arrive.
    c.faults(leader).block(follower as u64 + 1, false);
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut n = 0;
    let mut errors = 0;
    while Instant::now() < deadline {
        // Clients use every node in turn.
        let i = n % 3;
        let (k, v) = (format!("oneway-{n}"), format!("v{n}"));
        match c.client(i).cmd(&["SET", &k, &v]) {
            r if is_ok(&r) => acked.push((k, v)),
            r => {
                assert!(is_cluster_error(&r), "SET answered {r:?}");
                errors += 1;
            }
        }
        n += 1;
    }
    assert!(
        acked.len() > 10 + errors,
        "the cluster should mostly keep accepting writes ({} acked, {errors} errors)",
        acked.len()
    );

    c.heal();
    c.wait_for_leader(&[0, 1, 2], Duration::from_secs(10));
    c.wait_converged(&acked, &[]);
}

#[test]
fn killed_leader_loses_no_acknowledged_write() {
    let _serial = serial();
    let mut c = Cluster::start(3);
    let leader = c.wait_for_leader(&[0, 1, 2], Duration::from_secs(5));
    let survivors = others(leader, 3);
    let ports: Vec<u16> = survivors
        .iter()
        .map(|&i| c.server(i).addr().port())
        .collect();
    let leader_port = c.server(leader).addr().port();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));

    // Writers: through the leader and through both followers, concurrently.
    let mut writers = Vec::new();
    for (w, port) in [leader_port, ports[0], ports[1]].into_iter().enumerate() {
        let stop = stop.clone();
        let acked = acked.clone();
        writers.push(std::thread::spawn(move || {
            let Ok(mut client) = Client::try_connect(port) else {
                return;
            };
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (k, v) = (format!("w{w}-{n}"), format!("v{n}"));
                match client.try_cmd(&["SET", &k, &v]) {
                    Ok(r) if is_ok(&r) => {
                        acked.lock().unwrap_or_else(|e| e.into_inner()).push((k, v));
                    }
                    Ok(r) => assert!(is_cluster_error(&r), "SET answered {r:?}"),
                    Err(_) => return, // the node went away
                }
                n += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(700));
    c.kill(leader);
    std::thread::sleep(Duration::from_millis(2500));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.join();
    }
    let acked = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        acked.len() > 20,
        "too few writes acknowledged: {}",
        acked.len()
    );
    let new = c.wait_for_leader(&survivors, Duration::from_secs(10));
    assert_ne!(new, leader);
    // Writes after the failover land too.
    let mut all = acked;
    all.extend(write_all(&c, survivors[0], "post-", 10));
    c.wait_converged(&all, &[]);
}

#[test]
fn five_node_split_serves_only_the_majority_and_converges() {
    let _serial = serial();
    let c = Cluster::start(5);
    let all: Vec<usize> = (0..5).collect();
    let leader = c.wait_for_leader(&all, Duration::from_secs(5));
    let mut acked = write_all(&c, leader, "before-", 20);
    acked.extend(write_all(&c, others(leader, 5)[0], "before-fwd-", 10));
    let mut lost = Vec::new();

    // Round 1: the leader and one follower on the side of two; round 2:
    // two followers there, the leader with the three.
    for round in 1..=2 {
        let leader = c.wait_for_leader(&all, Duration::from_secs(10));
        let followers = others(leader, 5);
        let minority = match round {
            1 => vec![leader, followers[0]],
            _ => vec![followers[0], followers[1]],
        };
        let majority: Vec<usize> = all
            .iter()
            .copied()
            .filter(|i| !minority.contains(i))
            .collect();
        c.split(&minority, &majority);

        // The side of two answers errors within the bound, for writes and
        // for linearizable reads, on both of its nodes.
        for &i in &minority {
            let key = format!("minority-{round}-{i}");
            assert_rejected_in_bound(&c, i, &["SET", &key, "x"]);
            assert_rejected_in_bound(&c, i, &["GET", "before-0"]);
            lost.push(key);
        }
        // Many clients at once on a follower of the side of two (more
        // forwarded batches in flight than connections to its leader).
        let busy = minority[1];
        lost.extend(assert_concurrent_rejected_in_bound(
            &c,
            busy,
            12,
            &format!("minority-{round}-busy-"),
        ));

        // The side of three has (or elects) a leader and takes writes,
        // directly and forwarded by one of its followers; its linearizable
        // reads see them.
        let new = c.wait_for_leader(&majority, Duration::from_secs(10));
        let prefix = format!("split{round}-");
        acked.extend(write_all(&c, new, &prefix, 20));
        let fwd = majority
            .iter()
            .copied()
            .find(|&i| i != new)
            .expect("follower");
        acked.extend(write_all(&c, fwd, &format!("{prefix}fwd-"), 20));
        let last = format!("{prefix}fwd-19");
        assert_eq!(
            c.client(fwd).cmd(&["GET", &last]),
            Resp::Bulk(Some(format!("v-{last}").into_bytes()))
        );
        // The side of two still refuses, and has none of it.
        for &i in &minority {
            let key = format!("minority-{round}-{i}-late");
            assert_rejected_in_bound(&c, i, &["SET", &key, "x"]);
            lost.push(key);
            assert_eq!(c.local_get(i, &format!("{prefix}0")), None);
        }

        c.heal();
        c.wait_for_leader(&all, Duration::from_secs(10));
        for &i in &minority {
            acked.extend(write_all(&c, i, &format!("after{round}-{i}-"), 5));
        }
        c.wait_converged(&acked, &lost);
    }

    // Every node holds the same keyspace: the acknowledged writes and
    // nothing else.
    let keyspace = c.wait_identical(Duration::from_secs(15));
    let expected: BTreeSet<&String> = acked.iter().map(|(k, _)| k).collect();
    assert_eq!(keyspace.keys().collect::<BTreeSet<_>>(), expected);
}

mod flapping;
mod recovery;
