//! Seeing a run: `report.html` rendered by a real browser (Debian's Chromium, headless), and `ganzoo runs`
//! listing finished, failed, running and stopped runs.
mod common;
use common::{ganzoo, json, write, TINY_RING};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Chromium as `.ci/dev test` installs it (Debian's package), or `$GANZOO_CHROMIUM`.
fn chromium() -> String {
    if let Ok(c) = std::env::var("GANZOO_CHROMIUM") {
        return c;
    }
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return c.into();
        }
    }
    panic!("no Chromium: `bash .ci/dev test` installs Debian's chromium package (or set GANZOO_CHROMIUM to a Chromium binary)");
}

/// Opens `page` in headless Chromium and returns the `data-check` record the page's script leaves on its
/// body after loading (plots drawn, images decoded, script errors). A screenshot goes to `shot`.
fn render(page: &Path, shot: &Path) -> serde_json::Value {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let base = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--allow-file-access-from-files",
    ];
    let run = |extra: &[String]| {
        let out = Command::new(chromium())
            .args(base)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium starts");
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[format!("--screenshot={}", shot.display()), "--window-size=1300,2400".into()]);
    let dom = run(&["--dump-dom".into()]);
    let attr = dom.split("data-check=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_else(|| panic!("the page's check did not run:\n{dom}"));
    json(&attr.replace("&quot;", "\"").replace("&amp;", "&"))
}

#[test]
fn the_report_page_renders_its_curves_and_grids_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.yaml", &TINY_RING.replace("log_every: 10", "log_every: 5"));
    let (code, _, err) = ganzoo(dir.path(), &["train", "c.yaml", "--out", "runs/a", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let page = dir.path().join("runs/a/report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for part in ["Generator and other losses", "Discriminator losses", "D's mean scores", "Learning rates", "step 40 of 40", "Result:", "data:image/png;base64,", "Resolved config"] {
        assert!(html.contains(part), "report.html lacks {part}");
    }
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "the page loads nothing from a network");
    let check = render(&page, &dir.path().join("shot.png"));
    assert_eq!(check["errors"], serde_json::json!([]), "{check}");
    assert_eq!(check["plots"], 4, "{check}");
    assert_eq!(check["plots_drawn"], check["plots"], "every plot has an extent and a curve: {check}");
    assert_eq!(check["images"], 2, "the grids of steps 20 and 40: {check}");
    assert_eq!(check["images_loaded"], 2, "every grid decodes: {check}");
    let shot = image::open(dir.path().join("shot.png")).expect("chromium wrote a PNG screenshot");
    assert!(shot.width() >= 1000, "{}", shot.width());
}

/// A training process killed when the test ends, also when it fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The rows of `ganzoo runs DIR --json`, by run name.
fn runs(dir: &Path) -> serde_json::Value {
    let (code, out, err) = ganzoo(dir, &["runs", "runs", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json(&out);
    let by_name: serde_json::Map<_, _> = rows.as_array().unwrap().iter().map(|r| (r["run"].as_str().unwrap().to_string(), r.clone())).collect();
    serde_json::Value::Object(by_name)
}

#[test]
fn runs_lists_finished_failed_running_and_stopped_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "c.yaml", TINY_RING);
    assert_eq!(ganzoo(d, &["train", "c.yaml", "--out", "runs/done", "--quiet"]).0, 0);
    // A run that diverges after its first checkpoint: failed, with the error.
    let diverging = TINY_RING
        .replace("checkpoint_every: 10", "checkpoint_every: 1")
        .replace("train:\n", "train:\n  g_optimizer: {kind: sgd, lr: 1.0e+30}\n  d_optimizer: {kind: sgd, lr: 0.01}\n");
    write(d, "bad.yaml", &diverging);
    assert_eq!(ganzoo(d, &["train", "bad.yaml", "--out", "runs/diverged", "--quiet"]).0, 1);
    // A long run, listed while it trains, then killed.
    let long = TINY_RING.replace("steps: 40", "steps: 10000000").replace("sample_every: 20", "sample_every: 1000000");
    write(d, "long.yaml", &long.replace("checkpoint_every: 10", "checkpoint_every: 1000000"));
    let child = Command::new(env!("CARGO_BIN_EXE_ganzoo")).args(["train", "long.yaml", "--out", "runs/long", "--quiet"]).current_dir(d).spawn().unwrap();
    let mut child = KillOnDrop(child);
    let started = Instant::now();
    // Its first logged step (checkpoints rotate too fast to wait for one by name).
    while std::fs::read_to_string(d.join("runs/long/metrics.jsonl")).map_or(true, |m| m.is_empty()) {
        assert!(started.elapsed() < Duration::from_secs(120), "the long run logged nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = runs(d);
    assert_eq!(r["long"]["state"], "running", "{r}");
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let r = runs(d);
    assert_eq!(r["done"]["state"], "finished", "{r}");
    assert_eq!((r["done"]["step"].as_i64(), r["done"]["steps"].as_i64()), (Some(40), Some(40)), "{r}");
    assert_eq!(r["done"]["family"], "gan");
    assert!(r["done"]["losses"]["loss_D"].is_number(), "{r}");
    assert_eq!(r["diverged"]["state"], "failed", "{r}");
    assert!(r["diverged"]["detail"].as_str().unwrap().contains("step 2"), "the error it stopped on: {r}");
    assert_eq!(r["long"]["state"], "stopped", "{r}");
    assert_eq!(r["long"]["steps"], 10000000);
    // The table names every run and state.
    let (code, out, err) = ganzoo(d, &["runs"]);
    assert_eq!(code, 0, "{err}");
    for word in ["RUN", "done", "finished", "diverged", "failed: ", "long", "stopped", "40/40"] {
        assert!(out.contains(word), "`ganzoo runs` lacks {word}:\n{out}");
    }
    // A folder that is not there is a usage error naming it.
    let (code, _, err) = ganzoo(d, &["runs", "nowhere"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nowhere"), "{err}");
}
