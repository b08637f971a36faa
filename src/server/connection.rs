//! One client connection: read whatever arrived, run every complete request
//! in it, answer them all in one write (pipelining), repeat.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::resp::RequestDecoder;

/// Flush replies once this much output has accumulated, so a long pipeline
/// does not buffer all of its replies in memory.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;

pub(super) async fn serve(
    engine: Arc<Engine>,
    mut stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let (maxclients, max_bulk) = {
        let config = engine.config.read();
        (config.maxclients, config.proto_max_bulk_len)
    };
    if engine.clients.lock().len() >= maxclients {
        engine
            .stats
            .rejected_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    let mut session = engine.connect(peer.to_string(), local);
    let result = run(&engine, &mut stream, &mut session, max_bulk, &shutdown).await;
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
    engine.disconnect(&session);
}

async fn run(
    engine: &Engine,
    stream: &mut TcpStream,
    session: &mut crate::cmd::Session,
    max_bulk: usize,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let mut decoder = RequestDecoder::new(max_bulk);
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = BytesMut::with_capacity(16 * 1024);
    loop {
        loop {
            decoder.set_authenticated(session.authenticated);
            match decoder.parse(&mut input) {
                Ok(Some(args)) => {
                    if args.is_empty() {
                        continue;
                    }
                    let reply = engine.execute(session, &args);
                    reply.encode(session.protocol, &mut output);
                    if session.quit {
                        stream.write_all(&output).await?;
                        return Ok(());
                    }
                    if output.len() >= OUTPUT_HIGH_WATER {
                        stream.write_all(&output).await?;
                        output.clear();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // Answer what came before, then the error, then close.
                    output.extend_from_slice(b"-ERR ");
                    output.extend_from_slice(e.to_string().as_bytes());
                    output.extend_from_slice(b"\r\n");
                    stream.write_all(&output).await?;
                    tracing::debug!(error = %e, "protocol error, closing connection");
                    return Ok(());
                }
            }
        }
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        if input.capacity() - input.len() < 4096 {
            input.reserve(16 * 1024);
        }
        let n = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            n = stream.read_buf(&mut input) => n?,
        };
        if n == 0 {
            return Ok(());
        }
    }
}
