//! A Server-Sent Events client for the event stream's tests: opens
//! `GET /v1/events/stream` as the admin, a client or anyone, and reads
//! messages as a gateway would (comments are keep-alives, an `id` without
//! data moves the client's position only).

use std::time::Duration;

use reqwest::StatusCode;

use super::{Reply, TestServer};

/// How a stream request authenticates.
#[derive(Clone, Copy)]
pub enum As<'a> {
    Admin,
    Bearer(&'a str),
    /// HTTP Basic: client id and secret.
    Client(&'a str, &'a str),
    Nobody,
}

/// One message: the fields it had.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub retry: Option<String>,
}

impl Message {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.data.as_deref().unwrap_or("null")).unwrap()
    }

    pub fn position(&self) -> i64 {
        self.id.as_deref().unwrap().parse().unwrap()
    }
}

/// An open stream.
pub struct Stream {
    res: reqwest::Response,
    buf: String,
    /// Keep-alive comments received so far.
    pub comments: usize,
}

/// `GET /v1/events/stream?{query}`: the open stream, or the refusal.
pub async fn open(
    s: &TestServer,
    who: As<'_>,
    query: &str,
    last_event_id: Option<&str>,
) -> Result<Stream, Reply> {
    let mut req = s.http.get(format!("{}/v1/events/stream?{query}", s.base));
    req = match who {
        As::Admin => req.bearer_auth(&s.admin),
        As::Bearer(token) => req.bearer_auth(token),
        As::Client(id, secret) => req.basic_auth(id, Some(secret)),
        As::Nobody => req,
    };
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let res = req.send().await.unwrap();
    if res.status() != StatusCode::OK {
        return Err(Reply::from(res).await);
    }
    let content_type = res.headers()["content-type"].to_str().unwrap();
    assert_eq!(content_type, "text/event-stream");
    Ok(Stream {
        res,
        buf: String::new(),
        comments: 0,
    })
}

/// [`open`], which must succeed.
pub async fn open_ok(s: &TestServer, who: As<'_>, query: &str, last: Option<&str>) -> Stream {
    match open(s, who, query, last).await {
        Ok(stream) => stream,
        Err(r) => panic!("the stream did not open: {} {}", r.status, r.text),
    }
}

impl Stream {
    /// The next message (keep-alives skipped), `None` when the stream ended
    /// or nothing came `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(block) = self.take_block() {
                match parse(&block) {
                    Some(message) => return Some(message),
                    None => {
                        self.comments += 1;
                        continue;
                    }
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(_) | Err(_) => return None,
            }
        }
    }

    /// The next message that carries an event (position-only ones skipped).
    pub async fn next_event(&mut self, within: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next(left).await?;
            if message.event.is_some() {
                return Some(message);
            }
        }
    }

    /// Every event until the stream ends (a stream with `timeout` or
    /// `max_events`), at most `within`.
    pub async fn rest(mut self, within: Duration) -> Vec<Message> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Some(m) => out.push(m),
                None => return out,
            }
        }
    }

    /// Whether the server ends the stream within `within` (what it sends
    /// before the end is read and dropped).
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.res.chunk()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None) | Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }

    fn take_block(&mut self) -> Option<String> {
        let end = self.buf.find("\n\n")?;
        let block = self.buf[..end].to_string();
        self.buf.drain(..end + 2);
        Some(block)
    }
}

/// A message's fields; `None` for a block of comments only.
fn parse(block: &str) -> Option<Message> {
    let mut m = Message::default();
    let mut any = false;
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_string();
        any = true;
        match field {
            "id" => m.id = Some(value),
            "event" => m.event = Some(value),
            "data" => m.data = Some(value),
            "retry" => m.retry = Some(value),
            other => panic!("unexpected SSE field {other:?}"),
        }
    }
    any.then_some(m)
}
