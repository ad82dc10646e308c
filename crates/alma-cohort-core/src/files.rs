//! Files the tool writes hold patron data (IDs, names, emails) and the journal: on Unix they are
//! private to the account running it — folders `0700`, files `0600` — whatever the umask. On other
//! systems the platform's defaults apply (SECURITY.md).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Unix permission bits for the folders we make.
pub const DIR_MODE: u32 = 0o700;
/// Unix permission bits for the files we write.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parents, each new one private. An existing folder is left as it
/// is (`doctor` says when it is readable by others).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Opens `path` for writing (created or truncated), private.
pub fn create(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    make_private(path)?;
    Ok(file)
}

/// Creates `path` empty and private if it does not exist (e.g. the journal, before SQLite opens it:
/// SQLite gives its -wal and -shm files the database file's permissions); an existing file is
/// left untouched.
pub fn touch(path: &Path) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path`, private.
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    use std::io::Write;
    let mut file = create(path)?;
    file.write_all(bytes.as_ref())?;
    file.sync_all()
}

/// Takes group and other permissions off a file that existed before (mode bits of a new file are
/// already private; an old one keeps its own until it is rewritten).
fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The sha256 of `bytes` in hex: the content hash the journal records for a query file and a
/// list file.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The permission bits of `path` that let group or others in (Unix), e.g. `0o055`; 0 elsewhere.
pub fn open_to_others(path: &Path) -> io::Result<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o077)
    }
    #[cfg(not(unix))]
    {
        let _ = std::fs::metadata(path)?;
        Ok(0)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folders_and_files_are_private_and_old_files_become_so() {
        let base = std::env::temp_dir().join(format!("files-{}", std::process::id()));
        let dir = base.join("state/runs/r1");
        create_dir(&dir).unwrap();
        assert_eq!((mode(&dir), mode(&base.join("state"))), (0o700, 0o700));
        let f = dir.join("cohort.csv");
        write(&f, "primary_id\n").unwrap();
        assert_eq!(mode(&f), 0o600);
        let old = dir.join("report.md");
        std::fs::write(&old, "x").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(open_to_others(&old).unwrap(), 0o044);
        write(&old, "y").unwrap();
        assert_eq!((mode(&old), open_to_others(&old).unwrap()), (0o600, 0));
        let j = dir.join("journal.sqlite");
        touch(&j).unwrap();
        touch(&j).unwrap();
        assert_eq!(mode(&j), 0o600);
        std::fs::remove_dir_all(base).unwrap();
    }
}
