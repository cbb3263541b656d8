//! One process owns an SQLite store (SPEC 7): `hoist serve` and `hoist lambda` hold an exclusive
//! lock on `<file>.lock` while they run, and a second one on the same file refuses to start,
//! naming the first. The lock is the kernel's (`flock`), so it dies with its process, even
//! killed with -9: a restarted Hoist takes the store over at once. Commands that only read, or
//! that queue a job for the server to run (`hoist retry`, `hoist promote`, ...), take no lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::error::{Result, StoreError};

/// The lock, held while this value lives.
#[derive(Debug)]
pub struct Owner {
    _file: File,
}

/// The lock file of the store at `db`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the store at `db` for this process, or says which process has it.
pub fn own(db: &Path) -> Result<Owner> {
    let path = lock_path(db);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot open the lock file {}: {e} (Hoist needs to write beside the store file)",
                path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                "another process".to_string()
            } else {
                holder.to_string()
            };
            return Err(StoreError::InUse(format!(
                "{} is in use by {holder}: one Hoist serves an SQLite store at a time. Stop that one first, or use PostgreSQL ([store] url = \"postgres://...\") to run several replicas",
                db.display()
            )));
        }
        Err(TryLockError::Error(e)) => {
            return Err(StoreError::Unavailable(format!(
                "cannot lock {}: {e}",
                path.display()
            )));
        }
    }
    let what = std::env::args().take(2).collect::<Vec<_>>().join(" ");
    let holder = format!("pid {} ({what})", std::process::id());
    // Best effort: the lock, not this text, is what keeps a second process out.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.as_bytes()));
    Ok(Owner { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hoist.db");
        let first = own(&db).unwrap();
        let e = own(&db).unwrap_err().to_string();
        assert!(
            e.contains(&format!("in use by pid {}", std::process::id())),
            "{e}"
        );
        drop(first);
        own(&db).expect("free again");
    }
}
