//! Puts written outputs into place without ever replacing someone else's file, and keeps
//! private read-only copies of verified artifacts.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// `rename(from, to)` that fails with `AlreadyExists` instead of replacing `to`
/// (renameat2 RENAME_NOREPLACE), so two writers of one output cannot both "succeed".
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::other(format!("{} contains a NUL byte", p.display())))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths, relative to the working directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `sha256:<hex>` of a file's bytes.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// A unique temporary name beside `output` (same filesystem, so the rename is atomic).
pub fn temp_beside(output: &Path) -> std::io::Result<tempfile::TempPath> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(dir)?
        .into_temp_path())
}

/// Copy `from` (a file, or a directory tree of files and directories) to `to`, read-only,
/// inside a directory only this user can enter: nothing else can change the copy.
pub fn private_copy(from: &Path, parent: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))?;
    let name = from.file_name().unwrap_or(std::ffi::OsStr::new("artifact"));
    let to = parent.join(name);
    copy_tree(from, &to)?;
    Ok(to)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(from)?;
    if meta.is_dir() {
        std::fs::create_dir(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o555))?;
    } else if meta.is_file() {
        std::fs::copy(from, to)?;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o444))?;
    } else {
        return Err(std::io::Error::other(format!(
            "{} is neither a file nor a directory",
            from.display()
        )));
    }
    Ok(())
}

/// A private read-only copy of `artifact` whose fingerprint must be `verified` (what was
/// checked); the directory holding it goes away when the returned guard is dropped (after
/// [`release`]).
pub fn verified_copy(
    artifact: &Path,
    verified: &str,
    fingerprint: impl Fn(&Path) -> crate::error::Result<String>,
) -> crate::error::Result<(tempfile::TempDir, PathBuf)> {
    let io = |e: std::io::Error| crate::error::Error::Io {
        context: format!("making a private copy of {}", artifact.display()),
        source: e,
    };
    let dir = tempfile::Builder::new()
        .prefix("mab-verified-")
        .tempdir()
        .map_err(io)?;
    let copy = private_copy(artifact, dir.path()).map_err(io)?;
    let got = fingerprint(&copy)?;
    if got != verified {
        release(dir.path());
        return Err(crate::error::Error::input(
            artifact,
            format!("changed while it was verified ({verified} → {got}); nothing is published"),
        ));
    }
    Ok((dir, copy))
}

/// Make a private copy writable again so it can be removed.
pub fn release(copy: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if copy.is_dir() {
        let _ = std::fs::set_permissions(copy, std::fs::Permissions::from_mode(0o700));
        if let Ok(entries) = std::fs::read_dir(copy) {
            for e in entries.flatten() {
                release(&e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_rename_onto_the_same_output_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, out) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("out"),
        );
        std::fs::write(&a, "first").unwrap();
        std::fs::write(&b, "second").unwrap();
        super::rename_noreplace(&a, &out).unwrap();
        let e = super::rename_noreplace(&b, &out).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "first");
    }
}
