//! The EVAL script cache: bodies by SHA1, and the `#!lua` shebang of EVAL
//! scripts.
//!
//! Redis keeps every script it has compiled (EVAL or SCRIPT LOAD) until
//! SCRIPT FLUSH, keyed by the lowercase hex SHA1 of the body; EVALSHA looks
//! up the SHA case-insensitively. The body is kept so that the engine can
//! replicate EVALSHA as EVAL (Raft log entries carry bodies, never SHAs
//! alone) and re-create the Lua state.

use std::collections::HashMap;

use bytes::Bytes;
use sha1::{Digest, Sha1};

/// Lowercase hex SHA1 (`sha1hex` in Redis).
pub fn sha1_hex(data: &[u8]) -> String {
    let digest = Sha1::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Flags a script declares in its shebang (`#!lua flags=no-writes,...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScriptFlags {
    /// No shebang: Redis's compatibility mode (flags are not enforced and
    /// the script may write, even under EVAL_RO it is only refused writes).
    pub eval_compat: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot_keys: bool,
}

impl ScriptFlags {
    /// Set the flag named `name`; false for an unknown name.
    pub fn set(&mut self, name: &[u8]) -> bool {
        match name {
            b"no-writes" => self.no_writes = true,
            b"allow-oom" => self.allow_oom = true,
            b"allow-stale" => self.allow_stale = true,
            b"no-cluster" => self.no_cluster = true,
            b"allow-cross-slot-keys" => self.allow_cross_slot_keys = true,
            _ => return false,
        }
        true
    }
}

/// A parsed EVAL body: its flags and where the Lua code starts (the shebang
/// line is skipped but its line feed kept, so line numbers stay right).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shebang {
    pub flags: ScriptFlags,
    pub code_start: usize,
}

/// `evalExtractShebangFlags`: the error text is Redis's (the engine sends
/// it as `ERR <text>`).
pub fn parse_shebang(body: &[u8]) -> Result<Shebang, String> {
    if !body.starts_with(b"#!") {
        return Ok(Shebang {
            flags: ScriptFlags {
                eval_compat: true,
                ..ScriptFlags::default()
            },
            code_start: 0,
        });
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let line = body.get(..end).unwrap_or_default();
    let parts = split_args(line).ok_or_else(|| "Invalid engine in script shebang".to_string())?;
    let Some(engine) = parts.first() else {
        return Err("Invalid engine in script shebang".into());
    };
    if engine.as_slice() != b"#!lua" {
        return Err(format!(
            "Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(engine)
        ));
    }
    let mut flags = ScriptFlags::default();
    for part in parts.iter().skip(1) {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        for flag in list.split(|&b| b == b',') {
            if !flags.set(flag) {
                return Err(format!(
                    "Unexpected flag in script shebang: {}",
                    String::from_utf8_lossy(flag)
                ));
            }
        }
    }
    Ok(Shebang {
        flags,
        code_start: end,
    })
}

/// Redis's `sdssplitargs` (quotes and escapes); `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    crate::resp::split_args(line).map(|args| args.into_iter().map(|a| a.to_vec()).collect())
}

/// One cached script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedScript {
    pub body: Bytes,
    pub flags: ScriptFlags,
}

/// SHA1 → script, for SCRIPT LOAD / EXISTS / FLUSH and EVALSHA.
#[derive(Debug, Default, Clone)]
pub struct ScriptCache {
    scripts: HashMap<String, CachedScript>,
}

impl ScriptCache {
    pub fn new() -> ScriptCache {
        ScriptCache::default()
    }

    /// Add a body (after it compiled); returns its SHA1.
    pub fn insert(&mut self, body: Bytes, flags: ScriptFlags) -> String {
        let sha = sha1_hex(&body);
        self.scripts
            .entry(sha.clone())
            .or_insert(CachedScript { body, flags });
        sha
    }

    /// EVALSHA's lookup: case-insensitive, 40 characters or nothing.
    pub fn get(&self, sha: &[u8]) -> Option<(&str, &CachedScript)> {
        if sha.len() != 40 {
            return None;
        }
        let lower = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.scripts
            .get_key_value(&lower)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// SCRIPT EXISTS for one SHA (exact, as Redis: no case folding).
    pub fn exists(&self, sha: &[u8]) -> bool {
        std::str::from_utf8(sha)
            .map(|s| self.scripts.contains_key(s))
            .unwrap_or(false)
    }

    /// SCRIPT FLUSH.
    pub fn flush(&mut self) {
        self.scripts.clear();
    }

    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_of_known_bodies() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            sha1_hex(b"return 1"),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }

    #[test]
    fn shebangs() {
        assert!(parse_shebang(b"return 1")
            .map(|s| s.flags.eval_compat)
            .unwrap_or(false));
        let s = parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1");
        assert_eq!(
            s.as_ref()
                .map(|s| (s.flags.no_writes, s.flags.allow_oom, s.code_start)),
            Ok((true, true, 31))
        );
        assert_eq!(
            parse_shebang(b"#!lua"),
            Err("Invalid script shebang".to_string())
        );
        assert_eq!(
            parse_shebang(b"#!py\n"),
            Err("Unexpected engine in script shebang: #!py".to_string())
        );
        assert_eq!(
            parse_shebang(b"#!lua name=x\n"),
            Err("Unknown lua shebang option: name=x".to_string())
        );
        assert_eq!(
            parse_shebang(b"#!lua flags=bad\n"),
            Err("Unexpected flag in script shebang: bad".to_string())
        );
    }
}
