//! Validation of the event stream's settings (`events.*`): how many streams
//! one process serves at once, and how often it looks for new events.

use std::time::Duration;

use super::layers::{at_most, err, number, positive_duration, ConfigError, Layers};

/// `GET /v1/events/stream`; see the README's "Event stream for gateways".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStreamSettings {
    /// Streams open at once in this process; one more is `503`.
    pub max_streams: usize,
    /// How often the process numbers and reads new outbox events while a
    /// stream is open: with the read itself, the delay from a commit to
    /// the event on the wire. At most 500 ms, so that delay stays well
    /// under a second.
    pub poll_interval: Duration,
    /// How often an open stream sends a keep-alive comment: a third of the
    /// connection idle timeout (`http.idle_timeout`, which closes a
    /// connection where no byte moves), at most 15 s. Derived, not set.
    pub keep_alive: Duration,
}

impl Default for EventStreamSettings {
    fn default() -> Self {
        Self {
            max_streams: 100,
            poll_interval: Duration::from_millis(250),
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// The longest poll interval: events must reach streams within a second.
const MAX_POLL: Duration = Duration::from_millis(500);
/// The shortest: below this the polling is only load on the database.
const MIN_POLL: Duration = Duration::from_millis(10);

/// A third of the idle timeout, within 100 ms..=15 s.
fn keep_alive(idle_timeout: Duration) -> Duration {
    (idle_timeout / 3).clamp(Duration::from_millis(100), Duration::from_secs(15))
}

pub(super) fn event_stream_settings(
    l: &Layers,
    idle_timeout: Duration,
) -> Result<EventStreamSettings, ConfigError> {
    let d = EventStreamSettings::default();
    let max_streams = match l.get("events.max_streams") {
        None => d.max_streams,
        Some((v, src)) => number(v.trim(), 1, 100_000).map_err(|m| err(src, m))?,
    };
    let poll_interval = l.parse("events.poll_interval", d.poll_interval, |v| {
        let p = at_most(positive_duration(v)?, MAX_POLL, "must be at most 500ms")?;
        if p < MIN_POLL {
            return Err("must be at least 10ms".into());
        }
        Ok(p)
    })?;
    Ok(EventStreamSettings {
        max_streams,
        poll_interval,
        keep_alive: keep_alive(idle_timeout),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::tests::load;

    #[test]
    fn defaults_file_and_environment() {
        assert_eq!(
            load(&[], None).unwrap().events,
            EventStreamSettings::default()
        );
        let c = load(
            &[("TESSERA_EVENTS_MAX_STREAMS", "3")],
            Some("[events]\npoll_interval = \"100ms\"\nmax_streams = 7\n"),
        )
        .unwrap();
        assert_eq!(c.events.max_streams, 3, "the environment wins");
        assert_eq!(c.events.poll_interval, Duration::from_millis(100));
        // Keep-alives stay well inside the idle timeout that would cut the stream.
        let c = load(&[("TESSERA_HTTP_IDLE_TIMEOUT", "3s")], None).unwrap();
        assert_eq!(c.events.keep_alive, Duration::from_secs(1));
        let c = load(&[("TESSERA_HTTP_IDLE_TIMEOUT", "1h")], None).unwrap();
        assert_eq!(c.events.keep_alive, Duration::from_secs(15));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("TESSERA_EVENTS_MAX_STREAMS", "0"),
            ("TESSERA_EVENTS_MAX_STREAMS", "many"),
            ("TESSERA_EVENTS_POLL_INTERVAL", "2s"),
            ("TESSERA_EVENTS_POLL_INTERVAL", "1ms"),
            ("TESSERA_EVENTS_POLL_INTERVAL", "0s"),
        ] {
            let e = load(&[(name, value)], None).unwrap_err();
            assert_eq!(e.source_name, name, "{value}: {e}");
        }
    }
}
