//! Reads `nix build --log-format internal-json` and shows it: a live bar on a terminal, plain
//! lines (one per derivation, a tally at least every 10 s) in CI logs.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Nix's logger activity and result types (`ActivityType`/`ResultType` in nix's logging.hh;
/// the same numbers in 2.8 and 2.26).
const ACT_BUILD: u64 = 105;
const ACT_BUILDS: u64 = 104;
const RES_PROGRESS: u64 = 105;

/// The longest a non-terminal log goes without a tally while nix runs.
pub const TALLY_EVERY: Duration = Duration::from_secs(10);

/// What one internal-json line says that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A derivation started building (on this machine or a remote builder).
    Started { drv: String, machine: String },
    /// The overall build counters changed.
    Tally(Tally),
    /// An error message (ANSI colours removed).
    Error(String),
}

/// Derivations done, expected in all, running, failed: the `actBuilds` progress counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub done: u64,
    pub expected: u64,
    pub running: u64,
    pub failed: u64,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "built {}/{}", self.done, self.expected)?;
        if self.failed > 0 {
            write!(f, ", {} failed", self.failed)?;
        }
        if self.running > 0 {
            write!(f, ", {} running", self.running)?;
        }
        Ok(())
    }
}

/// Turns log lines into events; remembers which activity id counts the builds.
#[derive(Debug, Default)]
pub struct Parser {
    builds_activity: Option<u64>,
}

impl Parser {
    pub fn parse(&mut self, line: &str) -> Option<Event> {
        let json = line.strip_prefix("@nix ")?;
        let event: serde_json::Value = serde_json::from_str(json).ok()?;
        let kind = event["type"].as_u64();
        match event["action"].as_str()? {
            "start" if kind == Some(ACT_BUILDS) => {
                self.builds_activity = event["id"].as_u64();
                None
            }
            "start" if kind == Some(ACT_BUILD) => {
                // fields: drv path, machine ("" when local), round, rounds. Older logs may
                // carry only the text "building '/nix/store/…drv'".
                let fields = event["fields"].as_array();
                let drv = fields
                    .and_then(|f| f.first())
                    .and_then(|d| d.as_str())
                    .map(str::to_string)
                    .or_else(|| {
                        let text = event["text"].as_str()?;
                        Some(text.split('\'').nth(1)?.to_string())
                    })?;
                let machine = fields
                    .and_then(|f| f.get(1))
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
                    .to_string();
                Some(Event::Started { drv, machine })
            }
            "result"
                if kind == Some(RES_PROGRESS)
                    && self.builds_activity.is_some()
                    && event["id"].as_u64() == self.builds_activity =>
            {
                let f = event["fields"].as_array()?;
                let n = |i: usize| f.get(i).and_then(|v| v.as_u64()).unwrap_or(0);
                Some(Event::Tally(Tally {
                    done: n(0),
                    expected: n(1),
                    running: n(2),
                    failed: n(3),
                }))
            }
            "msg" if event["level"].as_u64() == Some(0) => {
                Some(Event::Error(strip_ansi(event["msg"].as_str()?)))
            }
            _ => None,
        }
    }
}

pub fn strip_ansi(text: &str) -> String {
    let re = regex::Regex::new(r"\x1b\[[0-9;]*m").expect("static regex");
    re.replace_all(text, "").into_owned()
}

/// `/nix/store/<hash>-name.drv` → `name`.
pub fn drv_name(drv: &str) -> &str {
    let base = drv.rsplit('/').next().unwrap_or(drv);
    let base = base.strip_suffix(".drv").unwrap_or(base);
    base.split_once('-').map_or(base, |(_, name)| name)
}

/// Where progress goes: an indicatif bar on a terminal, lines otherwise.
pub enum Display {
    Live(indicatif::ProgressBar),
    Lines {
        last_tally: Option<Tally>,
        printed_at: Instant,
        out: Box<dyn FnMut(&str) + Send>,
    },
}

impl Display {
    /// A live bar when stderr is a terminal, else lines on stderr.
    pub fn for_stderr() -> Display {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "nix {spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}",
                )
                .expect("static template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Display::Live(bar)
        } else {
            Display::lines(Box::new(|line| eprintln!("{line}")))
        }
    }

    pub fn lines(out: Box<dyn FnMut(&str) + Send>) -> Display {
        Display::Lines {
            last_tally: None,
            printed_at: Instant::now(),
            out,
        }
    }

    pub fn event(&mut self, event: &Event, tally: Tally) {
        match self {
            Display::Live(bar) => {
                bar.set_length(tally.expected);
                bar.set_position(tally.done);
                match event {
                    Event::Started { drv, .. } => {
                        bar.set_message(format!("{} — building {}", tally, drv_name(drv)))
                    }
                    Event::Error(e) => bar.println(format!("nix: {}", first_line(e))),
                    Event::Tally(_) => bar.set_message(tally.to_string()),
                }
            }
            Display::Lines {
                last_tally,
                printed_at,
                out,
            } => {
                match event {
                    Event::Started { drv, machine } => {
                        let on = if machine.is_empty() {
                            String::new()
                        } else {
                            format!(" on {machine}")
                        };
                        out(&format!("nix: building {}{on}", drv_name(drv)));
                    }
                    Event::Error(e) => out(&format!("nix: {}", first_line(e))),
                    Event::Tally(_) => {}
                }
                // A tally whenever a derivation finished or failed, not on every counter move.
                let changed = last_tally
                    .is_none_or(|t| t.done != tally.done || t.failed != tally.failed)
                    && tally.expected > 0;
                if changed {
                    out(&format!("nix: {tally}"));
                    *last_tally = Some(tally);
                    *printed_at = Instant::now();
                }
            }
        }
    }

    /// Called when no line came for a while: keep a CI log from going silent.
    pub fn tick(&mut self, tally: Tally) {
        if let Display::Lines {
            printed_at, out, ..
        } = self
            && printed_at.elapsed() >= TALLY_EVERY
        {
            out(&format!("nix: {tally}"));
            *printed_at = Instant::now();
        }
    }

    pub fn finish(&mut self, tally: Tally) {
        match self {
            Display::Live(bar) => bar.finish_and_clear(),
            Display::Lines {
                last_tally, out, ..
            } => {
                if *last_tally != Some(tally) && tally.expected > 0 {
                    out(&format!("nix: {tally}"));
                }
            }
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as nix 2.8 and 2.26 write them (2.26 adds "parent"), trimmed to what is parsed.
    const LOG_2_8: &str = r#"@nix {"action":"start","id":9,"level":0,"text":"","type":104}
@nix {"action":"result","fields":[0,2,0,0],"id":9,"type":105}
@nix {"action":"result","fields":[0,0,0,0],"id":10,"type":105}
@nix {"action":"start","fields":["/nix/store/86nv-fails-1.1.drv","",1,1],"id":11,"level":3,"text":"building '/nix/store/86nv-fails-1.1.drv'","type":105}
@nix {"action":"result","fields":[0,1,0,1],"id":9,"type":105}
@nix {"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m builder for '/nix/store/86nv-fails-1.1.drv' failed with exit code 3"}"#;
    const LOG_2_26: &str = r#"@nix {"action":"msg","level":3,"msg":"these 2 derivations will be built:"}
@nix {"action":"start","id":52,"level":0,"parent":0,"text":"","type":104}
@nix {"action":"result","fields":[0,2,0,0],"id":52,"type":105}
@nix {"action":"start","fields":["/s/nzmm-good-1.1.drv","ssh-ng://b",1,1],"id":56,"level":3,"parent":0,"text":"building '/s/nzmm-good-1.1.drv' on 'ssh-ng://b'","type":105}
@nix {"action":"result","fields":[1,2,0,1],"id":52,"type":105}"#;

    fn events(log: &str) -> Vec<Event> {
        let mut p = Parser::default();
        log.lines().filter_map(|l| p.parse(l)).collect()
    }

    #[test]
    fn both_versions_logs_give_the_same_events() {
        let old = events(LOG_2_8);
        assert_eq!(
            old,
            vec![
                Event::Tally(Tally {
                    expected: 2,
                    ..Tally::default()
                }),
                Event::Started {
                    drv: "/nix/store/86nv-fails-1.1.drv".into(),
                    machine: String::new()
                },
                Event::Tally(Tally {
                    done: 0,
                    expected: 1,
                    running: 0,
                    failed: 1
                }),
                Event::Error(
                    "error: builder for '/nix/store/86nv-fails-1.1.drv' failed with exit code 3"
                        .into()
                ),
            ]
        );
        let new = events(LOG_2_26);
        assert_eq!(new.len(), 3, "{new:?}");
        assert_eq!(
            new[1],
            Event::Started {
                drv: "/s/nzmm-good-1.1.drv".into(),
                machine: "ssh-ng://b".into()
            }
        );
    }

    #[test]
    fn garbage_and_other_activities_are_ignored() {
        let mut p = Parser::default();
        for line in [
            "plain text",
            "@nix {not json",
            r#"@nix {"action":"result","fields":[5,5,0,0],"id":3,"type":105}"#,
            r#"@nix {"action":"start","id":4,"text":"copying","type":100}"#,
        ] {
            assert_eq!(p.parse(line), None, "{line}");
        }
    }

    #[test]
    fn lines_mode_prints_each_build_and_a_tally_when_counts_change() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = seen.clone();
        let mut d = Display::lines(Box::new(move |l| sink.lock().unwrap().push(l.to_string())));
        let mut p = Parser::default();
        let mut tally = Tally::default();
        for line in LOG_2_8.lines() {
            if let Some(e) = p.parse(line) {
                if let Event::Tally(t) = e {
                    tally = t;
                }
                d.event(&e, tally);
            }
        }
        d.finish(tally);
        let seen = seen.lock().unwrap();
        assert!(
            seen.contains(&"nix: building fails-1.1".to_string()),
            "{seen:?}"
        );
        assert!(
            seen.contains(&"nix: built 0/1, 1 failed".to_string()),
            "{seen:?}"
        );
        assert_eq!(
            seen.iter().filter(|l| l.starts_with("nix: built")).count(),
            2,
            "the first count and the change, not every counter update: {seen:?}"
        );
    }

    #[test]
    fn store_names_lose_hash_and_suffix() {
        assert_eq!(drv_name("/nix/store/abc-hello-1.0.drv"), "hello-1.0");
        assert_eq!(drv_name("weird"), "weird");
    }
}
