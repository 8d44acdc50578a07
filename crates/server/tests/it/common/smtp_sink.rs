//! A tiny SMTP server for tests: plaintext only, accepts every sender and
//! recipient, records each message (and the AUTH user, if any) in memory.
//! It speaks just enough ESMTP for lettre: EHLO/HELO, AUTH PLAIN and LOGIN,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT; any number of concurrent connections
//! and messages per connection.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{tcp::OwnedWriteHalf, TcpListener, TcpStream},
    task::JoinHandle,
};

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The MAIL FROM path, without angle brackets.
    pub from: String,
    /// The RCPT TO paths, without angle brackets.
    pub to: Vec<String>,
    /// The raw DATA (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
    /// The user name decoded from AUTH PLAIN / AUTH LOGIN on that connection.
    pub auth_user: Option<String>,
}

/// One leaf of a MIME message: its media type and its decoded body.
#[derive(Debug, Clone)]
pub struct MailPart {
    /// Lower case, without parameters: `text/plain`, `text/html`.
    pub content_type: String,
    /// The body with its content transfer encoding (quoted-printable or
    /// base64) undone; line ends as sent (CRLF).
    pub body: String,
}

impl ReceivedMail {
    /// An unfolded header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(split_head(&self.data).0, name)
    }

    /// The leaf parts, in order: one for a single-part message, each
    /// alternative of a `multipart/alternative` one.
    pub fn parts(&self) -> Vec<MailPart> {
        let mut out = Vec::new();
        leaves(&self.data, &mut out);
        out
    }

    fn part(&self, content_type: &str) -> String {
        let parts = self.parts();
        let found = parts.iter().find(|p| p.content_type == content_type);
        match found {
            Some(part) => part.body.clone(),
            None => panic!("no {content_type} part in the mail: {:?}", parts),
        }
    }

    /// The decoded `text/plain` part (of a single-part or multipart message).
    pub fn text_part(&self) -> String {
        self.part("text/plain")
    }

    /// The decoded `text/html` part.
    pub fn html_part(&self) -> String {
        self.part("text/html")
    }

    /// The plain-text body: [`Self::text_part`].
    pub fn text(&self) -> String {
        self.text_part()
    }
}

/// An unfolded header's value in `head`, by case-insensitive name.
fn header_in(head: &str, name: &str) -> Option<String> {
    let mut unfolded: Vec<String> = Vec::new();
    for line in head.lines() {
        match unfolded.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => unfolded.push(line.to_string()),
        }
    }
    unfolded.into_iter().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// A parameter of a header value: `boundary` of `multipart/x; boundary="b"`.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (key, v) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Collects the leaf parts of the entity `data` (headers and body).
fn leaves(data: &str, out: &mut Vec<MailPart>) {
    let (head, body) = split_head(data);
    let content_type = header_in(head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let boundary = param(&content_type, "boundary").expect("multipart boundary");
        let delimiter = format!("--{boundary}");
        for chunk in body.split(delimiter.as_str()).skip(1) {
            if chunk.starts_with("--") {
                break; // the close delimiter
            }
            // The line break before a delimiter belongs to the delimiter.
            let chunk = chunk.strip_prefix("\r\n").unwrap_or(chunk);
            leaves(chunk.strip_suffix("\r\n").unwrap_or(chunk), out);
        }
        return;
    }
    let encoding = header_in(head, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => {
            let compact: String = body.split_whitespace().collect();
            STANDARD.decode(compact).expect("base64 body")
        }
        "quoted-printable" => decode_qp(body),
        _ => body.as_bytes().to_vec(),
    };
    out.push(MailPart {
        content_type: content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
}

fn split_head(data: &str) -> (&str, &str) {
    data.split_once("\r\n\r\n")
        .or_else(|| data.split_once("\n\n"))
        .unwrap_or((data, ""))
}

fn decode_qp(body: &str) -> Vec<u8> {
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes[i + 1..].starts_with(b"\r\n") => i += 3, // soft break
            b'=' if bytes[i + 1..].starts_with(b"\n") => i += 2,
            b'=' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("qp escape");
                out.push(u8::from_str_radix(hex, 16).expect("qp hex"));
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The running sink; stops accepting when dropped.
pub struct SmtpSink {
    port: u16,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    connections: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let port = listener.local_addr().expect("sink address").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (recorded, counter) = (mails.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    // A client hanging up mid-session is not the sink's concern.
                    let _ = session(stream, recorded).await;
                });
            }
        });
        SmtpSink {
            port,
            mails,
            connections,
            accept,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:PORT?tls=none`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// How many connections were accepted so far (to check pooling).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.mails.lock().unwrap().clone()
    }

    /// Polls until at least `n` messages arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "SMTP sink: expected {n} messages within {timeout:?}, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Reads one line without its line end; `None` at end of stream.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

fn decode_b64(s: &str) -> String {
    String::from_utf8_lossy(&STANDARD.decode(s.trim()).unwrap_or_default()).into_owned()
}

/// `<a@b> BODY=8BITMIME` → `a@b`.
fn path_of(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(start), Some(end)) if start < end => arg[start + 1..end].to_string(),
        _ => arg.split_whitespace().next().unwrap_or("").to_string(),
    }
}

async fn reply(w: &mut OwnedWriteHalf, text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes()).await?;
    w.flush().await
}

async fn session(stream: TcpStream, mails: Arc<Mutex<Vec<ReceivedMail>>>) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    reply(&mut w, "220 tessera-sink ESMTP ready\r\n").await?;
    let (mut auth_user, mut from, mut to) = (None::<String>, String::new(), Vec::new());
    while let Some(line) = read_line(&mut r).await? {
        let upper = line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or("");
        match verb {
            "EHLO" => reply(&mut w, "250-tessera-sink\r\n250 AUTH PLAIN LOGIN\r\n").await?,
            "HELO" => reply(&mut w, "250 tessera-sink\r\n").await?,
            "AUTH" if upper.starts_with("AUTH PLAIN") => {
                let mut arg = line[10..].trim().to_string();
                if arg.is_empty() {
                    reply(&mut w, "334 \r\n").await?;
                    arg = read_line(&mut r).await?.unwrap_or_default();
                }
                // authzid \0 authcid \0 password
                let decoded = decode_b64(&arg);
                auth_user = decoded.split('\0').nth(1).map(str::to_string);
                reply(&mut w, "235 2.7.0 authenticated\r\n").await?;
            }
            "AUTH" if upper.starts_with("AUTH LOGIN") => {
                let mut user = line[10..].trim().to_string();
                if user.is_empty() {
                    reply(&mut w, "334 VXNlcm5hbWU6\r\n").await?; // "Username:"
                    user = read_line(&mut r).await?.unwrap_or_default();
                }
                reply(&mut w, "334 UGFzc3dvcmQ6\r\n").await?; // "Password:"
                let _password = read_line(&mut r).await?;
                auth_user = Some(decode_b64(&user));
                reply(&mut w, "235 2.7.0 authenticated\r\n").await?;
            }
            "MAIL" if upper.starts_with("MAIL FROM:") => {
                from = path_of(&line[10..]);
                to.clear();
                reply(&mut w, "250 2.1.0 ok\r\n").await?;
            }
            "RCPT" if upper.starts_with("RCPT TO:") => {
                to.push(path_of(&line[8..]));
                reply(&mut w, "250 2.1.5 ok\r\n").await?;
            }
            "DATA" => {
                reply(&mut w, "354 end data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut data = String::new();
                loop {
                    let Some(l) = read_line(&mut r).await? else {
                        return Ok(());
                    };
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                mails.lock().unwrap().push(ReceivedMail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                    auth_user: auth_user.clone(),
                });
                reply(&mut w, "250 2.0.0 queued\r\n").await?;
            }
            "RSET" => {
                from.clear();
                to.clear();
                reply(&mut w, "250 2.0.0 ok\r\n").await?;
            }
            "NOOP" => reply(&mut w, "250 2.0.0 ok\r\n").await?,
            "QUIT" => {
                reply(&mut w, "221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => reply(&mut w, "502 5.5.2 command not recognized\r\n").await?,
        }
    }
    Ok(())
}
