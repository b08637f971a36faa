//! Redis's glob-style pattern matching (KEYS, SCAN MATCH, CONFIG GET):
//! `*`, `?`, `[abc]`, `[^a-z]`, and `\` escapes, byte-wise.
//!
//! As Redis's stringmatchlen since 7.0.9 (CVE-2022-36021): once the rest of
//! the pattern after a `*` matched nowhere in the rest of the text, no
//! earlier `*` is tried on longer stretches either, so a pattern like
//! `a*a*a*…b` costs polynomial time instead of exponential (it stopped the
//! server for as long as KEYS ran).

pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // KEYS and SCAN take a lone "*" as "everything" without matching, so
    // it lists the empty key, which stringmatchlen itself never matches.
    pattern == b"*" || Matcher::new(false).matches(pattern, text, 0)
}

/// Redis's stringmatchlen itself, as pub/sub matches patterns: a lone
/// "*" does not match the empty channel.
pub fn stringmatch(pattern: &[u8], text: &[u8]) -> bool {
    Matcher::new(false).matches(pattern, text, 0)
}

/// Case-insensitive variant (CONFIG GET parameter names).
pub fn glob_match_nocase(pattern: &[u8], text: &[u8]) -> bool {
    Matcher::new(true).matches(pattern, text, 0)
}

/// One match of a pattern against a text.
struct Matcher {
    nocase: bool,
    /// The rest of the pattern after some `*` matched nowhere: give up.
    skip_longer: bool,
    /// Calls made, for the tests' bound on the work.
    #[cfg(test)]
    calls: u64,
}

impl Matcher {
    fn new(nocase: bool) -> Matcher {
        Matcher {
            nocase,
            skip_longer: false,
            #[cfg(test)]
            calls: 0,
        }
    }

    fn eq(a: u8, b: u8, nocase: bool) -> bool {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    }

    fn matches(&mut self, mut p: &[u8], mut s: &[u8], depth: usize) -> bool {
        #[cfg(test)]
        {
            self.calls += 1;
        }
        let nocase = self.nocase;
        // Deeply nested stars could recurse without bound on hostile patterns.
        if depth > 1000 {
            return false;
        }
        // Redis's stringmatchlen: a pattern is matched while both sides last,
        // so an empty text matches only an empty pattern.
        while !p.is_empty() && !s.is_empty() {
            match p[0] {
                b'*' => {
                    while p.len() > 1 && p[1] == b'*' {
                        p = &p[1..];
                    }
                    if p.len() == 1 {
                        return true;
                    }
                    for i in 0..s.len() {
                        if self.matches(&p[1..], &s[i..], depth + 1) {
                            return true;
                        }
                        if self.skip_longer {
                            return false;
                        }
                    }
                    // The rest matched nowhere from here on: a longer stretch
                    // for an earlier `*` would only start it later still.
                    self.skip_longer = true;
                    return false;
                }
                b'?' => {
                    s = &s[1..];
                }
                b'[' => {
                    p = &p[1..];
                    let not = p.first() == Some(&b'^');
                    if not {
                        p = &p[1..];
                    }
                    let mut matched = false;
                    loop {
                        if p.is_empty() {
                            // Unterminated class: Redis treats the end as closing it.
                            break;
                        }
                        if p[0] == b'\\' && p.len() >= 2 {
                            p = &p[1..];
                            if p[0] == s[0] {
                                matched = true;
                            }
                        } else if p[0] == b']' {
                            break;
                        } else if p.len() >= 3 && p[1] == b'-' {
                            let (mut start, mut end) = (p[0], p[2]);
                            if start > end {
                                std::mem::swap(&mut start, &mut end);
                            }
                            let c = if nocase {
                                s[0].to_ascii_lowercase()
                            } else {
                                s[0]
                            };
                            let (start, end) = if nocase {
                                (start.to_ascii_lowercase(), end.to_ascii_lowercase())
                            } else {
                                (start, end)
                            };
                            p = &p[2..];
                            if c >= start && c <= end {
                                matched = true;
                            }
                        } else if Self::eq(p[0], s[0], nocase) {
                            matched = true;
                        }
                        p = &p[1..];
                    }
                    let matched = if not { !matched } else { matched };
                    if !matched {
                        return false;
                    }
                    s = &s[1..];
                    if p.is_empty() {
                        // The pattern ended inside the class.
                        return s.is_empty();
                    }
                }
                b'\\' if p.len() >= 2 => {
                    p = &p[1..];
                    if !Self::eq(p[0], s[0], nocase) {
                        return false;
                    }
                    s = &s[1..];
                }
                c => {
                    if !Self::eq(c, s[0], nocase) {
                        return false;
                    }
                    s = &s[1..];
                }
            }
            p = &p[1..];
            if s.is_empty() {
                while p.first() == Some(&b'*') {
                    p = &p[1..];
                }
                break;
            }
        }
        p.is_empty() && s.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"h?llo", b"hello"));
        assert!(glob_match(b"h*llo", b"heeeello"));
        assert!(glob_match(b"h[ae]llo", b"hallo"));
        assert!(!glob_match(b"h[ae]llo", b"hillo"));
        assert!(glob_match(b"h[^e]llo", b"hallo"));
        assert!(!glob_match(b"h[^e]llo", b"hello"));
        assert!(glob_match(b"h[a-b]llo", b"hbllo"));
        assert!(glob_match(b"h\\*llo", b"h*llo"));
        assert!(!glob_match(b"h\\*llo", b"hello"));
        assert!(glob_match(b"a*b*c", b"axxbyyc"));
        assert!(!glob_match(b"a*b*c", b"axxbyy"));
        assert!(glob_match_nocase(b"MAXMEM*", b"maxmemory"));
        // As stringmatchlen: the empty text matches nothing but "" (and
        // the lone "*" callers treat as everything).
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"**", b""));
        assert!(!glob_match(b"?", b""));
        assert!(!glob_match(b"[a]", b""));
        assert!(glob_match(b"a*", b"a"));
        assert!(glob_match(b"a**", b"a"));
        assert!(!glob_match(b"a*b", b"a"));
    }

    #[test]
    fn many_stars_cost_polynomial_work() {
        // 6 stars against 40 bytes: millions of calls without giving up on
        // longer matches (about C(40, 6)); a few hundred with it.
        let pattern = [b"a*".repeat(6), b"b".to_vec()].concat();
        let mut m = Matcher::new(false);
        assert!(!m.matches(&pattern, &[b'a'; 40], 0));
        assert!(m.calls < 1_000, "{} calls", m.calls);
        // 26 stars against 81 bytes, which kept KEYS busy for ever.
        let pattern = [b"a*".repeat(26), b"b".to_vec()].concat();
        let text = vec![b'a'; 81];
        let mut m = Matcher::new(false);
        assert!(!m.matches(&pattern, &text, 0));
        assert!(m.calls < 10_000, "{} calls", m.calls);
        // Still a match where there is one.
        let mut text = text;
        text.push(b'b');
        assert!(glob_match(&pattern, &text));
        assert!(!glob_match(b"a*a*b", b"aaaa"));
        assert!(glob_match(b"*x*y*z", b"__x__y__z"));
        assert!(!glob_match(b"*x*y*z", b"__x__z__y"));
    }
}
