//! The redis-server-style command line and config file.

use kiwi::cli::{parse_invocation, Invocation, Settings};

fn settings(argv: &[&str]) -> Result<Settings, String> {
    let argv: Vec<String> = std::iter::once("kiwi-server")
        .chain(argv.iter().copied())
        .map(String::from)
        .collect();
    match parse_invocation(&argv)? {
        Invocation::Run(s) => Ok(*s),
        other => Err(format!("not a run: {other:?}")),
    }
}

#[test]
fn defaults() {
    let s = settings(&[]).expect("defaults");
    assert_eq!(s.config.port, 7379);
    assert_eq!(s.config.bind, "127.0.0.1");
    assert_eq!(s.config.dir, std::path::PathBuf::from("./kiwi-data"));
    assert_eq!(s.config.requirepass, None);
    assert_eq!(s.config.io_threads, kiwi::config::default_io_threads());
}

#[test]
fn io_threads_sets_the_client_serving_threads() {
    let s = settings(&["--io-threads", "1"]).expect("io-threads");
    assert_eq!(s.config.io_threads, 1);
    let s = settings(&["--io-threads", "0"]).expect("io-threads 0");
    assert_eq!(s.config.io_threads, 1, "at least one thread");
    let err = settings(&["--io-threads", "many"]).expect_err("not a number");
    assert!(err.contains("needs a number"), "{err}");
}

#[test]
fn redis_server_flags_as_pytest_redis_sends_them() {
    let s = settings(&[
        "--daemonize",
        "no",
        "--pidfile",
        "/tmp/x.pid",
        "--unixsocket",
        "/tmp/x.sock",
        "--dbfilename",
        "dump.rdb",
        "--logfile",
        "/tmp/x.log",
        "--loglevel",
        "notice",
        "--syslog-enabled",
        "no",
        "--port",
        "6399",
        "--timeout",
        "30",
        "--dir",
        "/tmp/data",
        "--save",
        "",
        "--rdbcompression",
        "yes",
        "--rdbchecksum",
        "no",
        "--appendonly",
        "no",
        "--databases",
        "8",
        "--bind",
        "127.0.0.1",
        "--requirepass",
        "secret",
    ])
    .expect("accepted");
    assert_eq!(s.config.port, 6399);
    assert_eq!(s.config.dir, std::path::PathBuf::from("/tmp/data"));
    assert_eq!(s.config.unixsocket, Some("/tmp/x.sock".into()));
    assert_eq!(s.config.requirepass.as_deref(), Some("secret"));
    assert_eq!(s.pidfile, Some("/tmp/x.pid".into()));
    assert_eq!(s.logfile, Some("/tmp/x.log".into()));
    assert!(
        s.ignored.iter().any(|n| n.starts_with("save")),
        "{:?}",
        s.ignored
    );
}

#[test]
fn multi_word_values_run_to_the_next_flag() {
    let s = settings(&["--save", "900", "1", "300", "10", "--port", "1"]).expect("accepted");
    assert_eq!(s.config.port, 1);
    assert!(s.ignored.contains(&"save 900 1 300 10".to_string()));
}

#[test]
fn config_file_then_flags_override() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("redis.conf");
    std::fs::write(
        &path,
        "# a comment\nport 7000\n\nbind 127.0.0.2 -::1\nrequirepass \"two words\"\nsave 900 1\nhz 50\n",
    )
    .expect("write");
    let path = path.display().to_string();
    let s = settings(&[&path, "--port", "7001"]).expect("accepted");
    assert_eq!(s.config.port, 7001);
    assert_eq!(s.config.bind, "127.0.0.2");
    assert_eq!(s.config.requirepass.as_deref(), Some("two words"));
    assert_eq!(s.config.hz, 50);
}

#[test]
fn refusals_say_why() {
    let err = settings(&["--no-such-thing", "1"]).expect_err("unknown");
    assert!(err.contains("unknown directive 'no-such-thing'"), "{err}");
    let err = settings(&["--daemonize", "yes"]).expect_err("daemonize");
    assert!(err.contains("does not daemonize"), "{err}");
    let err = settings(&["--databases", "17"]).expect_err("databases");
    assert!(err.contains("16 databases"), "{err}");
    let err = settings(&["--port", "http"]).expect_err("port");
    assert!(err.contains("needs a number"), "{err}");
    let err = settings(&["/nonexistent/redis.conf"]).expect_err("file");
    assert!(err.contains("cannot read config file"), "{err}");
    let err = settings(&["--port"]).expect_err("no value");
    assert!(err.contains("exactly one value"), "{err}");
}

#[test]
fn help_and_version() {
    let argv = |w: &str| vec!["kiwi-server".to_string(), w.to_string()];
    assert!(matches!(
        parse_invocation(&argv("--help")),
        Ok(Invocation::Help)
    ));
    assert!(matches!(
        parse_invocation(&argv("-v")),
        Ok(Invocation::Version)
    ));
    assert!(kiwi::cli::version_line().starts_with("Redis server v=7."));
}

#[test]
fn raft_flags() {
    let s = settings(&["--port", "7001"]).expect("standalone");
    assert!(s.raft.is_none());
    let s = settings(&[
        "--node-id",
        "1",
        "--raft-addr",
        "127.0.0.1:7101",
        "--raft-peer",
        "2=127.0.0.1:7102",
        "3=127.0.0.1:7103",
        "--raft-init",
        "--raft-timeout-ms",
        "1500",
    ])
    .expect("raft flags");
    let raft = s.raft.expect("raft options");
    assert_eq!(raft.id, 1);
    assert_eq!(raft.addr, "127.0.0.1:7101");
    assert_eq!(
        raft.peers,
        vec![
            (2, "127.0.0.1:7102".to_string()),
            (3, "127.0.0.1:7103".to_string())
        ]
    );
    assert!(raft.init);
    assert_eq!(
        raft.timing.client_timeout,
        std::time::Duration::from_millis(1500)
    );
    // Repeated --raft-peer adds up.
    let s = settings(&[
        "--node-id",
        "2",
        "--raft-addr",
        "h:1",
        "--raft-peer",
        "1=h:0",
        "--raft-peer",
        "3=h:2",
    ])
    .expect("repeated peers");
    assert_eq!(s.raft.expect("raft").peers.len(), 2);

    let err = settings(&["--raft-addr", "127.0.0.1:1"]).expect_err("no id");
    assert!(err.contains("--node-id"), "{err}");
    let err = settings(&["--node-id", "1"]).expect_err("no addr");
    assert!(err.contains("--raft-addr"), "{err}");
    let err = settings(&["--node-id", "1", "--raft-addr", "h:1", "--raft-peer", "x"])
        .expect_err("bad peer");
    assert!(err.contains("ID=HOST:PORT"), "{err}");
    let err = settings(&[
        "--node-id",
        "1",
        "--raft-addr",
        "h:1",
        "--raft-peer",
        "1=h:2",
    ])
    .expect_err("self peer");
    assert!(err.contains("own id"), "{err}");
}

#[test]
fn raft_secret_and_fault_injection() {
    use kiwi::config::FaultInjection;
    let s = settings(&["--node-id", "1", "--raft-addr", "127.0.0.1:7101"]).expect("raft");
    assert!(s.raft.expect("raft").secret.is_none());
    assert_eq!(s.config.fault_injection, FaultInjection::No);
    let s = settings(&[
        "--node-id",
        "1",
        "--raft-addr",
        "127.0.0.1:7101",
        "--raft-secret",
        "s3cret",
        "--enable-fault-injection",
        "yes",
    ])
    .expect("raft");
    assert_eq!(s.config.fault_injection, FaultInjection::Yes);
    let secret = s.raft.expect("raft").secret.expect("secret");
    assert_eq!(secret.expose(), "s3cret");
    assert!(!format!("{secret:?}").contains("s3cret"), "never printed");
    // From a config file, quoted; "" is none, as for requirepass.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("redis.conf");
    std::fs::write(
        &path,
        "raft-secret \"two words\"\nenable-fault-injection local\n",
    )
    .expect("write");
    let path = path.display().to_string();
    let s = settings(&[&path, "--node-id", "1", "--raft-addr", "h:1"]).expect("file");
    assert_eq!(s.config.fault_injection, FaultInjection::Local);
    assert_eq!(
        s.raft.expect("raft").secret.expect("secret").expose(),
        "two words"
    );
    let s = settings(&[
        &path,
        "--raft-secret",
        "",
        "--node-id",
        "1",
        "--raft-addr",
        "h:1",
    ])
    .expect("none");
    assert!(s.raft.expect("raft").secret.is_none());
    // A standalone server may share the file: the secret is ignored.
    assert!(settings(&[&path]).expect("standalone").raft.is_none());
    let err = settings(&["--enable-fault-injection", "maybe"]).expect_err("bad value");
    assert!(err.contains("no, yes or local"), "{err}");
}
