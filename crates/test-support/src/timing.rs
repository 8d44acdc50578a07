//! Measuring "within one second" the same way in every test that promises
//! it (revocation everywhere, the replicas' acceptance run): probe until
//! the change is seen, print the time, and assert the bound.

use std::{
    fmt::Debug,
    future::Future,
    time::{Duration, Instant},
};

/// Probes until `done`; asserts it happened within one second of `since`,
/// prints how long it took and returns it. Gives up (failing) after 3 s,
/// showing the last probe's answer.
pub async fn within_a_second<T: Debug, F: Future<Output = T>>(
    what: &str,
    since: Instant,
    mut probe: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> Duration {
    loop {
        let got = probe().await;
        let waited = since.elapsed();
        if done(&got) {
            eprintln!("{what}: {} ms", waited.as_millis());
            assert!(waited < Duration::from_secs(1), "{what} took {waited:?}");
            return waited;
        }
        assert!(
            waited < Duration::from_secs(3),
            "{what}: not seen after {waited:?}; last {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
