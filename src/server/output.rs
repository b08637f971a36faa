#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! A client's pending replies on their way out, under Redis's
//! `client-output-buffer-limit`: a client that does not read what it asked
//! for is disconnected at the hard limit, or after staying above the soft
//! limit too long, instead of holding the server's memory.
//!
//! Pub/sub messages join the replies here (taken from the client's
//! mailbox); the mailbox counts them until they are written, and a write
//! stuck on a client that does not read ends when the client's stop token
//! is cancelled (its mailbox overran, or the server stops).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::OutputLimit;
use crate::engine::ClientInfo;

/// Writes a connection's replies and keeps the soft-limit clock.
#[derive(Debug)]
pub(super) struct ReplyWriter {
    above_soft_since: Option<Instant>,
    stop: CancellationToken,
    client: Arc<ClientInfo>,
    /// Bytes taken from the mailbox into the output, not yet written.
    taken: usize,
}

/// Why a connection ended when it overran its output limit.
#[derive(Debug, thiserror::Error)]
#[error("closed for overcoming of output buffer limits")]
struct OutputOverrun;

/// The error a connection ends with when it overran its limit.
fn overrun() -> std::io::Error {
    std::io::Error::other(OutputOverrun)
}

impl ReplyWriter {
    pub fn new(stop: CancellationToken, client: Arc<ClientInfo>) -> ReplyWriter {
        ReplyWriter {
            above_soft_since: None,
            stop,
            client,
            taken: 0,
        }
    }

    /// Append the messages waiting in the client's mailbox to `output`.
    pub fn deliver(&mut self, output: &mut BytesMut) {
        self.taken += self.client.mailbox.take(output);
    }

    /// Why a write was abandoned when the stop token was cancelled.
    fn stopped(&self) -> std::io::Error {
        match self.client.mailbox.is_overrun() {
            true => overrun(),
            false => std::io::Error::other("the connection is stopping"),
        }
    }

    /// Write all of `output` and clear it. Fails (and the connection is
    /// closed) when the bytes still waiting to be written reach `limit`'s
    /// hard size, or stay at or above its soft size for longer than its
    /// seconds.
    pub async fn flush<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        output: &mut BytesMut,
        limit: OutputLimit,
    ) -> std::io::Result<()> {
        if limit.is_unlimited() {
            self.above_soft_since = None;
            tokio::select! {
                written = stream.write_all(output) => written?,
                _ = self.stop.cancelled() => return Err(self.stopped()),
            }
            output.clear();
            self.client.mailbox.written(std::mem::take(&mut self.taken));
            return Ok(());
        }
        let mut written = 0;
        while let Some(rest) = output.get(written..).filter(|r| !r.is_empty()) {
            let deadline = self.check(rest.len() as u64, limit)?;
            let write = async {
                match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, stream.write(rest))
                        .await
                        .ok(),
                    None => Some(stream.write(rest).await),
                }
            };
            let n = tokio::select! {
                n = write => match n {
                    Some(n) => n?,
                    // Still above the soft limit when its time ran out: the
                    // next check closes the connection.
                    None => continue,
                },
                _ = self.stop.cancelled() => return Err(self.stopped()),
            };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        self.above_soft_since = None;
        output.clear();
        self.client.mailbox.written(std::mem::take(&mut self.taken));
        Ok(())
    }

    /// Judge `pending` bytes against `limit`; when above the soft size,
    /// the instant the soft limit runs out.
    fn check(&mut self, pending: u64, limit: OutputLimit) -> std::io::Result<Option<Instant>> {
        if limit.hard > 0 && pending >= limit.hard {
            return Err(overrun());
        }
        if limit.soft == 0 || pending < limit.soft {
            self.above_soft_since = None;
            return Ok(None);
        }
        let now = Instant::now();
        let since = *self.above_soft_since.get_or_insert(now);
        let deadline = since + Duration::from_secs(limit.soft_seconds);
        if now > deadline {
            return Err(overrun());
        }
        // Wake just after the deadline, so the next check is past it.
        Ok(Some(deadline + Duration::from_millis(1)))
    }
}

/// Whether an error ended a connection for overrunning its output limit.
pub(super) fn is_overrun(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<OutputOverrun>())
}
