//! `tessera mfa code`: the code an authenticator app would show now, so a
//! script (and the README's walk-through) can confirm a device without a
//! phone. Pure computation: no database, no keys.

use std::process::ExitCode;

use tessera_core::mfa::totp::{base32_decode, Algorithm, TotpParams};

use super::args::{from_stdin_if_dash, parse_duration_secs};
use crate::output;

pub fn run(uri: String, later: Option<String>) -> ExitCode {
    let offset = match later.as_deref().map(|v| parse_duration_secs("in", v)) {
        None => 0,
        Some(Ok(secs)) => secs,
        Some(Err(e)) => return output::error(e, false),
    };
    let text = match from_stdin_if_dash("uri", uri) {
        Ok(t) => t,
        Err(e) => return output::error(e, false),
    };
    match parse(text.trim()) {
        Ok((params, secret)) => {
            let at = chrono::Utc::now().timestamp().saturating_add(offset);
            println!("{}", params.code_at(&secret, at));
            ExitCode::SUCCESS
        }
        Err(why) => {
            // Never echo the input: it holds the secret.
            eprintln!("error: {why}");
            ExitCode::from(output::EXIT_ERROR)
        }
    }
}

/// The parameters and secret of an `otpauth://totp/…` URI, or of a bare
/// base32 secret with the defaults.
fn parse(text: &str) -> Result<(TotpParams, Vec<u8>), &'static str> {
    let mut params = TotpParams::default();
    let Some(rest) = text.strip_prefix("otpauth://totp/") else {
        let secret = base32_decode(text).ok_or("not an otpauth://totp/ URI or a base32 secret")?;
        return Ok((params, secret));
    };
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let mut secret = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "secret" => secret = Some(base32_decode(value).ok_or("the secret is not base32")?),
            "algorithm" => {
                params.algorithm = Algorithm::parse(value).ok_or("unknown algorithm")?;
            }
            "digits" => {
                params.digits = value
                    .parse()
                    .ok()
                    .filter(|d| TotpParams::valid_digits(*d))
                    .ok_or("digits must be 6 or 8")?;
            }
            "period" => {
                params.period = value
                    .parse()
                    .ok()
                    .filter(|p| (1..=300).contains(p))
                    .ok_or("period must be 1-300 seconds")?;
            }
            _ => {}
        }
    }
    Ok((params, secret.ok_or("the URI has no secret")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parameters_of_the_uri() {
        let uri = "otpauth://totp/Tessera:a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=8&period=30";
        let (params, secret) = parse(uri).unwrap();
        assert_eq!(params.digits, 8);
        // RFC 6238's first SHA-1 vector: 94287082 at t = 59.
        assert_eq!(params.code_at(&secret, 59), "94287082");
        assert!(parse("otpauth://totp/x?algorithm=MD5&secret=GEZD").is_err());
        assert!(parse("not base32!").is_err());
    }
}
