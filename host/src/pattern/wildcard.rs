//! EventBridge's `wildcard` operator: `*` stands for any run of characters, `\*` for a
//! literal star and `\\` for a backslash; any other escape and two stars in a row are
//! refused. A field's wildcards together may not be too complex (see [`complexity`]).

use std::collections::{BTreeSet, HashSet, VecDeque};

/// One piece of a wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Lit(char),
    Star,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Wildcard(Vec<Tok>);

impl Wildcard {
    /// Parses a pattern; the error is EventBridge's reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut toks = Vec::new();
        let mut chars = text.chars().enumerate();
        while let Some((pos, c)) = chars.next() {
            match c {
                '*' => {
                    // The position of the first of the two, as the cloud reports it.
                    if toks.last() == Some(&Tok::Star) {
                        return Err(format!(
                            "Consecutive wildcard characters at pos {}",
                            pos - 1
                        ));
                    }
                    toks.push(Tok::Star);
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('*' | '\\'))) => toks.push(Tok::Lit(e)),
                    _ => return Err(format!("Invalid escape character at pos {pos}")),
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Wildcard(toks))
    }

    /// Whether `text` matches: the usual two-pointer walk, which backtracks only to the
    /// last star, so it is linear in practice and at worst `text × pattern`.
    pub fn matches(&self, text: &str) -> bool {
        let p = &self.0;
        let t: Vec<char> = text.chars().collect();
        let (mut i, mut j) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while i < t.len() {
            match p.get(j) {
                Some(Tok::Lit(c)) if *c == t[i] => {
                    i += 1;
                    j += 1;
                }
                Some(Tok::Star) => {
                    star = Some((j, i));
                    j += 1;
                }
                _ => match star {
                    Some((sj, si)) => {
                        j = sj + 1;
                        i = si + 1;
                        star = Some((sj, si + 1));
                    }
                    None => return false,
                },
            }
        }
        p[j..].iter().all(|t| *t == Tok::Star)
    }
}

/// State steps the check may take before it calls the wildcards too complex anyway:
/// keeps the check itself cheap on adversarial patterns (a 2,048-character pattern of
/// stars and distinct characters).
const MAX_STEPS: usize = 2_000_000;

/// The most prefixes of a field's wildcard patterns that one value can match at once:
/// the measure EventBridge's matcher uses for a rule's cost (its documentation asks for
/// fewer wildcards and fewer repeated sequences after a wildcard when a rule is refused
/// as too complex). `None` once it is past `cap`, or when the search gives up.
pub fn complexity(patterns: &[&Wildcard], cap: usize) -> Option<usize> {
    // A state is (pattern, tokens matched so far); a set holds the states live after
    // some input. Characters that no pattern names behave alike: one stands for all.
    let mut alphabet: BTreeSet<char> = patterns
        .iter()
        .flat_map(|w| w.0.iter())
        .filter_map(|t| match t {
            Tok::Lit(c) => Some(*c),
            Tok::Star => None,
        })
        .collect();
    let other = (0u32..)
        .filter_map(char::from_u32)
        .find(|c| !alphabet.contains(c))?;
    alphabet.insert(other);
    let close = |set: &mut BTreeSet<(usize, usize)>| {
        let mut grown: Vec<(usize, usize)> = set.iter().copied().collect();
        while let Some((k, i)) = grown.pop() {
            if patterns[k].0.get(i) == Some(&Tok::Star) && set.insert((k, i + 1)) {
                grown.push((k, i + 1));
            }
        }
    };
    let mut start: BTreeSet<(usize, usize)> = (0..patterns.len()).map(|k| (k, 0)).collect();
    close(&mut start);
    let mut seen: HashSet<BTreeSet<(usize, usize)>> = HashSet::new();
    let mut queue = VecDeque::from([start]);
    let mut worst = 0;
    let mut steps = 0usize;
    while let Some(set) = queue.pop_front() {
        if !seen.insert(set.clone()) {
            continue;
        }
        worst = worst.max(set.iter().filter(|(_, i)| *i > 0).count());
        steps += set.len() * alphabet.len();
        if worst > cap || steps > MAX_STEPS {
            return None;
        }
        for &c in &alphabet {
            let mut next = BTreeSet::new();
            for &(k, i) in &set {
                let toks = &patterns[k].0;
                if i > 0 && toks[i - 1] == Tok::Star {
                    next.insert((k, i));
                }
                if toks.get(i) == Some(&Tok::Lit(c)) {
                    next.insert((k, i + 1));
                }
            }
            close(&mut next);
            if !next.is_empty() && !seen.contains(&next) {
                queue.push_back(next);
            }
        }
    }
    Some(worst)
}
