//! RESP2/RESP3: request framing in, reply encoding out.

mod reply;
mod request;

pub use crate::num::format_double;
pub use reply::{Protocol, Reply};
pub use request::{
    split_args, ProtocolError, RequestDecoder, DEFAULT_MAX_BULK_LEN, MAX_INLINE_SIZE,
};
