//! Three-node Raft clusters in one process, real TCP between the nodes and
//! real RESP clients, under injected network faults. Every scenario checks
//! the data on every node, not just that something answered.
//!
//! Waits poll with deadlines; everything runs on loopback; every node is
//! stopped at the end (`LocalCluster`'s Drop). The scenarios run one at a time
//! (a module lock) so their election timing does not compete.

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
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        Client {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    fn cmd(&mut self, args: &[&str]) -> Resp {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.writer.write_all(&out).expect("send");
        self.read()
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read");
        assert!(line.ends_with("\r\n"), "connection closed: {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    fn read(&mut self) -> Resp {
        let line = self.line();
        let (tag, rest) = line.split_at(1);
        match tag {
            "+" => Resp::Status(rest.into()),
            "-" => Resp::Error(rest.into()),
            ":" => Resp::Int(rest.parse().expect("int")),
            "$" => {
                let n: i64 = rest.parse().expect("len");
                if n < 0 {
                    return Resp::Bulk(None);
                }
                let mut buf = vec![0; n as usize + 2];
                self.reader.read_exact(&mut buf).expect("bulk");
                buf.truncate(n as usize);
                Resp::Bulk(Some(buf))
            }
            "*" => {
                let n: i64 = rest.parse().expect("len");
                if n < 0 {
                    return Resp::Array(None);
                }
                Resp::Array(Some((0..n).map(|_| self.read()).collect()))
            }
            other => panic!("unexpected reply type {other:?}"),
        }
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
        let dirs: Vec<TempDir> = (0..n)
            .map(|_| tempfile::tempdir().expect("temp dir"))
            .collect();
        let paths = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        let inner =
            LocalCluster::start_uninitialised(paths, "127.0.0.1", timing()).expect("start nodes");
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
}

#[test]
fn isolated_leader_is_replaced_and_converges_after_heal() {
    let _serial = serial();
    let c = Cluster::start(3);
    let old = c.wait_for_leader(&[0, 1, 2], Duration::from_secs(5));
    let mut acked = write_all(&c, old, "before-", 20);

    c.isolate(old);
    // The old leader cannot commit: it answers an error within the bound.
    let started = Instant::now();
    let reply = c.client(old).cmd(&["SET", "lost", "x"]);
    assert!(
        is_cluster_error(&reply),
        "isolated leader answered {reply:?}"
    );
    assert!(started.elapsed() < BOUND + Duration::from_secs(2));

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
    assert!(!c.is_leader(old));
}

#[test]
fn minority_rejects_writes_and_reads_within_the_bound() {
    let _serial = serial();
    let c = Cluster::start(3);
    let leader = c.wait_for_leader(&[0, 1, 2], Duration::from_secs(5));
    let follower = others(leader, 3)[0];
    let mut acked = write_all(&c, follower, "pre-", 10);

    c.isolate(follower);
    let mut client = c.client(follower);
    for cmd in [&["SET", "minority", "x"][..], &["GET", "pre-0"][..]] {
        let started = Instant::now();
        let reply = client.cmd(cmd);
        assert!(
            is_cluster_error(&reply),
            "{cmd:?} on the minority: {reply:?}"
        );
        assert!(
            started.elapsed() < BOUND + Duration::from_secs(2),
            "{cmd:?} took {:?}",
            started.elapsed()
        );
    }
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
            let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
                return;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
            let Ok(reader) = stream.try_clone() else {
                return;
            };
            let mut client = Client {
                reader: BufReader::new(reader),
                writer: stream,
            };
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (k, v) = (format!("w{w}-{n}"), format!("v{n}"));
                let out = format!(
                    "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                    k.len(),
                    v.len()
                )
                .into_bytes();
                if client.writer.write_all(&out).is_err() {
                    return;
                }
                let mut line = String::new();
                match client.reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return, // the node went away
                    Ok(_) => {}
                }
                if line == "+OK\r\n" {
                    acked.lock().unwrap_or_else(|e| e.into_inner()).push((k, v));
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
