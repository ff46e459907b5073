//! The model families and the one place that names them.
//!
//! Each entry of the [`families!`] list below is one folder `families/<module>/` (its model section with its
//! checks, its networks by role, its losses for one batch, its sampler and evaluation) and the `family:` value(s)
//! it serves: the entry declares the module, the variant of [`ModelConfig`] that holds the model section, and the
//! section's type, which implements [`FamilyConfig`] (checks and how to build the [`Family`]). Adding a family is
//! its folder plus one entry here; nothing else in the crate names a family.
use crate::config::RunConfig;
use crate::error::Result;
use crate::family::{Family, FamilyConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::Device;

/// A config with its model section: what a run file holds.
pub type Config = RunConfig<ModelConfig>;

macro_rules! families {
    ($($module:ident => { $($(#[$doc:meta])* $variant:ident = $name:literal),+ $(,)? } : $ty:ident;)*) => {
        $(pub mod $module;)*

        /// The model family and its networks, chosen by `family:`.
        #[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
        #[serde(tag = "family", rename_all = "snake_case", deny_unknown_fields)]
        pub enum ModelConfig {
            $($($(#[$doc])* $variant($module::$ty),)+)*
        }

        impl ModelConfig {
            /// The family's name as written in configs.
            pub fn family(&self) -> &'static str {
                match self {
                    $($(ModelConfig::$variant(_) => $name,)+)*
                }
            }

            fn section(&self) -> &dyn FamilyConfig {
                match self {
                    $($(ModelConfig::$variant(m) => m,)+)*
                }
            }
        }
    };
}

families! {
    gan => {
        /// Unconditional GAN: G(z), D(x) (Goodfellow 2014; DCGAN networks from Radford 2016).
        Gan = "gan"
    }: GanModelConfig;
    cyclegan => {
        /// CycleGAN (Zhu et al. 2017): G_A: A→B, G_B: B→A, PatchGAN D_A (judges B) and D_B (judges A).
        Cyclegan = "cyclegan"
    }: CycleganModelConfig;
    cond => {
        /// Class-conditional GAN (Mirza & Osindero 2014): G(z, y), D(x, y); concatenation or projection D.
        Cgan = "cgan",
        /// Text-conditional GAN-CLS / GAN-INT (Reed et al. 2016): G(z, φ(t)), matching-aware D.
        GanCls = "gan_cls",
    }: CondModelConfig;
    stackgan => {
        /// StackGAN (Zhang et al. 2017): conditioning augmentation, Stage-I G/D at 64×64, Stage-II G/D at 256×256.
        Stackgan = "stackgan"
    }: StackGanModelConfig;
    vaegan => {
        /// VAE-GAN (Larsen et al. 2016): encoder, one decoder that is also the generator, D's l-th layer as the
        /// reconstruction metric; or the same encoder and decoder as a plain VAE (`plain_vae: true`).
        Vaegan = "vaegan"
    }: VaeganModelConfig;
    unit => {
        /// UNIT (Liu, Breuel & Kautz 2017): a VAE-GAN per domain (EN_A, DE_A, EN_B, DE_B) whose last encoder and
        /// first decoder blocks are shared, so both domains map to one latent space; a multi-scale D per domain.
        Unit = "unit"
    }: UnitModelConfig;
    pix2pix => {
        /// pix2pix (Isola et al. 2017): paired translation A → B, a U-Net G and a PatchGAN D on the (A, B) pair,
        /// adversarial + λ·L1.
        Pix2pix = "pix2pix"
    }: Pix2pixModelConfig;
    cut => {
        /// CUT / FastCUT (Park et al. 2020): unpaired translation A → B with one generator, PatchGAN D and
        /// PatchNCE between input and output patches in G's encoder features.
        Cut = "cut"
    }: CutModelConfig;
}

impl Config {
    /// Every cross-field problem, each naming its dotted key; empty when the config is consistent.
    pub fn problems(&self) -> Vec<String> {
        let s = self.settings();
        let mut p = s.shared_problems();
        self.model.section().problems(self.model.family(), &s, &mut p);
        if let Ok(value) = serde_yaml::to_value(self) {
            p.extend(crate::config::limits::problems(&value));
        }
        p
    }

    /// Builds the config's family on `device`; `with_data` opens the training data too. `run_dir` is the
    /// run's folder, where families keep what they derive from the data (a trained tokenizer).
    pub fn build(&self, device: Device, with_data: bool, run_dir: Option<&Path>) -> Result<Box<dyn Family>> {
        self.model.section().build(self.model.family(), &self.settings(), device, with_data, run_dir)
    }
}
