//! SLOWLOG and LATENCY: what the server observed about the commands it ran
//! (see `engine/observe.rs`), answered as Redis 7.0 answers.

use bytes::Bytes;

use super::server::{help_reply, unknown_subcommand};
use super::{is, parse_i64, Call, CmdError, CmdResult};
use crate::resp::Reply;

const SLOWLOG_HELP: &[&str] = &[
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
];

const LATENCY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
];

fn syntax_error_for(sub: &Bytes, cmd: &str) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
        super::args::err_text(sub, 128)
    ))
}

pub fn slowlog(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let observer = &call.engine.observer;
    let sub = &args[1];
    if is(sub, "GET") && args.len() <= 3 {
        let count = match args.get(2) {
            None => Some(10),
            Some(arg) => match parse_i64(arg) {
                Some(-1) => None,
                Some(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => return Err(CmdError::err("count should be greater than or equal to -1")),
            },
        };
        let entries = observer
            .slow_entries(count)
            .into_iter()
            .map(|e| {
                Reply::Array(vec![
                    Reply::Int(e.id as i64),
                    Reply::Int(e.time_s as i64),
                    Reply::Int(e.duration_us as i64),
                    Reply::Array(e.args.into_iter().map(Reply::Bulk).collect()),
                    Reply::bulk(e.addr),
                    Reply::Bulk(e.name),
                ])
            })
            .collect();
        return Ok(Reply::Array(entries));
    }
    if args.len() == 2 {
        if is(sub, "LEN") {
            return Ok(Reply::Int(observer.slow_len() as i64));
        }
        if is(sub, "RESET") {
            observer.slow_reset();
            return Ok(Reply::OK);
        }
        if is(sub, "HELP") {
            return Ok(help_reply("SLOWLOG", SLOWLOG_HELP));
        }
    }
    Err(syntax_error_for(sub, "SLOWLOG"))
}

pub fn latency(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let observer = &call.engine.observer;
    let sub = &args[1];
    let n = args.len();
    if is(sub, "HISTORY") && n == 3 {
        let events = observer.latency_events();
        let samples = events
            .iter()
            .find(|(name, _)| name.as_bytes() == &args[2][..])
            .map(|(_, e)| {
                e.samples
                    .iter()
                    .map(|(t, ms)| {
                        Reply::Array(vec![Reply::Int(*t as i64), Reply::Int(*ms as i64)])
                    })
                    .collect()
            })
            .unwrap_or_default();
        return Ok(Reply::Array(samples));
    }
    if is(sub, "GRAPH") && n == 3 {
        let events = observer.latency_events();
        let Some((name, event)) = events
            .iter()
            .find(|(name, _)| name.as_bytes() == &args[2][..])
        else {
            return Err(CmdError::err(format!(
                "No samples available for event '{}'",
                String::from_utf8_lossy(&args[2])
            )));
        };
        return Ok(Reply::Verbatim(graph(name, event)));
    }
    if is(sub, "LATEST") && n == 2 {
        let latest = observer
            .latency_events()
            .into_iter()
            .filter_map(|(name, e)| {
                let (time, ms) = *e.samples.back()?;
                Some(Reply::Array(vec![
                    Reply::bulk_str(name),
                    Reply::Int(time as i64),
                    Reply::Int(ms as i64),
                    Reply::Int(e.max_ms as i64),
                ]))
            })
            .collect();
        return Ok(Reply::Array(latest));
    }
    if is(sub, "DOCTOR") && n == 2 {
        return Ok(Reply::Verbatim(doctor(call)));
    }
    if is(sub, "RESET") {
        let names: Vec<String> = args[2..]
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        return Ok(Reply::Int(observer.latency_reset(&names) as i64));
    }
    if is(sub, "HISTOGRAM") {
        let names: Vec<String> = if n == 2 {
            observer.measured_commands()
        } else {
            // Each named command, with its subcommands, once.
            let mut names = Vec::new();
            for arg in &args[2..] {
                let text = String::from_utf8_lossy(arg).to_ascii_lowercase();
                let known = super::lookup(arg).is_some()
                    || text
                        .split_once('|')
                        .is_some_and(|(c, _)| super::lookup(c.as_bytes()).is_some());
                if !known {
                    continue;
                }
                for name in observer.measured_commands() {
                    let matches = name == text
                        || (!text.contains('|') && name.starts_with(&format!("{text}|")));
                    if matches && !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
            names
        };
        let mut out = Vec::new();
        for name in names {
            if let Some((calls, points)) = observer.histogram(&name) {
                let buckets = points
                    .into_iter()
                    .map(|(us, count)| (Reply::Int(us as i64), Reply::Int(count as i64)))
                    .collect();
                out.push((
                    Reply::bulk(name),
                    Reply::Map(vec![
                        (Reply::bulk_str("calls"), Reply::Int(calls as i64)),
                        (Reply::bulk_str("histogram_usec"), Reply::Map(buckets)),
                    ]),
                ));
            }
        }
        return Ok(Reply::Map(out));
    }
    if is(sub, "HELP") && n == 2 {
        return Ok(help_reply("LATENCY", LATENCY_HELP));
    }
    if ["HISTORY", "GRAPH", "LATEST", "DOCTOR", "HELP"]
        .iter()
        .any(|s| is(sub, s))
    {
        return Err(syntax_error_for(sub, "LATENCY"));
    }
    Err(unknown_subcommand(sub, "LATENCY"))
}

/// LATENCY DOCTOR's report: Redis's words when monitoring is off or nothing
/// was seen; otherwise a summary per event.
fn doctor(call: &Call<'_, '_>) -> String {
    let threshold = call
        .engine
        .config
        .read()
        .compat
        .int("latency-monitor-threshold")
        .unwrap_or(0);
    if threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
    }
    let events = call.engine.observer.latency_events();
    if events.is_empty() {
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".into();
    }
    let mut report = String::from(
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
    );
    for (i, (name, e)) in events.iter().enumerate() {
        let samples = e.samples.len().max(1) as u64;
        let avg = e.samples.iter().map(|(_, ms)| ms).sum::<u64>() / samples;
        report.push_str(&format!(
            "{}. {name}: {} latency spikes (average {avg}ms). Worst all time event {}ms.\n",
            i + 1,
            e.samples.len(),
            e.max_ms
        ));
    }
    report.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
    report
}

/// LATENCY GRAPH: the header line Redis prints and one row of the samples
/// scaled to four levels.
fn graph(name: &str, e: &crate::engine::LatencyEvent) -> String {
    let max = e.samples.iter().map(|(_, ms)| *ms).max().unwrap_or(0);
    let min = e.samples.iter().map(|(_, ms)| *ms).min().unwrap_or(0);
    let mut out = format!(
        "{name} - high {max} ms, low {min} ms (all time high {} ms)\n{}\n",
        e.max_ms,
        "-".repeat(80)
    );
    let marks: String = e
        .samples
        .iter()
        .map(
            |(_, ms)| match (ms * 4).checked_div(max.max(1)).unwrap_or(0) {
                0 => '_',
                1 => '.',
                2 => 'o',
                _ => '#',
            },
        )
        .collect();
    out.push_str(&marks);
    out.push('\n');
    out
}
