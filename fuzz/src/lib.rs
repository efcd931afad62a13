//! Helpers shared by the fuzz targets.

use mab_verify::image::Limits;

/// Small limits, so that a bomb costs milliseconds rather than gigabytes. Everything else is the
/// default a user gets, so the fuzzer sees the code paths a user's input sees.
pub fn limits() -> Limits {
    Limits {
        max_uncompressed: 16 << 20,
        max_json: 1 << 20,
        ..Limits::default()
    }
}

/// Tar headers carry a checksum, and nearly every mutation of a header breaks it, so the tar
/// reader would refuse almost every mutated input at the first header. This walks the headers of
/// an uncompressed tar (as far as their sizes can be followed) and recomputes each checksum,
/// so a target can run the input both as it is and with valid checksums. `None` when nothing
/// changed (or the input does not look like an uncompressed tar).
pub fn fix_tar_checksums(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 512 || data.starts_with(&[0x1f, 0x8b]) || data.starts_with(&[0x28, 0xb5]) {
        return None;
    }
    let mut out = data.to_vec();
    let mut offset = 0usize;
    let mut changed = false;
    // Bounded: every step advances by at least one block.
    while offset + 512 <= out.len() {
        let block = &mut out[offset..offset + 512];
        if block.iter().all(|&b| b == 0) {
            offset += 512;
            continue;
        }
        let sum: u32 = block
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        if parse_number(&block[148..156]) != Some(u64::from(sum)) {
            block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            changed = true;
        }
        let Some(size) = parse_number(&block[124..136]) else {
            break;
        };
        let data_blocks = size.div_ceil(512);
        let Some(next) = data_blocks
            .checked_mul(512)
            .and_then(|d| d.checked_add(512))
            .and_then(|d| d.checked_add(offset as u64))
        else {
            break;
        };
        if next > out.len() as u64 {
            break;
        }
        offset = next as usize;
    }
    changed.then_some(out)
}

/// A numeric field: octal (NUL/space padded) or GNU base-256.
fn parse_number(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_checksum_is_repaired() {
        let mut header = tar::Header::new_ustar();
        header.set_path("a").unwrap();
        header.set_size(3);
        header.set_cksum();
        let mut data = header.as_bytes().to_vec();
        data.extend_from_slice(b"abc");
        data.resize(1024 + 1024, 0);
        assert_eq!(fix_tar_checksums(&data), None);
        data[0] = b'b';
        let fixed = fix_tar_checksums(&data).unwrap();
        let mut archive = tar::Archive::new(&fixed[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["b"]);
    }
}
