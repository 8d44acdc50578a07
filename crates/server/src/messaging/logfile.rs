//! The development default sender: appends each message, code included, as a
//! readable block to `<data_dir>/messages.log` (mode 0600 on unix).
//!
//! This is on purpose the only place where a one-time code is written down:
//! with no SMTP server or SMS provider configured, a developer reads the code
//! here. Configure `SMTP_URL` / the SMS webhook in production so that no code
//! is ever kept on disk.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use super::message::{DeliveryError, MessageSender, OutboundMessage};

/// Appends messages to a local file; serves any channel.
#[derive(Debug)]
pub struct LogFileSender {
    path: PathBuf,
    /// Serialises appends from concurrent sends. Taken only on the blocking
    /// thread around the open-and-write, never across an `.await`.
    lock: Arc<Mutex<()>>,
    /// Set by the first write: the production warning is logged once per
    /// process, when a code is actually written here, not at every start.
    warned: AtomicBool,
}

impl LogFileSender {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: Arc::new(Mutex::new(())),
            warned: AtomicBool::new(false),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Keeps a header value on one line, so a crafted address or subject cannot
/// forge a block of its own in the file.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn render(msg: &OutboundMessage) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut block = format!(
        "----- {now} {channel}\nTo: {to}\n",
        channel = msg.channel.as_str(),
        to = one_line(&msg.to),
    );
    if msg.channel == super::message::Channel::Email {
        block.push_str(&format!("Subject: {}\n", one_line(&msg.subject)));
    }
    block.push('\n');
    block.push_str(msg.body.expose());
    if !block.ends_with('\n') {
        block.push('\n');
    }
    block.push('\n');
    block
}

/// Opens (creating with mode 0600) and appends `block` in one write.
fn append(path: &Path, block: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // An older file may have been created wider; it holds codes.
        let perms = file.metadata()?.permissions();
        if perms.mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        write_all(file, block)
    }
    #[cfg(not(unix))]
    write_all(options.open(path)?, block)
}

fn write_all(mut file: std::fs::File, block: &[u8]) -> std::io::Result<()> {
    file.write_all(block)?;
    file.flush()
}

#[async_trait::async_trait]
impl MessageSender for LogFileSender {
    fn kind(&self) -> &'static str {
        "log-file"
    }

    async fn send(&self, msg: &OutboundMessage) -> Result<(), DeliveryError> {
        let block = render(msg).into_bytes();
        let (path, lock) = (self.path.clone(), self.lock.clone());
        let result = tokio::task::spawn_blocking(move || {
            // A panicked writer leaves nothing half-guarded: the lock is only order.
            let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            append(&path, &block)
        })
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
        result.map_err(|e| DeliveryError::LogFile {
            path: self.path.display().to_string(),
            kind: e.kind(),
        })?;
        if !self.warned.swap(true, Ordering::Relaxed) {
            // Fine in development; in production it means codes never reach
            // users and sit in a file instead.
            tracing::warn!(
                path = %self.path.display(),
                "one-time codes go to the development message log, not to users; \
                 set SMTP_URL (e-mail) and TESSERA_SMS_WEBHOOK_URL (SMS) in production"
            );
        }
        tracing::info!(
            channel = msg.channel.as_str(),
            path = %self.path.display(),
            "one-time code written to the development message log"
        );
        Ok(())
    }
}
