//! How a stream lives in RocksDB, under its collection version:
//!
//! - `e ‖ id` → the entry: its node's ID, then its field-value pairs;
//! - `n ‖ id` → one node (Redis's listpack of up to 100 entries, keyed by
//!   its first ID): live entries, entries ever put in it, bytes; kept so
//!   that `~` trimming removes whole nodes exactly where Redis would;
//! - `g ‖ group` → a consumer group: last delivered ID, entries read;
//! - `c ‖ group len ‖ group ‖ consumer` → a consumer: its seen-time;
//! - `p ‖ group len ‖ group ‖ id` → a pending entry: delivery time and
//!   count, consumer;
//! - `q ‖ group len ‖ group ‖ consumer len ‖ consumer ‖ id` → nothing: the
//!   consumer's own pending list, in ID order.
//!
//! The header (`CollectionMeta::stream`) holds the length, last, first and
//! greatest deleted IDs and the count of entries ever added. Every decoder
//! here answers a corruption error for bad bytes, never a panic.

use bytes::Bytes;

use super::super::collection::corrupt;
use super::super::{Call, CmdResult, Collection};
use crate::rdb::listpack::{self, Element};
use crate::rdb::stream::{self as rdb_stream, master_elements};
use crate::storage::{data_key, prefix_end, Cf, Meta, MetaBody, StreamId};

/// Redis's stream-node-max-entries and stream-node-max-bytes defaults.
const NODE_MAX_ENTRIES: u64 = 100;
const NODE_MAX_BYTES: u64 = 4096;

pub const ENTRY: u8 = b'e';
pub(crate) const NODE: u8 = b'n';
const GROUP: u8 = b'g';
const CONSUMER: u8 = b'c';
const PENDING: u8 = b'p';
const OWNED: u8 = b'q';

/// One node (a listpack in Redis): live entries, entries ever put in it
/// (Redis counts deleted ones until the node goes), its listpack's size in
/// bytes as Redis would have it, and its master entry's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub live: u64,
    pub total: u64,
    pub bytes: u64,
    pub master: Vec<Bytes>,
}

/// A node's first ID and what it holds.
pub type Node = (StreamId, NodeInfo);

/// A stream entry: ID and field-value pairs.
pub type Entry = (StreamId, Vec<Bytes>);

fn take_u32(input: &mut &[u8]) -> Option<u32> {
    let (v, rest) = input.split_first_chunk::<4>()?;
    *input = rest;
    Some(u32::from_be_bytes(*v))
}

fn take_u64(input: &mut &[u8]) -> Option<u64> {
    let (v, rest) = input.split_first_chunk::<8>()?;
    *input = rest;
    Some(u64::from_be_bytes(*v))
}

fn take_bytes<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_u32(input)?).ok()?;
    let (value, rest) = (input.get(..len)?, input.get(len..)?);
    *input = rest;
    Some(value)
}

fn put_bytes(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

fn named(tag: u8, group: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + group.len());
    out.push(tag);
    put_bytes(&mut out, group);
    out
}

/// An entry's stored value: its node's ID, then the field-value pairs.
pub fn encode_entry(node: StreamId, fields: &[Bytes]) -> Vec<u8> {
    let mut out = node.to_bytes().to_vec();
    out.extend_from_slice(&(fields.len() as u32).to_be_bytes());
    for f in fields {
        put_bytes(&mut out, f);
    }
    out
}

/// The node and fields of a stored entry; `None` when the bytes are bad.
pub fn decode_entry(raw: &[u8]) -> Option<(StreamId, Vec<Bytes>)> {
    let mut rest = raw;
    let node = StreamId::take(&mut rest)?;
    let n = take_u32(&mut rest)?;
    let mut fields = Vec::new();
    for _ in 0..n {
        fields.push(Bytes::copy_from_slice(take_bytes(&mut rest)?));
    }
    rest.is_empty().then_some((node, fields))
}

/// The ID in an `e ‖ id` sub-key.
fn entry_id(sub: &[u8]) -> Option<StreamId> {
    let mut rest = sub.get(1..)?;
    let id = StreamId::take(&mut rest)?;
    rest.is_empty().then_some(id)
}

/// A consumer group's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: Bytes,
    pub last_id: StreamId,
    /// Redis's entries_read; -1 when unknown.
    pub entries_read: i64,
}

/// One pending entry of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: StreamId,
    pub consumer: Bytes,
    pub delivery_ms: u64,
    pub deliveries: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub name: Bytes,
    pub seen_ms: u64,
}

pub fn decode_group(name: &[u8], raw: &[u8]) -> Option<Group> {
    let mut rest = raw;
    let last_id = StreamId::take(&mut rest)?;
    let entries_read = take_u64(&mut rest)? as i64;
    rest.is_empty().then(|| Group {
        name: Bytes::copy_from_slice(name),
        last_id,
        entries_read,
    })
}

pub fn decode_pending(id: StreamId, raw: &[u8]) -> Option<Pending> {
    let mut rest = raw;
    let delivery_ms = take_u64(&mut rest)?;
    let deliveries = take_u64(&mut rest)?;
    Some(Pending {
        id,
        consumer: Bytes::copy_from_slice(rest),
        delivery_ms,
        deliveries,
    })
}

pub(crate) fn decode_node(raw: &[u8]) -> Option<NodeInfo> {
    let mut rest = raw;
    let live = take_u64(&mut rest)?;
    let total = take_u64(&mut rest)?;
    let bytes = take_u64(&mut rest)?;
    let n = take_u32(&mut rest)?;
    let mut master = Vec::new();
    for _ in 0..n {
        master.push(Bytes::copy_from_slice(take_bytes(&mut rest)?));
    }
    rest.is_empty().then_some(NodeInfo {
        live,
        total,
        bytes,
        master,
    })
}

fn encode_node(n: &NodeInfo) -> Vec<u8> {
    let mut out = Vec::with_capacity(28);
    for v in [n.live, n.total, n.bytes] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&(n.master.len() as u32).to_be_bytes());
    for f in &n.master {
        put_bytes(&mut out, f);
    }
    out
}

/// The listpack elements Redis appends for one entry of a node.
fn entry_elements<'a>(
    master_id: StreamId,
    master: &[Bytes],
    id: StreamId,
    fields: &'a [Bytes],
) -> Vec<Element<'a>> {
    let tuple = |i: StreamId| (i.ms, i.seq);
    rdb_stream::entry_elements(tuple(master_id), master, tuple(id), fields, false)
}

fn elements_size(elements: &[Element<'_>]) -> u64 {
    elements.iter().map(|e| e.size() as u64).sum()
}

/// The scan bounds of the IDs `start..=end` under `prefix` (`prefix ‖ id`
/// keys): the first key, and the key just past the last.
fn id_bounds(prefix: &[u8], start: StreamId, end: StreamId) -> (Vec<u8>, Vec<u8>) {
    let key = |id: StreamId| [prefix, &id.to_bytes()[..]].concat();
    let upper = match end.next() {
        Some(after) => key(after),
        None => prefix_end(prefix).unwrap_or_default(),
    };
    (key(start), upper)
}

/// Check one stored sub-record of a stream (the fuzz target's entry).
pub fn check_record(sub: &[u8], value: &[u8]) -> bool {
    match sub.first() {
        Some(&ENTRY) => entry_id(sub).is_some() && decode_entry(value).is_some(),
        Some(&NODE) => decode_node(value).is_some(),
        Some(&GROUP) => decode_group(sub.get(1..).unwrap_or(&[]), value).is_some(),
        Some(&PENDING) => decode_pending(StreamId::MIN, value).is_some(),
        Some(&CONSUMER) => value.len() == 8,
        Some(&OWNED) => value.is_empty(),
        _ => false,
    }
}

/// One well-formed record of each kind: (sub-key, value), fuzz seeds.
pub fn seeds() -> Vec<(Vec<u8>, Vec<u8>)> {
    let id = StreamId::new(1, 2).to_bytes();
    let tagged = |tag: u8, rest: &[u8]| [&[tag][..], rest].concat();
    vec![
        (
            tagged(ENTRY, &id),
            encode_entry(
                StreamId::new(1, 2),
                &[Bytes::from_static(b"f"), Bytes::new()],
            ),
        ),
        (
            tagged(NODE, &id),
            encode_node(&NodeInfo {
                live: 1,
                total: 2,
                bytes: 30,
                master: vec![Bytes::from_static(b"f")],
            }),
        ),
        (tagged(GROUP, b"g"), [&id[..], &[0xff; 8][..]].concat()),
        (
            [named(PENDING, b"g"), id.to_vec()].concat(),
            [&5u64.to_be_bytes()[..], &1u64.to_be_bytes()[..], b"alice"].concat(),
        ),
        (
            [named(CONSUMER, b"g"), b"alice".to_vec()].concat(),
            9u64.to_be_bytes().to_vec(),
        ),
        (named(OWNED, b"g"), Vec::new()),
    ]
}

/// The stream at `key` as a command works on it.
pub struct Stream<'k> {
    pub key: &'k [u8],
    pub coll: Collection,
}

impl<'k> Stream<'k> {
    pub fn len(&self) -> u64 {
        self.coll.meta.len
    }

    pub fn last_id(&self) -> StreamId {
        self.coll.meta.stream.last_id
    }

    fn sub(&self, call: &Call<'_, '_>, sub: &[u8]) -> Vec<u8> {
        data_key(call.ctx.keyspace(), self.key, self.coll.version(), sub)
    }

    fn entry_key(&self, call: &Call<'_, '_>, id: StreamId) -> Vec<u8> {
        let mut sub = vec![ENTRY];
        sub.extend_from_slice(&id.to_bytes());
        self.sub(call, &sub)
    }

    /// Write the header back (an empty stream stays: streams outlive
    /// their entries, as in Redis).
    pub fn save(&self, call: &mut Call<'_, '_>) {
        let meta = Meta {
            expire_at_ms: self.coll.expire_at_ms,
            body: MetaBody::Collection(self.coll.meta),
        };
        call.ctx.put_meta(self.key, &meta);
    }

    // ------------------------------------------------------------ entries

    /// Entries with `start <= id <= end`, ascending or descending, at most
    /// `count` (0: all).
    pub fn range(
        &self,
        call: &Call<'_, '_>,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
    ) -> CmdResult<Vec<Entry>> {
        let mut out = Vec::new();
        if start > end {
            return Ok(out);
        }
        let (lower, upper) = id_bounds(&self.sub(call, &[ENTRY]), start, end);
        let prefix_len = self.sub(call, &[]).len();
        for item in call.ctx.iter(Cf::Data, &lower, Some(&upper), rev) {
            let (k, v) = item?;
            let id = k
                .get(prefix_len..)
                .and_then(entry_id)
                .ok_or_else(|| corrupt("stream entry key"))?;
            let (_, fields) = decode_entry(&v).ok_or_else(|| corrupt("stream entry"))?;
            out.push((id, fields));
            if count != 0 && out.len() >= count {
                break;
            }
        }
        Ok(out)
    }

    /// The entry at `id`, if there is one.
    pub fn entry(&self, call: &Call<'_, '_>, id: StreamId) -> CmdResult<Option<Vec<Bytes>>> {
        match call.ctx.get_data(&self.entry_key(call, id))? {
            Some(raw) => Ok(Some(
                decode_entry(&raw).ok_or_else(|| corrupt("stream entry"))?.1,
            )),
            None => Ok(None),
        }
    }

    /// The first or last entry's ID.
    pub fn edge(&self, call: &Call<'_, '_>, last: bool) -> CmdResult<Option<StreamId>> {
        Ok(self
            .range(call, StreamId::MIN, StreamId::MAX, last, 1)?
            .first()
            .map(|(id, _)| *id))
    }

    /// The last node (the one new entries go to), with its counters.
    fn tail_node(&self, call: &Call<'_, '_>) -> CmdResult<Option<Node>> {
        Ok(self.nodes(call, true, 1)?.into_iter().next())
    }

    /// Nodes in order (or reversed), at most `count` (0: all).
    pub fn nodes(&self, call: &Call<'_, '_>, rev: bool, count: usize) -> CmdResult<Vec<Node>> {
        let prefix = self.sub(call, &[NODE]);
        let upper = prefix_end(&prefix).unwrap_or_default();
        let mut out = Vec::new();
        for item in call.ctx.iter(Cf::Data, &prefix, Some(&upper), rev) {
            let (k, v) = item?;
            let mut rest = k.get(prefix.len()..).unwrap_or(&[]);
            let id = StreamId::take(&mut rest).ok_or_else(|| corrupt("stream node key"))?;
            let info = decode_node(&v).ok_or_else(|| corrupt("stream node"))?;
            out.push((id, info));
            if count != 0 && out.len() >= count {
                break;
            }
        }
        Ok(out)
    }

    /// The first IDs of the nodes, in order (XINFO's radix tree).
    pub fn node_ids(&self, call: &Call<'_, '_>) -> CmdResult<Vec<StreamId>> {
        Ok(self
            .nodes(call, false, 0)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    fn node_key(&self, call: &Call<'_, '_>, node: StreamId) -> Vec<u8> {
        let mut sub = vec![NODE];
        sub.extend_from_slice(&node.to_bytes());
        self.sub(call, &sub)
    }

    /// Append an entry with ID `id` (greater than the last one) and update
    /// the header.
    pub fn append(
        &mut self,
        call: &mut Call<'_, '_>,
        id: StreamId,
        fields: &[Bytes],
    ) -> CmdResult<()> {
        let size: u64 = fields.iter().map(|f| f.len() as u64).sum();
        let (node, info) = match self.tail_node(call)? {
            Some((node, mut info))
                if info.bytes + size < NODE_MAX_BYTES && info.total < NODE_MAX_ENTRIES =>
            {
                info.live += 1;
                info.total += 1;
                info.bytes += elements_size(&entry_elements(node, &info.master, id, fields));
                (node, info)
            }
            _ => {
                let master: Vec<Bytes> = fields.iter().step_by(2).cloned().collect();
                let bytes = listpack::EMPTY_SIZE as u64
                    + elements_size(&master_elements(1, 0, &master))
                    + elements_size(&entry_elements(id, &master, id, fields));
                let info = NodeInfo {
                    live: 1,
                    total: 1,
                    bytes,
                    master,
                };
                (id, info)
            }
        };
        let key = self.node_key(call, node);
        call.ctx.put_data(&key, &encode_node(&info));
        let key = self.entry_key(call, id);
        call.ctx.put_data(&key, &encode_entry(node, fields));
        let s = &mut self.coll.meta.stream;
        self.coll.meta.len += 1;
        s.entries_added = s.entries_added.saturating_add(1);
        s.last_id = id;
        if self.coll.meta.len == 1 {
            s.first_id = id;
        }
        Ok(())
    }

    /// Write one whole node and its entries (RESTORE): `bytes` is its
    /// listpack's size when the payload told it (0: as Kiwi would write it).
    pub fn put_node(
        &mut self,
        call: &mut Call<'_, '_>,
        master_id: StreamId,
        master: Vec<Bytes>,
        entries: &[Entry],
        deleted: u64,
        bytes: u64,
    ) {
        let live = entries.len() as u64;
        let bytes = match bytes {
            0 => {
                listpack::EMPTY_SIZE as u64
                    + elements_size(&master_elements(live, deleted, &master))
                    + entries
                        .iter()
                        .map(|(id, fields)| {
                            elements_size(&entry_elements(master_id, &master, *id, fields))
                        })
                        .sum::<u64>()
            }
            b => b,
        };
        for (id, fields) in entries {
            let key = self.entry_key(call, *id);
            call.ctx.put_data(&key, &encode_entry(master_id, fields));
        }
        let info = NodeInfo {
            live,
            total: live + deleted,
            bytes,
            master,
        };
        let key = self.node_key(call, master_id);
        call.ctx.put_data(&key, &encode_node(&info));
    }

    /// Remove the entry `id` if there is one (its node goes with its last
    /// live entry); the caller updates first and max-deleted IDs.
    pub fn remove(&mut self, call: &mut Call<'_, '_>, id: StreamId) -> CmdResult<bool> {
        let key = self.entry_key(call, id);
        let Some(raw) = call.ctx.get_data(&key)? else {
            return Ok(false);
        };
        let (node, _) = decode_entry(&raw).ok_or_else(|| corrupt("stream entry"))?;
        call.ctx.delete_data(&key);
        let nkey = self.node_key(call, node);
        if let Some(raw) = call.ctx.get_data(&nkey)? {
            let mut info = decode_node(&raw).ok_or_else(|| corrupt("stream node"))?;
            if info.live <= 1 {
                call.ctx.delete_data(&nkey);
            } else {
                info.live -= 1;
                call.ctx.put_data(&nkey, &encode_node(&info));
            }
        }
        self.coll.meta.len = self.coll.meta.len.saturating_sub(1);
        Ok(true)
    }

    /// Set the first ID after entries went (0-0 when empty).
    pub fn refresh_first(&mut self, call: &Call<'_, '_>) -> CmdResult<()> {
        self.coll.meta.stream.first_id = if self.coll.meta.len == 0 {
            StreamId::MIN
        } else {
            self.edge(call, false)?.unwrap_or(StreamId::MAX)
        };
        Ok(())
    }

    /// Trim as Redis's streamTrim does: whole nodes from the front while
    /// they can go, then (exact trimming only) entries of the next node.
    pub fn trim(&mut self, call: &mut Call<'_, '_>, t: &Trim) -> CmdResult<u64> {
        let mut deleted = 0u64;
        let nodes = self.nodes(call, false, 0)?;
        let mut iter = nodes.into_iter().peekable();
        while let Some((node, NodeInfo { live, .. })) = iter.next() {
            if let TrimBy::MaxLen(max) = t.by {
                if self.len() <= max {
                    break;
                }
            }
            if t.limit != 0 && deleted + live > t.limit {
                break;
            }
            let node_end = match iter.peek() {
                Some((next, _)) => next.prev().unwrap_or(StreamId::MIN),
                None => StreamId::MAX,
            };
            let entries = self.range(call, node, node_end, false, 0)?;
            let remove_node = match t.by {
                TrimBy::MaxLen(max) => self.len() - live >= max,
                TrimBy::MinId(min) => entries.last().is_some_and(|(last, _)| *last < min),
            };
            if remove_node {
                for (id, _) in &entries {
                    self.remove(call, *id)?;
                }
                deleted += live;
                continue;
            }
            if t.approx {
                break;
            }
            for (id, _) in &entries {
                let stop = match t.by {
                    TrimBy::MaxLen(max) => self.len() <= max,
                    TrimBy::MinId(min) => *id >= min,
                };
                if stop {
                    break;
                }
                self.remove(call, *id)?;
                deleted += 1;
            }
            break;
        }
        if deleted > 0 || self.len() == 0 {
            self.refresh_first(call)?;
        }
        Ok(deleted)
    }

    // ------------------------------------------------------------- groups

    fn group_key(&self, call: &Call<'_, '_>, name: &[u8]) -> Vec<u8> {
        let mut sub = vec![GROUP];
        sub.extend_from_slice(name);
        self.sub(call, &sub)
    }

    pub fn group(&self, call: &Call<'_, '_>, name: &[u8]) -> CmdResult<Option<Group>> {
        match call.ctx.get_data(&self.group_key(call, name))? {
            Some(raw) => Ok(Some(
                decode_group(name, &raw).ok_or_else(|| corrupt("stream group"))?,
            )),
            None => Ok(None),
        }
    }

    pub fn put_group(&self, call: &mut Call<'_, '_>, g: &Group) {
        let mut raw = g.last_id.to_bytes().to_vec();
        raw.extend_from_slice(&(g.entries_read as u64).to_be_bytes());
        let key = self.group_key(call, &g.name);
        call.ctx.put_data(&key, &raw);
    }

    /// Every group, in name order.
    pub fn groups(&self, call: &Call<'_, '_>) -> CmdResult<Vec<Group>> {
        let prefix = self.sub(call, &[GROUP]);
        let mut out = Vec::new();
        for (k, v) in call.ctx.scan_data(&prefix)? {
            out.push(decode_group(&k, &v).ok_or_else(|| corrupt("stream group"))?);
        }
        Ok(out)
    }

    /// Remove a group with its consumers and pending entries.
    pub fn delete_group(&self, call: &mut Call<'_, '_>, name: &[u8]) -> CmdResult<()> {
        let key = self.group_key(call, name);
        call.ctx.delete_data(&key);
        for tag in [CONSUMER, PENDING, OWNED] {
            let prefix = self.sub(call, &named(tag, name));
            for (k, _) in call.ctx.scan_data(&prefix)? {
                let mut full = prefix.clone();
                full.extend_from_slice(&k);
                call.ctx.delete_data(&full);
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------- consumers

    fn consumer_key(&self, call: &Call<'_, '_>, group: &[u8], name: &[u8]) -> Vec<u8> {
        let mut sub = named(CONSUMER, group);
        sub.extend_from_slice(name);
        self.sub(call, &sub)
    }

    pub fn consumer(
        &self,
        call: &Call<'_, '_>,
        group: &[u8],
        name: &[u8],
    ) -> CmdResult<Option<Consumer>> {
        match call.ctx.get_data(&self.consumer_key(call, group, name))? {
            Some(raw) => {
                let mut rest = raw.as_slice();
                let seen_ms = take_u64(&mut rest).ok_or_else(|| corrupt("stream consumer"))?;
                Ok(Some(Consumer {
                    name: Bytes::copy_from_slice(name),
                    seen_ms,
                }))
            }
            None => Ok(None),
        }
    }

    pub fn put_consumer(&self, call: &mut Call<'_, '_>, group: &[u8], c: &Consumer) {
        let key = self.consumer_key(call, group, &c.name);
        call.ctx.put_data(&key, &c.seen_ms.to_be_bytes());
    }

    /// Every consumer of `group`, in name order.
    pub fn consumers(&self, call: &Call<'_, '_>, group: &[u8]) -> CmdResult<Vec<Consumer>> {
        let prefix = self.sub(call, &named(CONSUMER, group));
        let mut out = Vec::new();
        for (k, v) in call.ctx.scan_data(&prefix)? {
            let mut rest = v.as_slice();
            let seen_ms = take_u64(&mut rest).ok_or_else(|| corrupt("stream consumer"))?;
            out.push(Consumer {
                name: Bytes::from(k),
                seen_ms,
            });
        }
        Ok(out)
    }

    /// Remove a consumer and its pending entries: how many it had.
    pub fn delete_consumer(
        &self,
        call: &mut Call<'_, '_>,
        group: &[u8],
        name: &[u8],
    ) -> CmdResult<u64> {
        let ids = self.owned(call, group, name, StreamId::MIN, StreamId::MAX, 0)?;
        for id in &ids {
            self.delete_pending(call, group, name, *id);
        }
        let key = self.consumer_key(call, group, name);
        call.ctx.delete_data(&key);
        Ok(ids.len() as u64)
    }

    // ---------------------------------------------------- pending entries

    fn pending_key(&self, call: &Call<'_, '_>, group: &[u8], id: StreamId) -> Vec<u8> {
        let mut sub = named(PENDING, group);
        sub.extend_from_slice(&id.to_bytes());
        self.sub(call, &sub)
    }

    fn owned_prefix(&self, call: &Call<'_, '_>, group: &[u8], consumer: &[u8]) -> Vec<u8> {
        let mut sub = named(OWNED, group);
        put_bytes(&mut sub, consumer);
        self.sub(call, &sub)
    }

    fn owned_key(
        &self,
        call: &Call<'_, '_>,
        group: &[u8],
        consumer: &[u8],
        id: StreamId,
    ) -> Vec<u8> {
        let mut key = self.owned_prefix(call, group, consumer);
        key.extend_from_slice(&id.to_bytes());
        key
    }

    pub fn pending(
        &self,
        call: &Call<'_, '_>,
        group: &[u8],
        id: StreamId,
    ) -> CmdResult<Option<Pending>> {
        match call.ctx.get_data(&self.pending_key(call, group, id))? {
            Some(raw) => Ok(Some(
                decode_pending(id, &raw).ok_or_else(|| corrupt("stream pending entry"))?,
            )),
            None => Ok(None),
        }
    }

    /// Write a pending entry (moving it from its previous owner, if any).
    pub fn put_pending(&self, call: &mut Call<'_, '_>, group: &[u8], p: &Pending) -> CmdResult<()> {
        if let Some(old) = self.pending(call, group, p.id)? {
            if old.consumer != p.consumer {
                let key = self.owned_key(call, group, &old.consumer, p.id);
                call.ctx.delete_data(&key);
            }
        }
        let mut raw = Vec::with_capacity(16 + p.consumer.len());
        raw.extend_from_slice(&p.delivery_ms.to_be_bytes());
        raw.extend_from_slice(&p.deliveries.to_be_bytes());
        raw.extend_from_slice(&p.consumer);
        let key = self.pending_key(call, group, p.id);
        call.ctx.put_data(&key, &raw);
        let key = self.owned_key(call, group, &p.consumer, p.id);
        call.ctx.put_data(&key, &[]);
        Ok(())
    }

    pub fn delete_pending(
        &self,
        call: &mut Call<'_, '_>,
        group: &[u8],
        consumer: &[u8],
        id: StreamId,
    ) {
        let key = self.pending_key(call, group, id);
        call.ctx.delete_data(&key);
        let key = self.owned_key(call, group, consumer, id);
        call.ctx.delete_data(&key);
    }

    /// The group's pending entries with `start <= id <= end`, at most
    /// `count` (0: all).
    pub fn pending_range(
        &self,
        call: &Call<'_, '_>,
        group: &[u8],
        start: StreamId,
        end: StreamId,
        count: usize,
    ) -> CmdResult<Vec<Pending>> {
        let mut out = Vec::new();
        if start > end {
            return Ok(out);
        }
        let prefix = self.sub(call, &named(PENDING, group));
        let (lower, upper) = id_bounds(&prefix, start, end);
        for item in call.ctx.iter(Cf::Data, &lower, Some(&upper), false) {
            let (k, v) = item?;
            let mut rest = k.get(prefix.len()..).unwrap_or(&[]);
            let id = StreamId::take(&mut rest).ok_or_else(|| corrupt("stream pending key"))?;
            out.push(decode_pending(id, &v).ok_or_else(|| corrupt("stream pending entry"))?);
            if count != 0 && out.len() >= count {
                break;
            }
        }
        Ok(out)
    }

    /// IDs a consumer has pending with `start <= id <= end`, at most
    /// `count` (0: all).
    pub fn owned(
        &self,
        call: &Call<'_, '_>,
        group: &[u8],
        consumer: &[u8],
        start: StreamId,
        end: StreamId,
        count: usize,
    ) -> CmdResult<Vec<StreamId>> {
        let mut out = Vec::new();
        if start > end {
            return Ok(out);
        }
        let prefix = self.owned_prefix(call, group, consumer);
        let (lower, upper) = id_bounds(&prefix, start, end);
        for item in call.ctx.iter(Cf::Data, &lower, Some(&upper), false) {
            let (k, _) = item?;
            let mut rest = k.get(prefix.len()..).unwrap_or(&[]);
            out.push(StreamId::take(&mut rest).ok_or_else(|| corrupt("stream pending key"))?);
            if count != 0 && out.len() >= count {
                break;
            }
        }
        Ok(out)
    }
}

/// How to trim (XADD's and XTRIM's options).
#[derive(Debug, Clone, Copy)]
pub enum TrimBy {
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Debug, Clone, Copy)]
pub struct Trim {
    pub by: TrimBy,
    pub approx: bool,
    /// At most this many entries (0: no limit).
    pub limit: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_bad_bytes_are_refused() {
        let fields = vec![Bytes::from_static(b"f"), Bytes::from_static(b"")];
        let raw = encode_entry(StreamId::new(1, 2), &fields);
        assert_eq!(decode_entry(&raw), Some((StreamId::new(1, 2), fields)));
        for cut in 0..raw.len() {
            assert_eq!(decode_entry(&raw[..cut]), None);
        }
        assert!(!check_record(b"", b""));
        assert!(!check_record(b"e", b"\xff\xff"));
        assert!(!check_record(b"g", b"short"));
    }
}
