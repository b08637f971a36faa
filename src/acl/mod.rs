//! Redis 7.0's access control lists: users with passwords and selectors
//! (what commands, keys and channels each may use), the `default` user
//! `requirepass` sets, the checks made before a command runs, ACL LOG, and
//! the ACL file ACL SAVE and ACL LOAD write and read.
//!
//! Users are this node's own, as in Redis (each node of a cluster has its
//! own ACL configuration): nothing here is replicated, and a write a
//! follower forwards is judged on the follower, with its client's user.
//!
//! A user is shared by the sessions authenticated as it ([`AclUser`]); ACL
//! SETUSER changes it in place, so they see new rules at their next
//! command. The default user with every permission costs one atomic load
//! per command ([`AclUser::unrestricted`]).

pub mod catalog;
pub mod log;
mod selector;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

use crate::cmd::CommandSpec;
pub use catalog::{catalog, category_bit, CATEGORIES};
pub use selector::{channel_allowed, has_spaces, Selector};

/// Why ACL SETUSER refused a rule (Redis's errno cases), with its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Unknown command or category name in ACL")]
    UnknownCommand,
    #[error("Syntax error")]
    Syntax,
    #[error(
        "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not \
         have any effect. Try 'resetkeys' to start with an empty list of patterns"
    )]
    KeyAfterAll,
    #[error(
        "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does \
         not have any effect. Try 'resetchannels' to start with an empty list of channels"
    )]
    ChannelAfterAll,
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    #[error(
        "The password hash must be exactly 64 characters and contain only lowercase hexadecimal \
         characters"
    )]
    BadHash,
    #[error("Allowing first-arg of a subcommand is not supported")]
    FirstArgOfSubcommand,
}

const ON: u8 = 1;
const OFF: u8 = 2;
const NOPASS: u8 = 4;
const SKIP_SANITIZE: u8 = 8;
const SANITIZE: u8 = 16;
/// User flags in the order Redis describes them.
const FLAG_NAMES: [(u8, &str); 5] = [
    (ON, "on"),
    (OFF, "off"),
    (NOPASS, "nopass"),
    (SKIP_SANITIZE, "skip-sanitize-payload"),
    (SANITIZE, "sanitize-payload"),
];

/// What a command was refused for (in Redis's order of relevance), with
/// the position of the key or channel argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denied {
    fn rank(self) -> (u8, usize) {
        match self {
            Denied::Command => (1, 0),
            Denied::Key(at) => (2, at),
            Denied::Channel(at) => (4, at),
        }
    }

    /// The NOPERM error a refused command answers.
    pub fn error(self, full_name: &str) -> String {
        match self {
            Denied::Command => {
                format!("NOPERM this user has no permissions to run the '{full_name}' command")
            }
            Denied::Key(_) => "NOPERM this user has no permissions to access one of the keys \
                               used as arguments"
                .into(),
            Denied::Channel(_) => "NOPERM this user has no permissions to access one of the \
                                   channels used as arguments"
                .into(),
        }
    }

    /// The reason inside an EXEC whose rules changed since queuing.
    pub fn exec_reason(self) -> &'static str {
        match self {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        }
    }

    /// The text a script's call gets (after "The user executing the
    /// script ").
    pub fn script_reason(self) -> &'static str {
        match self {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key(_) => {
                "can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel(_) => "can't publish to the channel mentioned in the command",
        }
    }

    pub fn log_reason(self) -> log::Reason {
        match self {
            Denied::Command => log::Reason::Command,
            Denied::Key(_) => log::Reason::Key,
            Denied::Channel(_) => log::Reason::Channel,
        }
    }
}

/// A user's rules: flags, password hashes, selectors (the root first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    flags: u8,
    /// SHA-256 of each password, in lowercase hex.
    passwords: Vec<String>,
    selectors: Vec<Selector>,
}

/// SHA-256 of `password` in lowercase hex, as Redis stores it.
pub fn hash_password(password: &[u8]) -> String {
    Sha256::digest(password)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Equal without an early exit, so timing tells nothing of the hash.
fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn valid_hash(hash: &[u8]) -> bool {
    hash.len() == 64 && hash.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

impl UserState {
    /// A new user: off, no password, no permissions.
    pub fn new(pubsub_all: bool) -> UserState {
        UserState {
            flags: OFF,
            passwords: Vec::new(),
            selectors: vec![Selector::new(pubsub_all)],
        }
    }

    /// The default user as Redis creates it: on, nopass, everything.
    pub fn default_user() -> UserState {
        UserState {
            flags: ON | NOPASS,
            passwords: Vec::new(),
            selectors: vec![Selector::everything()],
        }
    }

    pub fn enabled(&self) -> bool {
        self.flags & OFF == 0
    }

    pub fn nopass(&self) -> bool {
        self.flags & NOPASS != 0
    }

    pub fn unrestricted(&self) -> bool {
        self.selectors.iter().any(Selector::unrestricted)
    }

    /// Whether `password` is one of the user's (or it needs none).
    fn accepts(&self, password: &[u8]) -> bool {
        if self.nopass() {
            return true;
        }
        let hashed = hash_password(password);
        // Every hash is compared, so the time does not tell which matched.
        self.passwords
            .iter()
            .fold(false, |found, p| same_hash(&hashed, p) | found)
    }

    fn root(&mut self) -> &mut Selector {
        if self.selectors.is_empty() {
            self.selectors.push(Selector::new(false));
        }
        &mut self.selectors[0]
    }

    /// Apply one ACL SETUSER rule.
    pub fn apply(&mut self, op: &[u8], pubsub_all: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let lower = op.to_ascii_lowercase();
        match &lower[..] {
            b"on" => self.flags = (self.flags | ON) & !OFF,
            b"off" => self.flags = (self.flags | OFF) & !ON,
            b"skip-sanitize-payload" => self.flags = (self.flags | SKIP_SANITIZE) & !SANITIZE,
            b"sanitize-payload" => self.flags = (self.flags | SANITIZE) & !SKIP_SANITIZE,
            b"nopass" => {
                self.flags |= NOPASS;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.flags &= !NOPASS;
                self.passwords.clear();
            }
            b"clearselectors" => self.selectors.truncate(1),
            b"reset" => {
                self.apply(b"resetpass", pubsub_all)?;
                self.apply(b"resetkeys", pubsub_all)?;
                self.apply(b"resetchannels", pubsub_all)?;
                if pubsub_all {
                    self.apply(b"allchannels", pubsub_all)?;
                }
                self.apply(b"off", pubsub_all)?;
                self.apply(b"sanitize-payload", pubsub_all)?;
                self.apply(b"clearselectors", pubsub_all)?;
                self.apply(b"-@all", pubsub_all)?;
            }
            _ => match op[0] {
                b'>' | b'#' => {
                    let hash = if op[0] == b'>' {
                        hash_password(&op[1..])
                    } else if valid_hash(&op[1..]) {
                        String::from_utf8_lossy(&op[1..]).into_owned()
                    } else {
                        return Err(RuleError::BadHash);
                    };
                    if !self.passwords.contains(&hash) {
                        self.passwords.push(hash);
                    }
                    self.flags &= !NOPASS;
                }
                b'<' | b'!' => {
                    let hash = if op[0] == b'<' {
                        hash_password(&op[1..])
                    } else if valid_hash(&op[1..]) {
                        String::from_utf8_lossy(&op[1..]).into_owned()
                    } else {
                        return Err(RuleError::BadHash);
                    };
                    let at = self
                        .passwords
                        .iter()
                        .position(|p| *p == hash)
                        .ok_or(RuleError::NoSuchPassword)?;
                    self.passwords.remove(at);
                }
                b'(' if op.last() == Some(&b')') => {
                    let inner = &op[1..op.len() - 1];
                    let mut selector = Selector::new(pubsub_all);
                    for rule in crate::resp::split_args(inner).ok_or(RuleError::Syntax)? {
                        selector.apply(&rule)?;
                    }
                    self.selectors.push(selector);
                }
                _ => self.root().apply(op)?,
            },
        }
        Ok(())
    }

    /// The rules as ACL LIST and ACL SAVE write them.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (flag, name) in FLAG_NAMES {
            if self.flags & flag != 0 {
                out.push_str(name);
                out.push(' ');
            }
        }
        for p in &self.passwords {
            out.push('#');
            out.push_str(p);
            out.push(' ');
        }
        for (i, s) in self.selectors.iter().enumerate() {
            if i == 0 {
                out.push_str(&s.describe());
            } else {
                out.push_str(&format!(" ({})", s.describe()));
            }
        }
        out
    }

    pub fn flag_names(&self) -> Vec<&'static str> {
        FLAG_NAMES
            .iter()
            .filter(|(f, _)| self.flags & f != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    pub fn passwords(&self) -> &[String] {
        &self.passwords
    }

    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    /// Whether the user may run `args` (command `id` of the catalog):
    /// some selector must allow the command with all its keys and
    /// channels; else the most relevant refusal, as Redis picks it.
    pub fn check(&self, id: usize, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Denied> {
        let mut worst = Denied::Command;
        let mut keys = None;
        for s in &self.selectors {
            match selector_check(s, id, spec, args, &mut keys) {
                Ok(()) => return Ok(()),
                Err(d) if d.rank() > worst.rank() => worst = d,
                Err(_) => {}
            }
        }
        Err(worst)
    }

    /// Redis's ACLUserCheckCmdWithUnrestrictedKeyAccess for reads: some
    /// selector allows the call and reading every key (SORT's BY and GET).
    pub fn reads_every_key(&self, id: usize, spec: &CommandSpec, args: &[Bytes]) -> bool {
        let mut keys = None;
        self.selectors.iter().any(|s| {
            selector_check(s, id, spec, args, &mut keys).is_ok()
                && (s.allkeys
                    || s.patterns
                        .iter()
                        .any(|p| p.access & catalog::KEY_READ != 0 && &p.pattern[..] == b"*"))
        })
    }

    /// Whether some selector allows `channel` (a pattern only literally).
    pub fn allows_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.selectors
            .iter()
            .any(|s| s.allows_channel(channel, is_pattern))
    }

    /// Redis's ACLKillPubsubClientsIfNeeded: `None` when the new rules
    /// keep every channel the old ones allowed, else the patterns
    /// subscriptions are now judged against.
    pub fn revoked_channels(&self, old: &UserState) -> Option<Vec<Bytes>> {
        if self.selectors.iter().any(|s| s.allchannels) {
            return None;
        }
        let upcoming: Vec<Bytes> = self
            .selectors
            .iter()
            .flat_map(|s| s.channels.iter().cloned())
            .collect();
        let kept = old
            .selectors
            .iter()
            .all(|s| !s.allchannels && s.channels.iter().all(|c| upcoming.contains(c)));
        (!kept).then_some(upcoming)
    }
}

/// Redis's ACLSelectorCheckCmd: one selector's verdict on a call (the
/// call's keys found once, in `keys`, for all selectors).
fn selector_check(
    s: &Selector,
    id: usize,
    spec: &CommandSpec,
    args: &[Bytes],
    keys: &mut Option<Vec<(usize, u8)>>,
) -> Result<(), Denied> {
    let cat = catalog();
    if !s.allows_command(cat, id, args) {
        return Err(Denied::Command);
    }
    if !s.allkeys && cat.has_keys(id) {
        let keys = keys.get_or_insert_with(|| cat.keys_of_call(id, spec, args));
        for &(at, access) in keys.iter() {
            if !args.get(at).is_some_and(|k| s.allows_key(k, access)) {
                return Err(Denied::Key(at));
            }
        }
    }
    if !s.allchannels {
        let name = cat.entry(id).map_or("", |e| e.name.as_str());
        for (at, pattern) in catalog::channels_of_call(name, args) {
            if !args.get(at).is_some_and(|c| s.allows_channel(c, pattern)) {
                return Err(Denied::Channel(at));
            }
        }
    }
    Ok(())
}

/// A user as sessions hold it: its name and its current rules.
#[derive(Debug)]
pub struct AclUser {
    pub name: Bytes,
    state: RwLock<Arc<UserState>>,
    /// Every command, key and channel allowed: the check is skipped.
    unrestricted: AtomicBool,
}

impl AclUser {
    fn new(name: Bytes, state: UserState) -> Arc<AclUser> {
        let unrestricted = AtomicBool::new(state.unrestricted());
        Arc::new(AclUser {
            name,
            state: RwLock::new(Arc::new(state)),
            unrestricted,
        })
    }

    pub fn state(&self) -> Arc<UserState> {
        self.state.read().clone()
    }

    fn set(&self, state: UserState) {
        self.unrestricted
            .store(state.unrestricted(), Ordering::Release);
        *self.state.write() = Arc::new(state);
    }

    /// A user with `rules` as ACL LIST describes them (the rules a script
    /// of a restricted user carries under Raft); not in any registry.
    pub fn from_rules(rules: &[u8]) -> Result<Arc<AclUser>, String> {
        let ops: Vec<Bytes> = rules
            .split(|&c| c == b' ')
            .map(Bytes::copy_from_slice)
            .collect();
        let ops =
            merge_selectors(&ops).map_err(|_| "Unmatched parenthesis in rules".to_string())?;
        let mut state = UserState::new(false);
        for op in &ops {
            state.apply(op, false).map_err(|e| e.to_string())?;
        }
        Ok(AclUser::new(Bytes::from_static(b"(replicated)"), state))
    }

    /// A deleted or replaced user: nothing is allowed any more (its
    /// clients are being closed).
    pub fn revoke(&self) {
        self.set(UserState::new(false));
    }

    /// Allowed everything: no check needed.
    #[inline]
    pub fn unrestricted(&self) -> bool {
        self.unrestricted.load(Ordering::Acquire)
    }
}

/// The users of this node.
#[derive(Debug)]
pub struct Acl {
    users: RwLock<BTreeMap<Bytes, Arc<AclUser>>>,
    default: Arc<AclUser>,
    pub log: log::AclLog,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new()
    }
}

/// What ACL SETUSER changed: the user and its rules before.
pub struct Changed {
    pub user: Arc<AclUser>,
    pub old: Option<Arc<UserState>>,
}

/// Redis's ACLMergeSelectorArguments: a selector may be spread over
/// several arguments, `(~a` `+get)`.
fn merge_selectors(ops: &[Bytes]) -> Result<Vec<Bytes>, usize> {
    let mut out = Vec::with_capacity(ops.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, op) in ops.iter().enumerate() {
        if let Some((_, selector)) = open.as_mut() {
            selector.push(b' ');
            selector.extend_from_slice(op);
            if op.last() == Some(&b')') {
                if let Some((_, s)) = open.take() {
                    out.push(Bytes::from(s));
                }
            }
            continue;
        }
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((i, op.to_vec()));
            continue;
        }
        out.push(op.clone());
    }
    match open {
        Some((start, _)) => Err(start),
        None => Ok(out),
    }
}

impl Acl {
    /// Only the default user, as Redis starts.
    pub fn new() -> Acl {
        let default = AclUser::new(Bytes::from_static(b"default"), UserState::default_user());
        let mut users = BTreeMap::new();
        users.insert(default.name.clone(), default.clone());
        Acl {
            users: RwLock::new(users),
            default,
            log: log::AclLog::default(),
        }
    }

    pub fn default_user(&self) -> Arc<AclUser> {
        self.default.clone()
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<AclUser>> {
        self.users.read().get(name).cloned()
    }

    /// Redis's authRequired: a client that has not authenticated may run
    /// commands only while the default user is on and needs no password.
    pub fn auth_required(&self) -> bool {
        let state = self.default.state();
        !state.nopass() || !state.enabled()
    }

    /// The user `name` if it is on and `password` is one of its own.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<AclUser>> {
        let user = self.get(name)?;
        let state = user.state();
        (state.enabled() && state.accepts(password)).then_some(user)
    }

    /// `requirepass`: the default user's only password, or nopass.
    pub fn set_default_password(&self, password: Option<&str>) {
        let mut state = (*self.default.state()).clone();
        let _ = state.apply(b"resetpass", false);
        let op = match password {
            Some(p) => format!(">{p}").into_bytes(),
            None => b"nopass".to_vec(),
        };
        let _ = state.apply(&op, false);
        self.default.set(state);
    }

    /// ACL SETUSER: every rule applies, or none does.
    pub fn set_user(
        &self,
        name: &[u8],
        ops: &[Bytes],
        pubsub_all: bool,
    ) -> Result<Changed, String> {
        let ops = merge_selectors(ops).map_err(|start| {
            format!(
                "Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(&ops[start])
            )
        })?;
        let mut users = self.users.write();
        let existing = users.get(name).cloned();
        let old = existing.as_ref().map(|u| u.state());
        let mut state = old
            .as_deref()
            .cloned()
            .unwrap_or_else(|| UserState::new(pubsub_all));
        for op in &ops {
            state.apply(op, pubsub_all).map_err(|e| {
                format!(
                    "Error in ACL SETUSER modifier '{}': {e}",
                    String::from_utf8_lossy(op)
                )
            })?;
        }
        let user = match existing {
            Some(user) => {
                user.set(state);
                user
            }
            None => {
                let user = AclUser::new(Bytes::copy_from_slice(name), state);
                users.insert(user.name.clone(), user.clone());
                user
            }
        };
        Ok(Changed { user, old })
    }

    /// ACL DELUSER: the users removed (their clients must go).
    pub fn delete(&self, names: &[Bytes]) -> Result<Vec<Arc<AclUser>>, String> {
        if names.iter().any(|n| &n[..] == b"default") {
            return Err("The 'default' user cannot be removed".into());
        }
        let mut users = self.users.write();
        Ok(names.iter().filter_map(|n| users.remove(n)).collect())
    }

    pub fn users(&self) -> Vec<Arc<AclUser>> {
        self.users.read().values().cloned().collect()
    }

    /// ACL LIST's lines (also the ACL file's).
    pub fn list(&self) -> Vec<String> {
        self.users
            .read()
            .values()
            .map(|u| {
                format!(
                    "user {} {}",
                    String::from_utf8_lossy(&u.name),
                    u.state().describe()
                )
            })
            .collect()
    }

    /// `user` lines of the configuration file, at start (Redis's
    /// ACLLoadConfiguredUsers): `default` is reset first.
    pub fn load_configured(&self, lines: &[Vec<String>], pubsub_all: bool) -> Result<(), String> {
        let mut users = self.users.write();
        for line in lines {
            let Some(name) = line.first() else { continue };
            if has_spaces(name.as_bytes()) {
                return Err("Spaces not allowed in ACL usernames".into());
            }
            let ops: Vec<Bytes> = line[1..]
                .iter()
                .map(|o| Bytes::from(o.clone().into_bytes()))
                .collect();
            let ops = merge_selectors(&ops).map_err(|start| {
                format!(
                    "Unmatched parenthesis in acl selector starting at '{}'",
                    line[start + 1]
                )
            })?;
            let mut state = if name == "default" {
                let mut s = (*self.default.state()).clone();
                let _ = s.apply(b"reset", pubsub_all);
                s
            } else if users.contains_key(name.as_bytes()) {
                return Err(format!("Duplicate user '{name}' found"));
            } else {
                UserState::new(pubsub_all)
            };
            for op in &ops {
                state.apply(op, pubsub_all).map_err(|e| {
                    format!(
                        "Error loading ACL rule '{}' for the user named '{name}': {e}",
                        String::from_utf8_lossy(op)
                    )
                })?;
            }
            if name == "default" {
                self.default.set(state);
            } else {
                let user = AclUser::new(Bytes::from(name.clone().into_bytes()), state);
                users.insert(user.name.clone(), user);
            }
        }
        Ok(())
    }

    /// ACL LOAD (and the ACL file at start): the whole file, or nothing.
    /// The users replaced are handed back (their clients must go); the
    /// default user keeps its identity and takes the file's rules.
    pub fn load_file(
        &self,
        text: &str,
        filename: &str,
        pubsub_all: bool,
    ) -> Result<Vec<Arc<AclUser>>, String> {
        let mut loaded: BTreeMap<Bytes, UserState> = BTreeMap::new();
        let mut errors = String::new();
        for (i, line) in text.split('\n').enumerate() {
            let line = line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            let n = i + 1;
            if line.is_empty() {
                continue;
            }
            let argv: Vec<&str> = line.split(' ').collect();
            if argv.first() != Some(&"user") || argv.len() < 2 {
                errors.push_str(&format!(
                    "{filename}:{n} should start with user keyword followed by the username. "
                ));
                continue;
            }
            let name = argv[1];
            if has_spaces(name.as_bytes()) {
                errors.push_str(&format!(
                    "'{filename}:{n}: username '{name}' contains invalid characters. "
                ));
                continue;
            }
            if loaded.contains_key(name.as_bytes()) {
                errors.push_str(&format!(
                    "WARNING: Duplicate user '{name}' found on line {n}. "
                ));
                continue;
            }
            let ops: Vec<Bytes> = argv[2..]
                .iter()
                .map(|o| Bytes::from(o.to_string()))
                .collect();
            let ops = match merge_selectors(&ops) {
                Ok(ops) => ops,
                Err(_) => {
                    errors.push_str(&format!(
                        "{filename}:{n}: Unmatched parenthesis in selector definition."
                    ));
                    Vec::new()
                }
            };
            let mut state = UserState::new(pubsub_all);
            let mut syntax_error = false;
            for op in &ops {
                let op = trim_bytes(op);
                if let Err(e) = state.apply(op, pubsub_all) {
                    if e == RuleError::UnknownCommand {
                        errors.push_str(&format!(
                            "{filename}:{n}: Error in applying operation '{}': {e}. ",
                            String::from_utf8_lossy(op)
                        ));
                    } else if !syntax_error {
                        errors.push_str(&format!("{filename}:{n}: {e}. "));
                        syntax_error = true;
                    }
                }
            }
            loaded.insert(Bytes::from(name.to_string()), state);
        }
        if !errors.is_empty() {
            errors.push_str(
                "WARNING: ACL errors detected, no change to the previously active ACL rules was \
                 performed",
            );
            return Err(errors);
        }
        let default_state = loaded
            .remove(&b"default"[..])
            .unwrap_or_else(UserState::default_user);
        let mut users = self.users.write();
        let mut fresh = BTreeMap::new();
        self.default.set(default_state);
        fresh.insert(self.default.name.clone(), self.default.clone());
        for (name, state) in loaded {
            let user = AclUser::new(name.clone(), state);
            fresh.insert(name, user);
        }
        let old = std::mem::replace(&mut *users, fresh);
        Ok(old
            .into_values()
            .filter(|u| !Arc::ptr_eq(u, &self.default))
            .collect())
    }
}

fn trim_bytes(op: &[u8]) -> &[u8] {
    let is_trim = |c: &u8| matches!(c, b'\t' | b'\r' | b'\n');
    let start = op.iter().position(|c| !is_trim(c)).unwrap_or(op.len());
    let end = op
        .iter()
        .rposition(|c| !is_trim(c))
        .map_or(start, |e| e + 1);
    op.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn users_authenticate_with_their_passwords() {
        let acl = Acl::new();
        acl.set_user(b"alice", &ops(&["on", ">secret", "+get", "~k*"]), false)
            .unwrap();
        assert!(acl.authenticate(b"alice", b"secret").is_some());
        assert!(acl.authenticate(b"alice", b"wrong").is_none());
        assert!(acl.authenticate(b"bob", b"secret").is_none());
        assert_eq!(
            acl.list()[0],
            format!(
                "user alice on #{} ~k* resetchannels -@all +get",
                hash_password(b"secret")
            )
        );
        assert_eq!(acl.list()[1], "user default on nopass ~* &* +@all");
    }

    #[test]
    fn a_failing_rule_changes_nothing() {
        let acl = Acl::new();
        let e = acl
            .set_user(b"u", &ops(&["on", "+nosuch"]), false)
            .err()
            .unwrap();
        assert_eq!(
            e,
            "Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
        );
        assert!(acl.get(b"u").is_none());
    }

    #[test]
    fn selectors_are_merged_and_described() {
        let acl = Acl::new();
        acl.set_user(b"u", &ops(&["(~a", "+get)", "(+set ~b)"]), false)
            .unwrap();
        assert_eq!(
            acl.list()[1],
            "user u off resetchannels -@all (~a resetchannels -@all +get) (~b resetchannels -@all +set)"
        );
        assert!(acl.set_user(b"u", &ops(&["(~a"]), false).is_err());
    }

    /// Random rule sequences: the description, read back, gives the same
    /// permissions (Redis asserts the same of its describe: the bitmap a
    /// description rebuilds is the user's).
    #[test]
    fn a_description_read_back_allows_the_same() {
        use rand::{Rng, SeedableRng};
        let pool = [
            "+@all",
            "-@all",
            "+@read",
            "-@write",
            "+@hash",
            "-@dangerous",
            "+@admin",
            "-@keyspace",
            "+get",
            "-get",
            "+config|get",
            "-config",
            "+config",
            "-client|kill",
            "+select|0",
            "+select|1",
            "-select",
            "+memory|doctor",
            "~a*",
            "%R~r*",
            "%W~w*",
            "&c*",
            "resetkeys",
            "allkeys",
            "resetchannels",
            "allchannels",
            "on",
            "off",
            ">pw",
            "nopass",
            "resetpass",
            "(+get ~x)",
            "clearselectors",
        ];
        let cat = catalog();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..300 {
            let mut state = UserState::new(false);
            for _ in 0..rng.random_range(1..12) {
                let op = pool[rng.random_range(0..pool.len())];
                // Errors (a pattern after allkeys…) leave the rest valid.
                let _ = state.apply(op.as_bytes(), false);
            }
            let described = state.describe();
            let user = AclUser::from_rules(described.as_bytes()).unwrap();
            let back = user.state();
            assert_eq!(back.describe(), described);
            for (id, entry) in cat.entries.iter().enumerate() {
                let spec =
                    crate::cmd::lookup(entry.name.split('|').next().unwrap().as_bytes()).unwrap();
                let mut args: Vec<Bytes> = entry
                    .name
                    .split('|')
                    .map(|w| Bytes::from(w.to_string()))
                    .collect();
                args.extend([Bytes::from_static(b"x"), Bytes::from_static(b"0")]);
                let same =
                    state.check(id, spec, &args).is_ok() == back.check(id, spec, &args).is_ok();
                assert!(same, "{} differs for '{described}'", entry.name);
            }
        }
    }

    #[test]
    fn the_file_loads_whole_or_not_at_all() {
        let acl = Acl::new();
        let bad = "user a on nopass +get\nuser b +nosuch\nfoo\n";
        let e = acl.load_file(bad, "users.acl", false).err().unwrap();
        assert_eq!(
            e,
            "users.acl:2: Error in applying operation '+nosuch': Unknown command or category \
             name in ACL. users.acl:3 should start with user keyword followed by the username. \
             WARNING: ACL errors detected, no change to the previously active ACL rules was \
             performed"
        );
        assert!(acl.get(b"a").is_none());
        acl.load_file("user a on nopass +get\n", "users.acl", false)
            .unwrap();
        assert!(acl.get(b"a").is_some());
        assert!(acl.default_user().unrestricted());
    }
}
