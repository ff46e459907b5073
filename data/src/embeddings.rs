//! Precomputed text embeddings (e.g. the char-CNN-RNN embeddings of Reed et al. 2016 for CUB / Oxford-102,
//! converted from the release's pickles) read from `.npy` or `.safetensors` files, never pickle; plus a
//! names file that says which item each row belongs to, and an atomic `.npy` writer for caching.
//!
//! Both formats are parsed here (no dependency): NPY per numpy's `format.py` (versions 1.0, 2.0 and 3.0),
//! safetensors per its specification (8-byte little-endian header length, JSON header, raw data). Data are
//! streamed into the result, so peak memory is about the size of the embeddings as f32.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{DataError, Result};

/// Embeddings of `n` items, `per_item` each (e.g. one per caption), `dim` values each, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// `n * per_item * dim` values, item-major.
    pub data: Vec<f32>,
    /// Number of items.
    pub n: usize,
    /// Embeddings per item (1 for a 2-D file).
    pub per_item: usize,
    /// Values per embedding.
    pub dim: usize,
}

impl Embeddings {
    /// Embedding `k` of item `item` (`dim` values). Panics if `item >= n` or `k >= per_item`, as slice
    /// indexing does; see [`try_get`](Self::try_get).
    pub fn get(&self, item: usize, k: usize) -> &[f32] {
        match self.try_get(item, k) {
            Some(v) => v,
            None => panic!(
                "embedding ({item}, {k}) out of range for shape ({}, {}, {})",
                self.n, self.per_item, self.dim
            ),
        }
    }

    /// Embedding `k` of item `item`, or `None` out of range.
    pub fn try_get(&self, item: usize, k: usize) -> Option<&[f32]> {
        if item >= self.n || k >= self.per_item {
            return None;
        }
        let start = (item * self.per_item + k) * self.dim;
        self.data.get(start..start + self.dim)
    }

    /// The shape `[n, per_item, dim]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.n, self.per_item, self.dim]
    }
}

fn format_err(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Format {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Element types the readers accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DType {
    F16,
    BF16,
    F32,
    F64,
}

impl DType {
    fn size(self) -> usize {
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

/// Reads `count` little-endian values of `dtype` from `r` into f32, in chunks.
fn read_values(r: &mut impl Read, dtype: DType, count: usize, path: &Path) -> Result<Vec<f32>> {
    const CHUNK: usize = 1 << 20;
    let size = dtype.size();
    let mut out = Vec::with_capacity(count);
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
                        "data ends early: {} of {count} values present",
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
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            DType::F64 => out.extend(bytes.chunks_exact(8).map(|b| {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            })),
            DType::F16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))),
            ),
            DType::BF16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)),
            ),
        }
        left -= take;
    }
    Ok(out)
}

/// Checks a 2-D `(n, dim)` or 3-D `(n, per_item, dim)` shape; returns `(n, per_item, dim, count)`.
fn embedding_shape(
    path: &Path,
    what: &str,
    shape: &[usize],
) -> Result<(usize, usize, usize, usize)> {
    let (n, per_item, dim) = match *shape {
        [n, dim] => (n, 1, dim),
        [n, p, dim] => (n, p, dim),
        _ => {
            return Err(format_err(
                path,
                format!(
                    "{what} has shape {shape:?}: expected 2-D (n, dim) or 3-D (n, per_item, dim)"
                ),
            ))
        }
    };
    if n == 0 || per_item == 0 || dim == 0 {
        return Err(DataError::Empty {
            path: path.into(),
            what: format!("embeddings ({what} has shape {shape:?})"),
        });
    }
    let count = n
        .checked_mul(per_item)
        .and_then(|c| c.checked_mul(dim))
        .ok_or_else(|| format_err(path, format!("{what} shape {shape:?} is too large")))?;
    Ok((n, per_item, dim, count))
}

/// Errors on the first NaN or infinite value (one would silently poison training).
fn check_finite(path: &Path, what: &str, e: &Embeddings) -> Result<()> {
    if let Some(pos) = e.data.iter().position(|v| !v.is_finite()) {
        let per = e.per_item * e.dim;
        return Err(format_err(
            path,
            format!(
                "{what}: non-finite value {} at item {}, embedding {}, index {}",
                e.data[pos],
                pos / per,
                (pos % per) / e.dim,
                pos % e.dim
            ),
        ));
    }
    Ok(())
}

/// Reads embeddings from a `.npy` or `.safetensors` file (chosen by extension) as f32.
///
/// The array must be 2-D `(n, dim)` (read as `per_item = 1`) or 3-D `(n, per_item, dim)` with no zero
/// dimension and only finite values.
/// - `.npy`: format versions 1.0, 2.0, 3.0; dtype `<f4` or `<f8` (converted); C order. Fortran order,
///   object (pickled) arrays, big-endian or other dtypes, and a data size that does not match the shape are
///   errors naming the file and the problem.
/// - `.safetensors`: the tensor named `embeddings`, or the only tensor; dtype F32, F64, F16 or BF16
///   (converted). Errors name the file and the tensor.
pub fn read_embeddings(path: &Path) -> Result<Embeddings> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "npy" => read_npy(path),
        "safetensors" => read_safetensors(path),
        "pkl" | "pickle" => Err(DataError::Invalid(format!(
            "{}: pickle files are not read (they can run code); convert to .npy, e.g. \
             `np.save(\"emb.npy\", np.asarray(pickle.load(f), dtype=\"<f4\"))`",
            path.display()
        ))),
        _ => Err(DataError::Invalid(format!(
            "{}: unknown embeddings format (extension must be .npy or .safetensors)",
            path.display()
        ))),
    }
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

fn read_npy(path: &Path) -> Result<Embeddings> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut r = BufReader::new(file);
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|_| format_err(path, "not an NPY file (shorter than its 8-byte preamble)"))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(format_err(path, "not an NPY file (no \\x93NUMPY magic)"));
    }
    let (major, minor) = (pre[6], pre[7]);
    let (hlen, hstart) = match major {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)
                .map_err(|_| format_err(path, "NPY header length cut short"))?;
            (u64::from(u16::from_le_bytes(b)), 10u64)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)
                .map_err(|_| format_err(path, "NPY header length cut short"))?;
            (u64::from(u32::from_le_bytes(b)), 12u64)
        }
        _ => {
            return Err(format_err(
                path,
                format!("unsupported NPY format version {major}.{minor} (1.0, 2.0, 3.0 are read)"),
            ))
        }
    };
    if hstart + hlen > file_len {
        return Err(format_err(
            path,
            format!("NPY header of {hlen} bytes runs past the end of the file ({file_len} bytes)"),
        ));
    }
    let mut hbytes = vec![0u8; hlen as usize];
    r.read_exact(&mut hbytes)
        .map_err(|e| DataError::io(path, e))?;
    // Versions 1 and 2 use latin-1, 3 uses UTF-8; a valid header is ASCII either way.
    let header = match major {
        3 => String::from_utf8(hbytes)
            .map_err(|_| format_err(path, "NPY 3.0 header is not UTF-8"))?,
        _ => hbytes.iter().map(|&b| char::from(b)).collect(),
    };
    let dict = parse_npy_header(&header).map_err(|e| format_err(path, e))?;
    let descr = match dict.get("descr") {
        Some(PyVal::Str(d)) => d.clone(),
        Some(PyVal::Other(d)) => {
            return Err(format_err(
                path,
                format!("structured dtype {d} is not supported (need <f4 or <f8)"),
            ))
        }
        _ => return Err(format_err(path, "NPY header has no 'descr' string")),
    };
    let dtype = match descr.as_str() {
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        d if d.contains('O') => {
            return Err(format_err(
                path,
                format!("object array (dtype {d}) holds pickled Python objects, which are not read; save a float array"),
            ))
        }
        d if d.starts_with('>') => {
            return Err(format_err(
                path,
                format!("big-endian dtype {d} is not supported; save with `arr.astype('<f4')`"),
            ))
        }
        d => return Err(format_err(path, format!("dtype {d} is not supported (need <f4 or <f8)"))),
    };
    match dict.get("fortran_order") {
        Some(PyVal::Bool(false)) => {}
        Some(PyVal::Bool(true)) => {
            return Err(format_err(
                path,
                "fortran_order is True: only C order is read; save `np.ascontiguousarray(arr)`",
            ))
        }
        _ => {
            return Err(format_err(
                path,
                "NPY header has no 'fortran_order' True/False",
            ))
        }
    }
    let shape = match dict.get("shape") {
        Some(PyVal::Tuple(s)) => s.clone(),
        _ => return Err(format_err(path, "NPY header has no 'shape' tuple")),
    };
    let (n, per_item, dim, count) = embedding_shape(path, "array", &shape)?;
    let want = (count as u64).saturating_mul(dtype.size() as u64);
    let have = file_len - hstart - hlen;
    if have != want {
        return Err(format_err(
            path,
            format!("shape {shape:?} of {descr} needs {want} bytes of data, the file holds {have}"),
        ));
    }
    let data = read_values(&mut r, dtype, count, path)?;
    let e = Embeddings {
        data,
        n,
        per_item,
        dim,
    };
    check_finite(path, "array", &e)?;
    Ok(e)
}

/// Largest safetensors header accepted (the format's own limit is 100 MB).
const MAX_SAFETENSORS_HEADER: u64 = 100_000_000;

fn read_safetensors(path: &Path) -> Result<Embeddings> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut b = [0u8; 8];
    file.read_exact(&mut b).map_err(|_| {
        format_err(
            path,
            "not a safetensors file (shorter than its 8-byte header length)",
        )
    })?;
    let hlen = u64::from_le_bytes(b);
    if hlen > MAX_SAFETENSORS_HEADER || 8 + hlen > file_len {
        return Err(format_err(
            path,
            format!(
                "safetensors header length {hlen} is impossible for a file of {file_len} bytes"
            ),
        ));
    }
    let mut hbytes = vec![0u8; hlen as usize];
    file.read_exact(&mut hbytes)
        .map_err(|e| DataError::io(path, e))?;
    let header: serde_json::Value = serde_json::from_slice(&hbytes)
        .map_err(|e| format_err(path, format!("safetensors header is not valid JSON: {e}")))?;
    let obj = header
        .as_object()
        .ok_or_else(|| format_err(path, "safetensors header is not a JSON object"))?;
    let names: Vec<&String> = obj
        .keys()
        .filter(|k| k.as_str() != "__metadata__")
        .collect();
    let name = if obj.contains_key("embeddings") {
        "embeddings"
    } else {
        match names.as_slice() {
            [only] => only.as_str(),
            [] => {
                return Err(DataError::Empty {
                    path: path.into(),
                    what: "tensors in the safetensors file".into(),
                })
            }
            many => {
                let list: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                return Err(format_err(
                    path,
                    format!(
                        "{} tensors and none named \"embeddings\": {}",
                        many.len(),
                        list.join(", ")
                    ),
                ));
            }
        }
    };
    let what = format!("tensor \"{name}\"");
    let info = obj
        .get(name)
        .and_then(|v| v.as_object())
        .ok_or_else(|| format_err(path, format!("{what}: header entry is not an object")))?;
    let dtype_s = info
        .get("dtype")
        .and_then(|v| v.as_str())
        .ok_or_else(|| format_err(path, format!("{what}: no dtype")))?;
    let dtype = match dtype_s {
        "F32" => DType::F32,
        "F64" => DType::F64,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        d => {
            return Err(format_err(
                path,
                format!("{what}: dtype {d} is not supported (need F32, F64, F16 or BF16)"),
            ))
        }
    };
    let shape: Vec<usize> = info
        .get("shape")
        .and_then(|v| v.as_array())
        .and_then(|a| {
            a.iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| {
            format_err(
                path,
                format!("{what}: shape is not a list of non-negative integers"),
            )
        })?;
    let offsets: Vec<u64> = info
        .get("data_offsets")
        .and_then(|v| v.as_array())
        .and_then(|a| a.iter().map(|d| d.as_u64()).collect::<Option<Vec<_>>>())
        .filter(|o| o.len() == 2)
        .ok_or_else(|| format_err(path, format!("{what}: data_offsets is not [begin, end]")))?;
    let (begin, end) = (offsets[0], offsets[1]);
    let (n, per_item, dim, count) = embedding_shape(path, &what, &shape)?;
    let data_len = file_len - 8 - hlen;
    let want = (count as u64).saturating_mul(dtype.size() as u64);
    if begin > end || end > data_len {
        return Err(format_err(
            path,
            format!(
                "{what}: data_offsets [{begin}, {end}] lie outside the {data_len} bytes of data"
            ),
        ));
    }
    if end - begin != want {
        return Err(format_err(
            path,
            format!(
                "{what}: shape {shape:?} of {dtype_s} needs {want} bytes, data_offsets span {}",
                end - begin
            ),
        ));
    }
    file.seek(SeekFrom::Start(8 + hlen + begin))
        .map_err(|e| DataError::io(path, e))?;
    let data = read_values(&mut BufReader::new(file), dtype, count, path)?;
    let e = Embeddings {
        data,
        n,
        per_item,
        dim,
    };
    check_finite(path, &what, &e)?;
    Ok(e)
}

/// Reads a names file: one item name a line (as [`CaptionedImages::name`](crate::captions::CaptionedImages::name)
/// gives them, e.g. `001.Black_footed_Albatross/Black_Footed_Albatross_0046_18`), row `i` naming the
/// embeddings of item `i`. Lines are trimmed, `\` becomes `/`, blank lines are ignored. Errors name the
/// file: not UTF-8, no names, a name listed twice (with both line numbers).
pub fn read_names(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| DataError::Decode {
        path: path.into(),
        reason: format!(
            "names file is not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut names = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.trim().replace('\\', "/");
        if name.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(name.clone(), i + 1) {
            return Err(format_err(
                path,
                format!(
                    "line {}: name `{name}` already listed at line {first}",
                    i + 1
                ),
            ));
        }
        names.push(name);
    }
    if names.is_empty() {
        return Err(DataError::Empty {
            path: path.into(),
            what: "names".into(),
        });
    }
    Ok(names)
}

/// The NPY 1.0 header for a little-endian f32 C-order array of `shape`, padded (with the final newline) so
/// the data start at a multiple of 64 bytes, as numpy writes it.
fn npy_header(shape: &[usize]) -> Vec<u8> {
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
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
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

/// Writes `data` as a little-endian f32 C-order `.npy` array of `shape` (any rank; numpy reads it back),
/// atomically: a temp file in the same folder, synced, then renamed over `path`. Parent folders are created.
/// Errors when `shape`'s product is not `data.len()`.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(data.len()) {
        return Err(DataError::Invalid(format!(
            "{}: shape {shape:?} does not hold the {} values given",
            path.display(),
            data.len()
        )));
    }
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
    let write = || -> std::io::Result<()> {
        let f = std::fs::File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(&npy_header(shape))?;
        for chunk in data.chunks(1 << 16) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
            w.write_all(&bytes)?;
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io(path, e)
    })
}
