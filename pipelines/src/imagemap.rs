//! Image-to-image commands over a folder (`translate`, `reconstruct`): every image of IN_DIR through a
//! network, written under the same file name in OUT_DIR. Files that are not images are skipped and listed;
//! an unreadable image stops the command (naming it) unless `skip_bad`, when it is skipped and listed. Each
//! output file is written atomically, so none is ever half-written.
use crate::error::{PipelineError, Result};
use std::path::{Path, PathBuf};

/// What a folder pass did.
pub struct MapReport {
    pub done: usize,
    pub not_images: Vec<PathBuf>,
    pub unreadable: Vec<String>,
    pub seconds: f64,
}

impl MapReport {
    /// The JSON fields every folder command reports.
    pub fn json(&self, out_dir: &Path) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("out_dir".into(), out_dir.display().to_string().into());
        m.insert("skipped_not_images".into(), self.not_images.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().into());
        m.insert("skipped_unreadable".into(), self.unreadable.clone().into());
        m.insert("seconds".into(), self.seconds.into());
        m.insert("images_per_second".into(), (self.done as f64 / self.seconds.max(1e-9)).into());
        m
    }
}

/// Runs `f` on each image of `input` (decoded to `channels` at `size`², or its own size rounded down to a
/// multiple of 4 when `size` is None) as a (1, C, H, W) CPU tensor in [-1, 1], and saves what it returns
/// ((1, C, H, W) or (C, H, W), in [-1, 1]) to `output`/<same name>. `reserved` names files the command writes
/// itself into `output`: an input of that name is a usage error before anything is written.
#[allow(clippy::too_many_arguments)]
pub fn map_folder(
    input: &Path,
    output: &Path,
    size: Option<i64>,
    channels: i64,
    skip_bad: bool,
    quiet: bool,
    what: &str,
    reserved: &[&str],
    mut f: impl FnMut(&tch::Tensor) -> Result<tch::Tensor>,
) -> Result<MapReport> {
    check_folders(input, output)?;
    if let Some(s) = size {
        let (max, what) = crate::config::limits::maximum("size");
        if s > max {
            return Err(PipelineError::Usage(format!("--size {s} is above the maximum of {max} {what}")));
        }
    }
    let entries = std::fs::read_dir(input).map_err(|e| PipelineError::Usage(format!("{}: cannot read the input folder: {e}", input.display())))?;
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    let (images, not_images): (Vec<_>, Vec<_>) = files.into_iter().partition(|p| ganzoo_data::unpaired::is_image_file(p));
    if let Some(p) = images.iter().find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| reserved.contains(&n))) {
        return Err(PipelineError::Usage(format!(
            "{}: this name is reserved for the command's own output in the output folder; rename the input",
            p.display()
        )));
    }
    if images.is_empty() {
        return Err(PipelineError::Usage(format!(
            "{}: no image files to read{}",
            input.display(),
            if not_images.is_empty() { String::from("; the folder is empty") } else { format!("; {} other file(s) skipped", not_images.len()) }
        )));
    }
    if !skip_bad {
        // Every input decodes before the first output is written: a bad file stops the command with the
        // output folder untouched, not half-way through it.
        use rayon::prelude::*;
        images.par_iter().try_for_each(|p| ganzoo_data::folder::decode_image(p).map(drop)).map_err(PipelineError::Data)?;
    }
    std::fs::create_dir_all(output).map_err(PipelineError::io(output))?;
    let bar = crate::progress::Counter::new(images.len() as u64, what, quiet);
    let started = std::time::Instant::now();
    let (mut done, mut unreadable) = (0usize, Vec::new());
    for path in &images {
        let name = path.file_name().unwrap_or_default();
        let result = ganzoo_data::unpaired::load_for_translation(path, size, channels)
            .map_err(PipelineError::Data)
            .and_then(|(x, shape)| {
                let t = tch::Tensor::from_slice(&x).view(shape.as_slice()).unsqueeze(0); // (1, C, H, W)
                let y = f(&t)?.to_device(tch::Device::Cpu).to_kind(tch::Kind::Float).contiguous();
                let v: Vec<f32> = Vec::<f32>::try_from(&y.view([-1])).map_err(PipelineError::torch("reading the output image"))?;
                Ok(ganzoo_data::unpaired::save_image(&v, &y.size(), &output.join(name))?)
            });
        match result {
            Ok(()) => done += 1,
            Err(PipelineError::Data(e)) if skip_bad => unreadable.push(format!("{}: {e}", path.display())),
            Err(e) => return Err(e),
        }
        bar.inc();
    }
    bar.finish();
    Ok(MapReport { done, not_images, unreadable, seconds: started.elapsed().as_secs_f64() })
}

/// Refuses an output folder that is the input folder or inside it (also through a symlink): the outputs,
/// written under the inputs' names, would overwrite the user's originals or mix with them.
fn check_folders(input: &Path, output: &Path) -> Result<()> {
    let input_real = input
        .canonicalize()
        .map_err(|e| PipelineError::Usage(format!("{}: cannot read the input folder: {e}", input.display())))?;
    let output_real = real_path(output);
    if output_real.starts_with(&input_real) {
        let how = if output_real == input_real { "is the input folder" } else { "is inside the input folder" };
        return Err(PipelineError::Usage(format!(
            "{}: the output folder {how} ({}); the outputs keep the inputs' names and would overwrite or mix with them. Choose an output folder outside it",
            output.display(),
            input.display()
        )));
    }
    Ok(())
}

/// `path` with every link resolved, also when its last components do not exist yet.
fn real_path(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut p = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(path) };
    loop {
        if let Ok(real) = p.canonicalize() {
            return missing.iter().rev().fold(real, |acc, c| acc.join(c));
        }
        match (p.file_name().map(|n| n.to_os_string()), p.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name);
                p = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}
