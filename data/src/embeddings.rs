//! Precomputed text embeddings (e.g. the char-CNN-RNN embeddings of Reed et al. 2016 for CUB / Oxford-102,
//! converted from the release's pickles) read from `.npy` or `.safetensors` files, never pickle; plus a
//! names file that says which item each row belongs to, and an atomic `.npy` writer for caching.
//!
//! Both formats are parsed without a dependency: NPY by [`crate::npy`] (numpy's `format.py`, versions 1.0, 2.0
//! and 3.0), safetensors here per its specification (8-byte little-endian header length, JSON header, raw data). Data are
//! streamed into the result, so peak memory is about the size of the embeddings as f32.

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{DataError, Result};
use crate::npy::{self, format_err, read_values, DType};

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

fn read_npy(path: &Path) -> Result<Embeddings> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut r = BufReader::new(file);
    let h = npy::read_header(&mut r, file_len, path, "")?;
    let (n, per_item, dim, count) = embedding_shape(path, "array", &h.shape)?;
    let want = (count as u64).saturating_mul(h.dtype.size() as u64);
    let have = file_len - h.len;
    if have != want {
        return Err(format_err(
            path,
            format!(
                "shape {:?} of {} needs {want} bytes of data, the file holds {have}",
                h.shape, h.descr
            ),
        ));
    }
    let data = read_values(&mut r, h.dtype, count, path, "")?;
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
    let data = read_values(&mut BufReader::new(file), dtype, count, path, "")?;
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
    npy::write_atomic(path, |w| {
        w.write_all(&npy::header_bytes("<f4", shape))?;
        npy::write_le(w, data, f32::to_le_bytes)
    })
}
