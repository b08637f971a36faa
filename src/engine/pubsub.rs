#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Pub/sub's hub: which clients listen to which channels, patterns and
//! shard channels, and delivering a published message to each listener's
//! [`Mailbox`](super::Mailbox), encoded in its protocol.
//!
//! Each client's own subscriptions live in its session
//! ([`Subscriptions`]); the hub keeps the other direction (name → clients).
//! Both change together, under the hub's lock, so a message published after
//! a SUBSCRIBE registered reaches the client, and none published after an
//! UNSUBSCRIBE does. [`Shared::publish`] is the way in for anything that
//! publishes (PUBLISH, and the engine itself after a commit).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};
use parking_lot::Mutex;

use super::{ClientInfo, Shared};
use crate::cmd::stringmatch;
use crate::resp::{Protocol, Reply};

/// The three namespaces of pub/sub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn index(self) -> usize {
        match self {
            Kind::Channel => 0,
            Kind::Pattern => 1,
            Kind::Shard => 2,
        }
    }
}

/// One client's subscriptions, in the order it made them.
#[derive(Debug, Default)]
pub struct Subscriptions {
    names: [IndexSet<Bytes>; 3],
}

impl Subscriptions {
    pub fn of(&self, kind: Kind) -> &IndexSet<Bytes> {
        match kind {
            Kind::Channel => &self.names[0],
            Kind::Pattern => &self.names[1],
            Kind::Shard => &self.names[2],
        }
    }

    fn of_mut(&mut self, kind: Kind) -> &mut IndexSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.names[0],
            Kind::Pattern => &mut self.names[1],
            Kind::Shard => &mut self.names[2],
        }
    }

    /// The count Redis's confirmations carry: channels and patterns
    /// together, shard channels on their own.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.of(Kind::Shard).len(),
            _ => self.of(Kind::Channel).len() + self.of(Kind::Pattern).len(),
        }
    }

    /// Subscribed to anything: Redis's pub/sub context (RESP2 allows only
    /// the pub/sub commands, PING, QUIT and RESET).
    pub fn any(&self) -> bool {
        self.names.iter().any(|names| !names.is_empty())
    }
}

/// Per-client counts CLIENT LIST reports (`sub`, `psub`, `ssub`).
#[derive(Debug, Default)]
pub struct SubscriptionCounts([AtomicUsize; 3]);

impl SubscriptionCounts {
    pub fn get(&self, kind: Kind) -> usize {
        self.0
            .get(kind.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn set(&self, kind: Kind, n: usize) {
        if let Some(c) = self.0.get(kind.index()) {
            c.store(n, Ordering::Relaxed);
        }
    }
}

type Listeners = IndexMap<u64, Arc<ClientInfo>>;

/// Name → listening clients, for each kind.
#[derive(Default)]
pub struct PubSub {
    registry: Mutex<[HashMap<Bytes, Listeners>; 3]>,
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub").finish_non_exhaustive()
    }
}

/// A message encoded once per protocol, on first need.
struct Frame {
    parts: Vec<Reply>,
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

impl Frame {
    fn new(parts: Vec<Reply>) -> Frame {
        Frame {
            parts,
            resp2: None,
            resp3: None,
        }
    }

    fn encoded(&mut self, protocol: Protocol) -> &[u8] {
        let slot = match protocol {
            Protocol::Resp2 => &mut self.resp2,
            Protocol::Resp3 => &mut self.resp3,
        };
        let parts = &self.parts;
        slot.get_or_insert_with(|| Reply::Push(parts.clone()).to_bytes(protocol))
    }
}

fn protocol_of(client: &ClientInfo) -> Protocol {
    match client.resp.load(Ordering::Relaxed) {
        3 => Protocol::Resp3,
        _ => Protocol::Resp2,
    }
}

/// What a subscription change answers: `[subscribe, name, count]`.
pub fn confirmation(verb: &'static str, name: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk_str(verb),
        Reply::bulk_opt(name),
        Reply::Int(count as i64),
    ])
}

impl PubSub {
    /// Add `name` to `client`'s subscriptions of `kind` (nothing changes if
    /// it is there already); the count its confirmation carries.
    pub fn subscribe(
        &self,
        subs: &mut Subscriptions,
        client: &Arc<ClientInfo>,
        kind: Kind,
        name: Bytes,
    ) -> usize {
        let mut registry = self.registry.lock();
        if subs.of_mut(kind).insert(name.clone()) {
            if let Some(map) = registry.get_mut(kind.index()) {
                map.entry(name)
                    .or_default()
                    .insert(client.id, client.clone());
            }
            client.subscribed.set(kind, subs.of(kind).len());
        }
        subs.count(kind)
    }

    /// Remove `name` from `client`'s subscriptions of `kind`, if there;
    /// the count its confirmation carries.
    pub fn unsubscribe(
        &self,
        subs: &mut Subscriptions,
        client: &ClientInfo,
        kind: Kind,
        name: &[u8],
    ) -> usize {
        let mut registry = self.registry.lock();
        if subs.of_mut(kind).shift_remove(name) {
            if let Some(map) = registry.get_mut(kind.index()) {
                if let Some(listeners) = map.get_mut(name) {
                    listeners.swap_remove(&client.id);
                    if listeners.is_empty() {
                        map.remove(name);
                    }
                }
            }
            client.subscribed.set(kind, subs.of(kind).len());
        }
        subs.count(kind)
    }

    /// Drop every subscription of `kind`; each name with the count after it.
    pub fn unsubscribe_all(
        &self,
        subs: &mut Subscriptions,
        client: &ClientInfo,
        kind: Kind,
    ) -> Vec<(Bytes, usize)> {
        let names: Vec<Bytes> = subs.of(kind).iter().cloned().collect();
        names
            .into_iter()
            .map(|name| {
                let count = self.unsubscribe(subs, client, kind, &name);
                (name, count)
            })
            .collect()
    }

    /// Drop all of a client's subscriptions (RESET, disconnect).
    pub fn forget(&self, subs: &mut Subscriptions, client: &ClientInfo) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            self.unsubscribe_all(subs, client, kind);
        }
    }

    /// Deliver `message` on `channel` (a shard channel when `shard`) to its
    /// subscribers and, for a plain channel, to every client whose pattern
    /// matches it (once per matching pattern). The number of deliveries.
    pub fn publish(
        &self,
        shard: bool,
        channel: &[u8],
        message: &[u8],
        limit: crate::config::OutputLimit,
    ) -> usize {
        let registry = self.registry.lock();
        let channel_bytes = Bytes::copy_from_slice(channel);
        let message = Bytes::copy_from_slice(message);
        let mut delivered = 0;
        let kind = if shard { Kind::Shard } else { Kind::Channel };
        let verb = if shard { "smessage" } else { "message" };
        if let Some(listeners) = registry.get(kind.index()).and_then(|m| m.get(channel)) {
            let mut frame = Frame::new(vec![
                Reply::bulk_str(verb),
                Reply::Bulk(channel_bytes.clone()),
                Reply::Bulk(message.clone()),
            ]);
            for client in listeners.values() {
                client
                    .mailbox
                    .push(frame.encoded(protocol_of(client)), limit);
            }
            delivered += listeners.len();
        }
        if shard {
            return delivered;
        }
        if let Some(patterns) = registry.get(Kind::Pattern.index()) {
            for (pattern, listeners) in patterns {
                if !stringmatch(pattern, channel) {
                    continue;
                }
                let mut frame = Frame::new(vec![
                    Reply::bulk_str("pmessage"),
                    Reply::Bulk(pattern.clone()),
                    Reply::Bulk(channel_bytes.clone()),
                    Reply::Bulk(message.clone()),
                ]);
                for client in listeners.values() {
                    client
                        .mailbox
                        .push(frame.encoded(protocol_of(client)), limit);
                }
                delivered += listeners.len();
            }
        }
        delivered
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS: the names with a subscriber,
    /// matching `pattern` if given.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let registry = self.registry.lock();
        registry
            .get(kind.index())
            .map(|map| {
                map.keys()
                    .filter(|name| pattern.is_none_or(|p| stringmatch(p, name)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB: the subscribers of one name.
    pub fn numsub(&self, kind: Kind, name: &[u8]) -> usize {
        let registry = self.registry.lock();
        registry
            .get(kind.index())
            .and_then(|map| map.get(name))
            .map_or(0, IndexMap::len)
    }

    /// The clients listening to a name `refused(kind, name, client)`
    /// says they may no longer listen to (ACL rules changed).
    pub fn listeners_refused(
        &self,
        mut refused: impl FnMut(Kind, &[u8], &ClientInfo) -> bool,
    ) -> Vec<Arc<ClientInfo>> {
        let registry = self.registry.lock();
        let mut out: IndexMap<u64, Arc<ClientInfo>> = IndexMap::new();
        for (kind, map) in [Kind::Channel, Kind::Pattern, Kind::Shard]
            .into_iter()
            .zip(registry.iter())
        {
            for (name, listeners) in map {
                for (id, client) in listeners {
                    if !out.contains_key(id) && refused(kind, name, client) {
                        out.insert(*id, client.clone());
                    }
                }
            }
        }
        out.into_values().collect()
    }

    /// How many names of `kind` have subscribers (PUBSUB NUMPAT for
    /// patterns; INFO's pubsub_channels and friends).
    pub fn active(&self, kind: Kind) -> usize {
        self.registry
            .lock()
            .get(kind.index())
            .map_or(0, HashMap::len)
    }
}

impl Shared {
    /// Publish `message` on `channel` to this node's subscribers (channel
    /// and pattern subscribers; `shard`: shard-channel subscribers); the
    /// number of deliveries, as PUBLISH answers.
    pub fn publish(&self, shard: bool, channel: &[u8], message: &[u8]) -> usize {
        let limit = self.config.read().client_output_buffer_limit.pubsub;
        self.pubsub.publish(shard, channel, message, limit)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::config::OutputLimit;
    use bytes::BytesMut;
    use tokio_util::sync::CancellationToken;

    fn client(id: u64) -> Arc<ClientInfo> {
        let info = Arc::new(ClientInfo::new(id, "t".into(), "t".into(), 0));
        info.mailbox.attach(CancellationToken::new());
        info
    }

    fn received(client: &ClientInfo) -> Vec<u8> {
        let mut out = BytesMut::new();
        client.mailbox.take(&mut out);
        out.to_vec()
    }

    #[test]
    fn channels_and_patterns_each_deliver_and_count() {
        let hub = PubSub::default();
        let (a, b) = (client(1), client(2));
        let (mut subs_a, mut subs_b) = (Subscriptions::default(), Subscriptions::default());
        assert_eq!(
            hub.subscribe(&mut subs_a, &a, Kind::Channel, "ch".into()),
            1
        );
        assert_eq!(
            hub.subscribe(&mut subs_a, &a, Kind::Channel, "ch".into()),
            1
        );
        assert_eq!(
            hub.subscribe(&mut subs_a, &a, Kind::Pattern, "c*".into()),
            2
        );
        assert_eq!(hub.subscribe(&mut subs_b, &b, Kind::Shard, "ch".into()), 1);
        let limit = OutputLimit::default();
        assert_eq!(hub.publish(false, b"ch", b"m", limit), 2);
        assert_eq!(
            received(&a),
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\nm\r\n"
        );
        assert!(received(&b).is_empty());
        b.resp.store(3, Ordering::Relaxed);
        assert_eq!(hub.publish(true, b"ch", b"s", limit), 1);
        assert_eq!(
            received(&b),
            b">3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$1\r\ns\r\n"
        );
        assert_eq!(a.subscribed.get(Kind::Pattern), 1);
        assert_eq!((hub.active(Kind::Channel), hub.active(Kind::Shard)), (1, 1));
    }

    #[test]
    fn forgetting_a_client_empties_the_hub() {
        let hub = PubSub::default();
        let a = client(1);
        let mut subs = Subscriptions::default();
        for name in ["x", "y", "z"] {
            hub.subscribe(&mut subs, &a, Kind::Channel, name.into());
            hub.subscribe(&mut subs, &a, Kind::Pattern, name.into());
            hub.subscribe(&mut subs, &a, Kind::Shard, name.into());
        }
        let dropped = hub.unsubscribe_all(&mut subs, &a, Kind::Channel);
        let names: Vec<&[u8]> = dropped.iter().map(|(n, _)| &n[..]).collect();
        assert_eq!(names, [&b"x"[..], b"y", b"z"]);
        assert_eq!(dropped.last().map(|(_, c)| *c), Some(3));
        hub.forget(&mut subs, &a);
        assert!(!subs.any());
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            assert_eq!(hub.active(kind), 0);
            assert_eq!(a.subscribed.get(kind), 0);
        }
        assert_eq!(hub.publish(false, b"x", b"m", OutputLimit::default()), 0);
    }
}
