//! Recognises the article's generated push script (`podman manifest create … docker-archive:…`)
//! and lists the image archives it would combine.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Scripts are small; anything larger is not the generated one.
const MAX_SCRIPT_BYTES: u64 = 1024 * 1024;

/// The script itself and the `docker-archive:` paths it names, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushScript {
    pub script: PathBuf,
    pub archives: Vec<PathBuf>,
}

/// `path` itself, or a script under `path/bin/` (a Nix `result` of writeShellScriptBin).
pub fn find(path: &Path) -> Option<PushScript> {
    if path.is_file() {
        return parse(path);
    }
    let mut entries: Vec<_> = std::fs::read_dir(path.join("bin"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries.iter().find_map(|p| parse(p))
}

fn parse(path: &Path) -> Option<PushScript> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_SCRIPT_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    if !text.starts_with("#!") || !text.contains("manifest create") {
        return None;
    }
    let archives: Vec<PathBuf> = text
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .filter_map(|word| word.strip_prefix("docker-archive:"))
        // `docker-archive:PATH[:REFERENCE]`
        .map(|rest| PathBuf::from(rest.split(':').next().unwrap_or(rest)))
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    (!archives.is_empty()).then(|| PushScript {
        script: path.to_path_buf(),
        archives,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_archives_of_a_manifest_create_call() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(
            bin.join("manifest"),
            "#!/bin/sh\nset -eu\npodman manifest create \"$1\" \\\n  docker-archive:/nix/store/a-img.tar.gz \\\n  'docker-archive:/nix/store/b-img.tar.gz:localhost/x:y'\npodman manifest push \"$1\"\n",
        )
        .unwrap();
        let found = find(dir.path()).unwrap();
        assert_eq!(
            found.archives,
            vec![
                PathBuf::from("/nix/store/a-img.tar.gz"),
                PathBuf::from("/nix/store/b-img.tar.gz")
            ]
        );
    }

    #[test]
    fn other_scripts_are_not_push_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run");
        std::fs::write(&p, "#!/bin/sh\nexec app \"$@\"\n").unwrap();
        assert!(find(&p).is_none());
    }
}
