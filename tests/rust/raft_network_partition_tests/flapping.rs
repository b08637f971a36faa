//! Many writers under flapping partitions: every acknowledged write is on
//! every node, identically.

use super::*;

/// A small deterministic generator (xorshift64*), so a failing fault
/// sequence can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What one writer of the flapping scenario sent and what was acknowledged.
#[derive(Debug, Default)]
struct WriterLog {
    /// Iterations started (each sends SET, MSET, INCR in turn).
    iterations: usize,
    acked_set: Vec<usize>,
    acked_mset: Vec<usize>,
    /// INCRs sent (whether answered or not) and acknowledged.
    incr_sent: i64,
    incr_acked: i64,
    errors: usize,
    reconnects: usize,
    /// The longest any command took to answer.
    slowest: Duration,
    /// Replies that are neither a success nor a cluster error.
    unexpected: Vec<String>,
}

const MSET_KEYS: [&str; 3] = ["a", "b", "c"];

/// Writer `w`: SET, MSET of three keys, INCR of its counter, over and over
/// through the node on `port`, reconnecting whenever the connection fails,
/// until `stop`.
fn flapping_writer(w: usize, port: u16, stop: Arc<AtomicBool>) -> WriterLog {
    let mut log = WriterLog::default();
    let mut client: Option<Client> = None;
    let counter = format!("w{w}:ctr");
    while !stop.load(Ordering::Relaxed) {
        let n = log.iterations;
        log.iterations += 1;
        let v = n.to_string();
        let set_key = format!("w{w}:s:{n}");
        let mset_keys: Vec<String> = MSET_KEYS
            .iter()
            .map(|s| format!("w{w}:m:{n}:{s}"))
            .collect();
        let mut mset = vec!["MSET"];
        for k in &mset_keys {
            mset.push(k);
            mset.push(&v);
        }
        let commands: [Vec<&str>; 3] = [vec!["SET", &set_key, &v], mset, vec!["INCR", &counter]];
        for (step, cmd) in commands.iter().enumerate() {
            if client.is_none() {
                match Client::try_connect(port) {
                    Ok(c) => client = Some(c),
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                }
            }
            let Some(conn) = client.as_mut() else {
                continue;
            };
            if step == 2 {
                log.incr_sent += 1;
            }
            let started = Instant::now();
            let result = conn.try_cmd(cmd);
            log.slowest = log.slowest.max(started.elapsed());
            let reply = match result {
                Ok(reply) => reply,
                Err(e) => {
                    log.unexpected.push(format!("{cmd:?}: {e}"));
                    log.reconnects += 1;
                    client = None;
                    continue;
                }
            };
            match (step, &reply) {
                (0, r) if is_ok(r) => log.acked_set.push(n),
                (1, r) if is_ok(r) => log.acked_mset.push(n),
                (2, Resp::Int(_)) => log.incr_acked += 1,
                (_, r) if is_cluster_error(r) => log.errors += 1,
                (_, r) => log.unexpected.push(format!("{cmd:?} answered {r:?}")),
            }
        }
    }
    log
}

/// Faults of the flapping scenario, on the nodes' own tables.
struct Faults {
    tables: Vec<Arc<kiwi::raft::FaultTable>>,
    nodes: Vec<Arc<kiwi::raft::RaftNode>>,
}

impl Faults {
    fn heal(&self) {
        for t in &self.tables {
            t.clear();
        }
    }

    fn cut(&self, i: usize, j: usize) {
        self.tables[i].block(j as u64 + 1, true);
        self.tables[j].block(i as u64 + 1, true);
    }

    /// Heal, then apply the next fault of the sequence; describes it.
    fn step(&self, rng: &mut Rng) -> String {
        let n = self.tables.len();
        self.heal();
        match rng.below(5) {
            0 => {
                let i = rng.below(n);
                for j in others(i, n) {
                    self.cut(i, j);
                }
                format!("isolate {i}")
            }
            1 => {
                // Two random nodes against the rest.
                let a = rng.below(n);
                let b = (a + 1 + rng.below(n - 1)) % n;
                let side = [a, b];
                for i in side {
                    for j in (0..n).filter(|j| !side.contains(j)) {
                        self.cut(i, j);
                    }
                }
                format!("split {side:?} | rest")
            }
            2 => {
                let a = rng.below(n);
                let b = (a + 1 + rng.below(n - 1)) % n;
                self.tables[a].block(b as u64 + 1, false);
                format!("one-way {a} -> {b}")
            }
            3 => match self.nodes.iter().position(|r| r.is_leader()) {
                Some(l) => {
                    for j in others(l, n) {
                        self.cut(l, j);
                    }
                    format!("isolate leader {l}")
                }
                None => "heal (no leader to isolate)".into(),
            },
            _ => "heal".into(),
        }
    }
}

#[test]
fn flapping_partitions_keep_every_acknowledged_write_identically() {
    let _serial = serial();
    let n = 5;
    let c = Cluster::start(n);
    let all: Vec<usize> = (0..n).collect();
    let first = c.wait_for_leader(&all, Duration::from_secs(5));
    let first_term = c.metrics(first).current_term;
    let seed = std::env::var("KIWI_FLAP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f1a9_u64);
    eprintln!("flapping partitions: seed {seed}");

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = all
        .iter()
        .map(|&i| {
            let port = c.server(i).addr().port();
            let stop = stop.clone();
            std::thread::spawn(move || flapping_writer(i, port, stop))
        })
        .collect();
    let faults = Faults {
        tables: all
            .iter()
            .map(|&i| c.inner.node(i).expect("raft").faults().clone())
            .collect(),
        nodes: all
            .iter()
            .map(|&i| c.inner.node(i).expect("raft").clone())
            .collect(),
    };
    // The writers run for a while under a partition that changes every
    // 150-800 ms, now and then held 1-2 s: openraft's follower waits its
    // leader lease (election_timeout_max) plus its election timeout before
    // it campaigns, so only the longer holds are sure to cause elections.
    // This is the scenario, not a wait for a condition.
    let mut rng = Rng::new(seed);
    let mut history = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let fault = faults.step(&mut rng);
        let hold = match rng.below(4) {
            0 => 1_000 + rng.below(1_000),
            _ => 150 + rng.below(650),
        };
        history.push(format!("{fault} ({hold} ms)"));
        std::thread::sleep(Duration::from_millis(hold as u64));
    }
    faults.heal();
    stop.store(true, Ordering::Relaxed);
    let logs: Vec<WriterLog> = writers
        .into_iter()
        .map(|w| w.join().expect("writer thread"))
        .collect();
    eprintln!("faults: {}", history.join(", "));
    for (w, log) in logs.iter().enumerate() {
        eprintln!(
            "writer {w}: {} iterations, {} SET / {} MSET / {} INCR acknowledged, {} errors, {} reconnects, slowest answer {:?}",
            log.iterations,
            log.acked_set.len(),
            log.acked_mset.len(),
            log.incr_acked,
            log.errors,
            log.reconnects,
            log.slowest
        );
        assert!(
            log.unexpected.is_empty(),
            "writer {w} saw {:?}",
            log.unexpected
        );
        assert!(
            log.slowest < BOUND + SLACK,
            "writer {w} waited {:?} for an answer",
            log.slowest
        );
    }
    let acked: usize = logs.iter().map(|l| l.acked_set.len()).sum();
    assert!(acked > 20, "too few writes acknowledged: {acked}");

    let last = c.wait_for_leader(&all, Duration::from_secs(15));
    let last_term = c.metrics(last).current_term;
    eprintln!("leader {first} in term {first_term} before, {last} in term {last_term} after");
    assert!(
        last_term > first_term,
        "the faults caused no election at all: the scenario did not test failover"
    );
    let keyspace = c.wait_identical(Duration::from_secs(30));
    for (w, log) in logs.iter().enumerate() {
        // Acknowledged writes are there with their values.
        for &n in &log.acked_set {
            assert_eq!(
                keyspace.get(&format!("w{w}:s:{n}")),
                Some(&format!("string -1 Bulk(b\"{n}\")")),
                "writer {w}'s acknowledged SET {n}"
            );
        }
        for &n in &log.acked_mset {
            for s in MSET_KEYS {
                assert!(
                    keyspace.contains_key(&format!("w{w}:m:{n}:{s}")),
                    "writer {w}'s acknowledged MSET {n} lacks {s}"
                );
            }
        }
        // Every MSET, acknowledged or not, is all or nothing, and whatever
        // is there has the value written.
        for n in 0..log.iterations {
            let present: Vec<&str> = MSET_KEYS
                .iter()
                .copied()
                .filter(|s| keyspace.contains_key(&format!("w{w}:m:{n}:{s}")))
                .collect();
            assert!(
                present.is_empty() || present.len() == MSET_KEYS.len(),
                "writer {w}'s MSET {n} applied in part: {present:?}"
            );
        }
        // An INCR is applied at most once: the counter lies between what
        // was acknowledged and what was sent.
        let counter = match keyspace.get(&format!("w{w}:ctr")) {
            None => 0,
            Some(v) => {
                let digits: String = v
                    .trim_start_matches("string -1 Bulk(b\"")
                    .trim_end_matches("\")")
                    .into();
                digits.parse::<i64>().expect("counter value")
            }
        };
        assert!(
            log.incr_acked <= counter && counter <= log.incr_sent,
            "writer {w}'s counter is {counter}: {} INCR acknowledged, {} sent",
            log.incr_acked,
            log.incr_sent
        );
    }
    // Nothing but what the writers sent.
    for (key, value) in &keyspace {
        let parts: Vec<&str> = key.split(':').collect();
        let (w, n) = match parts[..] {
            [w, "ctr"] => (w, None),
            [w, "s", n] | [w, "m", n, _] => (w, Some(n)),
            _ => panic!("unexpected key {key}"),
        };
        let w: usize = w.trim_start_matches('w').parse().expect("writer");
        if let Some(n) = n {
            let n: usize = n.parse().expect("iteration");
            assert!(n < logs[w].iterations, "key {key} was never sent");
            assert_eq!(value, &format!("string -1 Bulk(b\"{n}\")"), "{key}");
        }
    }
}
