#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! A stream as Redis 7.0 serializes it (RDB_TYPE_STREAM_LISTPACKS_2).
//!
//! The entries travel in listpack nodes, each keyed by its master ID (16
//! bytes, big-endian ms and seq): a master entry (live count, deleted
//! count, field count, field names, a zero), then each entry as flags
//! (1: deleted, 2: same fields as the master), ID deltas from the master
//! ID, its fields (or only values when they are the master's), and its
//! element count. Then the length, the last, first and greatest deleted
//! IDs, the count of entries ever added, and the consumer groups: name,
//! last ID, entries read, the pending entries (raw ID, delivery time in
//! ms as 8 little-endian bytes, delivery count) and the consumers (name,
//! seen time, the raw IDs they own).
//!
//! Kiwi writes one node per node it keeps, live entries only. Reading
//! checks every count against the bytes there and refuses what Redis
//! would refuse (IDs out of order, a consumer owning an entry the group
//! has no record of).

use super::listpack::{self, Element};
use super::{write_length, write_string, RdbError, Reader};

/// A stream ID: (milliseconds, sequence).
pub type Id = (u64, u64);

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// One node: its master ID and fields, its live entries, and (when read
/// from a payload) its deleted entries and listpack size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub master_id: Id,
    pub master: Vec<Vec<u8>>,
    /// (ID, field, value, field, value…).
    pub entries: Vec<(Id, Vec<Vec<u8>>)>,
    pub deleted: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: Id,
    pub delivery_ms: u64,
    pub deliveries: u64,
    pub consumer: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub name: Vec<u8>,
    pub seen_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: Vec<u8>,
    pub last_id: Id,
    /// -1 when unknown.
    pub entries_read: i64,
    pub pending: Vec<Pending>,
    pub consumers: Vec<Consumer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stream {
    pub nodes: Vec<Node>,
    pub length: u64,
    pub last_id: Id,
    pub first_id: Id,
    pub max_deleted: Id,
    pub entries_added: u64,
    pub groups: Vec<Group>,
}

fn id_bytes((ms, seq): Id) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (slot, b) in out
        .iter_mut()
        .zip(ms.to_be_bytes().iter().chain(seq.to_be_bytes().iter()))
    {
        *slot = *b;
    }
    out
}

fn id_of(raw: &[u8]) -> Result<Id, RdbError> {
    let ms = raw.get(..8).ok_or(RdbError::Format)?;
    let seq = raw.get(8..16).ok_or(RdbError::Format)?;
    if raw.len() != 16 {
        return Err(RdbError::Format);
    }
    let ms = u64::from_be_bytes(ms.try_into().map_err(|_| RdbError::Format)?);
    let seq = u64::from_be_bytes(seq.try_into().map_err(|_| RdbError::Format)?);
    Ok((ms, seq))
}

/// The listpack elements Redis appends for one entry of a node whose
/// master ID and fields are `master_id` and `master`.
pub fn entry_elements<'a, T: AsRef<[u8]>>(
    master_id: Id,
    master: &[T],
    id: Id,
    fields: &'a [T],
    deleted: bool,
) -> Vec<Element<'a>> {
    let names = fields.iter().step_by(2);
    let same =
        names.len() == master.len() && names.zip(master).all(|(a, b)| a.as_ref() == b.as_ref());
    let n = (fields.len() / 2) as i64;
    let flags = i64::from(same) * FLAG_SAMEFIELDS + i64::from(deleted) * FLAG_DELETED;
    let mut out = vec![
        Element::Int(flags),
        Element::Int(id.0.wrapping_sub(master_id.0) as i64),
        Element::Int(id.1.wrapping_sub(master_id.1) as i64),
    ];
    if same {
        out.extend(
            fields
                .iter()
                .skip(1)
                .step_by(2)
                .map(|v| Element::of(v.as_ref())),
        );
        out.push(Element::Int(n + 3));
    } else {
        out.push(Element::Int(n));
        out.extend(fields.iter().map(|f| Element::of(f.as_ref())));
        out.push(Element::Int(2 * n + 4));
    }
    out
}

/// A node's master entry: live and deleted counts, the field names, a zero.
pub fn master_elements<T: AsRef<[u8]>>(live: u64, deleted: u64, master: &[T]) -> Vec<Element<'_>> {
    let mut out = vec![
        Element::Int(live as i64),
        Element::Int(deleted as i64),
        Element::Int(master.len() as i64),
    ];
    out.extend(master.iter().map(|f| Element::of(f.as_ref())));
    out.push(Element::Int(0));
    out
}

/// The stream's body after its type byte.
pub fn encode(out: &mut Vec<u8>, s: &Stream) {
    write_length(out, s.nodes.len() as u64);
    for node in &s.nodes {
        write_string(out, &id_bytes(node.master_id));
        let mut elements = master_elements(node.entries.len() as u64, 0, &node.master);
        for (id, fields) in &node.entries {
            elements.extend(entry_elements(
                node.master_id,
                &node.master,
                *id,
                fields,
                false,
            ));
        }
        write_string(out, &listpack::encode_elements(&elements));
    }
    write_length(out, s.length);
    for (ms, seq) in [s.last_id, s.first_id, s.max_deleted] {
        write_length(out, ms);
        write_length(out, seq);
    }
    write_length(out, s.entries_added);
    write_length(out, s.groups.len() as u64);
    for g in &s.groups {
        write_string(out, &g.name);
        write_length(out, g.last_id.0);
        write_length(out, g.last_id.1);
        write_length(out, g.entries_read as u64);
        write_length(out, g.pending.len() as u64);
        for p in &g.pending {
            out.extend_from_slice(&id_bytes(p.id));
            out.extend_from_slice(&p.delivery_ms.to_le_bytes());
            write_length(out, p.deliveries);
        }
        write_length(out, g.consumers.len() as u64);
        for c in &g.consumers {
            write_string(out, &c.name);
            out.extend_from_slice(&c.seen_ms.to_le_bytes());
            let owned: Vec<&Pending> = g.pending.iter().filter(|p| p.consumer == c.name).collect();
            write_length(out, owned.len() as u64);
            for p in owned {
                out.extend_from_slice(&id_bytes(p.id));
            }
        }
    }
}

fn int(e: Option<&Vec<u8>>) -> Result<i64, RdbError> {
    e.and_then(|e| crate::num::parse_i64(e))
        .ok_or(RdbError::Format)
}

/// The entries of one node's listpack.
fn decode_node(master_id: Id, blob: &[u8]) -> Result<Node, RdbError> {
    let elements = listpack::decode(blob)?;
    let mut it = elements.iter();
    let live = int(it.next())?;
    let deleted = int(it.next())?;
    let nfields = usize::try_from(int(it.next())?).map_err(|_| RdbError::Format)?;
    if nfields > elements.len() {
        return Err(RdbError::Format);
    }
    let mut master = Vec::with_capacity(nfields);
    for _ in 0..nfields {
        master.push(it.next().ok_or(RdbError::Format)?.clone());
    }
    if int(it.next())? != 0 {
        return Err(RdbError::Format);
    }
    let mut node = Node {
        master_id,
        master,
        entries: Vec::new(),
        deleted: 0,
        bytes: blob.len() as u64,
    };
    let mut dead = 0i64;
    while let Some(flags) = it.next() {
        let flags = int(Some(flags))?;
        let id = (
            master_id.0.wrapping_add(int(it.next())? as u64),
            master_id.1.wrapping_add(int(it.next())? as u64),
        );
        let mut fields = Vec::new();
        if flags & FLAG_SAMEFIELDS != 0 {
            for name in &node.master {
                fields.push(name.clone());
                fields.push(it.next().ok_or(RdbError::Format)?.clone());
            }
        } else {
            let n = usize::try_from(int(it.next())?).map_err(|_| RdbError::Format)?;
            if n > elements.len() {
                return Err(RdbError::Format);
            }
            for _ in 0..2 * n {
                fields.push(it.next().ok_or(RdbError::Format)?.clone());
            }
        }
        int(it.next())?; // the entry's element count
        if flags & FLAG_DELETED != 0 {
            dead += 1;
            continue;
        }
        if node.entries.last().is_some_and(|(last, _)| *last >= id) || id < master_id {
            return Err(RdbError::Format);
        }
        node.entries.push((id, fields));
    }
    if live != node.entries.len() as i64 || deleted != dead || live == 0 {
        return Err(RdbError::Format);
    }
    node.deleted = dead as u64;
    Ok(node)
}

/// A count that cannot exceed the bytes left (each item takes at least
/// `min` bytes).
fn count(r: &mut Reader<'_>, min: u64) -> Result<u64, RdbError> {
    let n = r.length()?;
    if n.saturating_mul(min) > r.remaining() as u64 {
        return Err(RdbError::Format);
    }
    Ok(n)
}

fn ms_time(r: &mut Reader<'_>) -> Result<u64, RdbError> {
    let raw: [u8; 8] = r.bytes(8)?.try_into().map_err(|_| RdbError::Format)?;
    Ok(u64::from_le_bytes(raw))
}

/// The stream's body after its type byte (RDB_TYPE_STREAM_LISTPACKS_2).
pub fn decode(r: &mut Reader<'_>) -> Result<Stream, RdbError> {
    let mut s = Stream::default();
    let nodes = count(r, 2)?;
    for _ in 0..nodes {
        let key = r.string()?;
        let master_id = id_of(&key)?;
        let blob = r.string()?;
        let node = decode_node(master_id, &blob)?;
        let last = s
            .nodes
            .last()
            .and_then(|n| n.entries.last())
            .map(|(id, _)| *id);
        if last.is_some_and(|last| last >= master_id) {
            return Err(RdbError::Format);
        }
        s.nodes.push(node);
    }
    s.length = r.length()?;
    s.last_id = (r.length()?, r.length()?);
    s.first_id = (r.length()?, r.length()?);
    s.max_deleted = (r.length()?, r.length()?);
    s.entries_added = r.length()?;
    let live: u64 = s.nodes.iter().map(|n| n.entries.len() as u64).sum();
    let top = s
        .nodes
        .last()
        .and_then(|n| n.entries.last())
        .map(|(id, _)| *id);
    if live != s.length || top.is_some_and(|top| top > s.last_id) {
        return Err(RdbError::Format);
    }
    let groups = count(r, 4)?;
    for _ in 0..groups {
        let name = r.string()?;
        let last_id = (r.length()?, r.length()?);
        let entries_read = r.length()? as i64;
        let mut pending: Vec<Pending> = Vec::new();
        for _ in 0..count(r, 25)? {
            let id = id_of(r.bytes(16)?)?;
            let delivery_ms = ms_time(r)?;
            let deliveries = r.length()?;
            if pending.last().is_some_and(|p| p.id >= id) {
                return Err(RdbError::Format);
            }
            pending.push(Pending {
                id,
                delivery_ms,
                deliveries,
                consumer: Vec::new(),
            });
        }
        let mut consumers: Vec<Consumer> = Vec::new();
        for _ in 0..count(r, 10)? {
            let cname = r.string()?;
            let seen_ms = ms_time(r)?;
            for _ in 0..count(r, 16)? {
                let id = id_of(r.bytes(16)?)?;
                let at = pending
                    .binary_search_by(|p| p.id.cmp(&id))
                    .map_err(|_| RdbError::Format)?;
                let p = pending.get_mut(at).ok_or(RdbError::Format)?;
                if !p.consumer.is_empty() {
                    return Err(RdbError::Format);
                }
                p.consumer = cname.clone();
            }
            if consumers.iter().any(|c| c.name == cname) {
                return Err(RdbError::Format);
            }
            consumers.push(Consumer {
                name: cname,
                seen_ms,
            });
        }
        if pending.iter().any(|p| p.consumer.is_empty()) || s.groups.iter().any(|g| g.name == name)
        {
            return Err(RdbError::Format);
        }
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        s.groups.push(Group {
            name,
            last_id,
            entries_read,
            pending,
            consumers,
        });
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_round_trip() {
        let s = Stream {
            nodes: vec![Node {
                master_id: (1, 1),
                master: vec![b"f".to_vec()],
                entries: vec![
                    ((1, 1), vec![b"f".to_vec(), b"1".to_vec()]),
                    (
                        (2, 0),
                        vec![b"g".to_vec(), b"x".to_vec(), b"h".to_vec(), b"".to_vec()],
                    ),
                ],
                deleted: 0,
                bytes: 0,
            }],
            length: 2,
            last_id: (2, 0),
            first_id: (1, 1),
            max_deleted: (0, 0),
            entries_added: 2,
            groups: vec![Group {
                name: b"g".to_vec(),
                last_id: (2, 0),
                entries_read: -1,
                pending: vec![Pending {
                    id: (1, 1),
                    delivery_ms: 77,
                    deliveries: 2,
                    consumer: b"alice".to_vec(),
                }],
                consumers: vec![Consumer {
                    name: b"alice".to_vec(),
                    seen_ms: 99,
                }],
            }],
        };
        let mut out = Vec::new();
        encode(&mut out, &s);
        let mut back = decode(&mut Reader::new(&out)).unwrap_or_default();
        for node in &mut back.nodes {
            node.bytes = 0;
        }
        assert_eq!(back, s);
        for cut in 0..out.len() {
            assert!(decode(&mut Reader::new(out.get(..cut).unwrap_or_default())).is_err());
        }
    }
}
