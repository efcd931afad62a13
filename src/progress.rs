//! Progress on stderr for every long read, write and upload: live byte bars on a terminal,
//! plain lines in logs, nothing with `--quiet`.
//!
//! One [`Progress`] is resolved from the settings (`Settings::resolve` installs it) and any
//! stage asks [`current`] for it, so no stage needs it threaded through:
//!
//! ```no_run
//! use mab_verify::progress;
//! # fn f(file: std::fs::File, size: u64) -> std::io::Result<()> {
//! // Counts the bytes as they are read; the bar or the last line goes when `reader` drops.
//! let mut reader = progress::current().bytes("layer sha256:0123abcd", Some(size)).reader(file);
//! std::io::copy(&mut reader, &mut std::io::sink())?;
//! progress::step("verified 3 layers"); // one plain line, above any live bars
//! # Ok(()) }
//! ```
//!
//! On a terminal each task is an indicatif bar with bytes, total and throughput (in binary
//! units, `indicatif::HumanBytes`), cleared when done. When stderr is not a terminal, each
//! task prints one line when it ends and, while it runs, at most one line every
//! [`LINE_EVERY`], so a CI log shows long reads without a line per buffer.

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Read, Write};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The longest a running task goes without a line when stderr is not a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(10);

/// Where progress goes.
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
}

type Sink = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
enum Mode {
    /// `--quiet`: nothing at all.
    Quiet,
    /// A terminal: one bar per running task.
    Live { multi: MultiProgress, color: bool },
    /// A log: one line per task, and one every `every` while it runs.
    Lines { sink: Sink, every: Duration },
}

static CURRENT: RwLock<Option<Progress>> = RwLock::new(None);

/// The installed progress; before [`install`], what [`Progress::resolve`] gives without
/// `--quiet`.
pub fn current() -> Progress {
    if let Some(p) = CURRENT.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    // Installed on first use, so every caller shares one set of live bars.
    CURRENT
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(|| Progress::resolve(false, true))
        .clone()
}

/// Make `progress` the one [`current`] hands out (called once the settings are resolved).
pub fn install(progress: Progress) {
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(progress);
}

/// One plain line through [`current`]: the step-by-step log of a command.
pub fn step(line: &str) {
    current().step(line)
}

/// Every 64-digit hex digest in `name` cut to its first 12 digits (`sha256:0123456789ab`,
/// `0123456789ab/layer.tar`): the short form bars and lines name blobs by.
pub fn short_digest(name: &str) -> std::borrow::Cow<'_, str> {
    static HEX64: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b([0-9a-f]{12})[0-9a-f]{52}\b").expect("static regex")
    });
    HEX64.replace_all(name, "$1")
}

impl Progress {
    /// `quiet` wins; else a live display when stderr is a terminal (coloured when `color` and
    /// `NO_COLOR` is unset), else lines on stderr.
    pub fn resolve(quiet: bool, color: bool) -> Progress {
        if quiet {
            return Progress::quiet();
        }
        if std::io::stderr().is_terminal() {
            let no_color = crate::settings::env::no_color();
            return Progress {
                mode: Mode::Live {
                    multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                    color: color && !no_color,
                },
            };
        }
        Progress::lines(Arc::new(|line| eprintln!("{line}")), LINE_EVERY)
    }

    pub fn quiet() -> Progress {
        Progress { mode: Mode::Quiet }
    }

    /// Lines to `sink`, a running task's every `every` (tests use their own sink).
    pub fn lines(sink: Arc<dyn Fn(&str) + Send + Sync>, every: Duration) -> Progress {
        Progress {
            mode: Mode::Lines { sink, every },
        }
    }

    /// One plain line: printed above live bars, as is in a log, not at all when quiet.
    pub fn step(&self, line: &str) {
        match &self.mode {
            Mode::Quiet => {}
            // A terminal that went away is no reason to fail a verification.
            Mode::Live { multi, .. } => drop(multi.println(line)),
            Mode::Lines { sink, .. } => sink(line),
        }
    }

    /// A task that moves `total` bytes (`None`: unknown), named `what` ("layer sha256:…",
    /// "uploading blob sha256:…"). Count with [`Bytes::inc`] or wrap a reader or writer.
    pub fn bytes(&self, what: impl Into<String>, total: Option<u64>) -> Bytes {
        let what = what.into();
        let bar = match &self.mode {
            Mode::Live { multi, color } => {
                let bar = match total {
                    Some(n) => ProgressBar::new(n),
                    None => ProgressBar::new_spinner(),
                };
                bar.set_style(style(total.is_some(), *color));
                bar.set_message(what.clone());
                Some(multi.add(bar))
            }
            _ => None,
        };
        Bytes {
            state: Mutex::new(State {
                done: 0,
                printed_at: Instant::now(),
            }),
            started: Instant::now(),
            total,
            what,
            mode: self.mode.clone(),
            bar,
        }
    }
}

fn style(known_total: bool, color: bool) -> ProgressStyle {
    // The name first and whole; the bar takes what width is left.
    let template = match (known_total, color) {
        (true, true) => {
            "{spinner:.green} {msg} {wide_bar:.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} {eta}"
        }
        (true, false) => "{spinner} {msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        (false, true) => "{spinner:.green} {msg} {bytes} {bytes_per_sec}",
        (false, false) => "{spinner} {msg} {bytes} {bytes_per_sec}",
    };
    ProgressStyle::with_template(template)
        .expect("static template")
        .progress_chars("=> ")
}

/// One task's byte count; its bar is cleared (or its last line printed) when it drops.
pub struct Bytes {
    state: Mutex<State>,
    started: Instant,
    total: Option<u64>,
    what: String,
    mode: Mode,
    bar: Option<ProgressBar>,
}

struct State {
    done: u64,
    printed_at: Instant,
}

impl Bytes {
    /// `n` more bytes moved.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        let Mode::Lines { sink, every } = &self.mode else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.done += n;
        if state.printed_at.elapsed() >= *every {
            state.printed_at = Instant::now();
            sink(&self.line(state.done, false));
        }
    }

    /// Count what `inner` reads.
    pub fn reader<R: Read>(self, inner: R) -> ReadBytes<R> {
        ReadBytes { inner, bytes: self }
    }

    /// Count what is written to `inner`.
    pub fn writer<W: Write>(self, inner: W) -> WriteBytes<W> {
        WriteBytes { inner, bytes: self }
    }

    /// `what: 3.00 MiB in 0.4s (7.50 MiB/s)` at the end; `… so far of 9.00 MiB …` before.
    fn line(&self, done: u64, finished: bool) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = HumanBytes((done as f64 / secs.max(0.001)) as u64);
        let so_far = match self.total {
            _ if finished => String::new(),
            Some(t) => format!(" of {} so far", HumanBytes(t)),
            None => " so far".to_string(),
        };
        format!(
            "{}: {}{so_far} in {secs:.1}s ({rate}/s)",
            self.what,
            HumanBytes(done)
        )
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            return;
        }
        if let Mode::Lines { sink, .. } = &self.mode {
            let done = self.state.get_mut().map_or(0, |s| s.done);
            sink(&self.line(done, true));
        }
    }
}

/// A reader whose bytes count toward a task.
pub struct ReadBytes<R> {
    inner: R,
    bytes: Bytes,
}

impl<R: Read> Read for ReadBytes<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.inc(n as u64);
        Ok(n)
    }
}

impl<R> ReadBytes<R> {
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

/// A writer whose bytes count toward a task.
pub struct WriteBytes<W> {
    inner: W,
    bytes: Bytes,
}

impl<W: Write> Write for WriteBytes<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W> WriteBytes<W> {
    /// The writer back; the task ends here.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collected(every: Duration) -> (Progress, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let progress = Progress::lines(
            Arc::new(move |l| sink.lock().unwrap().push(l.to_string())),
            every,
        );
        (progress, seen)
    }

    #[test]
    fn a_log_gets_one_line_per_task_naming_it_and_its_size() {
        let (progress, seen) = collected(Duration::from_secs(3600));
        let data = vec![7u8; 3 * 1024 * 1024];
        let mut r = progress
            .bytes("layer sha256:0123abcd", Some(data.len() as u64))
            .reader(&data[..]);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        drop(r);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].starts_with("layer sha256:0123abcd: 3.00 MiB in "),
            "{seen:?}"
        );
        assert!(seen[0].ends_with("/s)"), "{seen:?}");
    }

    #[test]
    fn a_long_task_prints_a_line_each_interval_with_the_total() {
        let (progress, seen) = collected(Duration::ZERO);
        let mut w = progress.bytes("archive", Some(2048)).writer(Vec::new());
        w.write_all(&[0; 1024]).unwrap();
        w.write_all(&[0; 1024]).unwrap();
        assert_eq!(w.into_inner().len(), 2048);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(
            seen[0].starts_with("archive: 1.00 KiB of 2.00 KiB so far in "),
            "{seen:?}"
        );
        assert!(seen[2].starts_with("archive: 2.00 KiB in "), "{seen:?}");
    }

    #[test]
    fn quiet_prints_nothing_and_still_passes_bytes_through() {
        let progress = Progress::quiet();
        progress.step("never shown");
        let mut out = Vec::new();
        let mut r = progress.bytes("x", None).reader(&b"abc"[..]);
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
    }

    #[test]
    fn digests_are_shortened_and_other_names_kept() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(short_digest(&d), "sha256:abababababab");
        assert_eq!(short_digest("sha256:abc"), "sha256:abc");
        assert_eq!(short_digest("plain"), "plain");
        let member = format!("{}/layer.tar", "0f".repeat(32));
        assert_eq!(short_digest(&member), "0f0f0f0f0f0f/layer.tar");
    }
}
