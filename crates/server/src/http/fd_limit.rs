//! Raises the process's open-file limit at start-up: every connection is a
//! file descriptor, and the usual soft limit (often 1024) would let a few
//! hundred idle clients exhaust it. Also the basis of the default cap on
//! connections.

/// The soft limit on open files after raising it to the hard limit where
/// allowed, or `None` where the platform has no such limit or it cannot be
/// read. Safe to call more than once.
#[cfg(unix)]
pub fn raise() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!("cannot read the open-file limit (RLIMIT_NOFILE)");
        return None;
    }
    let before = lim.rlim_cur;
    if lim.rlim_max > before {
        lim.rlim_cur = lim.rlim_max;
        // May be refused, e.g. on macOS when the hard limit is "unlimited".
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            tracing::warn!(
                soft = before,
                hard = lim.rlim_max,
                "cannot raise the open-file limit; keeping the soft limit"
            );
            return Some(before);
        }
    }
    tracing::info!(
        before = before,
        soft = lim.rlim_cur,
        hard = lim.rlim_max,
        "open-file limit (RLIMIT_NOFILE)"
    );
    Some(lim.rlim_cur)
}

#[cfg(not(unix))]
pub fn raise() -> Option<u64> {
    None
}

/// The connection cap when none is configured: 80 % of the open-file limit
/// (the rest is for the database pool, Redis, webhooks, logs and the
/// connections being shed), at most 10,000; 4096 when the limit is unknown.
pub fn default_max_connections(soft_limit: Option<u64>) -> usize {
    match soft_limit {
        Some(n) => (n.saturating_mul(4) / 5).clamp(1, 10_000) as usize,
        None => 4096,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_room_and_is_bounded() {
        assert_eq!(default_max_connections(Some(1024)), 819);
        assert_eq!(default_max_connections(Some(1_048_576)), 10_000);
        assert_eq!(default_max_connections(Some(1)), 1);
        assert_eq!(default_max_connections(None), 4096);
    }

    #[test]
    fn raising_is_idempotent() {
        let first = raise();
        assert_eq!(raise(), first);
    }
}
