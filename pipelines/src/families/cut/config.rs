//! The `cut` family's model section and its checks; defaults are the CUT code's (`--CUT_mode CUT`).
use crate::config::{non_negative, Settings};
use crate::translation::resnet_patchgan_problems;
use ganzoo_models::cyclegan::{Norm, Padding, PatchDiscriminatorConfig, ResnetGeneratorConfig};
use serde::{Deserialize, Deserializer, Serialize};

/// CUT / FastCUT settings; defaults are the authors' CUT (taesungp/contrastive-unpaired-translation,
/// `cut_model.py` and `base_options.py`). FastCUT is `lambda_nce: 10`, `nce_idt: false`,
/// `flip_equivariance: true` (configs/papers/fastcut_horse2zebra.yaml).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CutModelConfig {
    /// ResNet G: ngf 64, 9 blocks, instance norm, reflection padding, anti-aliased down- and upsampling; a
    /// key left out keeps this default (not CycleGAN's).
    #[serde(default = "ResnetGeneratorConfig::cut", deserialize_with = "generator_over_cut")]
    #[schemars(extend("x-keys-keep-section-default" = true))]
    pub generator: ResnetGeneratorConfig,
    /// 70×70 PatchGAN: ndf 64, n_layers 3, instance norm, anti-aliased; a key left out keeps this default.
    #[serde(default = "patch_antialiased", deserialize_with = "discriminator_over_cut")]
    #[schemars(extend("x-keys-keep-section-default" = true))]
    pub discriminator: PatchDiscriminatorConfig,
    /// Weight of the adversarial term of G's loss (λ_GAN).
    #[serde(default = "one")]
    pub lambda_gan: f64,
    /// Weight of PatchNCE (λ_NCE: 1 for CUT, 10 for FastCUT).
    #[serde(default = "one")]
    pub lambda_nce: f64,
    /// The identity PatchNCE term on B, NCE(b, G(b)), averaged with NCE(a, G(a)) (CUT: on; FastCUT: off).
    #[serde(default = "yes")]
    pub nce_idt: bool,
    /// Indices into G's `nn.Sequential` whose outputs PatchNCE compares, ascending (0: the padded input).
    #[serde(default = "nce_layers")]
    pub nce_layers: Vec<usize>,
    /// Temperature τ of PatchNCE.
    #[serde(default = "nce_t")]
    pub nce_t: f64,
    /// Patches sampled per layer and image (fewer where a layer has fewer positions).
    #[serde(default = "two_fifty_six")]
    pub num_patches: i64,
    /// Units of each MLP head of the patch sampler F (the code's netF_nc).
    #[serde(default = "two_fifty_six")]
    pub netf_nc: i64,
    /// FastCUT's flip-equivariance: with probability ½ a step translates the images flipped left-right and
    /// flips the query features back.
    #[serde(default)]
    pub flip_equivariance: bool,
    /// Gain of the Xavier-normal initialization of every network (the code's `init_type xavier`, 0.02).
    #[serde(default = "init_gain")]
    pub init_gain: f64,
}

/// The keys a config gives for G, each replacing the CUT default (the shared struct's own defaults are
/// CycleGAN's, without anti-aliasing).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GeneratorKeys {
    ngf: Option<i64>,
    n_blocks: Option<i64>,
    norm: Option<Norm>,
    dropout: Option<bool>,
    padding: Option<Padding>,
    antialias: Option<bool>,
    antialias_up: Option<bool>,
}

fn generator_over_cut<'de, D: Deserializer<'de>>(d: D) -> Result<ResnetGeneratorConfig, D::Error> {
    let k = GeneratorKeys::deserialize(d)?;
    let c = ResnetGeneratorConfig::cut();
    Ok(ResnetGeneratorConfig {
        ngf: k.ngf.unwrap_or(c.ngf),
        n_blocks: k.n_blocks.unwrap_or(c.n_blocks),
        norm: k.norm.unwrap_or(c.norm),
        dropout: k.dropout.unwrap_or(c.dropout),
        padding: k.padding.unwrap_or(c.padding),
        antialias: k.antialias.unwrap_or(c.antialias),
        antialias_up: k.antialias_up.unwrap_or(c.antialias_up),
    })
}

fn discriminator_over_cut<'de, D: Deserializer<'de>>(d: D) -> Result<PatchDiscriminatorConfig, D::Error> {
    crate::translation::patch_keys_over(d, patch_antialiased())
}

fn patch_antialiased() -> PatchDiscriminatorConfig {
    PatchDiscriminatorConfig { antialias: true, ..PatchDiscriminatorConfig::default() }
}
fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn nce_layers() -> Vec<usize> {
    vec![0, 4, 8, 12, 16]
}
fn nce_t() -> f64 {
    0.07
}
fn two_fifty_six() -> i64 {
    256
}
fn init_gain() -> f64 {
    0.02
}

impl CutModelConfig {
    /// Every cross-field problem, each naming its dotted key.
    pub fn check(&self, s: &Settings, p: &mut Vec<String>) {
        if !resnet_patchgan_problems("cut", s, &self.generator, &self.discriminator, p) {
            return;
        }
        let taps = self.generator.encoder_channels(s.shape().channels).len();
        if self.nce_layers.is_empty() && self.lambda_nce > 0.0 {
            p.push("model.nce_layers: empty, but lambda_nce > 0 asks for PatchNCE".into());
        }
        if !self.nce_layers.windows(2).all(|w| w[0] < w[1]) {
            p.push(format!("model.nce_layers: must be ascending without repeats, got {:?}", self.nce_layers));
        }
        if let Some(&l) = self.nce_layers.iter().find(|&&l| l >= taps) {
            p.push(format!("model.nce_layers: {l} is past G's residual blocks (the encoder's indices are 0..={})", taps - 1));
        }
        non_negative(p, &[("model.lambda_gan", self.lambda_gan), ("model.lambda_nce", self.lambda_nce)]);
        for (key, v) in [("model.nce_t", self.nce_t), ("model.init_gain", self.init_gain)] {
            if !(v > 0.0 && v.is_finite()) {
                p.push(format!("{key}: must be positive, got {v}"));
            }
        }
        for (key, v) in [("model.num_patches", self.num_patches), ("model.netf_nc", self.netf_nc)] {
            if !(1..=65_536).contains(&v) {
                p.push(format!("{key}: must be in 1..=65536, got {v}"));
            }
        }
    }

    /// Channels of the tapped layers (what F's heads take).
    pub fn tap_channels(&self, in_channels: i64) -> Vec<i64> {
        let c = self.generator.encoder_channels(in_channels);
        self.nce_layers.iter().filter_map(|&l| c.get(l).copied()).collect()
    }
}
