//! DUMP and RESTORE of a stream: the stream as `rdb::stream` serializes it,
//! built from the stored records, and stored back from one.

use bytes::Bytes;

use super::store::{Consumer, Group, Pending, Stream};
use super::{Call, CmdResult};
use crate::rdb::stream as rdb;
use crate::storage::{Expiry, KeyType, StreamId};

fn id(id: StreamId) -> rdb::Id {
    (id.ms, id.seq)
}

fn stream_id((ms, seq): rdb::Id) -> StreamId {
    StreamId::new(ms, seq)
}

fn vecs(items: &[Bytes]) -> Vec<Vec<u8>> {
    items.iter().map(|b| b.to_vec()).collect()
}

/// The stream at `key` as DUMP serializes it (`None` if there is none).
pub fn dump_value(call: &Call<'_, '_>, key: &[u8]) -> CmdResult<Option<rdb::Stream>> {
    let Some(s) = call.stream(key)? else {
        return Ok(None);
    };
    let nodes = s.nodes(call, false, 0)?;
    let mut out = rdb::Stream {
        length: s.len(),
        last_id: id(s.coll.meta.stream.last_id),
        first_id: id(s.coll.meta.stream.first_id),
        max_deleted: id(s.coll.meta.stream.max_deleted),
        entries_added: s.coll.meta.stream.entries_added,
        ..rdb::Stream::default()
    };
    let mut ends = nodes.iter().skip(1).map(|(next, _)| next.prev());
    for (master_id, info) in &nodes {
        let end = ends.next().flatten().unwrap_or(StreamId::MAX);
        let entries = s.range(call, *master_id, end, false, 0)?;
        out.nodes.push(rdb::Node {
            master_id: id(*master_id),
            master: vecs(&info.master),
            entries: entries
                .into_iter()
                .map(|(eid, fields)| (id(eid), vecs(&fields)))
                .collect(),
            deleted: 0,
            bytes: 0,
        });
    }
    for g in s.groups(call)? {
        let pending = s
            .pending_range(call, &g.name, StreamId::MIN, StreamId::MAX, 0)?
            .into_iter()
            .map(|p| rdb::Pending {
                id: id(p.id),
                delivery_ms: p.delivery_ms,
                deliveries: p.deliveries,
                consumer: p.consumer.to_vec(),
            })
            .collect();
        let consumers = s
            .consumers(call, &g.name)?
            .into_iter()
            .map(|c| rdb::Consumer {
                name: c.name.to_vec(),
                seen_ms: c.seen_ms,
            })
            .collect();
        out.groups.push(rdb::Group {
            name: g.name.to_vec(),
            last_id: id(g.last_id),
            entries_read: g.entries_read,
            pending,
            consumers,
        });
    }
    Ok(Some(out))
}

/// Store `value` as a new stream at `key` (RESTORE; the key is free).
pub fn restore_value(
    call: &mut Call<'_, '_>,
    key: &[u8],
    value: &rdb::Stream,
    expire_at_ms: Expiry,
) -> CmdResult<()> {
    let mut s = Stream {
        key,
        coll: call.new_collection(KeyType::Stream),
    };
    s.coll.expire_at_ms = expire_at_ms;
    for node in &value.nodes {
        let master: Vec<Bytes> = node.master.iter().map(|f| Bytes::from(f.clone())).collect();
        let entries: Vec<(StreamId, Vec<Bytes>)> = node
            .entries
            .iter()
            .map(|(eid, fields)| {
                (
                    stream_id(*eid),
                    fields.iter().map(|f| Bytes::from(f.clone())).collect(),
                )
            })
            .collect();
        s.put_node(
            call,
            stream_id(node.master_id),
            master,
            &entries,
            node.deleted,
            node.bytes,
        );
    }
    let m = &mut s.coll.meta.stream;
    s.coll.meta.len = value.length;
    m.last_id = stream_id(value.last_id);
    m.first_id = stream_id(value.first_id);
    m.max_deleted = stream_id(value.max_deleted);
    m.entries_added = value.entries_added;
    for g in &value.groups {
        let name = Bytes::from(g.name.clone());
        s.put_group(
            call,
            &Group {
                name: name.clone(),
                last_id: stream_id(g.last_id),
                entries_read: g.entries_read,
            },
        );
        for c in &g.consumers {
            s.put_consumer(
                call,
                &name,
                &Consumer {
                    name: Bytes::from(c.name.clone()),
                    seen_ms: c.seen_ms,
                },
            );
        }
        for p in &g.pending {
            s.put_pending(
                call,
                &name,
                &Pending {
                    id: stream_id(p.id),
                    consumer: Bytes::from(p.consumer.clone()),
                    delivery_ms: p.delivery_ms,
                    deliveries: p.deliveries,
                },
            )?;
        }
    }
    s.save(call);
    Ok(())
}
