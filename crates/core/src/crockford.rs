//! Crockford base32 codes for people to read and type (invite codes,
//! recovery codes): random characters shown in groups of four, read back
//! case-insensitively with separators ignored and look-alikes mapped.

use rand::{rngs::OsRng, RngCore};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Inputs longer than this are not codes, whatever they contain.
pub const MAX_INPUT: usize = 64;

/// `chars` random characters (5 bits each, at most 25) from the OS CSPRNG,
/// grouped by four with hyphens.
pub fn generate(chars: usize) -> String {
    debug_assert!(chars <= 25, "a u128 holds 25 characters");
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes[..(chars * 5).div_ceil(8)]);
    let bits = bytes
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    // The random bits sit at the top of the 128; take them from there.
    let mut out = String::with_capacity(chars + chars / 4);
    for i in 0..chars {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let index = (bits >> (123 - 5 * i)) & 0x1f;
        out.push(ALPHABET[index as usize] as char);
    }
    out
}

/// The canonical form of a presented code of `chars` characters: upper
/// case, hyphens and spaces dropped, look-alikes mapped (O→0, I/L→1).
/// `None` if it cannot be such a code.
pub fn normalize(input: &str, chars: usize) -> Option<String> {
    if input.len() > MAX_INPUT {
        return None;
    }
    let mut out = String::with_capacity(chars);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == chars).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_canonical_and_random() {
        for chars in [16, 24, 25] {
            let a = generate(chars);
            assert_eq!(a.len(), chars + (chars - 1) / 4);
            assert_eq!(normalize(&a, chars).unwrap(), a.replace('-', ""));
            assert_ne!(a, generate(chars));
        }
        // Every character position is random, including the last ones.
        let last: std::collections::BTreeSet<char> =
            (0..200).map(|_| generate(24).pop().unwrap()).collect();
        assert!(last.len() > 16, "{last:?}");
    }
}
