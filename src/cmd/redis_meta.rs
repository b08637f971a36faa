//! What redis-server 7.0 answers to COMMAND INFO and COMMAND DOCS for each
//! command Kiwi implements (flags, ACL categories, key specs, tips,
//! subcommands, documentation), snapshotted by `tools/probe_commands.py`
//! into `redis_commands.resp` (RESP3 frames) and parsed at first use.
//! Tools that discover commands through COMMAND see Redis's descriptions.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::resp::Reply;

static SNAPSHOT: &[u8] = include_bytes!("redis_commands.resp");

/// Nesting the snapshot never exceeds (a bound for the parser).
const MAX_DEPTH: usize = 16;

pub struct CommandMeta {
    /// COMMAND INFO's entry (the 10-element array).
    pub info: Reply,
    /// COMMAND DOCS's value (the map of one command's documentation).
    pub docs: Reply,
}

fn table() -> &'static HashMap<String, CommandMeta> {
    static TABLE: OnceLock<HashMap<String, CommandMeta>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut out = HashMap::new();
        let mut pos = 0;
        while pos < SNAPSHOT.len() {
            let (
                Some(Reply::Bulk(name)),
                Some(Reply::Array(mut infos)),
                Some(Reply::Map(mut docs)),
            ) = (
                parse(SNAPSHOT, &mut pos, 0),
                parse(SNAPSHOT, &mut pos, 0),
                parse(SNAPSHOT, &mut pos, 0),
            )
            else {
                tracing::error!(
                    "redis_commands.resp is damaged; COMMAND describes Kiwi's own table"
                );
                break;
            };
            let (Some(info), Some((_, docs))) = (infos.pop(), docs.pop()) else {
                continue;
            };
            out.insert(
                String::from_utf8_lossy(&name).into_owned(),
                CommandMeta { info, docs },
            );
        }
        out
    })
}

/// Redis's description of `name` (a command, or `container|sub`).
pub fn info(name: &str) -> Option<Reply> {
    match name.split_once('|') {
        None => table().get(name).map(|m| m.info.clone()),
        Some((container, _)) => {
            let Reply::Array(fields) = &table().get(container)?.info else {
                return None;
            };
            let Some(Reply::Array(subs)) = fields.get(9) else {
                return None;
            };
            subs.iter()
                .find(|sub| matches!(sub, Reply::Array(f) if matches!(f.first(), Some(Reply::Bulk(n)) if n[..] == *name.as_bytes())))
                .cloned()
        }
    }
}

/// Redis's documentation of `name` (a command, or `container|sub`).
pub fn docs(name: &str) -> Option<Reply> {
    match name.split_once('|') {
        None => table().get(name).map(|m| m.docs.clone()),
        Some((container, _)) => {
            let Reply::Map(fields) = &table().get(container)?.docs else {
                return None;
            };
            let subs = fields
                .iter()
                .find(|(k, _)| matches!(k, Reply::Bulk(b) if &b[..] == b"subcommands"))?;
            let Reply::Map(subs) = &subs.1 else {
                return None;
            };
            subs.iter()
                .find(|(k, _)| matches!(k, Reply::Bulk(b) if b[..] == *name.as_bytes()))
                .map(|(_, v)| v.clone())
        }
    }
}

/// `name`'s ACL categories, without the `@`.
pub fn categories(name: &str) -> Vec<String> {
    let Some(Reply::Array(fields)) = info(name) else {
        return Vec::new();
    };
    match fields.get(6) {
        Some(Reply::Set(cats)) | Some(Reply::Array(cats)) => cats
            .iter()
            .filter_map(|c| match c {
                Reply::StatusOwned(s) => Some(s.trim_start_matches('@').to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// One RESP3 frame of the (trusted, bounded) snapshot.
fn parse(data: &[u8], pos: &mut usize, depth: usize) -> Option<Reply> {
    if depth > MAX_DEPTH {
        return None;
    }
    let start = *pos;
    let end = start + data.get(start..)?.windows(2).position(|w| w == b"\r\n")?;
    let tag = *data.get(start)?;
    let body = std::str::from_utf8(data.get(start + 1..end)?).ok()?;
    *pos = end + 2;
    let count = || body.parse::<usize>().ok();
    Some(match tag {
        b'+' => Reply::StatusOwned(body.to_string()),
        b'-' => Reply::Error(body.to_string()),
        b':' => Reply::Int(body.parse().ok()?),
        b'_' => Reply::Nil,
        b'#' => Reply::Bool(body == "t"),
        b',' => Reply::Double(body.parse().ok()?),
        b'$' | b'=' => {
            let n = count()?;
            let bytes = data.get(*pos..*pos + n)?;
            *pos += n + 2;
            if tag == b'=' {
                Reply::Verbatim(String::from_utf8_lossy(bytes.get(4..)?).into_owned())
            } else {
                Reply::Bulk(Bytes::copy_from_slice(bytes))
            }
        }
        b'*' | b'~' => {
            let n = count()?;
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(parse(data, pos, depth + 1)?);
            }
            if tag == b'~' {
                Reply::Set(items)
            } else {
                Reply::Array(items)
            }
        }
        b'%' => {
            let n = count()?;
            let mut pairs = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let k = parse(data, pos, depth + 1)?;
                let v = parse(data, pos, depth + 1)?;
                pairs.push((k, v));
            }
            Reply::Map(pairs)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_parses_whole() {
        assert!(table().len() > 150);
        assert!(matches!(info("get"), Some(Reply::Array(f)) if f.len() == 10));
        assert!(info("config|get").is_some());
        assert!(docs("config|get").is_some());
        assert!(categories("get").contains(&"string".to_string()));
    }
}
