//! Lays out what a run of an image needs in a private directory: its directories, its
//! symlinks (absolute targets made relative, so the host's files can never answer for them)
//! and the binaries spilled while the layers were read.

use super::ImageError;
use super::view::{Node, View};
use std::path::Path;

pub fn materialize(view: &View, spill: &Path, dest: &Path) -> Result<(), ImageError> {
    let io = |p: &Path, e: std::io::Error| ImageError::io(p, e);
    for (path, node) in &view.nodes {
        let target = dest.join(path.trim_start_matches('/'));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        match node {
            Node::Dir => std::fs::create_dir_all(&target).map_err(|e| io(&target, e))?,
            Node::Symlink(link) => {
                let relative = relative_target(path, link);
                std::os::unix::fs::symlink(&relative, &target).map_err(|e| io(&target, e))?;
            }
            Node::File {
                facts: Some(facts),
                executable,
                ..
            } => {
                let from = spill.join(facts.sha256());
                if from.is_file() {
                    std::fs::copy(&from, &target).map_err(|e| io(&target, e))?;
                    let mode = if *executable { 0o755 } else { 0o644 };
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                        .map_err(|e| io(&target, e))?;
                }
            }
            Node::File { .. } => {}
        }
    }
    Ok(())
}

/// `/lib64/ld64.so.2 -> /lib/x/ld64.so.2` becomes `../lib/x/ld64.so.2`.
fn relative_target(link_path: &str, target: &str) -> String {
    if !target.starts_with('/') {
        return target.to_string();
    }
    let depth = link_path.trim_start_matches('/').matches('/').count();
    let up = "../".repeat(depth);
    let rest = target.trim_start_matches('/');
    if up.is_empty() {
        format!("./{rest}")
    } else {
        format!("{up}{rest}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn absolute_links_become_relative_to_their_directory() {
        assert_eq!(
            super::relative_target("/lib64/ld64.so.2", "/lib/x/ld64.so.2"),
            "../lib/x/ld64.so.2"
        );
        assert_eq!(super::relative_target("/bin", "/usr/bin"), "./usr/bin");
        assert_eq!(super::relative_target("/a/b", "c"), "c");
    }
}
