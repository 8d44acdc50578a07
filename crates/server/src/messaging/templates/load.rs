//! The operator's templates from `TESSERA_TEMPLATES_DIR`, read and checked
//! once at start-up: `<dir>/<locale>/<kind>.subject|.txt|.html`. Every
//! problem stops start-up with the setting and the file named, so a typo in a
//! placeholder is found by the operator, not by a user's broken e-mail.
//!
//! Names starting with `.` are skipped: editors' swap files, and the `..data`
//! links Kubernetes puts in a mounted ConfigMap.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
};

use super::{
    builtin, locale,
    placeholders::{self, Piece},
    Locales, MessageKind, Part, Parts, TEMPLATES_DIR_VAR,
};

/// The largest template file read; a larger one is refused.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Why the templates cannot be used. The message names the file and the
/// problem, never the file's content beyond a placeholder's name.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct TemplateError {
    /// `TESSERA_TEMPLATES_DIR` or `TESSERA_DEFAULT_LOCALE`.
    pub setting: &'static str,
    pub message: String,
}

fn refuse(path: &Path, why: impl std::fmt::Display) -> TemplateError {
    TemplateError {
        setting: TEMPLATES_DIR_VAR,
        message: format!("{}: {why}", path.display()),
    }
}

const LAYOUT: &str = "expected one directory per language tag (such as en, pt-BR or es) \
     holding <kind>.subject, <kind>.txt and <kind>.html, kind one of auth_code, \
     password_reset, email_verification, password_changed";

/// One override file, read and checked.
struct Override {
    locale: String,
    kind: MessageKind,
    part: Part,
    content: String,
    path: PathBuf,
}

/// Reads every override in `dir` and applies it to `locales`.
pub(super) fn apply_dir(dir: &Path, locales: &mut Locales) -> Result<(), TemplateError> {
    let mut found = Vec::new();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (name, path) in entries(dir)? {
        let is_dir = std::fs::metadata(&path)
            .map_err(|e| refuse(&path, format_args!("cannot read: {e}")))?
            .is_dir();
        let tag = locale::canonical(&name)
            .filter(|_| is_dir)
            .ok_or_else(|| refuse(&path, format_args!("unknown file ({LAYOUT})")))?;
        if let Some(other) = seen.insert(tag.clone(), path.clone()) {
            let why = format!("{} is the same language; keep one", other.display());
            return Err(refuse(&path, why));
        }
        for (file_name, file) in entries(&path)? {
            let (kind, part) = parse_name(&file_name)
                .ok_or_else(|| refuse(&file, format_args!("unknown file name ({LAYOUT})")))?;
            let content = read(&file)?;
            validate(kind, part, &content).map_err(|why| refuse(&file, why))?;
            found.push(Override {
                locale: tag.clone(),
                kind,
                part,
                content,
                path: file,
            });
        }
    }
    merge(found, locales)
}

/// The entries of `dir` by name, in order, without dot files.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, TemplateError> {
    let cannot = |e: std::io::Error| refuse(dir, format_args!("cannot read the directory: {e}"));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let path = entry.map_err(cannot)?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| refuse(&path, "the file name is not UTF-8"))?
            .to_string();
        if !name.starts_with('.') {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

/// `password_reset.txt` → (PasswordReset, Text).
fn parse_name(name: &str) -> Option<(MessageKind, Part)> {
    let (stem, extension) = name.split_once('.')?;
    let kind = MessageKind::ALL.into_iter().find(|k| k.as_str() == stem)?;
    let part = Part::ALL.into_iter().find(|p| p.extension() == extension)?;
    Some((kind, part))
}

/// The file as UTF-8 text, without a final line end or byte order mark.
fn read(path: &Path) -> Result<String, TemplateError> {
    let cannot = |e: std::io::Error| refuse(path, format_args!("cannot read: {e}"));
    // Checked before opening: opening a FIFO would block start-up.
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(refuse(path, format_args!("is not a file ({LAYOUT})")));
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(refuse(
            path,
            format_args!("is larger than {} KiB", MAX_FILE_BYTES / 1024),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| refuse(path, "is not UTF-8 text"))?;
    Ok(builtin::trim_end(&text).to_string())
}

/// Whether `content` is a usable `part` of a `kind` template: not empty, a
/// one-line subject, every `{` closed, only the kind's placeholders, and the
/// code or link in both bodies. The error is the reason, for the operator.
pub(super) fn validate(kind: MessageKind, part: Part, content: &str) -> Result<(), String> {
    if content.trim().is_empty() {
        return Err("is empty".into());
    }
    if part == Part::Subject && content.chars().any(char::is_control) {
        return Err("a subject must be one line, without control characters".into());
    }
    let pieces = placeholders::pieces(content).map_err(|u| {
        format!(
            "has an unclosed '{{' on line {} (a placeholder is {{name}}; write {{{{ for a literal '{{')",
            u.line
        )
    })?;
    let allowed = kind.placeholders();
    for piece in &pieces {
        if let Piece::Placeholder(name) = piece {
            if !allowed.contains(name) {
                let list: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
                return Err(format!(
                    "has the placeholder {{{}}}, which {} templates cannot use (they can use {})",
                    name.escape_debug(),
                    kind.as_str(),
                    list.join(", ")
                ));
            }
        }
    }
    match kind.required() {
        Some(name) if part != Part::Subject && !pieces.contains(&Piece::Placeholder(name)) => {
            Err(format!("must contain {{{name}}}"))
        }
        _ => Ok(()),
    }
}

/// Applies the overrides: a part of a built-in locale replaces that part;
/// a language the set lacks needs all three parts of each kind it has (the
/// kinds it lacks come from the default locale when rendering).
fn merge(found: Vec<Override>, locales: &mut Locales) -> Result<(), TemplateError> {
    type Partial = (PathBuf, [Option<String>; 3]);
    let mut added: BTreeMap<(String, MessageKind), Partial> = BTreeMap::new();
    for o in found {
        if let Some(parts) = locales.get_mut(&o.locale).and_then(|k| k.get_mut(&o.kind)) {
            *parts.part_mut(o.part) = Cow::Owned(o.content);
            continue;
        }
        let dir = o.path.parent().unwrap_or(Path::new("")).to_path_buf();
        let entry = added
            .entry((o.locale, o.kind))
            .or_insert_with(|| (dir, Default::default()));
        entry.1[o.part as usize] = Some(o.content);
    }
    for ((tag, kind), (dir, parts)) in added {
        if let Some(missing) = Part::ALL.into_iter().find(|&p| parts[p as usize].is_none()) {
            let file = dir.join(format!("{}.{}", kind.as_str(), missing.extension()));
            return Err(refuse(
                &file,
                format_args!(
                    "is missing: {tag} is not a built-in language, so each message it \
                     overrides needs its .subject, .txt and .html"
                ),
            ));
        }
        let [subject, text, html] = parts.map(|p| Cow::Owned(p.unwrap_or_default()));
        let parts = Parts {
            subject,
            text,
            html,
        };
        locales.entry(tag).or_default().insert(kind, parts);
    }
    Ok(())
}
