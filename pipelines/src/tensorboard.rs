//! TensorBoard event files (`train.tensorboard`), written by hand: the TFRecord framing (length, masked
//! CRC32C of the length, data, masked CRC32C of the data) around `tensorboard.Event` protobufs encoded field by
//! field. Scalars are `simple_value`s, sample grids are `Summary.Image`s holding the PNG as written.
//!
//! Each session writes its own file, `RUN/tb/events.out.tfevents.<unix seconds>.<host>.<pid>.ganzoo`, named
//! so that it sorts after the files of earlier sessions (TensorBoard reads a run's files in name order). It
//! starts with the `file_version` event `brain.Event:2` and a `SessionLog` START at the first step the session
//! can log (`start + 1`): TensorBoard then drops what earlier files hold from that step on, the steps a
//! resumed run logs again.
use crate::error::{PipelineError, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The writer of one session's events file.
pub struct Writer {
    path: PathBuf,
    file: std::fs::File,
}

impl Writer {
    /// Creates a new events file in `dir` (created if missing) for a session that continues from step `start`
    /// (0 for a new run). An unwritable `dir` is an error naming it.
    pub fn create(dir: &Path, start: i64) -> Result<Writer> {
        std::fs::create_dir_all(dir).map_err(PipelineError::io(dir))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // After every file already there, even one written in this same second (a quick resume).
        let newest = std::fs::read_dir(dir).map_err(PipelineError::io(dir))?.flatten().filter_map(|e| file_seconds(&e.file_name().to_string_lossy())).max();
        let seconds = newest.map_or(now, |n| now.max(n + 1));
        let path = dir.join(format!("events.out.tfevents.{seconds}.{}.{}.ganzoo", hostname(), std::process::id()));
        let file = std::fs::OpenOptions::new().create_new(true).write(true).open(&path).map_err(PipelineError::io(&path))?;
        let mut w = Writer { path, file };
        let mut first = event(0, &field_bytes(3, b"brain.Event:2"));
        first.extend(event(start + 1, &session_start()));
        w.write_events(&first)?;
        Ok(w)
    }

    /// The events file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs the numeric leaves of a `metrics.jsonl` line at `step`, one scalar each, tagged by their path
    /// (`loss_D`, `eval/samples/fid`); the line's own `step` and `time` are left out (TensorBoard has both).
    pub fn scalars(&mut self, step: i64, line: &serde_json::Value) -> Result<()> {
        let mut values = Vec::new();
        if let serde_json::Value::Object(m) = line {
            for (k, v) in m.iter().filter(|(k, _)| !matches!(k.as_str(), "step" | "time")) {
                numeric_leaves(k, v, &mut values);
            }
        }
        if values.is_empty() {
            return Ok(());
        }
        self.write_events(&event(step, &scalar_summary(&values)))
    }

    /// Logs the PNG at `png` (a sample grid) as the image `samples` at `step`.
    pub fn image(&mut self, step: i64, png: &Path) -> Result<()> {
        use image::ImageDecoder;
        let bytes = std::fs::read(png).map_err(PipelineError::io(png))?;
        let not_an_image = |e: image::ImageError| PipelineError::Runtime(format!("{}: {e}", png.display()));
        let decoder = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .map_err(PipelineError::io(png))?
            .into_decoder()
            .map_err(not_an_image)?;
        let (width, height) = decoder.dimensions();
        let channels = decoder.color_type().channel_count();
        self.write_events(&event(step, &image_summary("samples", width, height, channels, &bytes)))
    }

    /// Appends framed events in one write, so that a killed run's file reads up to its last complete batch.
    fn write_events(&mut self, framed: &[u8]) -> Result<()> {
        self.file.write_all(framed).map_err(PipelineError::io(&self.path))
    }
}

/// The `<unix seconds>` of an events file's name.
fn file_seconds(name: &str) -> Option<u64> {
    name.strip_prefix("events.out.tfevents.")?.split('.').next()?.parse().ok()
}

/// This machine's name (`/etc/hostname`), or `localhost`.
/// This machine's name from `/etc/hostname` (file-name-safe characters only), else `localhost`.
pub(crate) fn hostname() -> String {
    let name = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let name: String = name.trim().chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
    if name.is_empty() { "localhost".into() } else { name }
}

/// The numeric leaves of `v` under `tag` (objects and arrays joined with `/`), as (tag, value).
fn numeric_leaves(tag: &str, v: &serde_json::Value, out: &mut Vec<(String, f64)>) {
    match v {
        serde_json::Value::Number(n) => out.extend(n.as_f64().map(|x| (tag.to_string(), x))),
        serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| numeric_leaves(&format!("{tag}/{k}"), v, out)),
        serde_json::Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| numeric_leaves(&format!("{tag}/{i}"), v, out)),
        _ => {}
    }
}

/// `Event.session_log` (field 7): `SessionLog { status = 1: START (1) }`.
fn session_start() -> Vec<u8> {
    field_bytes(7, &field_varint(1, 1))
}

/// `Event.summary` (field 5): `Summary { repeated Value value = 1 }`, one `Value { tag = 1, simple_value = 2
/// (float) }` per (tag, value).
fn scalar_summary(values: &[(String, f64)]) -> Vec<u8> {
    let summary: Vec<u8> = values
        .iter()
        .flat_map(|(tag, v)| {
            let mut value = field_bytes(1, tag.as_bytes());
            value.push(2 << 3 | 5);
            value.extend((*v as f32).to_le_bytes());
            field_bytes(1, &value)
        })
        .collect();
    field_bytes(5, &summary)
}

/// `Event.summary` with one `Value { tag = 1, image = 4: Image { height = 1, width = 2, colorspace = 3,
/// encoded_image_string = 4 } }`; the colorspace is the channel count (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA).
fn image_summary(tag: &str, width: u32, height: u32, channels: u8, encoded: &[u8]) -> Vec<u8> {
    let mut img = field_varint(1, height.into());
    img.extend(field_varint(2, width.into()));
    img.extend(field_varint(3, channels.into()));
    img.extend(field_bytes(4, encoded));
    let mut value = field_bytes(1, tag.as_bytes());
    value.extend(field_bytes(4, &img));
    field_bytes(5, &field_bytes(1, &value))
}

/// One framed `Event` at `step` with the current wall time and `what` (its encoded fields after `step`).
fn event(step: i64, what: &[u8]) -> Vec<u8> {
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    record(&encode_event(wall, step, what))
}

/// `tensorboard.Event { wall_time = 1 (double), step = 2 (int64) }` followed by `what`.
fn encode_event(wall_time: f64, step: i64, what: &[u8]) -> Vec<u8> {
    let mut e = vec![1 << 3 | 1];
    e.extend(wall_time.to_le_bytes());
    if step != 0 {
        e.extend(field_varint(2, step as u64));
    }
    e.extend(what);
    e
}

/// A protobuf varint field.
fn field_varint(field: u32, v: u64) -> Vec<u8> {
    let mut out = varint((field << 3).into());
    out.extend(varint(v));
    out
}

/// A protobuf length-delimited field (bytes, string or message).
fn field_bytes(field: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from(field << 3 | 2));
    out.extend(varint(bytes.len() as u64));
    out.extend(bytes);
    out
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// A TFRecord: length (u64 LE), its masked CRC32C, the data, its masked CRC32C.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend(len);
    out.extend(masked_crc(&len).to_le_bytes());
    out.extend(data);
    out.extend(masked_crc(data).to_le_bytes());
    out
}

/// TFRecord's masked CRC32C: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
fn crc32c(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, &b| CRC32C_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

const CRC32C_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The data of each record of an events file, checking the framing.
    fn records(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), masked_crc(&bytes[..8]));
            let data = &bytes[12..12 + len];
            assert_eq!(u32::from_le_bytes(bytes[12 + len..16 + len].try_into().unwrap()), masked_crc(data));
            out.push(data.to_vec());
            bytes = &bytes[16 + len..];
        }
        out
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    /// Bytes from tensorboard 2.21's own protobuf classes (`tensorboard.compat.proto.event_pb2`,
    /// `summary_pb2`: `Event(...).SerializeToString()`) and its `summary.writer.record_writer.RecordWriter`.
    #[test]
    fn encoding_matches_tensorboard() {
        let fv = encode_event(1.5, 7, &field_bytes(3, b"brain.Event:2"));
        assert_eq!(hex(&fv), "09000000000000f83f10071a0d627261696e2e4576656e743a32");
        assert_eq!(hex(&record(&fv)), "1a00000000000000129bd82d09000000000000f83f10071a0d627261696e2e4576656e743a32da446486");
        assert_eq!(hex(&encode_event(2.0, 11, &session_start())), "090000000000000040100b3a020801");
        let scalars = scalar_summary(&[("loss_D".into(), 0.25), ("eval/x/1".into(), -3.5)]);
        assert_eq!(
            hex(&encode_event(3.0, 300, &scalars)),
            "09000000000000084010ac022a200a0d0a066c6f73735f44150000803e0a0f0a086576616c2f782f3115000060c0"
        );
        let image = image_summary("samples", 513, 2, 3, b"\x89PNG");
        assert_eq!(hex(&encode_event(4.0, 20, &image)), "09000000000000104010142a1a0a180a0773616d706c6573220d08021081041803220489504e47");
    }

    #[test]
    fn numeric_leaves_are_joined_paths() {
        let line = serde_json::json!({"step": 5, "time": 1.0, "loss_D": 0.5, "eval": {"a": {"fid": 3, "name": "x"}, "l": [1, null]}});
        let mut out = Vec::new();
        for (k, v) in line.as_object().into_iter().flatten().filter(|(k, _)| !matches!(k.as_str(), "step" | "time")) {
            numeric_leaves(k, v, &mut out);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(out, vec![("eval/a/fid".into(), 3.0), ("eval/l/0".into(), 1.0), ("loss_D".into(), 0.5)]);
    }

    #[test]
    fn new_files_sort_after_older_ones_and_bad_dirs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let tb = dir.path().join("tb");
        let a = Writer::create(&tb, 0).unwrap();
        let b = Writer::create(&tb, 10).unwrap();
        assert!(b.path().file_name() > a.path().file_name(), "{} then {}", a.path().display(), b.path().display());
        assert!(a.path().file_name().unwrap().to_string_lossy().ends_with(&format!(".{}.ganzoo", std::process::id())));
        // Whole records with good checksums: the file version, then the session's start at step 11.
        let events = records(&std::fs::read(b.path()).unwrap());
        assert_eq!(events.len(), 2);
        assert_eq!(events[0][9..], field_bytes(3, b"brain.Event:2")[..]);
        assert_eq!(events[1][9..], [field_varint(2, 11), session_start()].concat()[..]);

        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = Writer::create(&file.join("tb"), 0).err().expect("a file in the way is an error");
        assert!(err.to_string().contains(&file.join("tb").display().to_string()), "{err}");
    }
}
