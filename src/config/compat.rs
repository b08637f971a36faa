//! Redis 7.0's parameters that Kiwi has no use for (encodings of its
//! in-memory structures, replication, RDB/AOF files, defragmentation, ...).
//!
//! Test suites and tools set them (`CONFIG SET hash-max-listpack-entries`,
//! `list-compress-depth` ...) and stop at the first refusal, so every one is
//! accepted, validated exactly as Redis validates it (the table in
//! [`super::redis_params`] comes from asking redis-server), stored and
//! returned by CONFIG GET; none changes what Kiwi does. Parameters Kiwi acts
//! on are handled by [`super::RuntimeConfig`] before this table is looked at.

use std::collections::BTreeMap;

use super::redis_params::PARAMS;
use super::{parse_memory, ConfigSetError};

/// What a parameter accepts, as CONFIG SET checks it.
#[derive(Debug)]
pub enum Kind {
    Bool,
    Int {
        min: i128,
        max: i128,
        percent: bool,
    },
    /// An integer with redis.conf's size units (`1gb`, `512mb`, ...).
    Memory {
        min: i128,
        max: i128,
        percent: bool,
    },
    Enum(&'static [&'static str]),
    Text,
    /// Set only at start-up (redis.conf or the command line).
    Immutable,
    /// A parameter with its own syntax; the text is what redis-server
    /// answered to a bad value.
    Special(&'static str),
}

/// One parameter of redis-server 7.0.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    /// Another name for the same value (`hash-max-ziplist-entries`).
    pub alias: Option<&'static str>,
    pub default: &'static str,
    pub kind: Kind,
}

/// The parameter called `name` (or with `name` as its alias).
pub fn find(name: &str) -> Option<&'static Param> {
    PARAMS
        .iter()
        .find(|p| p.name == name || p.alias == Some(name))
}

/// The values set so far (the others are at their defaults).
#[derive(Debug, Clone, Default)]
pub struct CompatParams {
    values: BTreeMap<&'static str, String>,
}

impl CompatParams {
    /// Every name (aliases too, as Redis lists them) with its value.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        PARAMS.iter().flat_map(move |p| {
            let value = self.value(p);
            std::iter::once((p.name, value.clone())).chain(p.alias.map(|a| (a, value)))
        })
    }

    /// The value of `name` as CONFIG GET shows it (empty if unknown).
    pub fn text(&self, name: &str) -> String {
        find(name).map(|p| self.value(p)).unwrap_or_default()
    }

    /// The integer value of `name` (set or default).
    pub fn int(&self, name: &str) -> Option<i64> {
        let p = find(name)?;
        self.value(p).parse().ok()
    }

    fn value(&self, p: &Param) -> String {
        self.values
            .get(p.name)
            .cloned()
            .unwrap_or_else(|| p.default.to_string())
    }

    /// Check and store `value`; `at_start` allows immutable parameters
    /// (redis.conf and the command line). Unknown names are refused.
    pub fn set(&mut self, name: &str, value: &str, at_start: bool) -> Result<(), ConfigSetError> {
        let param = find(name).ok_or(ConfigSetError::Unknown)?;
        let stored = match &param.kind {
            Kind::Immutable if !at_start => return Err(ConfigSetError::Immutable),
            Kind::Immutable | Kind::Text => value.to_string(),
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                v @ ("yes" | "no") => v.to_string(),
                _ => return Err(ConfigSetError::Invalid("argument must be 'yes' or 'no'")),
            },
            Kind::Enum(choices) => {
                let lower = value.to_ascii_lowercase();
                match choices.iter().find(|c| **c == lower) {
                    Some(choice) => choice.to_string(),
                    None => {
                        return Err(ConfigSetError::Text(format!(
                            "argument(s) must be one of the following: {}",
                            choices.join(", ")
                        )))
                    }
                }
            }
            Kind::Int { min, max, .. } => {
                let n = crate::num::parse_i64(value.as_bytes()).ok_or(ConfigSetError::Invalid(
                    "argument couldn't be parsed into an integer",
                ))?;
                in_bounds(i128::from(n), *min, *max)?.to_string()
            }
            Kind::Memory { min, max, .. } => {
                let n = parse_memory(value)
                    .ok_or(ConfigSetError::Invalid("argument must be a memory value"))?;
                let n = in_bounds(i128::from(n), *min, *max)?;
                // Redis keeps at least 16 KiB of replication backlog.
                if param.name == "repl-backlog-size" {
                    n.max(16 * 1024).to_string()
                } else {
                    n.to_string()
                }
            }
            Kind::Special(_) => special(param.name, value, at_start)?,
        };
        self.values.insert(param.name, stored);
        Ok(())
    }
}

fn in_bounds(n: i128, min: i128, max: i128) -> Result<i128, ConfigSetError> {
    if n < min || n > max {
        return Err(ConfigSetError::Text(format!(
            "argument must be between {min} and {max} inclusive"
        )));
    }
    Ok(n)
}

/// The parameters with a syntax of their own, checked as Redis checks them.
fn special(name: &str, value: &str, at_start: bool) -> Result<String, ConfigSetError> {
    let words: Vec<&str> = value.split_ascii_whitespace().collect();
    match name {
        // Kiwi keeps its data in RocksDB: no snapshots are scheduled.
        "save" => {
            let numbers: Option<Vec<i64>> = words
                .iter()
                .map(|w| crate::num::parse_i64(w.as_bytes()).filter(|n| *n >= 0))
                .collect();
            match numbers {
                Some(n) if n.len() % 2 == 0 => {
                    Ok(n.iter().map(i64::to_string).collect::<Vec<_>>().join(" "))
                }
                _ => Err(ConfigSetError::Invalid("Invalid save parameters")),
            }
        }
        "dbfilename" | "dir" if !at_start => {
            Err(ConfigSetError::Invalid("can't set protected config"))
        }
        "maxmemory-clients" => {
            let valid = match value.strip_suffix('%') {
                Some(percent) => percent.parse::<u64>().is_ok_and(|p| p <= 100),
                None => parse_memory(value).is_some(),
            };
            if !valid {
                return Err(ConfigSetError::Invalid(
                    "argument must be a memory or percent value",
                ));
            }
            Ok(match value.strip_suffix('%') {
                Some(_) => value.to_string(),
                None => parse_memory(value).unwrap_or(0).to_string(),
            })
        }
        "oom-score-adj-values" => {
            let values: Option<Vec<i64>> = words
                .iter()
                .map(|w| crate::num::parse_i64(w.as_bytes()).filter(|n| (-2000..=2000).contains(n)))
                .collect();
            match values {
                Some(v) if v.len() == 3 => {
                    Ok(v.iter().map(i64::to_string).collect::<Vec<_>>().join(" "))
                }
                Some(_) if words.len() != 3 => {
                    Err(ConfigSetError::Invalid("wrong number of arguments"))
                }
                _ => Err(ConfigSetError::Invalid("Invalid oom-score-adj-values")),
            }
        }
        "latency-tracking-info-percentiles" => {
            for word in &words {
                match word.parse::<f64>() {
                    Ok(p) if (0.0..=100.0).contains(&p) => {}
                    Ok(_) => {
                        return Err(ConfigSetError::Invalid(
                            "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]",
                        ))
                    }
                    Err(_) => {
                        return Err(ConfigSetError::Invalid(
                            "Invalid latency-tracking-info-percentiles parameters",
                        ))
                    }
                }
            }
            Ok(words.join(" "))
        }
        // The rest (bind, notify-keyspace-events, ...) are Kiwi's own.
        _ => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_share_one_value() {
        let mut params = CompatParams::default();
        params
            .set("hash-max-ziplist-entries", "100", false)
            .unwrap();
        let entries: BTreeMap<_, _> = params.entries().collect();
        assert_eq!(entries["hash-max-listpack-entries"], "100");
        assert_eq!(entries["hash-max-ziplist-entries"], "100");
    }

    #[test]
    fn validates_as_redis() {
        let mut p = CompatParams::default();
        assert!(p.set("list-compress-depth", "-1", false).is_err());
        assert!(p.set("list-compress-depth", "3", false).is_ok());
        assert!(p.set("lazyfree-lazy-eviction", "YES", false).is_ok());
        assert!(p.set("lazyfree-lazy-eviction", "maybe", false).is_err());
        assert!(p.set("maxmemory", "1gb", false).is_ok());
        assert!(p.set("daemonize", "no", false).is_err());
        assert!(p.set("daemonize", "no", true).is_ok());
        assert!(p.set("no-such-thing", "1", false).is_err());
        let entries: BTreeMap<_, _> = p.entries().collect();
        assert_eq!(entries["maxmemory"], "1073741824");
        assert_eq!(entries["lazyfree-lazy-eviction"], "yes");
    }
}
