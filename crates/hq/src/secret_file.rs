//! Files holding HQ's secrets (the SNS signing key, the admin credential):
//! readable by HQ's user only. A new one is written with mode 0600 from its
//! first byte (a temporary file renamed into place, so no reader ever sees
//! it half-written or with a wider mode); an existing one with a wider mode
//! is tightened before it is read. The ledger, which holds the API keys'
//! digests, is kept so too ([`keep_private`]).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// The mode of every secret file: owner read and write.
pub const SECRET_MODE: u32 = 0o600;

/// Reads the secret file at `path`, first tightening its mode to
/// [`SECRET_MODE`] if group or others could read it.
pub fn read(path: &Path) -> io::Result<String> {
    tighten(path)?;
    fs::read_to_string(path)
}

/// Writes `text` to a new secret file at `path`, mode [`SECRET_MODE`],
/// replacing any file there.
pub fn write(path: &Path, text: &str) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let temporary = Path::new(&temporary);
    let written = create_private(temporary)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(temporary);
    }
    written
}

/// Keeps the file at `path` HQ's user's alone, as the ledger (it holds the
/// API keys' digests): made empty with mode [`SECRET_MODE`] if missing
/// (SQLite then gives its `-wal` and `-shm` files the same mode), tightened
/// if group or others could read it (a data directory that already existed
/// may be open to others), left as it is otherwise.
/// One HQ may use but not change the mode of (another user's, copied in
/// or restored) is left as it is, with a warning saying what to do: SQLite
/// works on it, and refusing to start would stop the fulfillment API.
pub fn keep_private(path: &Path) -> io::Result<()> {
    match create_private(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => match tighten(path) {
            Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                tracing::warn!(
                    path = %path.display(),
                    "file for HQ alone is another user's and others may read it; HQ cannot tighten it: chown it to HQ's user ({error})"
                );
                Ok(())
            }
            tightened => tightened,
        },
        Err(error) => Err(error),
    }
}

/// Creates `path`, which must not exist yet, with mode [`SECRET_MODE`].
#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SECRET_MODE)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Sets `path` to [`SECRET_MODE`] if group or others have any access to it.
#[cfg(unix)]
fn tighten(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(SECRET_MODE))?;
        tracing::warn!(path = %path.display(), "file for HQ alone was mode {mode:o}; tightened to {SECRET_MODE:o}");
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)] // a panic is a failed test
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn written_private_and_wider_ones_tightened_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write(&path, "first").unwrap();
        assert_eq!(mode(&path), SECRET_MODE);
        write(&path, "second").unwrap();
        assert_eq!(
            (read(&path).unwrap().as_str(), mode(&path)),
            ("second", SECRET_MODE)
        );
        // Only the file itself is left: no temporary beside it.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read(&path).unwrap(), "second");
        assert_eq!(mode(&path), SECRET_MODE);
    }
}
