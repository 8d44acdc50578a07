//! Which user names an upstream may log in as: its `users` list, exact names
//! or simple `*` globs (`"svc-*"`), so that a caller of the cache cannot make
//! logins for names it invents. Without a list an upstream logs in as its
//! `default_user` only: deny by default. A leaf module shared by the
//! configuration and the lookups.

use serde::Serialize;

/// The names an upstream may log in as. Serializes as its list of patterns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct UserPolicy {
    patterns: Vec<String>,
}

impl UserPolicy {
    /// Every name (`users = ["*"]`), the behaviour before lists existed.
    pub fn any() -> Self {
        Self {
            patterns: vec!["*".into()],
        }
    }

    /// Exactly these names or patterns. A pattern is 1-256 bytes without
    /// control characters, where `*` matches any run of characters.
    pub fn new(patterns: impl IntoIterator<Item = String>) -> Result<Self, &'static str> {
        let patterns: Vec<String> = patterns.into_iter().collect();
        if patterns.is_empty() {
            return Err("must name at least one user (the default user is always needed)");
        }
        for p in &patterns {
            if p.is_empty() || p.len() > 256 || p.chars().any(char::is_control) {
                return Err("each entry is 1 to 256 bytes without control characters");
            }
        }
        Ok(Self { patterns })
    }

    /// Whether `user` matches one of the patterns.
    pub fn allows(&self, user: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| glob(p.as_bytes(), user.as_bytes()))
    }

    /// The patterns as configured.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// `*`-only glob match with one backtrack point: at worst pattern × name
/// steps, never exponential (no recursion), whatever the stars.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &[&str]) -> UserPolicy {
        UserPolicy::new(list.iter().map(|s| s.to_string())).unwrap()
    }

    #[test]
    fn exact_names_and_globs() {
        let p = policy(&["alice", "svc-*", "*-bot", "a*z"]);
        for ok in [
            "alice",
            "svc-",
            "svc-billing",
            "x-bot",
            "-bot",
            "az",
            "abcz",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for no in [
            "alic", "alice2", "Alice", "svc", "bot", "x-bot2", "a", "zab",
        ] {
            assert!(!p.allows(no), "{no}");
        }
        assert!(UserPolicy::any().allows("anything at all"));
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(UserPolicy::new(Vec::new()).is_err());
        assert!(UserPolicy::new(vec![String::new()]).is_err());
        assert!(UserPolicy::new(vec!["a\nb".into()]).is_err());
    }

    #[test]
    fn many_stars_stay_linear() {
        let p = policy(&["*a*a*a*a*a*a*a*a*b"]);
        assert!(!p.allows(&"a".repeat(256)));
    }
}
