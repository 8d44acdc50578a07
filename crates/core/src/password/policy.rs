//! What a new password must be (OWASP ASVS 5.0 §6.2), decided the same way
//! for sign-up, password change and reset.
//!
//! The rules, in the order they are applied to the normalised password:
//! 1. no C0 control character nor DEL (U+0000–U+001F, U+007F): nobody types
//!    them, NUL truncates in C libraries and bcrypt, and a stray tab or line
//!    feed from a paste would otherwise become an invisible part of the
//!    password. Everything else in Unicode is accepted, including zero-width
//!    and bidirectional characters (the name rule in `text` is about
//!    spoofing what others read; nobody reads a password);
//! 2. `min_length` to `max_length` Unicode code points;
//! 3. not built from context words (see [`PolicyContext`]);
//! 4. not common: zxcvbn must score it at least 3, i.e. estimate at least
//!    10^8 guesses, what zxcvbn calls "moderate protection from an offline
//!    slow-hash scenario", which is ours (Argon2id at ≥ 19 MiB). Its built-in
//!    lists (30,000 frequency-ranked breached passwords, English words,
//!    names) and its pattern matching (keyboard walks, dates, repeats, l33t)
//!    catch what a plain list misses ("P@ssw0rd2024!"). zxcvbn judges the
//!    password in windows of 16 code points to bound its cost (see
//!    `strong`); with the context words as its "user inputs" it also
//!    finds them reversed or in l33t within patterns.
//!
//! There are no composition rules ("must contain a digit"): ASVS forbids them,
//! as they push people to predictable substitutions, not stronger passwords.

use zxcvbn::{zxcvbn, Score};

/// The strength zxcvbn must find (rule 4 of the module documentation).
const MIN_SCORE: Score = Score::Three;

/// How many code points zxcvbn judges at once (see [`strong`]).
const ZXCVBN_WINDOW: usize = 16;

/// Context words shorter than this are ignored: "bob" or "com" would refuse
/// too many unrelated passwords.
const MIN_CONTEXT_WORD: usize = 4;

/// The lowest `min_length` a policy may have (ASVS 6.2.1: at least 8; 12 is
/// the default and recommended).
pub const MIN_LENGTH_FLOOR: usize = 8;

/// The lowest `max_length` a policy may have (ASVS 6.2.9: passwords of at
/// least 64 characters must be allowed).
pub const MAX_LENGTH_FLOOR: usize = 64;

/// Length limits of new passwords, in Unicode code points after
/// normalisation (so "é" is one, however it was typed).
///
/// Build one with [`PasswordPolicy::new`] (which refuses limits that break
/// ASVS) or take the [`Default`] of 12 to 128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 12,
            max_length: 128,
        }
    }
}

/// A policy an operator configured that would break ASVS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the minimum password length must be at least {MIN_LENGTH_FLOOR} (it is {min})")]
    MinTooLow { min: usize },
    #[error("the maximum password length must be at least {MAX_LENGTH_FLOOR} (it is {max})")]
    MaxTooLow { max: usize },
    #[error("the maximum password length ({max}) must not be below the minimum ({min})")]
    MaxBelowMin { min: usize, max: usize },
}

/// Why a new password is refused. Messages say what to do instead and never
/// quote the password; [`WeakPassword::reason_code`] is the stable code
/// clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("the password must not contain control characters (such as tab or line feed)")]
    ControlCharacters,
    #[error("the password is too short: use at least {min} characters")]
    TooShort { min: usize },
    #[error("the password is too long: use at most {max} characters")]
    TooLong { max: usize },
    #[error(
        "this password is too common (it appears in lists of breached passwords, or follows a \
         pattern they are guessed by); choose a longer, less predictable one, such as several \
         unrelated words"
    )]
    Common,
    #[error(
        "the password is built from your e-mail address, name or the service name; \
         choose one that is strong without them"
    )]
    ContextWords,
}

impl WeakPassword {
    /// The stable machine-readable reason (part of the public API).
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::ControlCharacters => "control_characters",
            Self::TooShort { .. } => "too_short",
            Self::TooLong { .. } => "too_long",
            Self::Common => "common",
            Self::ContextWords => "context_words",
        }
    }
}

/// What the service knows about the account whose password is checked: a
/// password made of these words is easy to guess for anyone who knows the
/// account.
///
/// Context words are, each lower-cased and only if at least 4 characters
/// long: the whole e-mail address, its local part and that part's pieces
/// split on `.` `_` `-` `+`, the domain's labels, the display name's words,
/// "tessera", and the issuer name's words.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyContext<'a> {
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
    /// The issuer (service) name shown to users, e.g. in TOTP apps.
    pub issuer: &'a str,
}

impl PolicyContext<'_> {
    /// The context words, lower-cased, normalised, deduplicated, longest first
    /// (so "alice.smith" is removed before "alice").
    fn words(&self) -> Vec<String> {
        let mut words = vec!["tessera".to_string()];
        if let Some(email) = self.email {
            let email = email.trim();
            words.push(email.to_string());
            let (local, domain) = email.split_once('@').unwrap_or((email, ""));
            words.push(local.to_string());
            words.extend(split_words(local, &['.', '_', '-', '+']));
            words.extend(split_words(domain, &['.']));
        }
        for text in self.display_name.into_iter().chain([self.issuer]) {
            words.extend(
                text.split(|c: char| !c.is_alphanumeric())
                    .map(str::to_string),
            );
        }
        let mut words: Vec<String> = words
            .iter()
            .map(|w| super::normalise(w).to_lowercase())
            .filter(|w| w.chars().count() >= MIN_CONTEXT_WORD)
            .collect();
        words.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        words.dedup();
        words
    }
}

fn split_words<'s>(text: &'s str, separators: &'s [char]) -> impl Iterator<Item = String> + 's {
    text.split(separators).map(str::to_string)
}

impl PasswordPolicy {
    /// A policy with these limits, refused if it would break ASVS (a minimum
    /// below 8, a maximum below 64, or a maximum below the minimum).
    pub fn new(min_length: usize, max_length: usize) -> Result<Self, PolicyError> {
        if min_length < MIN_LENGTH_FLOOR {
            return Err(PolicyError::MinTooLow { min: min_length });
        }
        if max_length < MAX_LENGTH_FLOOR {
            return Err(PolicyError::MaxTooLow { max: max_length });
        }
        if max_length < min_length {
            return Err(PolicyError::MaxBelowMin {
                min: min_length,
                max: max_length,
            });
        }
        Ok(Self {
            min_length,
            max_length,
        })
    }

    /// The normalised password, ready for [`super::hash_password`], if it
    /// meets the policy; else the first rule it breaks (in the order of the
    /// module documentation).
    pub fn check(&self, password: &str, ctx: &PolicyContext) -> Result<String, WeakPassword> {
        let normalised = super::normalise(password);
        if normalised.chars().any(|c| c < ' ' || c == '\u{7f}') {
            return Err(WeakPassword::ControlCharacters);
        }
        let length = normalised.chars().count();
        if length < self.min_length {
            return Err(WeakPassword::TooShort {
                min: self.min_length,
            });
        }
        if length > self.max_length {
            return Err(WeakPassword::TooLong {
                max: self.max_length,
            });
        }
        let words = ctx.words();
        if let Some(remainder) = strip_context_words(&normalised, &words) {
            if remainder.chars().count() < self.min_length || !strong(&remainder, &[]) {
                return Err(WeakPassword::ContextWords);
            }
        }
        let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
        if !strong(&normalised, &inputs) {
            // zxcvbn also finds context words spelt in l33t, reversed or
            // interleaved with patterns; when only the context made the
            // password weak, say so rather than "common".
            return Err(if strong(&normalised, &[]) {
                WeakPassword::ContextWords
            } else {
                WeakPassword::Common
            });
        }
        Ok(normalised)
    }
}

/// Whether zxcvbn finds `password` strong enough, judged in consecutive
/// windows of [`ZXCVBN_WINDOW`] code points: strong if any window is (a
/// password is at least as hard to guess as any part of it), weak if none
/// is ("password" × 16 is weak in every window).
///
/// Why windows: zxcvbn's l33t matching tries every reading of every
/// look-alike character, and its cost grows steeply with length. Measured
/// in release on a loaded 2-core machine, a 32-code-point string of distinct
/// look-alikes ("4@8(3691!|05$7+2" twice) took 40–57 ms and zxcvbn's own
/// 100-code-point cap 220+ ms for random text; 16 code points take ~6–15 ms
/// there (20 took up to 22 ms, too close to the 20 ms budget). Checking stops
/// at the first strong window, and weak windows are cheap (dictionary and
/// repeat matches, well under a millisecond each).
/// The price: a word or keyboard walk cut at a window edge counts as two
/// fragments, which can make a password look a little stronger, and only
/// past 16 code points, where the length itself already adds strength.
fn strong(password: &str, context: &[&str]) -> bool {
    let chars: Vec<char> = password.chars().collect();
    chars.chunks(ZXCVBN_WINDOW).any(|window| {
        let window: String = window.iter().collect();
        zxcvbn(&window, context).score() >= MIN_SCORE
    })
}

/// The deterministic context rule: every context word is cut out of the
/// lower-cased password, also where it is spelt with common look-alike
/// substitutions ("4l1c3" for "alice", see [`looks_like`]), and what is left
/// must on its own be a password the policy would accept for its length and
/// strength. `None` when no context word occurs at all.
///
/// A cut leaves a marker, so removing one word never joins its neighbours
/// into another ("tesalicesera" is not "tessera" after "alice" goes).
fn strip_context_words(normalised: &str, words: &[String]) -> Option<String> {
    // `None` marks a cut character.
    let mut rest: Vec<Option<char>> = normalised.to_lowercase().chars().map(Some).collect();
    let mut found = false;
    for word in words {
        let word: Vec<char> = word.chars().collect();
        let mut i = 0;
        while i + word.len() <= rest.len() {
            let window = &rest[i..i + word.len()];
            let hit = window
                .iter()
                .zip(&word)
                .all(|(c, &w)| c.is_some_and(|c| looks_like(c, w)));
            if hit {
                found = true;
                rest[i..i + word.len()].fill(None);
                i += word.len();
            } else {
                i += 1;
            }
        }
    }
    found.then(|| rest.into_iter().flatten().collect())
}

/// Whether password character `c` stands for context-word character `w`:
/// the same, or one of the substitutions people make to "strengthen" a word
/// (digits and symbols that look like letters).
fn looks_like(c: char, w: char) -> bool {
    c == w
        || matches!(
            (c, w),
            ('4' | '@', 'a')
                | ('8', 'b')
                | ('(', 'c')
                | ('3', 'e')
                | ('6' | '9', 'g')
                | ('1' | '!' | '|', 'i' | 'l')
                | ('0', 'o')
                | ('5' | '$', 's')
                | ('7' | '+', 't')
                | ('2', 'z')
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PolicyContext<'static> {
        PolicyContext {
            email: Some("alice.smith+tokens@example.org"),
            display_name: Some("Alice Smith"),
            issuer: "Acme Tokens",
        }
    }

    fn check(password: &str) -> Result<String, WeakPassword> {
        PasswordPolicy::default().check(password, &ctx())
    }

    #[test]
    fn a_strong_passphrase_is_accepted_and_returned_normalised() {
        let p = "correct horse battery staple 1987 zebra";
        assert_eq!(check(p).unwrap(), p);
        assert_eq!(
            check("correct\u{a0}horse battery staple 1987 zebra").unwrap(),
            p
        );
        // No composition rule: lower-case letters and spaces only is fine.
        assert!(check("purple gravel tunnel whisper").is_ok());
    }

    #[test]
    fn length_is_counted_in_code_points_after_normalisation() {
        let policy = PasswordPolicy::default();
        let none = PolicyContext::default();
        // Twelve accented letters, typed decomposed: 24 code points in, 12 after.
        let decomposed = "e\u{301}a\u{300}o\u{302}u\u{308}i\u{301}e\u{300}\
                          a\u{302}o\u{308}u\u{301}i\u{300}e\u{302}a\u{308}";
        assert_eq!(decomposed.chars().count(), 24);
        let ok = policy.check(decomposed, &none).unwrap();
        assert_eq!(ok.chars().count(), 12);
        assert!(ok.len() > 12, "more bytes than code points");
        // Eleven of them are too short, however many bytes they take.
        let e = policy.check(&"é".repeat(11), &none).unwrap_err();
        assert_eq!(e, WeakPassword::TooShort { min: 12 });
    }

    #[test]
    fn too_short_and_too_long() {
        assert_eq!(
            check("x7#Kq9!vB2m"),
            Err(WeakPassword::TooShort { min: 12 })
        );
        let random = "Vq8#zL2!mR5$wT9@kP3^nX6&bH4*cJ7(dF1)gS0-yU8+eA2=";
        let p128: String = random.chars().cycle().take(128).collect();
        let p129: String = random.chars().cycle().take(129).collect();
        assert_eq!(check(&p128).unwrap(), p128);
        assert_eq!(check(&p129), Err(WeakPassword::TooLong { max: 128 }));
        // 128 code points of two bytes each are 128, not 256.
        let accented: String = "éàöüçñ".chars().cycle().take(100).collect();
        let accented = format!("{accented}{}", &random[..28]);
        assert_eq!(accented.chars().count(), 128);
        assert!(check(&accented).is_ok());
    }

    #[test]
    fn common_and_patterned_passwords_are_refused() {
        for p in [
            "password1234",
            "123456789012",
            "qwertyuiopasdf",
            "P@ssw0rd2024!",
            "iloveyou1234",
            "aaaaaaaaaaaaaaaa",
            "abcdefghijklmnop",
        ] {
            assert_eq!(check(p), Err(WeakPassword::Common), "{p}");
        }
    }

    #[test]
    fn passwords_built_from_context_words_are_refused() {
        let policy = PasswordPolicy::default();
        let ctx = PolicyContext {
            email: Some("alice@example.com"),
            display_name: Some("Alice Liddell"),
            issuer: "Tessera",
        };
        for p in [
            "alice-tessera-2026",
            "Tessera2026!!",
            "alice@example.com",
            "Alice Liddell 1984",
            "ALICE.EXAMPLE.2026",
            "tesalicesera2026",
            "4l1c3-T3ss3r4-2026",
        ] {
            assert_eq!(
                policy.check(p, &ctx),
                Err(WeakPassword::ContextWords),
                "{p}"
            );
        }
        // A strong password that merely contains a context word is fine.
        assert!(policy
            .check("alice correct horse battery staple", &ctx)
            .is_ok());
        // The issuer's short words and the TLD are not context words.
        assert_eq!(
            ctx.words(),
            [
                "alice@example.com",
                "example",
                "liddell",
                "tessera",
                "alice"
            ]
        );
    }

    #[test]
    fn email_pieces_are_context_words() {
        assert_eq!(
            ctx().words(),
            [
                "alice.smith+tokens@example.org",
                "alice.smith+tokens",
                "example",
                "tessera",
                "tokens",
                "alice",
                "smith",
                "acme"
            ]
        );
        assert_eq!(check("SmithTokens!!2026"), Err(WeakPassword::ContextWords));
    }

    #[test]
    fn control_characters_are_refused_other_unicode_is_not() {
        for c in ['\0', '\t', '\n', '\r', '\u{1b}', '\u{7f}'] {
            let p = format!("correct horse{c}battery staple");
            assert_eq!(check(&p), Err(WeakPassword::ControlCharacters), "{c:?}");
        }
        for c in ['\u{200b}', '\u{202e}', '\u{85}', '😀', 'ß'] {
            let p = format!("correct horse{c}battery staple");
            assert!(check(&p).is_ok(), "{c:?}");
        }
    }

    #[test]
    fn messages_never_quote_the_password_and_codes_are_stable() {
        let cases = [
            ("horse\tbattery staple", "control_characters"),
            ("q8#Zp", "too_short"),
            ("passwordpassword", "common"),
            ("alicesmith2026", "context_words"),
        ];
        for (p, code) in cases {
            let e = check(p).unwrap_err();
            assert_eq!(e.reason_code(), code, "{p}");
            assert!(!e.to_string().contains(p));
            assert!(!e.to_string().to_lowercase().contains("alice"));
        }
        assert_eq!(WeakPassword::TooLong { max: 128 }.reason_code(), "too_long");
        assert_eq!(
            WeakPassword::TooShort { min: 12 }.to_string(),
            "the password is too short: use at least 12 characters"
        );
    }

    #[test]
    fn policies_that_break_asvs_are_refused() {
        assert_eq!(PasswordPolicy::new(12, 128), Ok(PasswordPolicy::default()));
        assert_eq!(PasswordPolicy::new(8, 64).unwrap().min_length, 8);
        assert_eq!(
            PasswordPolicy::new(7, 128),
            Err(PolicyError::MinTooLow { min: 7 })
        );
        assert_eq!(
            PasswordPolicy::new(12, 63),
            Err(PolicyError::MaxTooLow { max: 63 })
        );
        assert_eq!(
            PasswordPolicy::new(100, 80),
            Err(PolicyError::MaxBelowMin { min: 100, max: 80 })
        );
    }
}
