//! The engine's file boundary: how it reads what a model directory holds and how it writes outputs.
//!
//! - [`read_capped`]: configs, tokenizers and texts are read only if they are regular files (a FIFO
//!   would block forever, `/dev/zero` never ends) no larger than a cap well above real ones.
//! - [`confined`]: a file name a checkpoint gives (a shard in an index) is a relative path inside
//!   the model directory. Symlinks are followed: the HF cache stores snapshots as links to blobs.
//! - [`write_atomic`] / [`create_dir_atomic`]: outputs go to a temporary beside the final name and
//!   are renamed into place when complete; an interrupted run leaves the old output intact.
//!
//! Strings from files are escaped ([`crate::error::escape`]) before they reach a terminal.

use crate::error::{escape, Error, Result};
use std::io::{ErrorKind, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// config.json, generation_config.json, model.safetensors.index.json: released ones are under
/// 200 KB (a sharded 31B checkpoint's index is about 100 KB); 16 MiB is far above any real one.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// tokenizer.json: Gemma's is about 33 MB (262144 tokens and their merges); 8x that.
pub const MAX_TOKENIZER_BYTES: u64 = 256 << 20;
/// A text to score (`garnet perplexity`): wikitext-2's test set is 1.3 MB; 256 MiB is some 64M
/// tokens, days of scoring on a CPU.
pub const MAX_TEXT_BYTES: u64 = 256 << 20;

fn io_error(path: &Path, kind: ErrorKind, why: String) -> Error {
    Error::Io { path: path.to_path_buf(), err: std::io::Error::new(kind, why) }
}

/// The length of `path` if it is a regular file (symlinks followed), else a clear error: a
/// directory, FIFO, socket or device is refused before it is opened (opening a FIFO blocks).
pub fn regular_file(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Io { path: path.to_path_buf(), err: source })?;
    if meta.is_dir() {
        return Err(io_error(path, ErrorKind::InvalidInput, "is a directory, not a file".into()));
    }
    if !meta.is_file() {
        return Err(io_error(path, ErrorKind::InvalidInput, "is not a regular file (a FIFO, socket or device)".into()));
    }
    Ok(meta.len())
}

/// The bytes of the regular file `path`, if at most `cap` bytes (`what` names the file's role in
/// the error, e.g. "config").
pub fn read_capped(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    let too_big = |n: u64| {
        let why = format!("{what} file of {n} bytes or more exceeds the {} MiB limit", cap >> 20);
        io_error(path, ErrorKind::InvalidData, why)
    };
    let len = regular_file(path)?;
    if len > cap {
        return Err(too_big(len));
    }
    let io = |source| Error::Io { path: path.to_path_buf(), err: source };
    let file = std::fs::File::open(path).map_err(io)?;
    // The file may have grown since the check: read at most one byte past the cap.
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cap + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_text_capped(path: &Path, cap: u64, what: &str) -> Result<String> {
    String::from_utf8(read_capped(path, cap, what)?)
        .map_err(|e| io_error(path, ErrorKind::InvalidData, format!("{what} file is not UTF-8 ({})", e.utf8_error())))
}

/// `dir/name` for a file name a checkpoint gives, if `name` is a relative path without `..`
/// (absolute names and names reaching outside the directory are refused).
pub fn confined(dir: &Path, name: &str) -> std::result::Result<PathBuf, String> {
    let rel = Path::new(name);
    let inside = rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if name.is_empty() || !inside || rel.components().all(|c| c == Component::CurDir) {
        let why = "must be a relative path inside the model directory (no '..', not absolute)";
        return Err(format!("file name \"{}\" {why}", escape(name)));
    }
    Ok(dir.join(rel))
}

/// Temporaries being written; [`remove_temporaries`] deletes them when the process is interrupted.
static TEMPORARIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register(path: &Path, add: bool) {
    let mut t = TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner());
    if add {
        t.push(path.to_path_buf());
    } else {
        t.retain(|p| p != path);
    }
}

/// Deletes every temporary output still being written. For a signal handler (Ctrl-C) that then
/// exits: the old outputs stay as they were and no partial file is left behind.
pub fn remove_temporaries() {
    let t = TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner());
    for p in t.iter() {
        let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
    }
}

/// The directory `path` is in, and a temporary-name prefix (`.name.`) beside it.
fn beside(path: &Path) -> Result<(&Path, String)> {
    let name = path
        .file_name()
        .ok_or_else(|| io_error(path, ErrorKind::InvalidInput, "names no file (ends in '..' or is a root)".into()))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok((dir, format!(".{}.", name.to_string_lossy())))
}

/// Writes `path` atomically: `write` fills a temporary file in the same directory, which is
/// flushed, synced and renamed over `path` only if `write` succeeds. On any failure the old file
/// is untouched and the temporary removed.
pub fn write_atomic<E: From<Error>>(
    path: &Path,
    write: impl FnOnce(&mut (dyn Write + Send)) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let io = |source| Error::Io { path: path.to_path_buf(), err: source };
    let (dir, prefix) = beside(path)?;
    let tmp = tempfile::Builder::new().prefix(&prefix).suffix(".tmp").tempfile_in(dir).map_err(io)?;
    register(tmp.path(), true);
    let result = (|| -> std::result::Result<(), E> {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        write(&mut w)?;
        w.flush().map_err(io)?;
        drop(w);
        tmp.as_file().sync_all().map_err(io)?;
        Ok(())
    })();
    let tmp_path = tmp.path().to_path_buf();
    let result = result.and_then(|()| tmp.persist(path).map(drop).map_err(|e| E::from(io(e.error))));
    register(&tmp_path, false);
    result
}

/// Creates the directory `path` atomically: `fill` writes its files into a temporary directory
/// beside it, which is renamed to `path` when complete. An existing empty directory is replaced;
/// anything else at `path` is refused, not merged into or deleted. On failure the temporary is
/// removed.
pub fn create_dir_atomic<E: From<Error>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let io = |source| Error::Io { path: path.to_path_buf(), err: source };
    if std::fs::symlink_metadata(path).is_ok() && std::fs::remove_dir(path).is_err() {
        let why = "already exists and is not an empty directory (remove it or choose a new name)";
        return Err(io_error(path, ErrorKind::AlreadyExists, why.into()).into());
    }
    let (dir, prefix) = beside(path)?;
    let tmp = tempfile::Builder::new().prefix(&prefix).suffix(".tmp").tempdir_in(dir).map_err(io)?;
    register(tmp.path(), true);
    let result = fill(tmp.path());
    let tmp_path = tmp.path().to_path_buf();
    let result = result.and_then(|()| {
        std::fs::rename(&tmp_path, path).map_err(|e| E::from(io(e)))?;
        let _ = tmp.keep();
        Ok(())
    });
    register(&tmp_path, false);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confined_names() {
        let dir = Path::new("/models/m");
        assert_eq!(confined(dir, "a.safetensors").unwrap(), dir.join("a.safetensors"));
        assert_eq!(confined(dir, "sub/./b.safetensors").unwrap(), dir.join("sub/./b.safetensors"));
        for bad in ["/etc/passwd", "../x.safetensors", "a/../../b", "", ".", "./."] {
            assert!(confined(dir, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn failed_writes_leave_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"old").unwrap();
        let r: Result<()> = write_atomic(&path, |w| {
            w.write_all(b"partial").map_err(|source| Error::Io { path: path.clone(), err: source })?;
            Err(Error::Invalid("interrupted".into()))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomic::<Error>(&path, |w| {
            w.write_all(b"new").map_err(|source| Error::Io { path: path.clone(), err: source })
        })
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn directories_appear_complete_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        let r: Result<()> = create_dir_atomic(&out, |d| {
            std::fs::write(d.join("config.json"), "{}").unwrap();
            Err(Error::Invalid("interrupted".into()))
        });
        assert!(r.is_err() && !out.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        create_dir_atomic::<Error>(&out, |d| {
            std::fs::write(d.join("config.json"), "{}").unwrap();
            Ok(())
        })
        .unwrap();
        assert!(out.join("config.json").is_file());
        let again = create_dir_atomic::<Error>(&out, |_| Ok(())).unwrap_err();
        assert!(again.to_string().contains("already exists"), "{again}");
    }

    #[test]
    fn reads_refuse_fifos_devices_and_big_files() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 2048]).unwrap();
        assert!(read_capped(&big, 2048, "config").is_ok());
        let e = read_capped(&big, 1024, "config").unwrap_err().to_string();
        assert!(e.contains("exceeds"), "{e}");
        let e = read_capped(Path::new("/dev/zero"), 1024, "config").unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = read_capped(dir.path(), 1024, "config").unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        #[cfg(unix)]
        {
            let fifo = dir.path().join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
            if made {
                let e = read_capped(&fifo, 1024, "config").unwrap_err().to_string();
                assert!(e.contains("not a regular file"), "{e}");
            }
        }
    }
}
