use super::*;

#[test]
fn only_blob_paths_name_a_digest() {
    let hex = "a".repeat(64);
    assert_eq!(
        digest_named_by(&format!("blobs/sha256/{hex}")),
        Some(format!("sha256:{hex}"))
    );
    assert_eq!(digest_named_by(&format!("{hex}/layer.tar")), None);
    assert_eq!(digest_named_by("blobs/sha256/abc"), None);
    assert_eq!(
        digest_named_by(&format!("blobs/sha256/{}", "A".repeat(64))),
        None
    );
}

/// A real layer: a tar holding the host's `/bin/ls` (a binary with facts) and a text file.
fn layer() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let ls = std::fs::read("/bin/ls").unwrap();
    for (name, bytes, mode) in [
        ("bin/ls", ls.as_slice(), 0o755),
        ("etc/motd", b"hello\n".as_slice(), 0o644),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(mode);
        h.set_cksum();
        tar.append_data(&mut h, name, bytes).unwrap();
    }
    tar.into_inner().unwrap()
}

fn scan_of(blob: &[u8], spill: Option<&Path>) -> LayerScan {
    let budget = Budget::new(1 << 30);
    crate::image::layer::scan(
        blob,
        "test",
        &Limits::default(),
        &budget,
        spill,
        None,
        false,
    )
    .unwrap()
}

fn open(dir: &Path, max_bytes: u64) -> Cache {
    let settings = CacheSettings {
        dir: dir.to_path_buf(),
        max_bytes,
    };
    Cache::open(&settings, &Limits::default(), false).unwrap()
}

#[test]
fn a_stored_scan_comes_back_equal_only_for_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let blob = layer();
    let cold = scan_of(&blob, Some(spill.path()));
    let cache = open(tmp.path(), 1 << 30);
    cache.store(&cold, Some(spill.path()));
    let budget = Budget::new(1 << 30);
    let respill = tempfile::tempdir().unwrap();
    let warm = cache
        .confirm(&cold.digest, blob.as_slice(), &budget, Some(respill.path()))
        .unwrap()
        .expect("a hit");
    assert!(warm.from_cache);
    // Equal facts: the serialised forms match, and the binary is back where runs look.
    assert_eq!(
        serde_json::to_string(&warm).unwrap(),
        serde_json::to_string(&cold).unwrap()
    );
    let ls = warm
        .entries
        .iter()
        .find_map(|e| match &e.kind {
            EntryKind::File { facts: Some(f), .. } => Some(f.sha256()),
            _ => None,
        })
        .unwrap();
    assert!(respill.path().join(&ls).is_file());
    // Other bytes under the same digest are no hit.
    let mut other = blob.clone();
    *other.last_mut().unwrap() ^= 1;
    assert!(
        cache
            .confirm(&cold.digest, other.as_slice(), &budget, None)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_damaged_entry_is_dropped_and_the_bound_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = layer();
    let cold = scan_of(&blob, None);
    let cache = open(tmp.path(), 1 << 30);
    cache.store(&cold, None);
    let entry = cache.entry_dir(&cold.digest);
    let facts = entry.join("facts.json");
    let mut text = std::fs::read(&facts).unwrap();
    let at = text.len() / 2;
    text[at] = if text[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&facts, &text).unwrap();
    let budget = Budget::new(1 << 30);
    assert!(
        cache
            .confirm(&cold.digest, blob.as_slice(), &budget, None)
            .unwrap()
            .is_none()
    );
    assert!(!entry.exists(), "the damaged entry is removed");
    // A bound below one entry keeps nothing.
    let tiny = open(tmp.path(), 1);
    tiny.store(&cold, None);
    assert!(!entry.exists());
}

/// Layers that differ only in one file's bytes: other digests, entries of about one size.
fn layer_with(n: u8) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let text = vec![b'a' + n; 64];
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    tar.append_data(&mut h, format!("bin/tool-{n}"), text.as_slice())
        .unwrap();
    tar.into_inner().unwrap()
}

fn entry_count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(entry::ENTRIES))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The bound is kept by a count of what this process stored, measured by one scan at its
/// first store (so another process's entries count) and rescanned only when it passes.
#[test]
fn the_count_of_stores_keeps_the_bound_without_a_scan_each() {
    let tmp = tempfile::tempdir().unwrap();
    let scans: Vec<LayerScan> = (0..6).map(|n| scan_of(&layer_with(n), None)).collect();
    // Another process filled the cache with two entries.
    let other = open(tmp.path(), 1 << 30);
    other.store(&scans[0], None);
    other.store(&scans[1], None);
    let one = entry::read_head(&other.entry_dir(&scans[0].digest))
        .unwrap()
        .bytes;
    // Room for three entries of this size, not four.
    let bound = one * 3 + one / 2;
    let this = open(tmp.path(), bound);
    this.store(&scans[2], None);
    assert_eq!(
        entry_count(tmp.path()),
        3,
        "its first scan found the other two"
    );
    this.store(&scans[3], None);
    assert_eq!(
        entry_count(tmp.path()),
        3,
        "the count passed the bound: evicted"
    );
    assert!(
        !other.entry_dir(&scans[0].digest).exists(),
        "least recently used first"
    );
    for s in &scans[4..] {
        this.store(s, None);
        assert!(entry_count(tmp.path()) <= 3);
    }
    assert!(
        this.entry_dir(&scans[5].digest).exists(),
        "the fresh one stays"
    );
}
