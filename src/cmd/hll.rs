//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.
//! The value is an ordinary string in Redis's representation (`crate::hll`),
//! so TYPE says string and GET answers the bytes Redis would hold.

use bytes::Bytes;

use super::strings::{lookup_string, store};
use super::table::{commands, flags::*};
use super::{Call, CmdError, CmdResult, CommandSpec, Flags};
use crate::hll::{self, Edit, Encoding, HllError};
use crate::resp::Reply;
use crate::storage::events::class;
use crate::storage::{Expiry, Meta};

/// PFDEBUG is `write denyoom admin` with its key second.
const DEBUG: Flags = W.union(Flags::ADMIN);

pub static COMMANDS: &[CommandSpec] = commands! {
    "pfadd", -2, WF, 1, 1, 1, pfadd;
    "pfcount", -2, R.union(Flags::MAY_REPLICATE), 1, -1, 1, pfcount;
    "pfmerge", -2, W, 1, -1, 1, pfmerge;
    "pfdebug", 3, DEBUG, 2, 2, 1, pfdebug;
    "pfselftest", 1, A, 0, 0, 0, pfselftest;
};

impl From<HllError> for CmdError {
    fn from(e: HllError) -> CmdError {
        CmdError::Raw(e.to_string())
    }
}

/// `hll-sparse-max-bytes`: this node's setting, except in a replicated
/// apply, which uses Redis's default so that every node encodes alike
/// (CONFIG SET is not replicated).
fn sparse_max_bytes(call: &Call<'_, '_>) -> u64 {
    if call.ctx.applies_log_entry() {
        hll::DEFAULT_SPARSE_MAX_BYTES
    } else {
        call.engine.config.read().hll_sparse_max_bytes
    }
}

/// The HyperLogLog at `key`, checked as Redis checks it, with its expiry.
fn lookup_hll(
    call: &Call<'_, '_>,
    key: &[u8],
    read: bool,
) -> CmdResult<Option<(Bytes, Expiry, Encoding)>> {
    match lookup_string(call, key, read)? {
        None => Ok(None),
        Some((value, expire)) => {
            let encoding = hll::encoding(&value)?;
            Ok(Some((value, expire, encoding)))
        }
    }
}

/// Store an edited value in place, keeping its expiry, raising `event`.
fn save(call: &mut Call<'_, '_>, key: &[u8], value: Vec<u8>, expire: Expiry, event: &'static str) {
    store(
        call,
        key,
        Bytes::from(value),
        expire,
        (class::STRING, event),
    );
}

pub fn pfadd(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let (value, expire, mut updated) = match lookup_hll(call, key, false)? {
        Some((value, expire, _)) => (value.to_vec(), expire, false),
        None => (hll::empty(), None, true),
    };
    let mut edit = Edit::new(value);
    let max_bytes = sparse_max_bytes(call);
    let mut edited = false;
    for element in &args[2..] {
        match edit.add(element, max_bytes) {
            Ok(rose) => edited |= rose,
            Err(e) => {
                // Redis edits the value in place: what the elements before
                // the damage changed stays, without an event.
                if edited {
                    let value = Bytes::from(edit.into_bytes());
                    call.ctx.put_meta(key, &Meta::string(value, expire));
                }
                return Ok(Reply::Error(e.to_string()));
            }
        }
    }
    updated |= edited;
    if updated {
        edit.invalidate_cache();
        save(call, key, edit.into_bytes(), expire, "pfadd");
    }
    Ok(Reply::Int(i64::from(updated)))
}

pub fn pfcount(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    if args.len() > 2 {
        // The cardinality of the union, from one byte per register.
        let mut max = Box::new([0u8; hll::REGISTERS]);
        for key in &args[1..] {
            if let Some((value, _, _)) = lookup_hll(call, key, true)? {
                hll::merge_into(&mut max, &value)?;
            }
        }
        return Ok(Reply::Int(hll::count_raw(&max) as i64));
    }
    let key = &args[1];
    let Some((value, expire, _)) = lookup_hll(call, key, true)? else {
        return Ok(Reply::Int(0));
    };
    if let Some(card) = hll::cached_count(&value) {
        return Ok(Reply::Int(card as i64));
    }
    let card = hll::count(&value)?;
    // Redis stores the count in the value's cache. Under Raft a read is
    // not replicated, so it leaves the value alone (every node keeps the
    // same bytes); the answer is the same either way.
    if !call.engine.is_replicated() {
        let mut value = value.to_vec();
        hll::set_cached_count(&mut value, card);
        call.ctx
            .put_meta(key, &Meta::string(Bytes::from(value), expire));
    }
    Ok(Reply::Int(card as i64))
}

pub fn pfmerge(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let mut max = Box::new([0u8; hll::REGISTERS]);
    let mut any_dense = false;
    for key in &args[1..] {
        if let Some((value, _, encoding)) = lookup_hll(call, key, true)? {
            any_dense |= encoding == Encoding::Dense;
            hll::merge_into(&mut max, &value)?;
        }
    }
    let key = &args[1];
    // The destination was checked among the sources.
    let (value, expire) = match lookup_string(call, key, false)? {
        Some((value, expire)) => (value.to_vec(), expire),
        None => (hll::empty(), None),
    };
    let mut edit = Edit::new(value);
    if any_dense {
        edit.to_dense()?;
    }
    let max_bytes = sparse_max_bytes(call);
    for (index, &count) in max.iter().enumerate() {
        if count != 0 {
            // The destination merged cleanly above, so it cannot fail;
            // Redis ignores the result here too.
            let _ = edit.set_register(index, count, max_bytes);
        }
    }
    edit.invalidate_cache();
    // Redis raises `pfadd` for a merge too.
    save(call, key, edit.into_bytes(), expire, "pfadd");
    Ok(Reply::Status("OK"))
}

pub fn pfdebug(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[2];
    let Some((value, expire, encoding)) = lookup_hll(call, key, false)? else {
        return Err(CmdError::err("The specified key does not exist"));
    };
    let sub = &args[1];
    let is = |name: &str| sub.eq_ignore_ascii_case(name.as_bytes());
    if is("getreg") {
        let mut value = value.to_vec();
        if hll::to_dense(&mut value)? {
            // Redis keeps the value dense, without an event.
            call.ctx
                .put_meta(key, &Meta::string(Bytes::from(value.clone()), expire));
        }
        let regs = hll::dense_registers(&value);
        Ok(Reply::Array(
            regs.into_iter().map(|r| Reply::Int(i64::from(r))).collect(),
        ))
    } else if is("decode") {
        if encoding != Encoding::Sparse {
            return Err(CmdError::err("HLL encoding is not sparse"));
        }
        Ok(Reply::Bulk(Bytes::from(hll::decode_sparse(&value))))
    } else if is("encoding") {
        Ok(Reply::Status(encoding.name()))
    } else if is("todense") {
        let mut value = value.to_vec();
        let converted = hll::to_dense(&mut value)?;
        if converted {
            call.ctx
                .put_meta(key, &Meta::string(Bytes::from(value), expire));
        }
        Ok(Reply::Int(i64::from(converted)))
    } else {
        Err(CmdError::err(format!(
            "Unknown PFDEBUG subcommand '{}'",
            c_string(sub)
        )))
    }
}

/// What C's `%s` prints of an argument: up to its first zero byte.
fn c_string(arg: &[u8]) -> String {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

pub fn pfselftest(call: &mut Call<'_, '_>) -> CmdResult {
    let max_bytes = call.engine.config.read().hll_sparse_max_bytes;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    match hll::self_test(seed, max_bytes) {
        Ok(()) => Ok(Reply::Status("OK")),
        Err(text) => Err(CmdError::Raw(text)),
    }
}
