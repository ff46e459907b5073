//! The NPY array format (numpy's `format.py`, versions 1.0, 2.0 and 3.0), parsed here without a dependency and
//! shared by the embeddings reader and the FID statistics archives (`.npz`): the header (a Python dict
//! literal), little-endian value decoding into f32 or f64, the header numpy writes, and atomic file writes.

use std::collections::HashMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{DataError, Result};

pub(crate) fn format_err(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Format {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Element types the readers accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DType {
    F16,
    BF16,
    F32,
    F64,
}

impl DType {
    pub(crate) fn size(self) -> usize {
        match self {
            DType::F16 | DType::BF16 => 2,
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }
}

/// IEEE 754 half precision to f32 (exact; subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24; normalise it for f32.
            let shift = m.leading_zeros() - 21; // bring the top set bit to bit 10
            let m = (m << shift) & 0x3ff;
            let e = 127 - 15 + 1 - shift;
            sign | (e << 23) | (m << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// A value type the readers produce: f32 (embeddings) or f64 (statistics, read without loss).
pub(crate) trait Element: Copy {
    fn from_f32(v: f32) -> Self;
    fn from_f64(v: f64) -> Self;
}

impl Element for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Element for f64 {
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// Reads `count` little-endian values of `dtype` from `r`, in chunks; `ctx` prefixes error messages (e.g. the
/// archive member). Memory grows with the data read, so a header that promises more than the input holds
/// costs no more than the input.
pub(crate) fn read_values<T: Element>(
    r: &mut impl Read,
    dtype: DType,
    count: usize,
    path: &Path,
    ctx: &str,
) -> Result<Vec<T>> {
    const CHUNK: usize = 1 << 20;
    let size = dtype.size();
    let mut out = Vec::with_capacity(count.min(CHUNK));
    let mut buf = vec![0u8; CHUNK.min(count.saturating_mul(size)).max(size)];
    let mut left = count;
    while left > 0 {
        let take = left.min(buf.len() / size);
        let bytes = &mut buf[..take * size];
        r.read_exact(bytes).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                format_err(
                    path,
                    format!(
                        "{ctx}data ends early: {} of {count} values present",
                        count - left
                    ),
                )
            } else {
                DataError::io(path, e)
            }
        })?;
        match dtype {
            DType::F32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| T::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            ),
            DType::F64 => out.extend(bytes.chunks_exact(8).map(|b| {
                T::from_f64(f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            })),
            DType::F16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| T::from_f32(f16_to_f32(u16::from_le_bytes([b[0], b[1]])))),
            ),
            DType::BF16 => out.extend(bytes.chunks_exact(2).map(|b| {
                T::from_f32(f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            })),
        }
        left -= take;
    }
    Ok(out)
}

/// The parsed header of an NPY array: a little-endian float dtype in C order, and its shape.
#[derive(Debug, Clone)]
pub(crate) struct NpyHeader {
    /// The dtype as written, e.g. `<f4`.
    pub descr: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Bytes from the start of the array to its data (preamble, length field and header).
    pub len: u64,
}

impl NpyHeader {
    /// The product of the shape, or None on overflow.
    pub(crate) fn count(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
    }
}

/// Reads the preamble and header of an NPY array from `r`, which holds `total` bytes in all. Accepts dtypes
/// `<f4` and `<f8` in C order; object (pickled), big-endian, structured and other dtypes, Fortran order and a
/// header longer than the input are errors naming `path`, prefixed by `ctx` (e.g. `"mu.npy: "` in an archive).
pub(crate) fn read_header(r: &mut impl Read, total: u64, path: &Path, ctx: &str) -> Result<NpyHeader> {
    let err = |reason: String| format_err(path, format!("{ctx}{reason}"));
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|_| err("not an NPY file (shorter than its 8-byte preamble)".into()))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(err("not an NPY file (no \\x93NUMPY magic)".into()));
    }
    let (major, minor) = (pre[6], pre[7]);
    let (hlen, hstart) = match major {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)
                .map_err(|_| err("NPY header length cut short".into()))?;
            (u64::from(u16::from_le_bytes(b)), 10u64)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)
                .map_err(|_| err("NPY header length cut short".into()))?;
            (u64::from(u32::from_le_bytes(b)), 12u64)
        }
        _ => {
            return Err(err(format!(
                "unsupported NPY format version {major}.{minor} (1.0, 2.0, 3.0 are read)"
            )))
        }
    };
    if hstart + hlen > total {
        return Err(err(format!(
            "NPY header of {hlen} bytes runs past the end of the file ({total} bytes)"
        )));
    }
    let mut hbytes = vec![0u8; hlen as usize];
    r.read_exact(&mut hbytes)
        .map_err(|e| DataError::io(path, e))?;
    // Versions 1 and 2 use latin-1, 3 uses UTF-8; a valid header is ASCII either way.
    let header = match major {
        3 => String::from_utf8(hbytes).map_err(|_| err("NPY 3.0 header is not UTF-8".into()))?,
        _ => hbytes.iter().map(|&b| char::from(b)).collect(),
    };
    let dict = parse_npy_header(&header).map_err(err)?;
    let descr = match dict.get("descr") {
        Some(PyVal::Str(d)) => d.clone(),
        Some(PyVal::Other(d)) => {
            return Err(err(format!(
                "structured dtype {d} is not supported (need <f4 or <f8)"
            )))
        }
        _ => return Err(err("NPY header has no 'descr' string".into())),
    };
    let dtype = match descr.as_str() {
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        d if d.contains('O') => {
            return Err(err(format!(
                "object array (dtype {d}) holds pickled Python objects, which are not read; save a float array"
            )))
        }
        d if d.starts_with('>') => {
            return Err(err(format!(
                "big-endian dtype {d} is not supported; save with `arr.astype('<f4')`"
            )))
        }
        d => return Err(err(format!("dtype {d} is not supported (need <f4 or <f8)"))),
    };
    match dict.get("fortran_order") {
        Some(PyVal::Bool(false)) => {}
        Some(PyVal::Bool(true)) => {
            return Err(err(
                "fortran_order is True: only C order is read; save `np.ascontiguousarray(arr)`".into(),
            ))
        }
        _ => return Err(err("NPY header has no 'fortran_order' True/False".into())),
    }
    let shape = match dict.get("shape") {
        Some(PyVal::Tuple(s)) => s.clone(),
        _ => return Err(err("NPY header has no 'shape' tuple".into())),
    };
    Ok(NpyHeader {
        descr,
        dtype,
        shape,
        len: hstart + hlen,
    })
}

/// A value of the Python literal in an NPY header.
#[derive(Debug, Clone, PartialEq)]
enum PyVal {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
    /// Anything else (e.g. the list of a structured dtype); kept as text for the error message.
    Other(String),
}

/// Parses the header dict `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn parse_npy_header(h: &str) -> std::result::Result<HashMap<String, PyVal>, String> {
    let s = h.trim();
    let inner = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| format!("header is not a Python dict: {s:?}"))?;
    let mut out = HashMap::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (key, r) = parse_py_str(rest).ok_or_else(|| format!("bad key in header {s:?}"))?;
        let r = r
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| format!("missing ':' after '{key}' in header {s:?}"))?;
        let r = r.trim_start();
        let (val, r) = if let Some((v, r)) = parse_py_str(r) {
            (PyVal::Str(v), r)
        } else if let Some(r2) = r.strip_prefix("True") {
            (PyVal::Bool(true), r2)
        } else if let Some(r2) = r.strip_prefix("False") {
            (PyVal::Bool(false), r2)
        } else if let Some(r2) = r.strip_prefix('(') {
            let end = r2
                .find(')')
                .ok_or_else(|| format!("unclosed tuple in header {s:?}"))?;
            let dims = r2[..end]
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    t.trim_end_matches('L')
                        .parse::<usize>()
                        .map_err(|_| format!("bad shape entry `{t}` in header {s:?}"))
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            (PyVal::Tuple(dims), &r2[end + 1..])
        } else {
            // Skip a bracketed or bare value up to the next top-level comma.
            let mut depth = 0i32;
            let mut end = r.len();
            for (i, ch) in r.char_indices() {
                match ch {
                    '[' | '(' | '{' => depth += 1,
                    ']' | ')' | '}' => depth -= 1,
                    ',' if depth == 0 => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            (PyVal::Other(r[..end].trim().to_string()), &r[end..])
        };
        out.insert(key, val);
        let r = r.trim_start();
        rest = match r.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if r.is_empty() => r,
            None => return Err(format!("expected ',' in header {s:?}")),
        };
    }
    Ok(out)
}

/// A single- or double-quoted Python string without escapes, and the rest.
fn parse_py_str(s: &str) -> Option<(String, &str)> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &s[1..];
    let end = body.find(q)?;
    Some((body[..end].to_string(), &body[end + 1..]))
}


/// The NPY 1.0 header for a little-endian C-order array of `descr` (`<f4`, `<f8`) and `shape`, padded (with
/// the final newline) so the data start at a multiple of 64 bytes, as numpy writes it.
pub(crate) fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    let (major, len_bytes) = if 10 + dict.len() < 65_536 {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let pre = 8 + len_bytes;
    let total = (pre + dict.len() + 1).div_ceil(64) * 64;
    dict.push_str(&" ".repeat(total - pre - dict.len() - 1));
    dict.push('\n');
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"\x93NUMPY");
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Distinguishes temp files of concurrent writers in one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes a file atomically: `write` fills a buffered temp file in the same folder, which is synced and then
/// renamed over `path`, so readers never see a partial file. Parent folders are created; on failure the temp
/// file is removed.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let run = || -> std::io::Result<()> {
        let f = std::fs::File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        write(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
    };
    if let Err(e) = run() {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io(path, e)
    })
}

/// Writes `values` little-endian, in chunks.
pub(crate) fn write_le<T: Copy, const N: usize>(
    w: &mut impl Write,
    values: &[T],
    to_le: impl Fn(T) -> [u8; N],
) -> std::io::Result<()> {
    for chunk in values.chunks(1 << 16) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|v| to_le(*v)).collect();
        w.write_all(&bytes)?;
    }
    Ok(())
}
