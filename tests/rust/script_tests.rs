//! Kiwi's Lua scripting core against Redis's own EVAL.
//!
//! A test [`ScriptHost`] forwards `redis.call` to a real redis-server started
//! here; every script runs once through Kiwi's VM and once through Redis's
//! EVAL, and the reply bytes must be equal, under RESP2 and RESP3.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kiwi::resp::{Protocol, Reply};
use kiwi::script::{cache, HostCall, ScriptHost, ScriptVm};
use rand::{Rng, SeedableRng};

/// A redis-server on a free loopback port, stopped on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .ok()?;
        let child = match Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(_) => {
                eprintln!("SKIPPED: redis-server is not on PATH; the differential scripting tests need it");
                return None;
            }
        };
        let server = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut c) = Conn::open(port, false) {
                if c.request(&[b"PING"]).starts_with(b"+PONG") {
                    return Some(server);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer on port {port}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One connection; `request` returns the raw bytes of one reply.
struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(port: u16, resp3: bool) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut c = Conn {
            reader: BufReader::new(stream),
        };
        if resp3 {
            c.request(&[b"HELLO", b"3"]);
        }
        Ok(c)
    }

    fn request(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&out).expect("send");
        let mut raw = Vec::new();
        read_raw(&mut self.reader, &mut raw);
        raw
    }
}

/// Read one RESP2/RESP3 reply, appending its bytes to `raw` (iterative:
/// counts the elements still owed).
fn read_raw(r: &mut BufReader<TcpStream>, raw: &mut Vec<u8>) {
    let mut owed: u64 = 1;
    while owed > 0 {
        owed -= 1;
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line).expect("read");
        raw.extend_from_slice(&line);
        let body = std::str::from_utf8(&line[1..line.len() - 2]).expect("utf8 header");
        match line[0] {
            b'$' | b'=' | b'!' => {
                let n: i64 = body.parse().expect("len");
                if n >= 0 {
                    let mut buf = vec![0u8; n as usize + 2];
                    r.read_exact(&mut buf).expect("bulk");
                    raw.extend_from_slice(&buf);
                }
            }
            b'*' | b'~' | b'>' => {
                let n: i64 = body.parse().expect("len");
                if n > 0 {
                    owed += n as u64;
                }
            }
            b'%' | b'|' => {
                let n: i64 = body.parse().expect("len");
                owed += 2 * n as u64;
            }
            _ => {}
        }
    }
}

/// Parse raw RESP3 bytes into a Reply (the host's view of a command).
fn parse_reply(raw: &[u8]) -> Reply {
    // Iterative: a stack of (container, items owed).
    enum Open {
        Array(Vec<Reply>, usize),
        Set(Vec<Reply>, usize),
        Map(Vec<Reply>, usize),
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut pos = 0;
    loop {
        let end = pos
            + raw[pos..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("crlf");
        let tag = raw[pos];
        let body = &raw[pos + 1..end];
        let text = std::str::from_utf8(body).unwrap_or("");
        pos = end + 2;
        let mut done = match tag {
            b'+' => Some(Reply::StatusOwned(text.to_string())),
            b'-' => Some(Reply::Error(text.to_string())),
            b':' => Some(Reply::Int(text.parse().expect("int"))),
            b'_' => Some(Reply::Nil),
            b'#' => Some(Reply::Bool(text == "t")),
            b',' => Some(Reply::Double(match text {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                t => t.parse().expect("double"),
            })),
            b'$' | b'=' | b'(' => {
                if tag == b'(' {
                    Some(Reply::Bulk(Bytes::copy_from_slice(body)))
                } else {
                    let n: i64 = text.parse().expect("len");
                    if n < 0 {
                        Some(Reply::Nil)
                    } else {
                        let data = &raw[pos..pos + n as usize];
                        pos += n as usize + 2;
                        if tag == b'=' {
                            Some(Reply::Verbatim(
                                String::from_utf8_lossy(&data[4..]).into_owned(),
                            ))
                        } else {
                            Some(Reply::Bulk(Bytes::copy_from_slice(data)))
                        }
                    }
                }
            }
            b'*' | b'~' | b'%' => {
                let n: i64 = text.parse().expect("len");
                if n < 0 {
                    Some(Reply::NilArray)
                } else {
                    let n = n as usize;
                    match tag {
                        b'*' => stack.push(Open::Array(Vec::new(), n)),
                        b'~' => stack.push(Open::Set(Vec::new(), n)),
                        _ => stack.push(Open::Map(Vec::new(), 2 * n)),
                    }
                    None
                }
            }
            other => panic!("unexpected reply type {}", other as char),
        };
        loop {
            let finished = match stack.last_mut() {
                None => return done.unwrap_or(Reply::Nil),
                Some(Open::Array(items, n))
                | Some(Open::Set(items, n))
                | Some(Open::Map(items, n)) => {
                    if let Some(r) = done.take() {
                        items.push(r);
                    }
                    items.len() == *n
                }
            };
            if !finished {
                break;
            }
            done = Some(match stack.pop().expect("open") {
                Open::Array(items, _) => Reply::Array(items),
                Open::Set(items, _) => Reply::Set(items),
                Open::Map(items, _) => {
                    let mut pairs = Vec::new();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Reply::Map(pairs)
                }
            });
        }
    }
}

/// Forwards `redis.call` to the real server over RESP3.
struct ForwardHost {
    conn: Conn,
}

impl ScriptHost for ForwardHost {
    fn call(&mut self, call: HostCall) -> Reply {
        let args: Vec<&[u8]> = call.args.iter().map(|a| a.as_ref()).collect();
        let raw = self.conn.request(&args);
        // What the engine's host does: the script-side texts for unknown
        // commands and wrong arity.
        match parse_reply(&raw) {
            Reply::Error(e) if e.starts_with("ERR unknown command") => {
                Reply::error(kiwi::script::UNKNOWN_COMMAND)
            }
            Reply::Error(e) if e.starts_with("ERR wrong number of arguments") => {
                Reply::error(kiwi::script::WRONG_ARITY)
            }
            other => other,
        }
    }
}

struct Harness {
    _server: RedisServer,
    vm: ScriptVm,
    host: ForwardHost,
    admin: Conn,
    redis2: Conn,
    redis3: Conn,
}

impl Harness {
    fn new() -> Option<Harness> {
        let server = RedisServer::start()?;
        let port = server.port;
        Some(Harness {
            vm: ScriptVm::new().expect("vm"),
            host: ForwardHost {
                conn: Conn::open(port, true).expect("host conn"),
            },
            admin: Conn::open(port, false).expect("admin"),
            redis2: Conn::open(port, false).expect("resp2"),
            redis3: Conn::open(port, true).expect("resp3"),
            _server: server,
        })
    }

    /// Kiwi's reply bytes for EVAL `body` with `keys`/`args`.
    fn kiwi(&mut self, body: &str, keys: &[&str], args: &[&str], protocol: Protocol) -> Vec<u8> {
        let sha = cache::sha1_hex(body.as_bytes());
        let shebang = match cache::parse_shebang(body.as_bytes()) {
            Ok(s) => s,
            Err(e) => return Reply::Error(format!("ERR {e}")).to_bytes(protocol).to_vec(),
        };
        let code = &body.as_bytes()[shebang.code_start..];
        if let Err(reply) = self.vm.compile_script(&sha, code) {
            return reply.to_bytes(protocol).to_vec();
        }
        let keys: Vec<Bytes> = keys
            .iter()
            .map(|k| Bytes::copy_from_slice(k.as_bytes()))
            .collect();
        let args: Vec<Bytes> = args
            .iter()
            .map(|k| Bytes::copy_from_slice(k.as_bytes()))
            .collect();
        let reply = self
            .vm
            .eval(&mut self.host, &sha, &keys, &args, shebang.flags.no_writes);
        reply.to_bytes(protocol).to_vec()
    }

    fn redis(&mut self, body: &str, keys: &[&str], args: &[&str], protocol: Protocol) -> Vec<u8> {
        let n = keys.len().to_string();
        let mut req: Vec<&[u8]> = vec![b"EVAL", body.as_bytes(), n.as_bytes()];
        req.extend(keys.iter().map(|k| k.as_bytes()));
        req.extend(args.iter().map(|a| a.as_bytes()));
        match protocol {
            Protocol::Resp2 => self.redis2.request(&req),
            Protocol::Resp3 => self.redis3.request(&req),
        }
    }

    /// Run `body` both ways from an empty keyspace; the differences found.
    fn compare(&mut self, body: &str, keys: &[&str], args: &[&str]) -> Vec<String> {
        let mut diffs = Vec::new();
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            self.admin.request(&[b"FLUSHALL"]);
            let ours = self.kiwi(body, keys, args, protocol);
            self.admin.request(&[b"FLUSHALL"]);
            let theirs = self.redis(body, keys, args, protocol);
            if ours != theirs {
                diffs.push(format!(
                    "{protocol:?} {body:?}\n  kiwi:  {}\n  redis: {}",
                    show(&ours),
                    show(&theirs)
                ));
            }
        }
        diffs
    }
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b).replace("\r\n", "\\r\\n");
    if s.len() > 300 {
        format!("{}... ({} bytes)", &s[..300], b.len())
    } else {
        s
    }
}

/// Scripts whose replies must match Redis's byte for byte.
const CASES: &[&str] = include!("script_cases.in");

#[test]
fn scripts_match_redis_eval() {
    let Some(mut h) = Harness::new() else { return };
    let mut diffs = Vec::new();
    for body in CASES {
        diffs.extend(h.compare(body, &["k1", "k2"], &["a1", "7", "3.5"]));
    }
    assert!(
        diffs.is_empty(),
        "{} of {} cases differ:\n{}",
        diffs.len(),
        CASES.len() * 2,
        diffs.join("\n")
    );
}

/// cjson, cmsgpack and struct scripts whose replies must match Redis's.
const LIB_CASES: &[&str] = include!("script_lib_cases.in");

#[test]
fn library_scripts_match_redis_eval() {
    let Some(mut h) = Harness::new() else { return };
    let mut diffs = Vec::new();
    for body in LIB_CASES {
        diffs.extend(h.compare(body, &[], &[]));
    }
    assert!(
        diffs.is_empty(),
        "{} of {} cases differ:\n{}",
        diffs.len(),
        LIB_CASES.len() * 2,
        diffs.join("\n")
    );
}

/// A random nested value as a Lua literal (strings, numbers, booleans,
/// status and error tables, arrays with holes, RESP3 shapes).
fn random_value(rng: &mut rand_chacha::ChaCha8Rng, depth: u32) -> String {
    let pick = if depth > 3 {
        rng.random_range(0..6)
    } else {
        rng.random_range(0..10)
    };
    match pick {
        0 => format!("{}", rng.random_range(-1000i64..1000)),
        1 => format!("{:.3}", rng.random_range(-100.0f64..100.0)),
        2 => format!("'s{}'", rng.random_range(0..100)),
        3 => ["true", "false", "nil"][rng.random_range(0..3)].to_string(),
        4 => format!("{{ok='st{}'}}", rng.random_range(0..10)),
        5 => format!("{{double={}}}", rng.random_range(-50.0f64..50.0)),
        6 => format!("{{err='E{} boom'}}", rng.random_range(0..10)),
        7 => {
            let n = rng.random_range(0..4);
            let items: Vec<String> = (0..n)
                .map(|_| {
                    format!(
                        "k{}={}",
                        rng.random_range(0..5),
                        random_value(rng, depth + 1)
                    )
                })
                .collect();
            format!("{{map={{{}}}}}", items.join(","))
        }
        _ => {
            let n = rng.random_range(0..5);
            let items: Vec<String> = (0..n).map(|_| random_value(rng, depth + 1)).collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

#[test]
fn random_nested_values_match_redis() {
    let Some(mut h) = Harness::new() else { return };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut diffs = Vec::new();
    for i in 0..150 {
        let resp = if i % 2 == 0 { "" } else { "redis.setresp(3) " };
        let body = format!("{resp}return {}", random_value(&mut rng, 0));
        diffs.extend(h.compare(&body, &[], &[]));
    }
    assert!(
        diffs.is_empty(),
        "{} differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn self_referencing_table_is_bounded_in_a_small_stack() {
    // Converting and dropping Redis's 7,995-deep reply fits a 2 MiB thread
    // (tokio's default worker stack).
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let mut vm = ScriptVm::new().expect("vm");
            struct NoHost;
            impl ScriptHost for NoHost {
                fn call(&mut self, _: HostCall) -> Reply {
                    Reply::Nil
                }
            }
            let body = "local t = {} t[1] = t return t";
            let sha = cache::sha1_hex(body.as_bytes());
            vm.compile_script(&sha, body.as_bytes()).expect("compiles");
            let reply = vm.eval(&mut NoHost, &sha, &[], &[], false);
            let bytes = reply.to_bytes(Protocol::Resp2);
            let mut depth = 0;
            let mut r = &reply;
            while let Reply::Array(items) = r {
                depth += 1;
                match items.first() {
                    Some(next) => r = next,
                    None => break,
                }
            }
            // Dropping the deep reply (at the end of this closure) must not
            // overflow either.
            (depth, bytes.ends_with(b"-ERR reached lua stack limit\r\n"))
        })
        .expect("thread");
    assert_eq!(handle.join().ok(), Some((7995, true)));
}

#[test]
fn a_script_cannot_escape_its_sandbox() {
    let mut vm = ScriptVm::new().expect("vm");
    struct NoHost;
    impl ScriptHost for NoHost {
        fn call(&mut self, _: HostCall) -> Reply {
            Reply::Nil
        }
    }
    let mut run = |body: &str| {
        let sha = cache::sha1_hex(body.as_bytes());
        match vm.compile_script(&sha, body.as_bytes()) {
            Ok(()) => vm.eval(&mut NoHost, &sha, &[], &[], false),
            Err(e) => e,
        }
    };
    // Writes through proxies, raw accessors and table.insert leave nothing.
    for body in [
        "string.x = 1",
        "rawset(string, 'x', 1)",
        "table.insert(string, 1)",
        "setmetatable(string, {})",
        "rawset(_G, 'x', 1)",
        "getmetatable('').__index.x = 1",
        "loadstring('x = 1')()",
    ] {
        assert!(run(body).is_error(), "{body} must fail");
    }
    assert_eq!(
        run("return {string.x == nil, rawget(string, 'x') == nil, #string}"),
        Reply::Array(vec![Reply::Int(1), Reply::Int(1), Reply::Int(0)])
    );
    assert!(matches!(
        run("return loadstring(string.dump(function() return 1 end))"),
        Reply::Nil
    ));
}

/// A random value for the serialisation libraries, as a Lua expression:
/// numbers across the integer and float encodings, strings of any bytes,
/// booleans, arrays, maps with string keys, sparse integer keys.
fn random_lib_value(rng: &mut rand_chacha::ChaCha8Rng, depth: u32) -> String {
    let pick = if depth > 3 {
        rng.random_range(0..6)
    } else {
        rng.random_range(0..9)
    };
    match pick {
        0 => {
            let bits = rng.random_range(0..64u32);
            let v = rng.random_range(0..=u64::MAX) >> (63 - bits.min(62));
            let neg = if rng.random_bool(0.5) { "-" } else { "" };
            format!("({neg}{v})")
        }
        1 => format!("({:.3})", rng.random_range(-1000.0f64..1000.0)),
        2 => [
            "1/3",
            "0.1",
            "1e300",
            "2^53",
            "2^63",
            "-2^63",
            "2^64",
            "1e-320",
            "-0.0",
            "3.5e15",
            "123456789.25",
        ][rng.random_range(0..11)]
        .to_string(),
        3 | 4 => {
            let n = rng.random_range(0..12);
            let bytes: String = (0..n)
                .map(|_| {
                    if rng.random_bool(0.5) {
                        format!("\\{}", rng.random_range(0..256))
                    } else {
                        char::from(rng.random_range(b'a'..=b'z')).to_string()
                    }
                })
                .collect();
            format!("'{bytes}'")
        }
        5 => ["true", "false"][rng.random_range(0..2)].to_string(),
        6 => {
            let n = rng.random_range(0..5);
            let items: Vec<String> = (0..n)
                .map(|_| {
                    if rng.random_bool(0.8) {
                        format!(
                            "k{}={}",
                            rng.random_range(0..6),
                            random_lib_value(rng, depth + 1)
                        )
                    } else {
                        format!(
                            "[{}]={}",
                            rng.random_range(-2..30),
                            random_lib_value(rng, depth + 1)
                        )
                    }
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        _ => {
            let n = rng.random_range(0..6);
            let items: Vec<String> = (0..n).map(|_| random_lib_value(rng, depth + 1)).collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

#[test]
fn random_library_round_trips_match_redis() {
    let Some(mut h) = Harness::new() else { return };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut diffs = Vec::new();
    for _ in 0..120 {
        let v = random_lib_value(&mut rng, 0);
        for body in [
            format!("return cjson.encode({v})"),
            format!("return cjson.encode(cjson.decode(cjson.encode({v})))"),
            format!("return cmsgpack.pack({v})"),
            format!("return cmsgpack.pack(cmsgpack.unpack(cmsgpack.pack({v}, {v})))"),
            format!("return {{cmsgpack.unpack(cmsgpack.pack({v}))}}"),
        ] {
            diffs.extend(h.compare(&body, &[], &[]));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn deep_library_input_is_bounded_in_a_small_stack() {
    // Decoding and encoding walk with explicit stacks: deep input costs
    // heap, not the 2 MiB of a tokio worker thread.
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let mut vm = ScriptVm::new().expect("vm");
            struct NoHost;
            impl ScriptHost for NoHost {
                fn call(&mut self, _: HostCall) -> Reply {
                    Reply::Nil
                }
            }
            let body = "local c = cjson.new() c.decode_max_depth(3000) \
                local t = c.decode(string.rep('[', 2500) .. string.rep(']', 2500)) \
                local e = select(2, pcall(cjson.decode, string.rep('[', 100000))) \
                local m = cmsgpack.unpack(string.rep('\\145', 3000) .. '\\1') \
                c.encode_max_depth(3000) local s = c.encode(t) \
                local n = 0 while type(m) == 'table' do n = n + 1 m = m[1] end \
                return {e, #s, n, m}";
            let sha = cache::sha1_hex(body.as_bytes());
            vm.compile_script(&sha, body.as_bytes()).expect("compiles");
            vm.eval(&mut NoHost, &sha, &[], &[], false)
        })
        .expect("thread");
    let reply = handle.join().ok().map(|r| r.to_bytes(Protocol::Resp2));
    let want: &[u8] = b"*4\r\n$62\r\nFound too many nested data structures (1001) at character 1001\r\n:5000\r\n:3000\r\n:1\r\n";
    assert_eq!(reply.as_deref(), Some(want));
}

/// A random `struct` format and matching (now and then wrong) arguments.
fn random_struct_call(rng: &mut rand_chacha::ChaCha8Rng) -> (String, Vec<String>) {
    const ITEMS: &[&str] = &[
        "b", "B", "h", "H", "l", "L", "T", "i", "I", "i3", "I5", "i8", "I16", "f", "d", "x", "s",
        "c3", "c0", "<", ">", "!", "!4", "!2", " ", "z", "!3", "i40",
    ];
    let mut fmt = String::new();
    let mut args = Vec::new();
    for _ in 0..rng.random_range(0..7) {
        let item = ITEMS[rng.random_range(0..ITEMS.len())];
        fmt.push_str(item);
        let wants = match item.as_bytes()[0] {
            b's' | b'c' => Some(true),
            b'x' | b'<' | b'>' | b'!' | b' ' | b'z' => None,
            _ => Some(false),
        };
        match wants {
            _ if rng.random_bool(0.05) => args.push("{}".to_string()),
            Some(true) => args.push(format!("'{}'", "q".repeat(rng.random_range(0..6)))),
            Some(false) => {
                let v: f64 = match rng.random_range(0..4) {
                    0 => rng.random_range(-200.0..200.0),
                    1 => rng.random_range(-1e6..1e6f64).round(),
                    2 => rng.random_range(-1e19..1e19f64),
                    _ => rng.random_range(0..70u32) as f64,
                };
                args.push(format!("{v:?}"));
            }
            None => {}
        }
    }
    (fmt, args)
}

#[test]
fn random_struct_formats_match_redis() {
    let Some(mut h) = Harness::new() else { return };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut diffs = Vec::new();
    for _ in 0..150 {
        let (fmt, args) = random_struct_call(&mut rng);
        let mut call = format!("'{fmt}'");
        for a in &args {
            call.push_str(", ");
            call.push_str(a);
        }
        let body = format!(
            "local ok, s = pcall(struct.pack, {call}) if not ok then return s end \
             local r = {{pcall(struct.unpack, '{fmt}', s)}} \
             for i = 1, #r do r[i] = tostring(r[i]) end \
             return {{s, {{pcall(struct.size, '{fmt}')}}, r}}"
        );
        diffs.extend(h.compare(&body, &[], &[]));
    }
    assert!(
        diffs.is_empty(),
        "{} differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn a_script_cannot_take_unbounded_memory() {
    let mut vm = ScriptVm::with_memory_limit(32 << 20).expect("vm");
    struct NoHost;
    impl ScriptHost for NoHost {
        fn call(&mut self, _: HostCall) -> Reply {
            Reply::Nil
        }
    }
    let mut run = |body: &str| {
        let sha = cache::sha1_hex(body.as_bytes());
        match vm.compile_script(&sha, body.as_bytes()) {
            Ok(()) => vm.eval(&mut NoHost, &sha, &[], &[], false),
            Err(e) => e,
        }
    };
    for body in [
        "return #string.rep('x', 2^30)",
        "local t = {} for i = 1, 2^30 do t[i] = i end return #t",
        "local s = 'x' while true do s = s .. s end",
    ] {
        match run(body) {
            Reply::Error(text) => assert!(text.contains("not enough memory"), "{body}: {text}"),
            other => panic!("{body} answered {other:?}"),
        }
    }
    // The interpreter works on afterwards.
    assert_eq!(run("return 1 + 1"), Reply::Int(2));
}
