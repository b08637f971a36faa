//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO (client-side
//! caching; the invalidation side is `engine/tracking.rs`).

use bytes::Bytes;

use super::{is, Call, CmdError, CmdResult};
use crate::engine::TrackingMode;
use crate::resp::Reply;

/// CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p]... [OPTIN]
/// [OPTOUT] [NOLOOP], with Redis's checks in Redis's order.
pub fn tracking(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let mut mode = TrackingMode::default();
    let mut new_prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while let Some(arg) = args.get(j) {
        let more = args.len() - 1 - j > 0;
        if is(arg, "redirect") && more {
            j += 1;
            if mode.redirect != 0 {
                return Err(CmdError::err(
                    "A client can only redirect to a single other client",
                ));
            }
            let id = super::int_arg(&args[j])?;
            let exists = u64::try_from(id)
                .ok()
                .filter(|id| call.engine.clients.lock().contains_key(id));
            let Some(id) = exists else {
                return Err(CmdError::err(
                    "The client ID you want redirect to does not exist",
                ));
            };
            mode.redirect = id;
        } else if is(arg, "bcast") {
            mode.bcast = true;
        } else if is(arg, "optin") {
            mode.optin = true;
        } else if is(arg, "optout") {
            mode.optout = true;
        } else if is(arg, "noloop") {
            mode.noloop = true;
        } else if is(arg, "prefix") && more {
            j += 1;
            new_prefixes.push(args[j].clone());
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if is(&args[2], "off") {
        call.session.tracking = None;
        call.engine.tracking.disable(call.session.info.id);
        return Ok(Reply::OK);
    }
    if !is(&args[2], "on") {
        return Err(CmdError::Syntax);
    }
    if !mode.bcast && !new_prefixes.is_empty() {
        return Err(CmdError::err(
            "PREFIX option requires BCAST mode to be enabled",
        ));
    }
    let current = call.session.tracking.clone();
    if let Some(old) = &current {
        if old.bcast != mode.bcast {
            return Err(CmdError::err("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return Err(CmdError::err(
            "OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if mode.optin && mode.optout {
        return Err(CmdError::err(
            "You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if let Some(old) = &current {
        if (mode.optin && old.optout) || (mode.optout && old.optin) {
            return Err(CmdError::err("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
    }
    let mut prefixes = current.map(|old| old.prefixes).unwrap_or_default();
    if mode.bcast {
        check_prefixes(&prefixes, &new_prefixes)?;
        if new_prefixes.is_empty() && prefixes.is_empty() {
            new_prefixes.push(Bytes::new());
        }
        for p in new_prefixes {
            if !prefixes.contains(&p) {
                prefixes.push(p);
            }
        }
        // Redis keeps them in a radix tree: listed in byte order.
        prefixes.sort();
    }
    mode.prefixes = prefixes;
    call.engine
        .tracking
        .enable(call.session.info.clone(), mode.clone());
    call.session.tracking = Some(mode);
    Ok(Reply::OK)
}

/// Redis's checkPrefixCollisionsOrReply: no prefix may start another.
fn check_prefixes(existing: &[Bytes], given: &[Bytes]) -> CmdResult<()> {
    let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    for (i, p) in given.iter().enumerate() {
        if let Some(old) = existing.iter().find(|old| overlap(p, old)) {
            return Err(CmdError::err(format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(old)
            )));
        }
        if let Some(other) = given
            .iter()
            .enumerate()
            .find(|(k, other)| *k != i && overlap(p, other))
            .map(|(_, other)| other)
        {
            return Err(CmdError::err(format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(other)
            )));
        }
    }
    Ok(())
}

/// CLIENT CACHING YES|NO: the next command's reads are (not) remembered.
pub fn caching(call: &mut Call<'_, '_>) -> CmdResult {
    let Some(mode) = call.session.tracking.as_mut() else {
        return Err(CmdError::err("CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    };
    let arg = &call.args[2];
    if is(arg, "yes") {
        if !mode.optin {
            return Err(CmdError::err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
        mode.caching = Some(true);
    } else if is(arg, "no") {
        if !mode.optout {
            return Err(CmdError::err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
        mode.caching = Some(false);
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(Reply::OK)
}

pub fn getredir(call: &mut Call<'_, '_>) -> CmdResult {
    Ok(Reply::Int(match &call.session.tracking {
        Some(mode) => i64::try_from(mode.redirect).unwrap_or(i64::MAX),
        None => -1,
    }))
}

pub fn trackinginfo(call: &mut Call<'_, '_>) -> CmdResult {
    let bulk = |s: &'static str| Reply::Bulk(Bytes::from_static(s.as_bytes()));
    let (flags, redirect, prefixes) = match &call.session.tracking {
        None => (vec![bulk("off")], -1, Vec::new()),
        Some(mode) => {
            let mut flags = vec![bulk("on")];
            for (on, name) in [
                (mode.bcast, "bcast"),
                (mode.optin, "optin"),
                (mode.optout, "optout"),
                (mode.optin && mode.caching == Some(true), "caching-yes"),
                (mode.optout && mode.caching == Some(false), "caching-no"),
                (mode.noloop, "noloop"),
                (
                    call.engine.tracking_redirect_broken(call.session.info.id),
                    "broken_redirect",
                ),
            ] {
                if on {
                    flags.push(bulk(name));
                }
            }
            (
                flags,
                i64::try_from(mode.redirect).unwrap_or(i64::MAX),
                mode.prefixes.iter().cloned().map(Reply::Bulk).collect(),
            )
        }
    };
    Ok(Reply::Map(vec![
        (bulk("flags"), Reply::Set(flags)),
        (bulk("redirect"), Reply::Int(redirect)),
        (bulk("prefixes"), Reply::Array(prefixes)),
    ]))
}
