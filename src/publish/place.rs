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
        // Read-only, keeping whether it is executable: the copy is what gets verified.
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o555
        } else {
            0o444
        };
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    } else {
        return Err(std::io::Error::other(format!(
            "{} is neither a file nor a directory",
            from.display()
        )));
    }
    Ok(())
}

/// A private read-only copy of `artifact`, made before anything is checked so that what is
/// verified, fingerprinted and handed to the gated command is this one copy; the directory
/// holding it goes away when the returned guard is dropped (after [`release`]).
pub fn verified_copy(artifact: &Path) -> crate::error::Result<(VerifiedCopy, PathBuf)> {
    let io = |e: std::io::Error| crate::error::Error::Io {
        context: format!("making a private copy of {}", artifact.display()),
        source: e,
    };
    let dir = tempfile::Builder::new()
        .prefix("mab-verified-")
        .tempdir()
        .map_err(io)?;
    match private_copy(artifact, dir.path()) {
        Ok(copy) => Ok((VerifiedCopy(dir), copy)),
        Err(e) => {
            release(dir.path());
            Err(io(e))
        }
    }
}

/// The directory of a private copy: made writable again and removed when dropped, on every
/// path out of the gate (its read-only directories would otherwise outlive it).
pub struct VerifiedCopy(tempfile::TempDir);

impl VerifiedCopy {
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for VerifiedCopy {
    fn drop(&mut self) {
        release(self.0.path());
    }
}

/// Reports of the private copy name the artifact the user gave: `copy` becomes `original`
/// in every artifact's paths and in what its checks say.
pub fn relabel(artifacts: &mut [crate::report::Artifact], copy: &Path, original: &Path) {
    let (from, to) = (copy.display().to_string(), original.display().to_string());
    let fix = |s: &mut String| {
        if s.contains(&from) {
            *s = s.replace(&from, &to);
        }
    };
    for a in artifacts {
        fix(&mut a.path);
        fix(&mut a.resolved_path);
        if let Some(subject) = &mut a.subject {
            fix(&mut subject.input);
        }
        if let Some(closure) = &mut a.closure {
            if let Ok(rest) = closure.root.dir.strip_prefix(copy) {
                closure.root.dir = original.join(rest);
            }
            for lib in &mut closure.libraries {
                fix(&mut lib.needed_by);
                lib.searched.iter_mut().for_each(&fix);
                for f in lib.found.iter_mut().chain(lib.rejected.iter_mut()) {
                    fix(&mut f.guest_path);
                }
            }
            if let Some(l) = &mut closure.loader {
                fix(&mut l.path);
                if let Some(f) = &mut l.found {
                    fix(&mut f.guest_path);
                }
            }
        }
        for c in &mut a.checks {
            fix(&mut c.message);
            for f in [&mut c.expected, &mut c.found, &mut c.location, &mut c.hint]
                .into_iter()
                .flatten()
            {
                fix(f);
            }
        }
    }
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
