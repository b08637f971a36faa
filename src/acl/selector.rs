//! A selector: the commands, key patterns and channel patterns a user (its
//! root selector) or one of its `(...)` selectors allows, changed by the
//! rules of ACL SETUSER and described back in the same words, as Redis
//! 7.0's acl.c does.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::catalog::{catalog, category_bit, Catalog, CATEGORIES, KEY_READ, KEY_WRITE};
use super::RuleError;

/// A key pattern and the access it grants (`~`: both, `%R~`, `%W~`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Bytes,
    pub access: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub allkeys: bool,
    pub allchannels: bool,
    /// Every command, checked without the bitmap (`+@all`, until a
    /// command is taken away).
    pub allcommands: bool,
    /// Redis's reserved bit: the rules started from `+@all`, so commands
    /// added later are allowed (how the rules are described).
    future: bool,
    allowed: Vec<bool>,
    /// `+cmd|arg` for a command without subcommands: allowed first args.
    firstargs: BTreeMap<usize, Vec<Bytes>>,
    pub patterns: Vec<KeyPattern>,
    pub channels: Vec<Bytes>,
}

/// Spaces or NULs: refused in patterns and user names.
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&c| c == 0 || c == b' ' || (b'\t'..=b'\r').contains(&c))
}

impl Selector {
    /// Nothing allowed; channels as `acl-pubsub-default` says.
    pub fn new(allchannels: bool) -> Selector {
        Selector {
            allkeys: false,
            allchannels,
            allcommands: false,
            future: false,
            allowed: vec![false; catalog().entries.len()],
            firstargs: BTreeMap::new(),
            patterns: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// Everything allowed (the default user).
    pub fn everything() -> Selector {
        let mut s = Selector::new(true);
        s.set_all_commands(true);
        s.allkeys = true;
        s
    }

    pub fn unrestricted(&self) -> bool {
        self.allcommands && self.allkeys && self.allchannels
    }

    fn set_all_commands(&mut self, on: bool) {
        self.allowed.iter_mut().for_each(|b| *b = on);
        self.future = on;
        self.allcommands = on;
        self.firstargs.clear();
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if let Some(b) = self.allowed.get_mut(id) {
            *b = on;
        }
        if !on {
            self.allcommands = false;
        }
    }

    /// Allow or deny a command, and with a container all its subcommands.
    fn change(&mut self, cat: &Catalog, id: usize, on: bool) {
        self.set_bit(id, on);
        self.firstargs.remove(&id);
        if let Some(entry) = cat.entry(id) {
            for &sub in &entry.subcommands {
                self.set_bit(sub, on);
            }
        }
    }

    fn change_category(&mut self, cat: &Catalog, bit: u32, on: bool) {
        for (id, entry) in cat.entries.iter().enumerate() {
            if entry.categories & bit != 0 {
                // A subcommand of a container in the category follows it
                // as in Redis (ACLChangeSelectorPerm).
                self.change(cat, id, on);
            }
        }
    }

    /// Whether the bitmap (or a first arg) allows `id` with `args`.
    pub fn allows_command(&self, cat: &Catalog, id: usize, args: &[Bytes]) -> bool {
        if self.allcommands || cat.entry(id).is_some_and(|e| e.no_auth) {
            return true;
        }
        if self.allowed.get(id).copied().unwrap_or(false) {
            return true;
        }
        let Some(allowed) = self.firstargs.get(&id) else {
            return false;
        };
        let at = if cat.entry(id).is_some_and(|e| e.parent.is_some()) {
            2
        } else {
            1
        };
        args.get(at)
            .is_some_and(|a| allowed.iter().any(|f| f.eq_ignore_ascii_case(a)))
    }

    /// Whether a key pattern grants `key` the `access` it needs.
    pub fn allows_key(&self, key: &[u8], access: u8) -> bool {
        self.allkeys
            || self
                .patterns
                .iter()
                .any(|p| p.access & access == access && crate::cmd::stringmatch(&p.pattern, key))
    }

    /// Whether the channel patterns allow `channel` (a PSUBSCRIBE
    /// pattern only literally).
    pub fn allows_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.allchannels || channel_allowed(&self.channels, channel, is_pattern)
    }

    /// Apply one rule; on error the selector may be half changed (callers
    /// work on a copy).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let cat = catalog();
        let lower = op.to_ascii_lowercase();
        match &lower[..] {
            b"allkeys" | b"~*" => {
                self.allkeys = true;
                self.patterns.clear();
            }
            b"resetkeys" => {
                self.allkeys = false;
                self.patterns.clear();
            }
            b"allchannels" | b"&*" => {
                self.allchannels = true;
                self.channels.clear();
            }
            b"resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
            }
            b"allcommands" | b"+@all" => self.set_all_commands(true),
            b"nocommands" | b"-@all" => self.set_all_commands(false),
            _ => return self.apply_pattern_or_command(cat, op),
        }
        Ok(())
    }

    fn apply_pattern_or_command(&mut self, cat: &Catalog, op: &[u8]) -> Result<(), RuleError> {
        match op.first() {
            Some(b'~' | b'%') => self.add_key_pattern(op),
            Some(b'&') => {
                if self.allchannels {
                    return Err(RuleError::ChannelAfterAll);
                }
                let pattern = &op[1..];
                if has_spaces(pattern) {
                    return Err(RuleError::Syntax);
                }
                if !self.channels.iter().any(|c| c[..] == *pattern) {
                    self.channels.push(Bytes::copy_from_slice(pattern));
                }
                self.allchannels = false;
                Ok(())
            }
            Some(sign @ (b'+' | b'-')) if op.get(1) == Some(&b'@') => {
                let bit = category_bit(&op[2..]).ok_or(RuleError::UnknownCommand)?;
                self.change_category(cat, bit, *sign == b'+');
                Ok(())
            }
            Some(b'+') => self.allow_command(cat, &op[1..]),
            Some(b'-') => {
                let id = lookup_command(cat, &op[1..]).ok_or(RuleError::UnknownCommand)?;
                self.change(cat, id, false);
                Ok(())
            }
            _ => Err(RuleError::Syntax),
        }
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.allkeys {
            return Err(RuleError::KeyAfterAll);
        }
        let (access, offset) = if op[0] == b'%' {
            let mut access = 0;
            let mut offset = 1;
            while offset < op.len() {
                let c = op[offset].to_ascii_uppercase();
                if c == b'R' && access & KEY_READ == 0 {
                    access |= KEY_READ;
                } else if c == b'W' && access & KEY_WRITE == 0 {
                    access |= KEY_WRITE;
                } else if op[offset] == b'~' {
                    offset += 1;
                    break;
                } else {
                    return Err(RuleError::Syntax);
                }
                offset += 1;
            }
            (access, offset)
        } else {
            (KEY_READ | KEY_WRITE, 1)
        };
        let pattern = op.get(offset..).unwrap_or_default();
        // `%~x` grants nothing (Redis would fail describing it).
        if has_spaces(pattern) || access == 0 {
            return Err(RuleError::Syntax);
        }
        match self.patterns.iter_mut().find(|p| p.pattern[..] == *pattern) {
            Some(p) => p.access |= access,
            None => self.patterns.push(KeyPattern {
                pattern: Bytes::copy_from_slice(pattern),
                access,
            }),
        }
        self.allkeys = false;
        Ok(())
    }

    /// `+cmd`, `+container|sub`, or `+cmd|firstarg`.
    fn allow_command(&mut self, cat: &Catalog, name: &[u8]) -> Result<(), RuleError> {
        let Some(bar) = name.iter().rposition(|&c| c == b'|') else {
            let id = cat.id(name).ok_or(RuleError::UnknownCommand)?;
            self.change(cat, id, true);
            return Ok(());
        };
        let (container, sub) = (&name[..bar], &name[bar + 1..]);
        let parent = lookup_command(cat, container).ok_or(RuleError::UnknownCommand)?;
        let entry = cat.entry(parent).ok_or(RuleError::UnknownCommand)?;
        if entry.parent.is_some() {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !entry.subcommands.is_empty() {
            let id = cat.id(name).ok_or(RuleError::UnknownCommand)?;
            self.change(cat, id, true);
        } else {
            tracing::warn!(
                "Deprecation warning: Allowing a first arg of an otherwise blocked command is a \
                 misuse of ACL and may get disabled in the future (offender: +{})",
                String::from_utf8_lossy(name)
            );
            let list = self.firstargs.entry(parent).or_default();
            if !list.iter().any(|f| f.eq_ignore_ascii_case(sub)) {
                list.push(Bytes::copy_from_slice(sub));
            }
        }
        Ok(())
    }

    /// The command rules, as Redis describes them: `+@all` or `-@all`,
    /// then the categories that best fit, then single commands.
    pub fn describe_commands(&self) -> String {
        let cat = catalog();
        let additive = !self.future;
        let mut rules = String::from(if additive { "-@all " } else { "+@all " });
        let mut fake = Selector::new(false);
        fake.set_all_commands(!additive);
        let mut temp = self.clone();
        let mut applied = [false; CATEGORIES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, name) in CATEGORIES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let Some(bit) = category_bit(name.as_bytes()) else {
                    continue;
                };
                let (mut on, mut off) = (0, 0);
                for (id, entry) in cat.entries.iter().enumerate() {
                    if entry.categories & bit != 0 {
                        if temp.allowed.get(id).copied().unwrap_or(false) {
                            on += 1;
                        } else {
                            off += 1;
                        }
                    }
                }
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some((j, bit));
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some((j, bit)) = best else { break };
            fake.change_category(cat, bit, additive);
            temp.change_category(cat, bit, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[j]);
            rules.push(' ');
            applied[j] = true;
        }
        for (id, entry) in cat.entries.iter().enumerate() {
            let user_bit = self.allowed.get(id).copied().unwrap_or(false);
            let fake_bit = fake.allowed.get(id).copied().unwrap_or(false);
            if user_bit != fake_bit {
                rules.push(if user_bit { '+' } else { '-' });
                rules.push_str(&entry.name);
                rules.push(' ');
                fake.change(cat, id, user_bit);
            }
            if !user_bit {
                for arg in self.firstargs.get(&id).into_iter().flatten() {
                    rules.push('+');
                    rules.push_str(&entry.name);
                    rules.push('|');
                    rules.push_str(&String::from_utf8_lossy(arg));
                    rules.push(' ');
                }
            }
        }
        rules.pop();
        rules
    }

    /// Key patterns as GETUSER shows them (`~*` for allkeys).
    pub fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        self.patterns
            .iter()
            .map(describe_pattern)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        self.channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The whole selector as ACL LIST writes it.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if self.allkeys {
            out.push_str("~* ");
        } else {
            for p in &self.patterns {
                out.push_str(&describe_pattern(p));
                out.push(' ');
            }
        }
        if self.allchannels {
            out.push_str("&* ");
        } else {
            out.push_str("resetchannels ");
            for c in &self.channels {
                out.push('&');
                out.push_str(&String::from_utf8_lossy(c));
                out.push(' ');
            }
        }
        out.push_str(&self.describe_commands());
        out
    }
}

fn describe_pattern(p: &KeyPattern) -> String {
    let prefix = match p.access {
        KEY_READ => "%R~",
        KEY_WRITE => "%W~",
        _ => "~",
    };
    format!("{prefix}{}", String::from_utf8_lossy(&p.pattern))
}

/// `name` or `container|sub` in the catalog.
fn lookup_command(cat: &Catalog, name: &[u8]) -> Option<usize> {
    cat.id(name)
}

/// Redis's ACLCheckChannelAgainstList.
pub fn channel_allowed(list: &[Bytes], channel: &[u8], is_pattern: bool) -> bool {
    list.iter().any(|p| {
        if is_pattern {
            p[..] == *channel
        } else {
            crate::cmd::stringmatch(p, channel)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_all(s: &mut Selector, ops: &[&str]) {
        for op in ops {
            s.apply(op.as_bytes()).unwrap();
        }
    }

    #[test]
    fn describes_as_redis() {
        let mut s = Selector::new(false);
        apply_all(&mut s, &["+get", "~foo*", "%R~bar"]);
        assert_eq!(s.describe(), "~foo* %R~bar resetchannels -@all +get");
        let mut s = Selector::everything();
        apply_all(&mut s, &["-flushall"]);
        assert_eq!(s.describe_commands(), "+@all -flushall");
        let mut s = Selector::new(false);
        apply_all(&mut s, &["+@all", "-@all", "+select|0"]);
        assert_eq!(s.describe_commands(), "-@all +select|0");
    }

    #[test]
    fn errors_as_redis() {
        let mut s = Selector::new(false);
        assert_eq!(s.apply(b"+nosuch"), Err(RuleError::UnknownCommand));
        assert_eq!(s.apply(b"+@nosuch"), Err(RuleError::UnknownCommand));
        assert_eq!(s.apply(b"%X~a"), Err(RuleError::Syntax));
        assert_eq!(
            s.apply(b"+config|get|x"),
            Err(RuleError::FirstArgOfSubcommand)
        );
        s.apply(b"allkeys").unwrap();
        assert_eq!(s.apply(b"~a"), Err(RuleError::KeyAfterAll));
    }
}
