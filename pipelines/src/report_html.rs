//! `RUN/report.html`: one self-contained page (no network, no external file) of how a run went, rewritten while
//! it trains: loss curves, D's scores, penalties and learning rates over steps (one plot per group of terms),
//! the standard metrics over time with their protocols, the sample grids over time (embedded PNGs), the final
//! summary and the resolved config. Everything is read back from the run directory (`metrics.jsonl`,
//! `samples/`, `report.json`, `config.resolved.yaml`), so the page of a stopped run can be rebuilt at any time.
//!
//! The curves are inline SVG drawn here. A small script checks, in the browser that opens the page, that every
//! plot has a drawn extent and every image decoded, and records the result in `<body data-check="…">`.
use crate::checkpoint::write_text_atomic;
use crate::error::{PipelineError, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The most sample grids the page embeds (spread evenly over the run, the newest always among them).
const MAX_GRIDS: usize = 12;
/// A grid larger than this is linked (relative to the run directory) instead of embedded.
const MAX_EMBEDDED_BYTES: u64 = 2 << 20;
/// The most points a curve draws (every k-th logged value beyond that, the last one always).
const MAX_POINTS: usize = 1500;
/// Series colours (colour-blind-safe palette, then greys).
const PALETTE: [&str; 10] = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442", "#000000", "#888888", "#bbbbbb"];

/// Rewrites `report.html` while a run trains, at most once every `interval` (and whenever asked with force).
pub struct Live {
    run_dir: PathBuf,
    interval: Duration,
    last: Option<Instant>,
}

impl Live {
    pub fn new(run_dir: &Path) -> Live {
        Live { run_dir: run_dir.to_path_buf(), interval: Duration::from_secs(10), last: None }
    }

    /// Rewrites the page unless it was written less than the interval ago (`force`: always).
    pub fn update(&mut self, force: bool) -> Result<()> {
        if !force && self.last.is_some_and(|t| t.elapsed() < self.interval) {
            return Ok(());
        }
        write(&self.run_dir)?;
        self.last = Some(Instant::now());
        Ok(())
    }
}

/// Writes `run_dir/report.html` (atomically) from what the run directory holds.
pub fn write(run_dir: &Path) -> Result<()> {
    let page = render(run_dir)?;
    write_text_atomic(&run_dir.join("report.html"), &page)
}

/// The logged lines of `metrics.jsonl`: training lines and evaluation lines (`eval`), each with its step.
#[derive(Default)]
pub(crate) struct Logged {
    pub(crate) train: Vec<(f64, serde_json::Map<String, Value>)>,
    pub(crate) eval: Vec<(f64, Value)>,
}

/// Reads `metrics.jsonl` (none yet: nothing logged); a line being appended or damaged is left out.
pub(crate) fn read_metrics(path: &Path) -> Result<Logged> {
    let mut out = Logged::default();
    let Some(text) = read_opt(path)? else { return Ok(out) };
    // A line being appended while we read (or a damaged one) is left out.
    for v in text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        let (Some(step), Value::Object(mut m)) = (v["step"].as_f64(), v) else { continue };
        match m.remove("eval") {
            Some(e) => out.eval.push((step, e)),
            None => out.train.push((step, m)),
        }
    }
    Ok(out)
}

/// The plot a logged term belongs to.
fn group_of(key: &str) -> &'static str {
    if key.starts_with("lr_") {
        "Learning rates"
    } else if key.starts_with("loss_D") {
        "Discriminator losses"
    } else if key.starts_with("loss") {
        "Generator and other losses"
    } else if key.starts_with("D_") {
        "D's mean scores"
    } else if key.starts_with("gp") || key.starts_with("r1") {
        "Penalties"
    } else {
        "Other terms"
    }
}

const GROUP_ORDER: [&str; 6] = ["Generator and other losses", "Discriminator losses", "D's mean scores", "Penalties", "Other terms", "Learning rates"];

type Series = Vec<(String, Vec<(f64, f64)>)>;

/// One plot per group of terms, in a fixed order, each series in the order it was first logged.
fn training_plots(lines: &[(f64, serde_json::Map<String, Value>)]) -> Vec<(&'static str, Series)> {
    let mut groups: BTreeMap<&str, Series> = BTreeMap::new();
    for (step, m) in lines {
        for (k, v) in m.iter().filter(|(k, _)| !matches!(k.as_str(), "step" | "time")) {
            let Some(y) = v.as_f64() else { continue };
            let series = groups.entry(group_of(k)).or_default();
            match series.iter_mut().find(|(name, _)| name == k) {
                Some((_, pts)) => pts.push((*step, y)),
                None => series.push((k.clone(), vec![(*step, y)])),
            }
        }
    }
    GROUP_ORDER.iter().filter_map(|g| groups.remove(g).map(|s| (*g, s))).collect()
}

/// The evaluation lines as one plot per metric (a series per comparison), and each comparison's newest
/// protocol.
fn eval_plots(lines: &[(f64, Value)]) -> (Vec<(String, Series)>, BTreeMap<String, String>) {
    let mut plots: BTreeMap<String, Series> = BTreeMap::new();
    let mut protocols = BTreeMap::new();
    for (step, e) in lines {
        let Some(sets) = e.as_object() else { continue };
        for (set, v) in sets {
            let Some(fields) = v.as_object() else { continue };
            for (metric, x) in fields {
                if let Some(p) = x.as_str().filter(|_| metric == "protocol") {
                    protocols.insert(set.clone(), p.to_string());
                }
                let Some(y) = x.as_f64() else { continue };
                let series = plots.entry(metric.clone()).or_default();
                match series.iter_mut().find(|(name, _)| name == set) {
                    Some((_, pts)) => pts.push((*step, y)),
                    None => series.push((set.clone(), vec![(*step, y)])),
                }
            }
        }
    }
    (plots.into_iter().collect(), protocols)
}

/// About five round tick values covering [lo, hi].
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| raw <= *s).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// The spacing of [`ticks`] (0 for fewer than two).
fn spacing(t: &[f64]) -> f64 {
    if t.len() < 2 { 0.0 } else { t[1] - t[0] }
}

/// A tick label with as many decimals as the tick spacing `step` needs.
fn fmt_tick(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if step < 1e-3 || v.abs() >= 1e5 {
        let digits = ((v.abs().log10().floor() - step.log10().floor()).max(0.0) as usize).min(6);
        return format!("{v:.digits$e}");
    }
    let decimals = ((-step.log10().floor()).max(0.0) as usize).min(9);
    format!("{v:.decimals$}")
}

/// A line plot of `series` against the step, as inline SVG.
fn svg_plot(title: &str, series: &Series) -> String {
    let (w, h, left, right, top, bottom) = (600.0, 270.0, 64.0, 170.0, 28.0, 36.0);
    let finite = series.iter().flat_map(|(_, p)| p.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in finite {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        (x0, x1) = (x0 - 1.0, x1 + 1.0);
    }
    if y1 - y0 < 1e-12 * y0.abs().max(1e-12) {
        let d = (y0.abs() * 0.1).max(1e-6);
        (y0, y1) = (y0 - d, y1 + d);
    }
    let pad = (y1 - y0) * 0.05;
    (y0, y1) = (y0 - pad, y1 + pad);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let px = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let py = |y: f64| top + (1.0 - (y - y0) / (y1 - y0)) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{t}"><text x="{left}" y="18" class="title">{t}</text><rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>"#,
        t = esc(title)
    );
    let yt = ticks(y0, y1);
    for &t in &yt {
        let y = py(t);
        let _ = write!(s, r#"<line x1="{left}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#, left + pw, left - 4.0, y + 4.0, fmt_tick(t, spacing(&yt)));
    }
    let xt = ticks(x0, x1);
    for &t in &xt {
        let x = px(t);
        let _ = write!(s, r#"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{:.1}" class="grid"/><text x="{x:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#, top + ph, top + ph + 14.0, fmt_tick(t, spacing(&xt)));
    }
    let _ = write!(s, r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">step</text>"#, left + pw / 2.0, h - 4.0);
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let pts: Vec<_> = pts.iter().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
        let every = pts.len().div_ceil(MAX_POINTS).max(1);
        let kept = pts.iter().enumerate().filter(|(j, _)| j % every == 0 || *j + 1 == pts.len()).map(|(_, p)| p);
        let coords: Vec<String> = kept.map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
        match coords.len() {
            0 => {}
            1 => {
                let (cx, cy) = coords[0].split_once(',').unwrap_or(("0", "0"));
                let _ = write!(s, r#"<circle class="pt" cx="{cx}" cy="{cy}" r="3" fill="{color}"/>"#);
            }
            _ => {
                let _ = write!(s, r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#, coords.join(" "));
            }
        }
        let ly = top + 12.0 + 16.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="4" fill="{color}"/><text x="{:.1}" y="{:.1}" class="legend">{}</text>"#,
            left + pw + 12.0,
            ly - 6.0,
            left + pw + 30.0,
            ly,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic Gregorian calendar, from days since 1970-01-01).
pub fn utc(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

/// HTML-escaped text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Standard base64 (what a `data:` URI takes).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= c.len() { A[(n >> shift & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// The sample grids of the run (`samples/step_*.png`, by step), at most [`MAX_GRIDS`] spread over the run.
fn grids(samples: &Path) -> Vec<(i64, PathBuf)> {
    let mut all: Vec<(i64, PathBuf)> = std::fs::read_dir(samples)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step_")?.strip_suffix(".png")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    all.sort();
    if all.len() <= MAX_GRIDS {
        return all;
    }
    let n = all.len();
    let mut picked: Vec<usize> = (0..MAX_GRIDS).map(|i| i * (n - 1) / (MAX_GRIDS - 1)).collect();
    picked.dedup();
    picked.into_iter().map(|i| all[i].clone()).collect()
}

fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PipelineError::io(path)(e)),
    }
}

/// The page.
fn render(run_dir: &Path) -> Result<String> {
    let config = read_opt(&run_dir.join("config.resolved.yaml"))?.unwrap_or_default();
    let cfg: Value = serde_yaml::from_str(&config).unwrap_or(Value::Null);
    let report: Value = read_opt(&run_dir.join("report.json"))?.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
    let logged = read_metrics(&run_dir.join("metrics.jsonl"))?;
    let name = cfg["name"].as_str().unwrap_or("run");
    let family = cfg["model"]["family"].as_str().unwrap_or("?");
    let planned = cfg["train"]["steps"].as_i64();
    let done = logged.train.last().map(|(s, _)| *s as i64).unwrap_or(0);
    let seconds = logged.train.last().and_then(|(_, m)| m.get("time")?.as_f64()).unwrap_or(0.0);

    let mut body = String::new();
    let _ = write!(body, "<h1>{} <small>({})</small></h1>", esc(name), esc(family));
    let _ = write!(
        body,
        "<p class=\"status\">step {done}{} · {:.0} s of training · {}</p>",
        planned.map(|p| format!(" of {p}")).unwrap_or_default(),
        seconds,
        esc(&run_dir.display().to_string())
    );
    if let Some(summary) = report["summary"].as_str() {
        let _ = write!(body, "<p class=\"summary\"><b>Result:</b> {}</p>", esc(summary));
    }

    body.push_str("<h2>Training curves</h2>");
    let plots = training_plots(&logged.train);
    if plots.is_empty() {
        body.push_str("<p>Nothing logged yet.</p>");
    }
    for (title, series) in &plots {
        body.push_str(&svg_plot(title, series));
    }

    let (evals, protocols) = eval_plots(&logged.eval);
    if !evals.is_empty() {
        body.push_str("<h2>Evaluation over time</h2>");
        for (metric, series) in &evals {
            body.push_str(&svg_plot(metric, series));
        }
        body.push_str("<ul class=\"protocols\">");
        for (set, p) in &protocols {
            let _ = write!(body, "<li><b>{}</b>: {}</li>", esc(set), esc(p));
        }
        body.push_str("</ul>");
    }

    let samples = run_dir.join("samples");
    let shown = grids(&samples);
    if !shown.is_empty() {
        let _ = write!(body, "<h2>Sample grids over time</h2><div class=\"grids\">");
        for (step, path) in &shown {
            let labels = read_opt(&path.with_extension("txt"))?.map(|t| format!("<pre class=\"labels\">{}</pre>", esc(t.trim_end()))).unwrap_or_default();
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX);
            let src = match size <= MAX_EMBEDDED_BYTES {
                true => match std::fs::read(path) {
                    Ok(bytes) => format!("data:image/png;base64,{}", base64(&bytes)),
                    Err(_) => continue, // replaced while we read: the next rewrite shows it
                },
                false => format!("samples/{}", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
            };
            let _ = write!(body, "<figure><img src=\"{src}\" alt=\"samples at step {step}\"><figcaption>step {step}</figcaption>{labels}</figure>");
        }
        body.push_str("</div>");
    }

    if !report.is_null() {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        let _ = write!(body, "<h2>Report</h2><details><summary>report.json</summary><pre>{}</pre></details>", esc(&text));
    }
    let _ = write!(body, "<h2>Resolved config</h2><pre class=\"config\">{}</pre>", esc(&config));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let written = utc(now);
    Ok(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · ganzoo</title><style>{STYLE}</style><script>{CHECK}</script></head>\
         <body>{body}<footer>written by ganzoo at {written}; rewritten while the run trains (reload to update)</footer></body></html>\n",
        title = esc(name)
    ))
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}h1 small{color:#777;font-weight:normal}\
svg.plot{margin:6px 12px 6px 0;background:#fff}svg .title{font-weight:600;font-size:13px}svg .tick{font-size:10px;fill:#555}\
svg .legend{font-size:11px}svg .frame{fill:none;stroke:#999}svg .grid{stroke:#eee}.grids{display:flex;flex-wrap:wrap;gap:12px}\
figure{margin:0}figure img{image-rendering:pixelated;max-width:420px;border:1px solid #ccc}figcaption{color:#555}\
pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:480px}pre.labels{font-size:11px;max-width:420px}footer{color:#888;margin-top:24px}";

/// Records in `<body data-check>` what the browser drew: plots with an extent and a line or point, images
/// decoded, script errors.
const CHECK: &str = "window.__errors=[];window.addEventListener('error',function(e){__errors.push(String(e.message||(e.target&&e.target.src)||'error'))},true);\
window.addEventListener('load',function(){var p=[].slice.call(document.querySelectorAll('svg.plot'));\
var drawn=p.filter(function(s){var b=s.getBBox();return b.width>0&&b.height>0&&s.querySelectorAll('polyline,circle.pt').length>0}).length;\
var im=[].slice.call(document.images);var ok=im.filter(function(i){return i.complete&&i.naturalWidth>0}).length;\
document.body.setAttribute('data-check',JSON.stringify({plots:p.length,plots_drawn:drawn,images:im.length,images_loaded:ok,errors:__errors}))});";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, coded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_601_600 + 3_661), "2026-12-07 01:01:01 UTC");
    }

    #[test]
    fn ticks_are_round_and_inside() {
        let t = ticks(0.13, 0.91);
        assert_eq!(t.len(), 4, "{t:?}");
        assert!(t.iter().all(|v| (0.13..=0.91).contains(v)));
        assert!((t[1] - t[0] - 0.2).abs() < 1e-12);
    }

    #[test]
    fn tick_labels_tell_neighbouring_ticks_apart() {
        assert_eq!(fmt_tick(0.00105, 5e-5), "1.05e-3");
        assert_eq!(fmt_tick(0.25, 0.05), "0.25");
        assert_eq!(fmt_tick(1200.0, 200.0), "1200");
        assert_eq!(fmt_tick(250000.0, 50000.0), "2.5e5");
    }

    #[test]
    fn terms_fall_into_their_groups() {
        let line = |s: f64, v: f64| (s, serde_json::json!({"step": s, "loss_D": v, "loss_G": v, "D_real": v, "gp": v, "lr_G": 1e-4, "time": 3.0}).as_object().unwrap().clone());
        let plots = training_plots(&[line(1.0, 0.5), line(2.0, 0.25)]);
        let titles: Vec<_> = plots.iter().map(|(t, _)| *t).collect();
        assert_eq!(titles, ["Generator and other losses", "Discriminator losses", "D's mean scores", "Penalties", "Learning rates"]);
        assert_eq!(plots[0].1[0].1, vec![(1.0, 0.5), (2.0, 0.25)]);
        let svg = svg_plot("Losses", &plots[0].1);
        assert!(svg.contains("<polyline") && svg.contains(">loss_G</text>"), "{svg}");
    }
}
