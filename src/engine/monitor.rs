//! MONITOR: every command the server runs, as a line to the clients that
//! asked, in Redis's format: `+<seconds>.<micros> [<db> <client>] "cmd"
//! "arg" ...` (arguments quoted as Redis's `sdscatrepr` quotes them; the
//! client is its address, or `lua` for a script's commands).
//!
//! A command is fed once it ran (so EXEC follows the commands it ran, and
//! SELECT shows its new database), EVAL before its script's commands.
//! Admin commands are not fed, AUTH's and HELLO AUTH's secrets are
//! redacted, and commands refused before running (unknown, wrong arity,
//! NOAUTH) never appear — all as in Redis.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{wall_clock, ClientInfo, Shared};
use crate::cmd::{CommandSpec, Flags};
use crate::config::OutputLimit;

/// The clients in MONITOR mode.
#[derive(Debug, Default)]
pub struct Monitors {
    clients: Mutex<Vec<Arc<ClientInfo>>>,
    /// How many there are, read without the lock on every command.
    count: AtomicUsize,
}

impl Monitors {
    pub fn add(&self, client: Arc<ClientInfo>) {
        let mut clients = self.clients.lock();
        if !clients.iter().any(|c| c.id == client.id) {
            clients.push(client);
        }
        self.count.store(clients.len(), Ordering::Relaxed);
    }

    pub fn remove(&self, id: u64) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut clients = self.clients.lock();
        clients.retain(|c| c.id != id);
        self.count.store(clients.len(), Ordering::Relaxed);
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// Whether client `id` monitors.
    pub fn contains(&self, id: u64) -> bool {
        !self.is_empty() && self.clients.lock().iter().any(|c| c.id == id)
    }
}

/// Whether Redis feeds `spec` (with `args`) to monitors.
fn fed(spec: &CommandSpec, args: &[Bytes]) -> bool {
    if spec.flags.contains(Flags::ADMIN) || spec.name == "monitor" {
        return false;
    }
    let sub = |names: &[&[u8]]| {
        args.get(1)
            .is_some_and(|s| names.iter().any(|n| s.eq_ignore_ascii_case(n)))
    };
    match spec.name {
        "client" => !sub(&[
            b"kill",
            b"list",
            b"no-evict",
            b"pause",
            b"unblock",
            b"unpause",
        ]),
        _ => true,
    }
}

/// `sdscatrepr`: the argument in double quotes, escaped as Redis does.
fn quote(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'"');
    for &b in arg {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// The arguments as monitors and the slow log show them: secrets redacted
/// (AUTH, HELLO's AUTH, CONFIG SET of a password, ACL SETUSER's name and
/// rules).
pub(crate) fn shown(spec: &CommandSpec, args: &[Bytes]) -> Vec<Bytes> {
    let redacted = Bytes::from_static(b"(redacted)");
    let mut out = args.to_vec();
    match spec.name {
        "auth" => out.iter_mut().skip(1).for_each(|a| *a = redacted.clone()),
        "hello" => {
            let mut i = 2;
            while i < out.len() {
                let is_auth = out.get(i).is_some_and(|a| a.eq_ignore_ascii_case(b"auth"));
                if is_auth {
                    for j in [i + 1, i + 2] {
                        if let Some(a) = out.get_mut(j) {
                            *a = redacted.clone();
                        }
                    }
                    i += 3;
                } else {
                    i += 1;
                }
            }
        }
        "acl"
            if out
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"setuser")) =>
        {
            out.iter_mut().skip(2).for_each(|a| *a = redacted.clone())
        }
        "config" if out.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"set")) => {
            let mut i = 2;
            while i + 1 < out.len() {
                let name = String::from_utf8_lossy(&out[i]).to_ascii_lowercase();
                if SECRET_PARAMETERS.contains(&name.as_str()) {
                    out[i + 1] = redacted.clone();
                }
                i += 2;
            }
        }
        _ => {}
    }
    out
}

/// CONFIG parameters whose values Redis hides (its sensitive configs).
const SECRET_PARAMETERS: &[&str] = &[
    "requirepass",
    "masterauth",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

/// One monitor line (a status reply, in both protocols).
pub fn line(db: u8, source: &str, args: &[Bytes]) -> Vec<u8> {
    let (secs, micros) = wall_clock();
    let mut out = format!("+{secs}.{micros:06} [{db} {source}]").into_bytes();
    for arg in args {
        out.push(b' ');
        quote(&mut out, arg);
    }
    out.extend_from_slice(b"\r\n");
    out
}

impl Shared {
    /// `client-output-buffer-limit normal`: what a normal client (a monitor,
    /// a tracking client's pushes) may have waiting.
    pub(crate) fn normal_output_limit(&self) -> OutputLimit {
        self.config.read().client_output_buffer_limit.normal
    }

    /// Feed a command that ran to the monitors (`source`: the client's
    /// address, or `lua`).
    pub(crate) fn feed_monitors(&self, db: u8, source: &str, spec: &CommandSpec, args: &[Bytes]) {
        if self.monitors.is_empty() || !fed(spec, args) {
            return;
        }
        // Clients without a port (the embedded database's) as `addr:0`,
        // the shape clients parse.
        let source = match source.contains(':') || source == "lua" {
            true => std::borrow::Cow::Borrowed(source),
            false => std::borrow::Cow::Owned(format!("{source}:0")),
        };
        let text = line(db, &source, &shown(spec, args));
        let clients = self.monitors.clients.lock().clone();
        // A monitor is a normal client to Redis: its class's limit applies.
        let limit = self.normal_output_limit();
        for client in clients {
            client.mailbox.push(&text, limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_quoted_as_sdscatrepr() {
        let mut out = Vec::new();
        quote(&mut out, b"a b\"c\\\n\r\t\x07\x08\x01\xff~");
        assert_eq!(out, b"\"a b\\\"c\\\\\\n\\r\\t\\a\\b\\x01\\xff~\"".to_vec());
    }
}
