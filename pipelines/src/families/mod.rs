//! The model families, one folder each: its model section (config type and checks), its networks by role,
//! its losses for one batch, its sampler and its evaluation. `crate::registry` names them.
pub mod cond;
pub mod cyclegan;
pub mod gan;
pub mod stackgan;
pub mod unit;
pub mod vaegan;
