//! Helpers shared by the fetch tests (minilm_fetch, inception_fetch): small wheels built here.

use std::io::Write;
use std::path::Path;

/// Writes a zip at `path` holding `(name, bytes)` entries.
pub fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        if name.ends_with('/') {
            z.add_directory(name.trim_end_matches('/'), opts).unwrap();
        } else {
            z.start_file(*name, opts).unwrap();
            z.write_all(bytes).unwrap();
        }
    }
    z.finish().unwrap();
}
