//! The Go-semantics tar reader (image::gotar) on any bytes: it never panics, never holds more
//! than one special header (1 MiB) in memory, stays in step (the data it hands out per entry
//! is exactly what the header says Go reads, and positions only grow), and reading the same
//! bytes twice gives the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mab_verify::image::gotar::{Header, MAX_NAME, Reader};
use std::io::Read;

/// Every entry with its data, or the error that ended the archive.
fn entries(data: &[u8]) -> (Vec<(Header, Vec<u8>)>, Option<String>) {
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    let mut last = 0;
    loop {
        match r.next_entry() {
            Ok(Some(h)) => {
                assert!(r.position() >= last, "the stream went backwards");
                assert!(h.name.len() <= MAX_NAME && h.linkname.len() <= MAX_NAME);
                let mut body = Vec::new();
                if r.read_to_end(&mut body).is_err() {
                    return (out, Some("truncated".into()));
                }
                assert_eq!(body.len() as u64, h.data_len(), "{h:?}");
                last = r.position();
                out.push((h, body));
            }
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn run(data: &[u8]) {
    let first = entries(data);
    let again = entries(data);
    assert_eq!(first.0, again.0);
    assert_eq!(first.1, again.1);
}

fuzz_target!(|data: &[u8]| {
    run(data);
    if let Some(fixed) = mab_verify_fuzz::fix_tar_checksums(data) {
        run(&fixed);
    }
});
