//! A tar reader that frames the stream and decodes headers as Go's `archive/tar` does (the
//! reader of containerd, umoci, skopeo and the registries), refusing what Go reads ambiguously.
//!
//! The `tar` crate reads some bytes differently from Go, and those differences decide which
//! file a runtime extracts: it skips `size` bytes after directories, links and devices (Go reads
//! no data there, so the two streams fall out of step), it takes the first of two PAX records
//! (Go the last), it ends an archive at one zero block, and it reads PAX and GNU long-name
//! headers of any size into memory. Those decisions are made here, in Go's order.

use std::io::{self, Read};

/// The largest PAX or GNU long-name header Go reads (`maxSpecialFileSize`); also our memory bound.
pub const MAX_SPECIAL: u64 = 1 << 20;
/// Longer names or link targets are refused: Linux's PATH_MAX.
pub const MAX_NAME: usize = 4096;

const BLOCK: usize = 512;

/// Header-only types: Go reads no data after them, whatever their size field says.
fn header_only(typeflag: u8) -> bool {
    matches!(typeflag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6')
}

/// One entry as Go's `Reader.Next` returns it, after PAX and GNU extensions are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `'0'` for regular files (`'\0'` is mapped as Go maps it), `'5'` directories, …
    pub typeflag: u8,
    pub name: String,
    pub linkname: String,
    /// As Go reports it: for header-only entries it may be non-zero, yet no data follows.
    pub size: i64,
    pub mode: i64,
}

impl Header {
    /// The bytes of data that follow the header in the stream.
    pub fn data_len(&self) -> u64 {
        if header_only(self.typeflag) {
            0
        } else {
            self.size.max(0) as u64
        }
    }
}

/// Reads entries one at a time; the entry's data is read through `Read` on the reader.
pub struct Reader<R> {
    inner: R,
    /// Bytes consumed from `inner` so far.
    pos: u64,
    /// Data of the current entry not yet read, and the padding after it.
    remaining: u64,
    pad: u64,
    /// The last entry returned, to name in an error about what follows it.
    last: Option<String>,
    done: bool,
}

/// A refusal or a read error, naming where in the archive it happened.
pub type TarResult<T> = Result<T, String>;

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            pos: 0,
            remaining: 0,
            pad: 0,
            last: None,
            done: false,
        }
    }

    /// Offset in the stream of the current entry's data (right after its header).
    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn after(&self) -> String {
        match &self.last {
            Some(n) => format!("after entry {n:?}"),
            None => "at the start of the archive".into(),
        }
    }

    /// Fill `buf` completely. `Ok(false)` when the stream ended before its first byte.
    fn read_full(&mut self, buf: &mut [u8]) -> TarResult<bool> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot be read {}: {e}", self.after())),
            }
        }
        self.pos += filled as u64;
        if filled == 0 {
            return Ok(false);
        }
        if filled < buf.len() {
            return Err(format!(
                "is truncated {}: the stream ends inside a 512-byte block",
                self.after()
            ));
        }
        Ok(true)
    }

    fn skip(&mut self, mut n: u64) -> TarResult<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(format!(
                        "is truncated {}: the entry's data is cut short",
                        self.after()
                    ));
                }
                Ok(k) => {
                    n -= k as u64;
                    self.pos += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot be read {}: {e}", self.after())),
            }
        }
        Ok(())
    }

    /// Read a PAX or GNU long-name header's data, refused past Go's 1 MiB before any is kept.
    fn special(&mut self, size: u64, what: &str) -> TarResult<Vec<u8>> {
        if size > MAX_SPECIAL {
            return Err(format!(
                "has a {what} of {size} bytes {}, over the {MAX_SPECIAL}-byte limit Go's archive/tar also enforces",
                self.after()
            ));
        }
        let mut data = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < data.len() {
            match self.inner.read(&mut data[filled..]) {
                Ok(0) => {
                    return Err(format!("is truncated inside a {what} {}", self.after()));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot be read {}: {e}", self.after())),
            }
        }
        self.pos += size;
        self.remaining = 0;
        Ok(data)
    }

    /// The next entry, or `None` at the end of the archive. Unread data of the previous entry
    /// is skipped first, as Go does.
    pub fn next_entry(&mut self) -> TarResult<Option<Header>> {
        if self.done {
            return Ok(None);
        }
        let mut pax: Option<Vec<(String, String)>> = None;
        let mut long_name: Option<String> = None;
        let mut long_link: Option<String> = None;
        loop {
            let (rest, pad) = (self.remaining, self.pad);
            self.remaining = 0;
            self.pad = 0;
            self.skip(rest)?;
            // Go: a stream that ends where the padding would be ends the archive cleanly.
            if pad > 0 {
                let mut buf = [0u8; BLOCK];
                if !self.read_full(&mut buf[..pad as usize])? {
                    self.done = true;
                    return Ok(None);
                }
            }
            let Some(raw) = self.read_header()? else {
                self.done = true;
                return Ok(None);
            };
            let data = raw.data_size.max(0) as u64;
            match raw.typeflag {
                b'x' => {
                    if pax.is_some() {
                        return Err(format!(
                            "has two PAX headers for one entry {} (Go keeps only the second; refused as ambiguous)",
                            self.after()
                        ));
                    }
                    let bytes = self.special(data, "PAX header")?;
                    self.pad = pad_of(data);
                    pax = Some(parse_pax(&bytes).map_err(|e| format!("{e} {}", self.after()))?);
                }
                b'g' => {
                    return Err(format!(
                        "has a PAX global header {} (containerd ignores it, umoci refuses it: refused)",
                        self.after()
                    ));
                }
                b'L' | b'K' => {
                    let what = if raw.typeflag == b'L' {
                        "GNU long name"
                    } else {
                        "GNU long link name"
                    };
                    let bytes = self.special(data, what)?;
                    self.pad = pad_of(data);
                    let text =
                        utf8(cut_nul(&bytes), what).map_err(|e| format!("{e} {}", self.after()))?;
                    let slot = if raw.typeflag == b'L' {
                        &mut long_name
                    } else {
                        &mut long_link
                    };
                    if slot.is_some() {
                        return Err(format!(
                            "has two {what} headers for one entry {} (Go keeps only the second; refused as ambiguous)",
                            self.after()
                        ));
                    }
                    *slot = Some(text);
                }
                _ => return self.finish_entry(raw, pax, long_name, long_link).map(Some),
            }
        }
    }

    fn finish_entry(
        &mut self,
        raw: RawHeader,
        pax: Option<Vec<(String, String)>>,
        long_name: Option<String>,
        long_link: Option<String>,
    ) -> TarResult<Header> {
        let mut name = raw.name;
        let mut linkname = raw.linkname;
        let mut size = raw.size;
        let ustar_name = String::from_utf8_lossy(&name).into_owned();
        let label = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
        for (k, v) in pax.iter().flatten() {
            if k.starts_with("GNU.sparse.") {
                return Err(format!(
                    "entry {:?} is a GNU sparse file (PAX record {k}), which is refused: runtimes rebuild its holes, this reader does not",
                    label(&name)
                ));
            }
            // Go: an empty value keeps the header's own field.
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "path" => name = v.as_bytes().to_vec(),
                "linkpath" => linkname = v.as_bytes().to_vec(),
                "size" => size = parse_decimal(v).ok_or_else(|| {
                    format!(
                        "entry {ustar_name:?} has a non-numeric PAX size {v:?}, which Go refuses"
                    )
                })?,
                "uid" | "gid" => {
                    parse_decimal(v).ok_or_else(|| {
                        format!(
                            "entry {ustar_name:?} has a non-numeric PAX {k} {v:?}, which Go refuses"
                        )
                    })?;
                }
                "atime" | "mtime" | "ctime" if !pax_time_ok(v) => {
                    return Err(format!(
                        "entry {ustar_name:?} has a malformed PAX {k} {v:?}, which Go refuses"
                    ));
                }
                _ => {}
            }
        }
        // Go: GNU long names win over PAX paths.
        if let Some(n) = long_name.filter(|n| !n.is_empty()) {
            name = n.into_bytes();
        }
        if let Some(l) = long_link.filter(|l| !l.is_empty()) {
            linkname = l.into_bytes();
        }
        let mut typeflag = raw.typeflag;
        if typeflag == 0 {
            typeflag = if name.ends_with(b"/") { b'5' } else { b'0' };
        }
        if typeflag == b'S' {
            return Err(format!(
                "entry {:?} is a GNU sparse file (type S), which is refused: runtimes rebuild its holes, this reader does not",
                label(&name)
            ));
        }
        if name.len() > MAX_NAME || linkname.len() > MAX_NAME {
            return Err(format!(
                "entry {:?}… has a name or link target over {MAX_NAME} bytes (PATH_MAX), refused",
                label(&name[..name.len().min(64)])
            ));
        }
        let name = String::from_utf8(name).map_err(|e| {
            format!(
                "entry {:?} has a name that is not UTF-8; refused, since a lossy reading would merge it with another file",
                label(e.as_bytes())
            )
        })?;
        let linkname = String::from_utf8(linkname).map_err(|e| {
            format!(
                "entry {name:?} has a link target {:?} that is not UTF-8; refused",
                label(e.as_bytes())
            )
        })?;
        let header = Header {
            typeflag,
            name,
            linkname,
            size,
            mode: raw.mode,
        };
        if size < 0 && !header_only(typeflag) {
            return Err(format!(
                "entry {:?} has a negative size, which Go refuses",
                header.name
            ));
        }
        self.remaining = header.data_len();
        self.pad = pad_of(self.remaining);
        self.last = Some(header.name.clone());
        Ok(header)
    }

    /// One header block, as Go's `readHeader`: `None` at a clean end of the archive.
    fn read_header(&mut self) -> TarResult<Option<RawHeader>> {
        let mut blk = [0u8; BLOCK];
        if !self.read_full(&mut blk)? {
            return Ok(None);
        }
        if blk.iter().all(|&b| b == 0) {
            if !self.read_full(&mut blk)? {
                return Ok(None);
            }
            if blk.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            return Err(format!(
                "has an entry after a single zero block {} (Go refuses such an archive)",
                self.after()
            ));
        }
        decode_header(&blk).map(Some).map_err(|e| {
            let name = String::from_utf8_lossy(cut_nul(&blk[..100])).into_owned();
            format!("has a malformed header for {name:?} {}: {e}", self.after())
        })
    }
}

impl<R: Read> Read for Reader<R> {
    /// The current entry's data; reads past it return 0, a stream cut short is an error.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the entry's data is cut short",
            ));
        }
        self.remaining -= n as u64;
        self.pos += n as u64;
        Ok(n)
    }
}

fn pad_of(n: u64) -> u64 {
    (BLOCK as u64 - n % BLOCK as u64) % BLOCK as u64
}

struct RawHeader {
    typeflag: u8,
    name: Vec<u8>,
    linkname: Vec<u8>,
    size: i64,
    /// What Go's first `handleRegularFile` reads as data: the size, unless header-only.
    data_size: i64,
    mode: i64,
}

fn cut_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

fn utf8(b: &[u8], what: &str) -> TarResult<String> {
    String::from_utf8(b.to_vec()).map_err(|_| format!("has a {what} that is not UTF-8 (refused)"))
}

/// Go's `parser.parseNumeric`: base-256 when the top bit is set, else octal.
fn parse_numeric(b: &[u8]) -> Result<i64, String> {
    if let Some(&first) = b.first()
        && first & 0x80 != 0
    {
        let inv: u8 = if first & 0x40 != 0 { 0xff } else { 0 };
        let mut x: u64 = 0;
        for (i, &c) in b.iter().enumerate() {
            let mut c = c ^ inv;
            if i == 0 {
                c &= 0x7f;
            }
            if x >> 56 > 0 {
                return Err("a base-256 number overflows".into());
            }
            x = (x << 8) | u64::from(c);
        }
        if x >> 63 > 0 {
            return Err("a base-256 number overflows".into());
        }
        return Ok(if inv == 0xff { !(x as i64) } else { x as i64 });
    }
    parse_octal(b)
}

/// Go's `parser.parseOctal`: trim spaces and NULs, cut at a NUL, then strict base 8.
fn parse_octal(b: &[u8]) -> Result<i64, String> {
    let trimmed = trim(b);
    if trimmed.is_empty() {
        return Ok(0);
    }
    let digits = cut_nul(trimmed);
    if digits.is_empty() || !digits.iter().all(|c| (b'0'..=b'7').contains(c)) {
        return Err(format!(
            "the numeric field {:?} is not octal",
            String::from_utf8_lossy(b)
        ));
    }
    let mut x: u64 = 0;
    for &c in digits {
        x = x
            .checked_mul(8)
            .and_then(|x| x.checked_add(u64::from(c - b'0')))
            .ok_or("an octal number overflows")?;
    }
    Ok(x as i64)
}

fn trim(b: &[u8]) -> &[u8] {
    let keep = |c: &u8| *c != b' ' && *c != 0;
    let start = b.iter().position(keep).unwrap_or(b.len());
    let end = b.iter().rposition(keep).map_or(start, |i| i + 1);
    &b[start..end]
}

fn decode_header(blk: &[u8; BLOCK]) -> Result<RawHeader, String> {
    // Format, as Go's `block.getFormat`: the checksum, signed or unsigned, then the magic.
    let stored = parse_octal(&blk[148..156]).map_err(|_| "its checksum is not octal")?;
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &c) in blk.iter().enumerate() {
        let c = if (148..156).contains(&i) { b' ' } else { c };
        unsigned += i64::from(c);
        signed += i64::from(c as i8);
    }
    if stored != unsigned && stored != signed {
        return Err("its checksum is wrong (not a tar header)".into());
    }
    let magic = &blk[257..263];
    let version = &blk[263..265];
    #[derive(PartialEq)]
    enum Fmt {
        V7,
        Ustar,
        Star,
        Gnu,
    }
    let fmt = if magic == b"ustar\0" && &blk[508..512] == b"tar\0" {
        Fmt::Star
    } else if magic == b"ustar\0" {
        Fmt::Ustar
    } else if magic == b"ustar " && version == b" \0" {
        Fmt::Gnu
    } else {
        Fmt::V7
    };
    let typeflag = blk[156];
    let mut name = cut_nul(&blk[0..100]).to_vec();
    let linkname = cut_nul(&blk[157..257]).to_vec();
    let size = parse_numeric(&blk[124..136])?;
    let mode = parse_numeric(&blk[100..108])?;
    for field in [&blk[108..116], &blk[116..124], &blk[136..148]] {
        parse_numeric(field)?;
    }
    if fmt != Fmt::V7 {
        parse_numeric(&blk[329..337])?;
        parse_numeric(&blk[337..345])?;
        let prefix: &[u8] = match fmt {
            Fmt::Ustar => cut_nul(&blk[345..500]),
            Fmt::Star => {
                parse_numeric(&blk[476..488])?;
                parse_numeric(&blk[488..500])?;
                cut_nul(&blk[345..476])
            }
            _ => {
                // GNU: the prefix area holds times; Go reads it as a prefix only when those
                // times do not parse (archives from a buggy old Go writer) and it is ASCII.
                let times_ok = [&blk[345..357], &blk[357..369]]
                    .iter()
                    .all(|b| b[0] == 0 || parse_numeric(b).is_ok());
                let p = cut_nul(&blk[345..500]);
                if !times_ok && p.is_ascii() { p } else { &[] }
            }
        };
        if !prefix.is_empty() {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
    }
    let data_size = if header_only(typeflag) { 0 } else { size };
    if data_size < 0 {
        return Err("its size is negative".into());
    }
    Ok(RawHeader {
        typeflag,
        name,
        linkname,
        size,
        data_size,
        mode,
    })
}

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign, then decimal digits.
fn parse_decimal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Go's `parsePAXTime`: seconds, optionally a dot and more digits.
fn pax_time_ok(s: &str) -> bool {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    parse_decimal(secs).is_some() && frac.bytes().all(|b| b.is_ascii_digit())
}

/// PAX records `"<len> <key>=<value>\n"`, as Go's `parsePAX`; a key given twice is refused
/// (Go keeps the last, the `tar` crate the first).
fn parse_pax(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut records: Vec<(String, String)> = Vec::new();
    let mut s = bytes;
    while !s.is_empty() {
        let sp = s
            .iter()
            .position(|&b| b == b' ')
            .ok_or("has a malformed PAX record (no length)")?;
        let n = std::str::from_utf8(&s[..sp])
            .ok()
            .and_then(parse_decimal)
            .filter(|&n| n >= 5 && n as u64 <= s.len() as u64)
            .ok_or("has a malformed PAX record length")? as usize;
        if n <= sp + 1 {
            return Err("has a malformed PAX record length".into());
        }
        let rec = &s[sp + 1..n];
        let (body, nl) = rec.split_at(rec.len() - 1);
        if nl != b"\n" {
            return Err("has a PAX record that does not end in a newline".into());
        }
        s = &s[n..];
        let eq = body
            .iter()
            .position(|&b| b == b'=')
            .ok_or("has a PAX record without '='")?;
        let (k, v) = (&body[..eq], &body[eq + 1..]);
        if k.is_empty() {
            return Err("has a PAX record with an empty key".into());
        }
        let key = std::str::from_utf8(k)
            .map_err(|_| "has a PAX record whose key is not UTF-8 (refused)")?
            .to_string();
        let nul_matters = matches!(key.as_str(), "path" | "linkpath" | "uname" | "gname");
        if key.contains('\0') || (nul_matters && v.contains(&0)) {
            return Err(format!(
                "has a PAX record {key} containing NUL, which Go refuses"
            ));
        }
        if key.starts_with("GNU.sparse.") {
            // Named in the entry's error, where the name is known.
            records.push((key, String::from("1")));
            continue;
        }
        let value = match std::str::from_utf8(v) {
            Ok(v) => v.to_string(),
            Err(_) if matches!(key.as_str(), "path" | "linkpath") => {
                return Err(format!(
                    "has a PAX {key} that is not UTF-8; refused, since a lossy reading would merge it with another file"
                ));
            }
            // Values no reader here uses (xattrs, comments) may be any bytes.
            Err(_) => String::new(),
        };
        if records.iter().any(|(k, _)| *k == key) {
            return Err(format!(
                "has the PAX record {key} twice for one entry (Go reads the last, the tar crate the first; refused as ambiguous)"
            ));
        }
        records.push((key, value));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, typeflag: u8, size: u64, link: &str) -> Vec<u8> {
        let mut b = [0u8; BLOCK];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..107].copy_from_slice(b"0000644");
        b[108..115].copy_from_slice(b"0000000");
        b[116..123].copy_from_slice(b"0000000");
        b[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        b[136..147].copy_from_slice(b"00000000000");
        b[156] = typeflag;
        b[157..157 + link.len()].copy_from_slice(link.as_bytes());
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        b[148..156].fill(b' ');
        let sum: u32 = b.iter().map(|&c| u32::from(c)).sum();
        b[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        b.to_vec()
    }

    fn padded(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
        v
    }

    fn pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in records {
            let body = format!(" {k}={v}\n");
            let n = (1..)
                .map(|d| body.len() + d)
                .find(|n| n.to_string().len() == n - body.len())
                .unwrap();
            out.extend(format!("{n}{body}").as_bytes());
        }
        out
    }

    fn names(bytes: &[u8]) -> TarResult<Vec<(u8, String, u64)>> {
        let mut r = Reader::new(bytes);
        let mut out = Vec::new();
        while let Some(h) = r.next_entry()? {
            let mut data = Vec::new();
            r.read_to_end(&mut data).unwrap();
            out.push((h.typeflag, h.name, data.len() as u64));
        }
        Ok(out)
    }

    #[test]
    fn a_directory_with_a_size_has_no_data_and_the_stream_stays_in_step() {
        let mut t = header("d/", b'5', 512, "");
        t.extend(header("d/app", b'0', 3, ""));
        t.extend(padded(b"abc"));
        t.extend([0; 1024]);
        assert_eq!(
            names(&t).unwrap(),
            vec![(b'5', "d/".into(), 0), (b'0', "d/app".into(), 3)]
        );
    }

    #[test]
    fn pax_records_twice_and_non_numeric_sizes_are_refused() {
        let p = pax(&[("path", "a"), ("path", "b")]);
        let mut t = header("x", b'x', p.len() as u64, "");
        t.extend(padded(&p));
        t.extend(header("f", b'0', 0, ""));
        t.extend([0; 1024]);
        assert!(names(&t).unwrap_err().contains("twice"));
        let p = pax(&[("size", "12abc")]);
        let mut t = header("x", b'x', p.len() as u64, "");
        t.extend(padded(&p));
        t.extend(header("f", b'0', 0, ""));
        t.extend([0; 1024]);
        assert!(names(&t).unwrap_err().contains("non-numeric PAX size"));
    }

    #[test]
    fn a_pax_path_renames_and_a_pax_size_frames() {
        let p = pax(&[("path", "long/name"), ("size", "5")]);
        let mut t = header("x", b'x', p.len() as u64, "");
        t.extend(padded(&p));
        t.extend(header("short", b'0', 0, ""));
        t.extend(padded(b"hello"));
        t.extend([0; 1024]);
        assert_eq!(names(&t).unwrap(), vec![(b'0', "long/name".into(), 5)]);
    }

    #[test]
    fn one_zero_block_then_an_entry_is_refused_but_a_clean_end_is_not() {
        let mut t = header("a", b'0', 0, "");
        t.extend([0; 512]);
        t.extend(header("b", b'0', 0, ""));
        assert!(names(&t).unwrap_err().contains("single zero block"));
        let mut t = header("a", b'0', 0, "");
        t.extend([0; 512]);
        assert_eq!(names(&t).unwrap().len(), 1);
        // No end blocks at all (umoci insert).
        assert_eq!(names(&header("a", b'0', 0, "")).unwrap().len(), 1);
    }

    #[test]
    fn huge_special_headers_are_refused_before_they_are_read() {
        let t = header("././@LongLink", b'L', 1 << 30, "");
        assert!(names(&t).unwrap_err().contains("limit"));
        let t = header("x", b'x', (1 << 20) + 1, "");
        assert!(names(&t).unwrap_err().contains("limit"));
    }

    #[test]
    fn sparse_global_and_non_utf8_are_refused() {
        assert!(
            names(&header("s", b'S', 0, ""))
                .unwrap_err()
                .contains("sparse")
        );
        assert!(
            names(&header("g", b'g', 0, ""))
                .unwrap_err()
                .contains("global")
        );
        let mut raw = [0u8; 100];
        raw[..4].copy_from_slice(b"app\xff");
        let mut h = header("", b'0', 0, "");
        h[..100].copy_from_slice(&raw);
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&c| u32::from(c)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        assert!(names(&h).unwrap_err().contains("not UTF-8"));
    }

    #[test]
    fn numbers_parse_as_go_parses_them() {
        assert_eq!(parse_octal(b" 0000644\0"), Ok(0o644));
        assert_eq!(parse_octal(b"\0\0\0"), Ok(0));
        assert!(parse_octal(b"12 34").is_err());
        assert!(parse_octal(b"9").is_err());
        assert_eq!(parse_numeric(&[0x80, 0, 0, 1, 0]), Ok(256));
        assert_eq!(parse_decimal("+5"), Some(5));
        assert_eq!(parse_decimal("5 "), None);
    }

    /// What the `gotar` fuzz target asserts, on seeded mutations of a small archive: no panic,
    /// each entry hands out exactly the data Go reads, positions only grow.
    #[test]
    fn mutated_archives_never_panic_and_stay_in_step() {
        let p = pax(&[("path", "d/long"), ("size", "3")]);
        let mut base = header("d/", b'5', 100, "");
        base.extend(header("x", b'x', p.len() as u64, ""));
        base.extend(padded(&p));
        base.extend(header("f", b'0', 0, ""));
        base.extend(padded(b"abc"));
        base.extend(header("l", b'2', 0, "d"));
        base.extend([0; 1024]);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut data = base.clone();
            for _ in 0..1 + seed % 4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % data.len() as u64) as usize;
                data[at] = (seed >> 32) as u8;
            }
            let mut r = Reader::new(&data[..]);
            let mut last = 0;
            while let Ok(Some(h)) = r.next_entry() {
                let mut body = Vec::new();
                if r.read_to_end(&mut body).is_err() {
                    break;
                }
                assert_eq!(body.len() as u64, h.data_len());
                assert!(r.position() >= last);
                last = r.position();
            }
        }
    }
}
