//! The bad-input suite (issue #16): what a hostile or careless user types, each case with its exit code and
//! the key words of its message pinned, and after each a check that no temp file, half-written output or stray
//! run folder (a run without a checkpoint) is left behind.
#[path = "../common/mod.rs"]
mod common;
use common::{ganzoo, is_temp, tree, TINY_RING};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A tiny CycleGAN on the procedural two-domain shapes (a run of it is the translate fixture).
const CG: &str = "name: cg\nseed: 1\nthreads: 1\ndata: {kind: shapes2, train: 8, test: 4, size: 16}\nmodel:\n  family: cyclegan\n  generator: {ngf: 4, n_blocks: 1}\n  discriminator: {ndf: 4, n_layers: 1}\n  pool_size: 0\ntrain: {steps: 2, batch_size: 2, log_every: 1, sample_every: 2, checkpoint_every: 2}\neval: {samples: 4, metrics: []}\n";

/// A tiny text-to-image run whose trainable encoder reads a user's tokenizer file `tok.json`.
const T2I: &str = "name: t2i\nseed: 4\nthreads: 1\ndata: {kind: shapes, size: 32, train_count: 16, test_count: 8}\nmodel:\n  family: gan_cls\n  z_dim: 8\n  generator: {arch: dcgan, ngf: 8, cond_proj: 8}\n  discriminator: {arch: dcgan, ndf: 8, cond_proj: 8}\n  text:\n    encoder: {kind: trainable, network: {arch: gru, embed_dim: 16, hidden: 16}, dim: 16, pretrain_steps: 2}\n    tokenizer: {kind: file, path: tok.json}\ntrain: {steps: 2, batch_size: 8}\n";

/// One bad input: files to add to a fresh copy of the fixtures, the command, its exit code, the words its
/// stderr must contain, and an extra check of what it left.
struct Case {
    name: &'static str,
    setup: fn(&Path),
    args: Vec<String>,
    code: i32,
    words: &'static [&'static str],
    after: fn(&Path),
}

fn case(name: &'static str, args: &[&str], code: i32, words: &'static [&'static str]) -> Case {
    Case { name, setup: |_| {}, args: args.iter().map(|s| s.to_string()).collect(), code, words, after: |_| {} }
}

impl Case {
    fn with(mut self, setup: fn(&Path)) -> Case {
        self.setup = setup;
        self
    }
    fn then(mut self, after: fn(&Path)) -> Case {
        self.after = after;
        self
    }
}

/// The fixtures every case starts from: the configs, a trained ring run, a trained CycleGAN run, an image
/// folder. Built once per test binary.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ganzoo-bad-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("imgs")).unwrap();
        std::fs::write(dir.join("ring.yaml"), TINY_RING).unwrap();
        std::fs::write(dir.join("cg.yaml"), CG).unwrap();
        for k in 0..3u8 {
            image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 16, y as u8 * 16, k * 80])).save(dir.join(format!("imgs/{k}.png"))).unwrap();
        }
        for (cfg, run) in [("ring.yaml", "ringrun"), ("cg.yaml", "cgrun")] {
            let (code, _, err) = ganzoo(&dir, &["train", cfg, "--out", run, "--quiet"]);
            assert_eq!(code, 0, "fixture {run}: {err}");
        }
        dir
    })
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

/// Runs the cases; returns the failures (all of them, not just the first).
fn run(cases: Vec<Case>) {
    let mut failures = Vec::new();
    let n = cases.len();
    for c in cases {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        copy_tree(fixtures(), d);
        (c.setup)(d);
        let before: std::collections::HashSet<PathBuf> = tree(d).into_iter().collect();
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let (code, _out, err) = ganzoo(d, &args);
        let mut why = Vec::new();
        if code != c.code {
            why.push(format!("exit {code}, expected {}", c.code));
        }
        for w in c.words.iter().filter(|w| !err.contains(**w)) {
            why.push(format!("stderr lacks {w:?}"));
        }
        if err.contains("internal failure") || err.contains("panicked") {
            why.push("a panic".into());
        }
        if err.len() > 4000 {
            why.push(format!("a {}-byte message", err.len()));
        }
        let after = tree(d);
        for p in after.iter().filter(|p| is_temp(p)) {
            why.push(format!("temp file left: {}", p.display()));
        }
        for p in after.iter().filter(|p| !before.contains(*p) && p.join("config.resolved.yaml").exists()) {
            if !p.join("checkpoints").is_dir() {
                why.push(format!("stray run folder without a checkpoint: {}", p.display()));
            }
        }
        if let Err(e) = std::panic::catch_unwind(|| (c.after)(d)) {
            why.push(format!("after-check failed: {:?}", e.downcast_ref::<String>()));
        }
        if !why.is_empty() {
            failures.push(format!("{}: {}\n    stderr: {}", c.name, why.join("; "), err.trim().chars().take(600).collect::<String>()));
        }
    }
    println!("{n} bad inputs tried, {} failed", failures.len());
    assert!(failures.is_empty(), "{} of {n} cases failed:\n  {}", failures.len(), failures.join("\n  "));
}

fn nothing_named(d: &Path, name: &str) -> bool {
    !tree(d).iter().any(|p| p.file_name().is_some_and(|n| n == name))
}

/// A PNG whose header claims `w`×`h` pixels, with no pixel data.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    fn crc(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut v = (data.len() as u32).to_be_bytes().to_vec();
        let body: Vec<u8> = kind.iter().chain(data).copied().collect();
        v.extend(&body);
        v.extend(crc(&body).to_be_bytes());
        v
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IEND", &[]));
    png
}

const FOLDER: &str = "name: f\nthreads: 1\ndata: {kind: image_folder, root: data, size: 32}\nmodel:\n  family: gan\n  generator: {arch: dcgan, ngf: 4}\n  discriminator: {arch: dcgan, ndf: 4}\ntrain: {steps: 2, batch_size: 2}\neval: {metrics: []}\n";

fn folder_with(d: &Path, extra: &str, bytes: &[u8]) {
    std::fs::create_dir_all(d.join("data")).unwrap();
    for k in 0..3 {
        std::fs::copy(d.join(format!("imgs/{k}.png")), d.join(format!("data/{k}.png"))).unwrap();
    }
    std::fs::write(d.join("f.yaml"), FOLDER).unwrap();
    if !extra.is_empty() {
        std::fs::write(d.join("data").join(extra), bytes).unwrap();
    }
}

#[test]
fn configs_and_overrides() {
    let q = common::repo().join("configs/quickstart/cyclegan_shapes.yaml");
    let q = q.to_str().unwrap();
    let long = format!("name={}", "a".repeat(3000));
    let long: &'static str = Box::leak(long.into_boxed_str());
    run(vec![
        case("absurd image size", &["train", q, "--set", "data.size=100000", "--set", "train.steps=1", "--out", "r"], 2, &["--set data.size=100000", "maximum of 4096"]),
        case("absurd width", &["train", "cg.yaml", "--set", "model.generator.ngf=200000"], 2, &["model.generator.ngf", "maximum of 8192"]),
        case("absurd depth", &["train", "cg.yaml", "--set", "model.generator.n_blocks=100000"], 2, &["model.generator.n_blocks", "maximum of 64"]),
        case("absurd count", &["train", "cg.yaml", "--set", "data.train=1000000000"], 2, &["data.train", "maximum of 1000000"]),
        case("absurd eval samples", &["train", "cg.yaml", "--set", "eval.samples=1000000000000"], 2, &["eval.samples"]),
        case("absurd keep_checkpoints", &["train", "ring.yaml", "--set", "train.keep_checkpoints=1000000000000"], 2, &["train.keep_checkpoints"]),
        case("absurd workers", &["train", "ring.yaml", "--set", "train.workers=10000"], 2, &["train.workers", "maximum of 256"]),
        case("absurd threads", &["train", "ring.yaml", "--set", "threads=5000"], 2, &["threads"]),
        case("absurd steps", &["train", "ring.yaml", "--set", "train.steps=99999999999"], 2, &["train.steps", "maximum"]),
        case("activations cannot fit", &["train", "cg.yaml", "--set", "data.size=4096", "--set", "train.batch_size=64"], 2, &["needs at least", "activations at batch 64", "GiB available"]),
        case("parameters cannot fit", &["train", "cg.yaml", "--set", "model.generator.ngf=4096", "--set", "model.generator.n_blocks=30"], 2, &["needs at least", "parameters with gradients and optimizer state"]),
        case("workers beyond the cores are capped", &["train", "cg.yaml", "--set", "train.workers=200", "--out", "w", "--quiet"], 0, &["is more than this machine's", "cores; using"]),
        case("name escaping runs/", &["train", "ring.yaml", "--set", "name=../escaped"], 2, &["name:", "not a folder name"]).then(|d| assert!(nothing_named(d, "escaped") && nothing_named(d.parent().unwrap(), "escaped"))),
        case("name with a slash", &["train", "ring.yaml", "--set", "name=a/b"], 2, &["not a folder name"]),
        case("empty name", &["train", "ring.yaml", "--set", "name=''"], 2, &["not a folder name"]),
        case("name of 3000 characters", &["train", "ring.yaml", "--set", long], 2, &["at most 100 characters", "(3005 characters)"]),
        case("negative steps blamed on --set", &["train", "ring.yaml", "--set", "train.steps=-5"], 2, &["--set train.steps=-5: train.steps: must be at least 1"]),
        case("zero batch", &["train", "ring.yaml", "--set", "train.batch_size=0"], 2, &["--set train.batch_size=0", "train.batch_size"]),
        case("steps not a number", &["train", "ring.yaml", "--set", "train.steps=abc"], 2, &["--set train.steps=abc", "train.steps"]),
        case("unknown key", &["train", "ring.yaml", "--set", "train.stpes=5"], 2, &["unknown key", "train.steps"]),
        case("override without =", &["train", "ring.yaml", "--set", "train.steps"], 2, &["expected dotted.key=value"]),
        case("override with an empty key", &["train", "ring.yaml", "--set", "=5"], 2, &["not a dotted key"]),
        case("unknown device", &["train", "ring.yaml", "--set", "device=tpu"], 2, &["device"]),
        case("negative seed", &["train", "ring.yaml", "--set", "seed=-1"], 2, &["seed"]),
        case("missing config", &["train", "nope.yaml"], 2, &["nope.yaml", "cannot read config file"]),
        case("config is a folder", &["train", "imgs"], 2, &["imgs", "cannot read config file"]),
        case("invalid YAML", &["train", "bad.yaml"], 2, &["bad.yaml", "not valid YAML"]).with(|d| std::fs::write(d.join("bad.yaml"), "data: [kind: ring8\n").unwrap()),
        case("a list at the top", &["train", "bad.yaml"], 2, &["a config must be a mapping"]).with(|d| std::fs::write(d.join("bad.yaml"), "- 1\n- 2\n").unwrap()),
        case("not UTF-8", &["train", "bad.yaml"], 2, &["bad.yaml"]).with(|d| std::fs::write(d.join("bad.yaml"), b"name: \xff\xfe\x00\x01\n").unwrap()),
        case("empty config", &["train", "bad.yaml"], 2, &["missing key `data`"]).with(|d| std::fs::write(d.join("bad.yaml"), "").unwrap()),
        case("extends itself", &["train", "bad.yaml"], 2, &["bad.yaml"]).with(|d| std::fs::write(d.join("bad.yaml"), "extends: bad.yaml\n").unwrap()),
        case("inspect of an absurd config", &["inspect", "ring.yaml", "--set", "model.generator.hidden=100000"], 2, &["model.generator.hidden", "maximum of 8192"]),
    ]);
}

#[test]
fn images_captions_and_data_folders() {
    run(vec![
        case("corrupt PNG in the data", &["train", "f.yaml", "--out", "r"], 2, &["bad.png"]).with(|d| folder_with(d, "bad.png", b"\x89PNG\r\n\x1a\nnot really")),
        case("zero-byte JPEG in the data", &["train", "f.yaml", "--out", "r"], 2, &["empty.jpg", "0 bytes"]).with(|d| folder_with(d, "empty.jpg", b"")),
        case("text file named .png", &["train", "f.yaml", "--out", "r"], 2, &["notes.png"]).with(|d| folder_with(d, "notes.png", b"hello, this is not an image")),
        case("a 20000 x 20000 PNG header", &["train", "f.yaml", "--out", "r"], 2, &["huge.png"]).with(|d| folder_with(d, "huge.png", &png_header(20_000, 20_000))),
        case("reusing --out after a failed start", &["train", "f.yaml", "--out", "r"], 0, &[]).with(|d| {
            folder_with(d, "bad.png", b"garbage");
            let (code, _, _) = ganzoo(d, &["train", "f.yaml", "--out", "r", "--quiet"]);
            assert_ne!(code, 0);
            std::fs::remove_file(d.join("data/bad.png")).unwrap();
        }),
        case("symlink loop in the data", &["train", "f.yaml", "--out", "r"], 2, &["symlink loop", "back"]).with(|d| {
            std::fs::create_dir_all(d.join("data/a")).unwrap();
            std::fs::write(d.join("f.yaml"), FOLDER).unwrap();
            std::fs::copy(d.join("imgs/0.png"), d.join("data/a/0.png")).unwrap();
            std::os::unix::fs::symlink("..", d.join("data/a/up")).unwrap();
        }),
        case("empty image folder", &["train", "f.yaml", "--out", "r"], 2, &["data: no readable images found"]).with(|d| {
            std::fs::create_dir_all(d.join("data")).unwrap();
            std::fs::write(d.join("f.yaml"), FOLDER).unwrap();
        }),
        case("missing image folder", &["train", "f.yaml", "--out", "r"], 2, &["data"]).with(|d| std::fs::write(d.join("f.yaml"), FOLDER).unwrap()),
        case("a single photo in a side-by-side split", &["train", "s.yaml", "--out", "r"], 2, &["x.png", "twice as wide as high"]).with(|d| {
            for split in ["train", "test"] {
                std::fs::create_dir_all(d.join("p").join(split)).unwrap();
                image::RgbImage::new(32, 16).save(d.join("p").join(split).join("pair.png")).unwrap();
            }
            image::RgbImage::new(256, 255).save(d.join("p/test/x.png")).unwrap();
            image::RgbImage::new(256, 255).save(d.join("p/train/x.png")).unwrap();
            std::fs::write(d.join("s.yaml"), CG.replace("{kind: shapes2, train: 8, test: 4, size: 16}", "{kind: unpaired, root: p, layout: side_by_side, size: 16}").replace("batch_size: 2", "batch_size: 1")).unwrap();
        }),
        case("two-domain folders without trainB", &["train", "s.yaml", "--out", "r"], 2, &["missing folder p/trainB"]).with(|d| {
            std::fs::create_dir_all(d.join("p/trainA")).unwrap();
            std::fs::copy(d.join("imgs/0.png"), d.join("p/trainA/0.png")).unwrap();
            std::fs::write(d.join("s.yaml"), CG.replace("{kind: shapes2, train: 8, test: 4, size: 16}", "{kind: unpaired, root: p, size: 16}")).unwrap();
        }),
        case("Latin-1 caption in a complete layout", &["data", "check", "captioned", "cub"], 2, &["cub: 2 problem(s) in the captioned data: cub/text/001.A/a.txt", "not UTF-8", "listed above"]).with(|d| {
            let root = d.join("cub");
            std::fs::create_dir_all(root.join("images/001.A")).unwrap();
            std::fs::create_dir_all(root.join("text/001.A")).unwrap();
            std::fs::create_dir_all(root.join("images/002.B")).unwrap();
            std::fs::create_dir_all(root.join("text/002.B")).unwrap();
            image::RgbImage::new(8, 8).save(root.join("images/001.A/a.jpg")).unwrap();
            image::RgbImage::new(8, 8).save(root.join("images/002.B/b.jpg")).unwrap();
            std::fs::write(root.join("text/001.A/a.txt"), b"a bird with a caf\xe9 colour\n").unwrap();
            std::fs::write(root.join("text/002.B/b.txt"), "a small bird\n").unwrap();
            std::fs::write(root.join("trainclasses.txt"), "001.A\n").unwrap();
            std::fs::write(root.join("testclasses.txt"), "002.B\n").unwrap();
        }),
        case("captioned root missing", &["data", "check", "captioned", "nothere"], 2, &["nothere"]),
        case("a tokenizer.json the tokenizers crate panics on", &["train", "t.yaml", "--out", "r"], 2, &["tok.json", "the tokenizers crate failed on it"]).with(|d| {
            // A Precompiled normalizer without a valid charsmap: the crate `expect`s; the error must name the file
            // and nothing about a panic may reach stderr.
            let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tests/fixtures/wordpiece_tokenizer.json");
            let text = std::fs::read_to_string(fixture).unwrap();
            std::fs::write(d.join("tok.json"), text.replacen("\"type\": \"BertNormalizer\"", "\"type\": \"Precompiled\"", 1)).unwrap();
            std::fs::write(d.join("t.yaml"), T2I).unwrap();
        }),
    ]);
}

#[test]
fn checkpoints_runs_and_arguments() {
    fn damage_newest(d: &Path) {
        std::fs::write(d.join("ringrun/checkpoints/step_00000040.safetensors"), b"abc").unwrap();
    }
    run(vec![
        case("sample of a damaged newest checkpoint", &["sample", "ringrun", "--out", "s.png"], 1, &["step_00000040.safetensors", "damaged", "newest intact checkpoint is step 30"]).with(damage_newest),
        case("resume past a damaged checkpoint", &["train", "--resume", "ringrun", "--set", "train.steps=50", "--quiet"], 0, &["skipping a damaged checkpoint", "step_00000040.safetensors"]).with(damage_newest),
        case("resume past a damaged description", &["train", "--resume", "ringrun", "--set", "train.steps=50", "--quiet"], 0, &["skipping a damaged checkpoint", "step_00000040.json"]).with(|d| std::fs::write(d.join("ringrun/checkpoints/step_00000040.json"), "{").unwrap()),
        case("every checkpoint damaged", &["train", "--resume", "ringrun", "--quiet"], 1, &["step_00000040.json", "the checkpoint is damaged"]).with(|d| {
            for p in tree(&d.join("ringrun/checkpoints")) {
                std::fs::write(p, b"x").unwrap();
            }
        }),
        case("sample of a folder that is no run", &["sample", "imgs", "--out", "s.png"], 2, &["imgs", "not a run directory"]),
        case("resume of a folder that is no run", &["train", "--resume", "imgs"], 2, &["not a run directory"]),
        case("sample --n too large", &["sample", "ringrun", "--n", "100000000", "--out", "s.png"], 2, &["--n 100000000", "maximum"]),
        case("sample --n 0", &["sample", "ringrun", "--n", "0", "--out", "s.png"], 2, &["--n must be at least 1"]),
        case("class on an unconditional run", &["sample", "ringrun", "--class", "3", "--out", "s.png"], 2, &["class"]),
        case("prompt on an unconditional run", &["sample", "ringrun", "--prompt", "a red circle", "--out", "s.png"], 2, &["prompt"]),
        case("eval overriding a training key", &["eval", "ringrun", "--set", "train.steps=5"], 2, &["eval"]),
        case("fid of an empty folder", &["fid", "empty", "imgs"], 2, &["empty"]).with(|d| std::fs::create_dir_all(d.join("empty")).unwrap()),
        case("fid --batch-size 0", &["fid", "imgs", "imgs", "--batch-size", "0"], 2, &["--batch-size must be between 1 and"]),
        case("fid --n too large", &["fid", "ringrun", "imgs", "--n", "100000000"], 2, &["--n 100000000", "maximum"]),
        case("stats over an existing file", &["stats", "imgs", "--out", "s.npz"], 2, &["s.npz"]).with(|d| std::fs::write(d.join("s.npz"), b"mine").unwrap()).then(|d| assert_eq!(std::fs::read(d.join("s.npz")).unwrap(), b"mine")),
        case("import of a file of another architecture", &["import", "cg.yaml", "--weights", "G_A=ringrun/checkpoints/step_00000040.safetensors", "--out", "imp"], 2, &["does not fit G_A", "missing model.1.bias"]),
        case("import of a missing file", &["import", "cg.yaml", "--weights", "G_A=nope.safetensors", "--out", "imp"], 2, &["nope.safetensors"]),
        case("import of a garbage file", &["import", "cg.yaml", "--weights", "G_A=imgs/0.png", "--out", "imp"], 2, &["cannot read imgs/0.png as safetensors"]),
        case("no command", &[], 2, &["Usage"]),
        case("unknown command", &["trian"], 2, &["trian"]),
        case("unknown shell", &["completions", "tcsh"], 2, &["tcsh"]),
        case("translate --size too large", &["translate", "cgrun", "--direction", "a2b", "imgs", "out", "--size", "100000"], 2, &["--size 100000", "maximum of 4096"]),
        case("translate, unknown direction", &["translate", "cgrun", "--direction", "up", "imgs", "out"], 2, &["up"]),
    ]);
}

#[test]
fn output_paths() {
    fn originals_kept(d: &Path) {
        let again = image::open(d.join("imgs/0.png")).unwrap().to_rgb8();
        assert_eq!(again.get_pixel(3, 5).0, [48, 80, 0], "the user's image was overwritten");
    }
    run(vec![
        case("translate IN into IN", &["translate", "cgrun", "--direction", "a2b", "imgs", "imgs"], 2, &["is the input folder", "overwrite"]).then(originals_kept),
        case("translate IN into IN/sub", &["translate", "cgrun", "--direction", "a2b", "imgs", "imgs/sub"], 2, &["is inside the input folder"]).then(|d| assert!(!d.join("imgs/sub").exists())),
        case("translate IN into a link to IN", &["translate", "cgrun", "--direction", "a2b", "imgs", "link"], 2, &["is the input folder"]).with(|d| std::os::unix::fs::symlink("imgs", d.join("link")).unwrap()).then(originals_kept),
        case("translate IN into IN/./", &["translate", "cgrun", "--direction", "b2a", "imgs", "./imgs/../imgs"], 2, &["is the input folder"]).then(originals_kept),
        case("reconstruct IN into IN with a run of another family", &["reconstruct", "cgrun", "imgs", "imgs"], 2, &["needs a vaegan run"]).then(originals_kept),
        case("translate to a file", &["translate", "cgrun", "--direction", "a2b", "imgs", "f"], 2, &["f", "already there"]).with(|d| std::fs::write(d.join("f"), b"x").unwrap()),
        case("translate stops at a bad input before writing", &["translate", "cgrun", "--direction", "a2b", "in", "out"], 2, &["in/1.png"]).with(|d| {
            copy_tree(&d.join("imgs"), &d.join("in"));
            std::fs::write(d.join("in/1.png"), b"broken").unwrap();
        }).then(|d| assert!(!d.join("out").exists() || std::fs::read_dir(d.join("out")).unwrap().next().is_none(), "outputs written before the bad input")),
        case("sample --out an existing folder", &["sample", "ringrun", "--out", "dir"], 2, &["dir", "a folder where a file is needed"]).with(|d| std::fs::create_dir_all(d.join("dir")).unwrap()).then(|d| assert!(nothing_named(d, "dir.tmp"))),
        case("sample --out below a file", &["sample", "ringrun", "--out", "f/s.png"], 2, &["f", "a file"]).with(|d| std::fs::write(d.join("f"), b"x").unwrap()),
        case("train --out a file", &["train", "ring.yaml", "--out", "f"], 2, &["f", "--out is a file"]).with(|d| std::fs::write(d.join("f"), b"x").unwrap()).then(|d| assert_eq!(std::fs::read(d.join("f")).unwrap(), b"x")),
        case("train --out a run", &["train", "ring.yaml", "--out", "ringrun"], 2, &["ringrun already holds a run; continue it with `ganzoo train --resume ringrun`"]),
        case("train --out a run stopped before its first checkpoint", &["train", "ring.yaml", "--out", "r"], 2, &["stopped before its first checkpoint", "--resume"]).with(|d| {
            std::fs::create_dir_all(d.join("r")).unwrap();
            std::fs::copy(d.join("ringrun/config.resolved.yaml"), d.join("r/config.resolved.yaml")).unwrap();
            std::fs::create_dir_all(d.join("r/checkpoints")).unwrap();
        }),
        case("resume of a run stopped before its first checkpoint", &["train", "--resume", "r", "--quiet"], 0, &[]).with(|d| {
            std::fs::create_dir_all(d.join("r")).unwrap();
            std::fs::copy(d.join("ringrun/config.resolved.yaml"), d.join("r/config.resolved.yaml")).unwrap();
        }),
        case("runs/ is a file", &["train", "ring.yaml"], 2, &["runs", "a file where a folder is needed"]).with(|d| std::fs::write(d.join("runs"), b"x").unwrap()),
        case("stats --out a folder", &["stats", "imgs", "--out", "imgs"], 2, &["imgs"]),
        case("stale temp files of a killed run", &["train", "--resume", "ringrun", "--set", "train.steps=50", "--quiet"], 0, &[]).with(|d| {
            std::fs::write(d.join("ringrun/checkpoints/step_00000050.safetensors.tmp"), b"half").unwrap();
            std::fs::write(d.join("ringrun/samples/.step_00000050.png.tmp-999"), b"half").unwrap();
            std::fs::write(d.join("ringrun/config.resolved.yaml.tmp"), b"half").unwrap();
        }),
    ]);
}
