//! Seeded mutation fuzzing on stable Rust (issue #16), shared by `data/tests/fuzz.rs` and
//! `pipelines/tests/fuzz_config.rs` through `#[path]`: a byte mutator, a counting global allocator and a loop
//! that runs each mutated input under `catch_unwind`, counts panics and the largest single allocation, and saves
//! the inputs that fail so they can be replayed.
//!
//! `GANZOO_FUZZ_CASES` sets the cases per reader (the CI default is sized for about a minute in all),
//! `GANZOO_FUZZ_SEED` the seed. Case `i` of a reader draws from its own generator (seed, reader, i), so a
//! saved case reruns alone and a longer run starts with the cases of a shorter one.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Passes every request to the system allocator and remembers the largest single request, so a reader that
/// sizes a buffer from a header field shows up even when the machine could satisfy it. (Refusing is not an
/// option: a null return aborts the process instead of failing the case.)
pub struct CountingAlloc;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The allocation bound of one case: 64 MiB, or 16 bytes per input byte for a larger input.
pub fn alloc_bound(input_len: usize) -> usize {
    (64 << 20).max(input_len.saturating_mul(16))
}

/// Cases per reader: `GANZOO_FUZZ_CASES`, else `default`.
pub fn cases(default: usize) -> usize {
    std::env::var("GANZOO_FUZZ_CASES").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(default)
}

/// The run's seed: `GANZOO_FUZZ_SEED`, else a fixed one (CI runs the same cases every time).
pub fn seed() -> u64 {
    std::env::var("GANZOO_FUZZ_SEED").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(16)
}

/// One fuzz run at a time per test binary: the allocation maximum and the quiet panic hook are global.
static RUN_LOCK: Mutex<()> = Mutex::new(());
/// Set while a case runs: the panic hook then records the message instead of printing it.
static IN_CASE: AtomicBool = AtomicBool::new(false);
static PANIC_MSG: Mutex<Option<String>> = Mutex::new(None);
static HOOK: Once = Once::new();

/// Held by each fuzz test from its first line: the test harness runs tests on parallel threads, and another
/// test's setup (training a tokenizer, writing seeds) would count in this one's allocation maximum.
pub fn serial() -> MutexGuard<'static, ()> {
    RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn install_hook() {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CASE.load(Ordering::SeqCst) {
                return default(info);
            }
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".into());
            let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            let mut slot = PANIC_MSG.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(format!("{msg}{at}"));
            }
        }));
    });
}

/// What a reader is fed and what it makes of it.
pub struct Case {
    /// This case's generator, for choices beyond the input (e.g. which `--set` strings go with a config).
    pub rng: ChaCha8Rng,
    /// Anything besides the input needed to replay the case; saved next to a failing input.
    pub note: String,
}

/// A case that panicked or allocated past the bound.
#[derive(Debug)]
pub struct Failure {
    pub case: usize,
    pub what: String,
    pub saved: PathBuf,
}

/// The counts of one reader's run.
#[derive(Debug, Default)]
pub struct Report {
    pub reader: String,
    pub seed: u64,
    pub cases: usize,
    pub ok: usize,
    pub errors: usize,
    pub panics: usize,
    pub over_bound: usize,
    pub largest_alloc: usize,
    pub largest_alloc_input: usize,
    pub failures: Vec<Failure>,
}

impl Report {
    /// Prints the counts (the line a long run reports) and fails the test on any panic or allocation past the
    /// bound, listing the first few with where their inputs were saved.
    pub fn check(&self) {
        println!(
            "fuzz {}: {} cases (seed {}): {} ok, {} errors, {} panics, {} over the allocation bound; largest \
             allocation {} bytes (input of {} bytes)",
            self.reader,
            self.cases,
            self.seed,
            self.ok,
            self.errors,
            self.panics,
            self.over_bound,
            self.largest_alloc,
            self.largest_alloc_input
        );
        if !self.failures.is_empty() {
            let list: Vec<String> = self
                .failures
                .iter()
                .take(5)
                .map(|f| format!("  case {} (seed {}): {}\n    input: {}", f.case, self.seed, f.what, f.saved.display()))
                .collect();
            panic!(
                "fuzz {}: {} panics and {} allocations past the bound in {} cases; first ones:\n{}",
                self.reader,
                self.panics,
                self.over_bound,
                self.cases,
                list.join("\n")
            );
        }
    }
}

/// Runs `cases` mutated copies of `seeds` through `run` (which writes the input where its reader wants it, reads
/// it, and says whether the reader accepted it); the caller holds [`serial`]. `ext` names saved inputs; `dict` holds tokens of the format
/// worth inserting (keys, brackets, magic strings).
pub fn fuzz(
    reader: &str,
    ext: &str,
    seeds: &[Vec<u8>],
    dict: &[&[u8]],
    cases: usize,
    mut run: impl FnMut(&[u8], &mut Case) -> Result<(), String>,
) -> Report {
    assert!(!seeds.is_empty(), "fuzz {reader}: no seed inputs");
    assert!(RUN_LOCK.try_lock().is_err(), "fuzz {reader}: hold fuzz_support::serial() for the whole test");
    install_hook();
    let seed = seed();
    let save_dir = std::env::temp_dir().join(format!("ganzoo-fuzz-{}", std::process::id())).join(reader);
    let mut report = Report { reader: reader.into(), seed, cases, ..Report::default() };
    let reader_salt = reader.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    for i in 0..cases {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ reader_salt);
        rng.set_stream(i as u64);
        // The unmutated seeds go first, so a reader that rejects its own valid input is noticed.
        let input = if i < seeds.len() { seeds[i].clone() } else { mutate(&mut rng, seeds, dict) };
        let mut case = Case { rng, note: String::new() };
        *PANIC_MSG.lock().unwrap_or_else(|e| e.into_inner()) = None;
        LARGEST.store(0, Ordering::SeqCst);
        IN_CASE.store(true, Ordering::SeqCst);
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&input, &mut case)));
        IN_CASE.store(false, Ordering::SeqCst);
        let largest = LARGEST.load(Ordering::SeqCst);
        if largest > report.largest_alloc {
            report.largest_alloc = largest;
            report.largest_alloc_input = input.len();
        }
        let bound = alloc_bound(input.len());
        let mut failed = Vec::new();
        match outcome {
            Ok(Ok(())) => report.ok += 1,
            Ok(Err(_)) => report.errors += 1,
            Err(_) => {
                report.panics += 1;
                let msg = PANIC_MSG.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
                failed.push(format!("panic: {msg}"));
            }
        }
        if largest > bound {
            report.over_bound += 1;
            failed.push(format!("allocated {largest} bytes at once for an input of {} bytes (bound {bound})", input.len()));
        }
        if !failed.is_empty() && report.failures.len() < 20 {
            let what = failed.join("; ");
            let saved = save_dir.join(format!("case-{i}.{ext}"));
            let _ = std::fs::create_dir_all(&save_dir);
            let _ = std::fs::write(&saved, &input);
            let _ = std::fs::write(
                save_dir.join(format!("case-{i}.txt")),
                format!("reader {reader}, seed {seed}, case {i}\n{what}\n{}\n", case.note),
            );
            report.failures.push(Failure { case: i, what, saved });
        }
    }
    report
}

/// Numbers worth trying wherever the text holds one: zero, signs, type limits and one past them, floats that
/// overflow or are not numbers.
const NUMBERS: &[&str] = &[
    "0", "-1", "1", "-0", "255", "256", "65535", "65536", "2147483647", "2147483648", "-2147483649", "4294967295",
    "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551615",
    "18446744073709551616", "99999999999999999999999999999", "1e308", "1e309", "-1e309", "1e-320", "NaN", ".nan",
    ".inf", "-.inf", "0x7fffffff", "0o777", "1.5", "-0.0", "",
];

/// Bytes worth trying anywhere: structure in the text formats, line ends, and bytes that break UTF-8.
const BYTES: &[u8] = &[0, 0xff, 0x7f, 0x80, 0xc0, 0xfe, b'\n', b'\r', b'"', b'\'', b':', b'{', b'}', b'[', b']', b',', b'-', b'#', b'\\', b'\t', b' ', b'&', b'*', b'!', b'.'];

/// Characters that are valid UTF-8 but often mishandled: multibyte, a byte-order mark, NUL, replacement,
/// direction marks, combining accents, astral plane.
const CHARS: &[&str] = &["é", "中", "🐦", "\u{feff}", "\u{0}", "\u{fffd}", "\u{202e}", "e\u{301}", "\u{10ffff}", "ß", "İ", "\u{85}", "\u{2028}"];

/// A mutated copy of one of `seeds`: 1 to 4 stacked mutations (sometimes up to 12).
pub fn mutate(rng: &mut ChaCha8Rng, seeds: &[Vec<u8>], dict: &[&[u8]]) -> Vec<u8> {
    let mut v = seeds[rng.gen_range(0..seeds.len())].clone();
    // A JSON input (tokenizer.json) mostly stops being JSON under byte mutations, so a third of its cases
    // change values and structure in the parsed document instead, then take at most a byte mutation or two.
    let mut rounds = if rng.gen_ratio(1, 8) { rng.gen_range(4..=12) } else { rng.gen_range(1..=4) };
    if rng.gen_ratio(1, 3) {
        if let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&v) {
            for _ in 0..rng.gen_range(1..=3) {
                mutate_json(rng, &mut doc);
            }
            v = if rng.gen() { serde_json::to_vec(&doc) } else { serde_json::to_vec_pretty(&doc) }.unwrap_or(v);
            rounds = rng.gen_range(0..=2);
        }
    }
    for _ in 0..rounds {
        mutate_once(rng, &mut v, seeds, dict);
    }
    // Keep inputs near the seeds' size so cases stay fast (growth is tested by the duplications).
    let cap = seeds.iter().map(Vec::len).max().unwrap_or(0) * 4 + 4096;
    v.truncate(cap);
    v
}

/// Changes one node of a JSON document: a number to an extreme, a string edited or swapped, a flag flipped,
/// an element or key removed, duplicated or renamed, a node replaced by another kind.
fn mutate_json(rng: &mut ChaCha8Rng, doc: &mut serde_json::Value) {
    use serde_json::{json, Value};
    let mut paths = Vec::new();
    json_paths(doc, String::new(), &mut paths);
    let path = paths[rng.gen_range(0..paths.len())].clone();
    let strings: Vec<String> = paths.iter().filter_map(|p| doc.pointer(p)?.as_str().map(str::to_string)).take(64).collect();
    let Some(node) = doc.pointer_mut(&path) else { return };
    if rng.gen_ratio(1, 6) {
        *node = match rng.gen_range(0..5) {
            0 => Value::Null,
            1 => json!([]),
            2 => json!({}),
            3 => json!(""),
            _ => json!(-1),
        };
        return;
    }
    match node {
        Value::Number(_) => {
            *node = match rng.gen_range(0..9) {
                0 => json!(0),
                1 => json!(-1),
                2 => json!(u32::MAX),
                3 => json!(u64::MAX),
                4 => json!(i64::MIN),
                5 => json!(1e300),
                6 => json!(0.5),
                7 => json!(u32::MAX as u64 + 1),
                _ => json!(rng.gen_range(0..200)),
            }
        }
        Value::String(s) => match rng.gen_range(0..4) {
            0 => s.clear(),
            1 if !strings.is_empty() => *s = strings[rng.gen_range(0..strings.len())].clone(),
            2 => s.push_str(CHARS[rng.gen_range(0..CHARS.len())]),
            _ => {
                let cut = s.char_indices().map(|(i, _)| i).nth(rng.gen_range(0..=s.chars().count().max(1))).unwrap_or(s.len());
                s.truncate(cut);
            }
        },
        Value::Bool(b) => *b = !*b,
        Value::Array(a) if !a.is_empty() => {
            let i = rng.gen_range(0..a.len());
            match rng.gen_range(0..3) {
                0 => {
                    a.remove(i);
                }
                1 => {
                    let (x, at) = (a[i].clone(), rng.gen_range(0..=a.len()));
                    a.insert(at, x);
                }
                _ => {
                    let j = rng.gen_range(0..a.len());
                    a.swap(i, j);
                }
            }
        }
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(rng.gen_range(0..m.len())).cloned().unwrap_or_default();
            match rng.gen_range(0..3) {
                0 => {
                    m.remove(&key);
                }
                1 => {
                    let x = m[&key].clone();
                    m.insert(format!("{key}{}", CHARS[rng.gen_range(0..CHARS.len())]), x);
                }
                _ => {
                    let x = m.remove(&key).unwrap_or(Value::Null);
                    let other = strings.get(rng.gen_range(0..strings.len().max(1))).cloned().unwrap_or_default();
                    m.insert(other, x);
                }
            }
        }
        _ => {}
    }
}

/// JSON pointers of the nodes of `v` (at most a few thousand, so a large vocabulary stays cheap).
fn json_paths(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    if out.len() >= 4096 {
        return;
    }
    out.push(at.clone());
    match v {
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                json_paths(x, format!("{at}/{i}"), out);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                json_paths(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        _ => {}
    }
}

/// A position in `0..=len` (an insertion point).
fn pos(rng: &mut ChaCha8Rng, len: usize) -> usize {
    rng.gen_range(0..=len)
}

/// A range of `v`, short more often than long.
fn range(rng: &mut ChaCha8Rng, len: usize) -> std::ops::Range<usize> {
    let a = pos(rng, len);
    let max = (len - a).min(if rng.gen_ratio(1, 4) { len } else { 32 });
    let n = if max == 0 { 0 } else { rng.gen_range(1..=max) };
    a..a + n
}

fn mutate_once(rng: &mut ChaCha8Rng, v: &mut Vec<u8>, seeds: &[Vec<u8>], dict: &[&[u8]]) {
    let len = v.len();
    match rng.gen_range(0..13) {
        // Bit flip.
        0 if len > 0 => {
            let i = rng.gen_range(0..len);
            v[i] ^= 1 << rng.gen_range(0..8);
        }
        // Overwrite a byte with a random or a meaningful one.
        1 if len > 0 => {
            let i = rng.gen_range(0..len);
            v[i] = if rng.gen() { rng.gen() } else { BYTES[rng.gen_range(0..BYTES.len())] };
        }
        // Insert random bytes (mostly invalid UTF-8).
        2 => {
            let n = rng.gen_range(1..=16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            let at = pos(rng, len);
            v.splice(at..at, bytes);
        }
        // Insert valid UTF-8: random scalar values or tricky characters.
        3 => {
            let mut s = String::new();
            for _ in 0..rng.gen_range(1..=4) {
                if rng.gen() {
                    s.push(rng.gen::<char>());
                } else {
                    s.push_str(CHARS[rng.gen_range(0..CHARS.len())]);
                }
            }
            let at = pos(rng, len);
            v.splice(at..at, s.into_bytes());
        }
        // Insert a token of the format.
        4 if !dict.is_empty() => {
            let t = dict[rng.gen_range(0..dict.len())];
            let at = pos(rng, len);
            v.splice(at..at, t.iter().copied());
        }
        // Delete a range.
        5 => {
            let r = range(rng, len);
            v.drain(r);
        }
        // Duplicate a range, up to 8 times, somewhere else.
        6 => {
            let r = range(rng, len);
            let chunk = v[r].to_vec();
            let times = if rng.gen_ratio(1, 4) { rng.gen_range(2..=8) } else { 1 };
            let at = pos(rng, len);
            v.splice(at..at, chunk.iter().copied().cycle().take(chunk.len() * times));
        }
        // Truncate.
        7 => v.truncate(pos(rng, len)),
        // Splice: this input's head, another seed's tail.
        8 => {
            let other = &seeds[rng.gen_range(0..seeds.len())];
            let (a, b) = (pos(rng, len), pos(rng, other.len()));
            v.truncate(a);
            v.extend_from_slice(&other[b..]);
        }
        // Replace a number written in the text (a shape, a length, a size) with an extreme one.
        9 => {
            let runs: Vec<std::ops::Range<usize>> = digit_runs(v);
            let new = NUMBERS[rng.gen_range(0..NUMBERS.len())].as_bytes();
            if runs.is_empty() {
                let at = pos(rng, len);
                v.splice(at..at, new.iter().copied());
            } else {
                let r = runs[rng.gen_range(0..runs.len())].clone();
                v.splice(r, new.iter().copied());
            }
        }
        // Overwrite a little-endian integer (a binary length or header size): at the start, where the formats
        // keep their length prefixes, or anywhere.
        10 if len > 0 => {
            let width = [1usize, 2, 4, 8][rng.gen_range(0..4)];
            let at = match rng.gen_range(0..4) {
                0 => 0,
                1 => 8.min(len - 1),
                _ => rng.gen_range(0..len),
            };
            let val: u64 = match rng.gen_range(0..10) {
                0 => 0,
                1 => 1,
                2 => u64::MAX,
                3 => i64::MAX as u64,
                4 => u32::MAX as u64,
                5 => u16::MAX as u64,
                6 => len as u64,
                7 => (len as u64).wrapping_add(rng.gen_range(0..3)).wrapping_sub(1),
                8 => 1 << rng.gen_range(0..64),
                _ => rng.gen(),
            };
            let bytes = val.to_le_bytes();
            let end = (at + width).min(len);
            v[at..end].copy_from_slice(&bytes[..end - at]);
        }
        // Fill a range with one byte.
        11 if len > 0 => {
            let r = range(rng, len);
            let b = BYTES[rng.gen_range(0..BYTES.len())];
            v[r].fill(b);
        }
        // Swap two adjacent ranges (reorders lines, keys, fields).
        _ if len > 1 => {
            let a = rng.gen_range(0..len - 1);
            let b = rng.gen_range(a + 1..len);
            let c = rng.gen_range(b..=len);
            v[a..c].rotate_left(b - a);
        }
        _ => {}
    }
}

/// The runs of ASCII digits (with a leading minus) in `v`.
fn digit_runs(v: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        if v[i].is_ascii_digit() {
            let start = if i > 0 && v[i - 1] == b'-' { i - 1 } else { i };
            while i < v.len() && v[i].is_ascii_digit() {
                i += 1;
            }
            out.push(start..i);
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn mutator_is_deterministic_and_changes_inputs() {
    let seeds = vec![b"shape: (2, 3)\nname: x\n".to_vec()];
    let run = |s: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(s);
        (0..200).map(|_| mutate(&mut rng, &seeds, &[b"{"])).collect::<Vec<_>>()
    };
    let (a, b) = (run(1), run(1));
    assert_eq!(a, b);
    assert!(a.iter().filter(|m| **m != seeds[0]).count() > 150);
    assert!(a.iter().any(|m| std::str::from_utf8(m).is_err()));
}
