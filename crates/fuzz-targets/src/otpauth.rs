//! TOTP parameters and `otpauth://` URIs: the issuer and account name come
//! from the enrolment request, algorithm and digits from configuration.

use tessera_core::mfa::totp::{
    base32_decode, base32_encode, otpauth_uri, Algorithm, TotpParams, PERIOD_SECS,
};

/// Input: one byte choosing algorithm and digits, one for the time, then
/// `issuer\naccount\nsecret`. The URI must be plain ASCII and give back
/// exactly what went in; base32 must round-trip; codes must be accepted at
/// the time they were made for.
pub fn otpauth(data: &[u8]) {
    let text = crate::text(data);
    if let Some(a) = Algorithm::parse(&text) {
        assert_eq!(Algorithm::parse(a.as_str()), Some(a));
    }
    if let Some(decoded) = base32_decode(&text) {
        assert_eq!(base32_decode(&base32_encode(&decoded)), Some(decoded));
    }
    let [choice, time, rest @ ..] = data else {
        return;
    };
    let params = TotpParams {
        algorithm: [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512][usize::from(choice % 3)],
        digits: if choice & 4 == 0 { 6 } else { 8 },
        period: PERIOD_SECS,
    };
    let rest = crate::text(rest);
    let mut parts = rest.splitn(3, '\n');
    let issuer = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    let secret = parts.next().unwrap_or_default().as_bytes();
    check_uri(issuer, account, secret, &params);

    // Any time from 1970 to about 2100, steps apart.
    let now = i64::from(*time) * 15_485_863 + i64::from(*choice);
    let code = params.code_at(secret, now);
    assert_eq!(code.len(), params.digits as usize);
    assert!(params.matching_step(secret, &code, now).is_some());
    assert!(params.accepted_until(params.step_at(now)) >= now);
    // The presented code is the fuzzer's too: any text must be handled.
    if let Some(step) = params.matching_step(secret, issuer, now) {
        assert!((step - params.step_at(now)).abs() <= 1);
    }
}

fn check_uri(issuer: &str, account: &str, secret: &[u8], params: &TotpParams) {
    let uri = otpauth_uri(issuer, account, secret, params);
    assert!(uri.bytes().all(|b| b.is_ascii_graphic()), "{uri}");
    let rest = uri.strip_prefix("otpauth://totp/").expect("scheme");
    let (label, query) = rest.split_once('?').expect("a query");
    let (label_issuer, label_account) = label.split_once(':').expect("issuer:account");
    assert_eq!(percent_decode(label_issuer), issuer.as_bytes());
    assert_eq!(percent_decode(label_account), account.as_bytes());
    let fields: Vec<(&str, &str)> = query
        .split('&')
        .map(|kv| kv.split_once('=').expect("key=value"))
        .collect();
    let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, ["secret", "issuer", "algorithm", "digits", "period"]);
    assert_eq!(base32_decode(fields[0].1).as_deref(), Some(secret));
    assert_eq!(percent_decode(fields[1].1), issuer.as_bytes());
    assert_eq!(Algorithm::parse(fields[2].1), Some(params.algorithm));
    assert_eq!(fields[3].1, params.digits.to_string());
    assert_eq!(fields[4].1, params.period.to_string());
}

/// RFC 3986 percent-decoding; panics on a malformed escape, which the
/// encoder must never produce.
fn percent_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: String = bytes.by_ref().take(2).map(char::from).collect();
            out.push(u8::from_str_radix(&hex, 16).expect("a %XX escape"));
        } else {
            assert!(
                b.is_ascii_alphanumeric() || b"-._~".contains(&b),
                "unescaped {b}"
            );
            out.push(b);
        }
    }
    out
}
