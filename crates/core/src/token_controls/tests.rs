use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ip_networks_parse_strictly() {
    for good in [
        "10.0.0.0/8",
        "192.0.2.7",
        "2001:db8::/32",
        "::/0",
        "0.0.0.0/0",
        "::1",
    ] {
        assert!(IpNet::parse(good).is_some(), "{good}");
    }
    for bad in [
        "10.1.2.3/8",
        "10.0.0.0/33",
        "10.0.0.0/08",
        "10.0.0.0/+8",
        "10.0.0.0/",
        " 10.0.0.0/8",
        "010.0.0.1",
        "fe80::1%eth0",
        "2001:db8::1/32",
        "example.com",
        "",
        "::ffff:10.0.0.0/8",
    ] {
        assert!(IpNet::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn mapped_networks_become_ipv4() {
    let n = IpNet::parse("::ffff:10.0.0.0/104").unwrap();
    assert_eq!(n.to_string(), "10.0.0.0/8");
    assert_eq!(
        IpNet::parse("::ffff:192.0.2.7").unwrap().to_string(),
        "192.0.2.7/32"
    );
    assert!(n.contains(ip("::ffff:10.9.8.7")));
    assert!(n.contains(ip("10.9.8.7")));
}

#[test]
fn deny_wins_and_lists_need_an_address() {
    let allow = parse_ip_list("ip_allow", &["10.0.0.0/8", "2001:db8::/32"]).unwrap();
    let deny = parse_ip_list("ip_deny", &["10.1.0.0/16"]).unwrap();
    assert!(ip_allowed(&allow, &deny, Some(ip("10.2.3.4"))));
    assert!(!ip_allowed(&allow, &deny, Some(ip("10.1.3.4"))));
    assert!(ip_allowed(&allow, &deny, Some(ip("2001:db8::7"))));
    assert!(!ip_allowed(&allow, &deny, Some(ip("2001:db9::7"))));
    assert!(!ip_allowed(&allow, &deny, None));
    assert!(ip_allowed(&[], &deny, Some(ip("192.0.2.1"))));
    assert!(ip_allowed(&[], &[], None));
}

#[test]
fn ip_lists_are_bounded_and_deduplicated() {
    let many: Vec<String> = (0..=MAX_IP_ENTRIES)
        .map(|i| format!("10.0.{}.0/24", i % 256))
        .collect();
    assert!(parse_ip_list("ip_allow", &many).is_err());
    let twice = parse_ip_list("ip_allow", &["10.0.0.0/8", "10.0.0.0/8"]).unwrap();
    assert_eq!(twice.len(), 1);
    let err = parse_ip_list("ip_allow", &["10.0.0.0/8", "bogus"]).unwrap_err();
    assert!(err.to_string().contains("entry 2"));
    assert!(!err.to_string().contains("bogus"));
}

#[test]
fn periods() {
    assert_eq!(Period::parse("1m").unwrap().seconds(), 60);
    assert_eq!(Period::parse("90s").unwrap().to_string(), "90s");
    assert_eq!(Period::parse("120s").unwrap().to_string(), "2m");
    assert_eq!(Period::parse("24h").unwrap().to_string(), "1d");
    assert_eq!(Period::parse("999d").unwrap().seconds(), 999 * 86_400);
    assert_eq!(Period::parse("99999999s").unwrap().seconds(), 99_999_999);
    for bad in [
        "", "m", "0m", "01m", "1w", "-1m", "1.5h", "1000d", "10000h", "1 m", "1é",
    ] {
        assert!(Period::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn every_period_shows_as_text_that_parses_back() {
    for text in [
        "708240m",
        "99999999s",
        "999999m",
        "9999h",
        "999d",
        "86400s",
        "1440m",
    ] {
        let p = Period::parse(text).unwrap();
        let shown = p.to_string();
        assert_eq!(Period::parse(&shown), Some(p), "{text} -> {shown}");
    }
    // 11804h would not parse (4 digits of hours at most): minutes it is.
    assert_eq!(Period::parse("708240m").unwrap().to_string(), "708240m");
    assert_eq!(Period::parse("2880m").unwrap().to_string(), "2d");
}

#[test]
fn ratelimits_are_checked() {
    let l = |name: &str, limit: i64, burst: Option<i64>| RateLimitSpec {
        name: name.into(),
        limit,
        period: Period::parse("1m").unwrap(),
        burst,
    };
    assert!(validate_ratelimits(vec![l("default", 100, None), l("burst-1", 5, Some(10))]).is_ok());
    assert!(validate_ratelimits(vec![l("Default", 1, None)]).is_err());
    assert!(validate_ratelimits(vec![l(&"a".repeat(33), 1, None)]).is_err());
    assert!(validate_ratelimits(vec![l("a", 1, None), l("a", 2, None)]).is_err());
    assert!(validate_ratelimits(vec![l("a", 0, None)]).is_err());
    assert!(validate_ratelimits(vec![l("a", 1, Some(0))]).is_err());
    // What the rate-limit engine cannot hold is refused, never accepted
    // and then skipped (which would leave the token unlimited).
    let big = 1_000_000_000;
    assert!(validate_ratelimits(vec![l("a", big, Some(big))]).is_ok());
    assert!(validate_ratelimits(vec![l("a", big + 1, None)]).is_err());
    assert!(validate_ratelimits(vec![l("a", 1, Some(big + 1))]).is_err());
    let over = |period: &str, limit: i64, burst: Option<i64>| RateLimitSpec {
        period: Period::parse(period).unwrap(),
        ..l("a", limit, burst)
    };
    assert!(validate_ratelimits(vec![over("366d", 10, None)]).is_ok());
    assert!(validate_ratelimits(vec![over("367d", 10, None)]).is_err());
    assert!(validate_ratelimits(vec![over("99999999s", 10, None)]).is_err());
    // A burst of 10^9 at one a day would take millennia to refill: it is
    // capped at about 35 years of the rate (13,031 days' worth).
    assert!(validate_ratelimits(vec![over("1d", 1, Some(big))]).is_ok());
    let capped = over("1d", 1, Some(big)).rule().unwrap();
    assert!((13_000..13_100).contains(&capped.burst()), "{capped:?}");
    for ok in [
        l("a", 100, None),
        over("366d", big, Some(big)),
        over("1s", 1, Some(5)),
    ] {
        assert!(ok.rule().is_some(), "{ok:?}");
    }
    let parsed: RateLimitSpec =
        serde_json::from_str(r#"{"name":"a","limit":3,"period":"1h"}"#).unwrap();
    assert_eq!(parsed.period.seconds(), 3600);
    assert!(
        serde_json::from_str::<RateLimitSpec>(r#"{"name":"a","limit":3,"period":"1y"}"#).is_err()
    );
}

#[test]
fn cost_and_device_ids() {
    assert!(validate_cost("cost", 1).is_ok());
    assert!(validate_cost("cost", 1000).is_ok());
    assert!(validate_cost("cost", 1001).is_err());
    assert!(validate_cost("cost", 0).is_err());
    assert!(validate_device_id("phone-1").is_ok());
    assert!(validate_device_id("").is_err());
    assert!(validate_device_id(&"x".repeat(201)).is_err());
    assert!(validate_device_id("a\nb").is_err());
}

#[test]
fn credits_refill_sets_the_balance_back() {
    let t0 = Utc::now();
    let refill = Refill {
        amount: 10,
        interval: Period::parse("1h").unwrap(),
    };
    let mut c = Credits::new(10, Some(refill), t0).unwrap();
    c.remaining = 2;
    assert_eq!(c.at(t0 + Duration::minutes(59)), (2, t0));
    assert_eq!(
        c.at(t0 + Duration::minutes(150)),
        (10, t0 + Duration::hours(2))
    );
    assert!(Credits::new(-1, None, t0).is_err());
    assert!(Credits::new(
        1,
        Some(Refill {
            amount: 0,
            ..refill
        }),
        t0
    )
    .is_err());
}

#[test]
fn controls_round_trip_as_json() {
    let c = TokenControls {
        ip_allow: parse_ip_list("ip_allow", &["10.0.0.0/8"]).unwrap(),
        ip_deny: vec![],
        device_binding: DeviceBinding::FirstUse,
        ratelimits: vec![],
    };
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<TokenControls>(&text).unwrap(), c);
    assert!(!c.is_empty());
    assert!(TokenControls::default().is_empty());
    assert_eq!(
        serde_json::from_str::<TokenControls>("{}").unwrap(),
        TokenControls::default()
    );
}
