//! Progress on long work: a bar with step, losses and steps/s on a terminal, plain lines otherwise.
use crate::family::Losses;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// Shows training progress on stderr.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    total: i64,
    start_step: i64,
    started: Instant,
}

fn fmt_losses(l: &Losses) -> String {
    l.iter()
        .filter(|(k, _)| k.starts_with("loss"))
        .map(|(k, v)| format!("{k}={v:.4}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Progress {
    pub fn new(start: i64, total: i64, quiet: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let b = ProgressBar::new(total.max(0) as u64);
            b.set_style(bar_style());
            b.set_position(start.max(0) as u64);
            b
        });
        Progress { bar, plain: !quiet && !tty, total, start_step: start, started: Instant::now() }
    }

    /// Runs `f` with the bar hidden (another bar or lines may show meanwhile).
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    fn rate(&self, step: i64) -> f64 {
        (step - self.start_step) as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// Every step: moves the bar.
    pub fn tick(&mut self, step: i64, losses: &Losses) {
        if let Some(b) = &self.bar {
            b.set_position(step as u64);
            if step % 10 == 0 {
                b.set_message(fmt_losses(losses));
            }
        }
    }

    /// Every logging step: a plain line when there is no terminal.
    pub fn log(&mut self, step: i64, losses: &Losses) {
        if self.plain {
            let rate = self.rate(step);
            let left = if rate > 0.0 { format!(", {} left", clock((self.total - step).max(0) as f64 / rate)) } else { String::new() };
            eprintln!("step {step}/{} {} {rate:.1} steps/s{left}", self.total, fmt_losses(losses));
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// A bar for a counted job (translating a folder), or nothing when quiet or not on a terminal.
pub struct Counter(Option<ProgressBar>);

impl Counter {
    pub fn new(len: u64, what: &str, quiet: bool) -> Self {
        Counter((!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(len);
            b.set_style(bar_style());
            b.set_message(what.to_string());
            b
        }))
    }

    pub fn inc(&self) {
        self.inc_by(1);
    }

    pub fn inc_by(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// The style of every bar: position, time spent and left, rate, message.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {per_sec} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Seconds as `H:MM:SS` (rounded to the second).
fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_reads_hours_minutes_seconds() {
        assert_eq!(super::clock(0.4), "0:00:00");
        assert_eq!(super::clock(59.6), "0:01:00");
        assert_eq!(super::clock(3725.0), "1:02:05");
    }
}
