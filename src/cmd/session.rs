//! Per-connection state: selected database, protocol, name, authentication.

use std::sync::Arc;

use bytes::Bytes;

use crate::engine::ClientInfo;
use crate::resp::Protocol;

#[derive(Debug)]
pub struct Session {
    pub db: u8,
    pub protocol: Protocol,
    pub authenticated: bool,
    /// Set by QUIT: the connection closes after this reply.
    pub quit: bool,
    pub info: Arc<ClientInfo>,
}

impl Session {
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Session {
        Session {
            db: 0,
            protocol: Protocol::Resp2,
            authenticated,
            quit: false,
            info,
        }
    }

    pub fn id(&self) -> u64 {
        self.info.id
    }

    pub fn name(&self) -> Option<Bytes> {
        self.info.name.lock().clone()
    }
}
