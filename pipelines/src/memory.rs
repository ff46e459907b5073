//! The memory a training run needs at least, estimated before anything is allocated, against what the machine
//! has (`config::limits::available_memory`): a run that certainly cannot fit is refused with the estimate.
use crate::config::limits::WIDTHS;
use serde_yaml::Value;

/// The bytes a training run needs at least, and of what, before its networks are built (`parameters`:
/// None) or after (`Some(count)` of trainable parameters).
pub struct MemoryEstimate {
    pub bytes: u64,
    pub parts: Vec<(String, u64)>,
}

/// Full-resolution tensors of one example that a training step holds at least: the batch, G's output, D's
/// inputs (real and generated) and the gradients of each — a deliberately low count (real networks keep many
/// feature maps per example), so the check refuses only what certainly cannot fit.
const ACTIVATION_COPIES: u64 = 8;

/// What a training run of `cfg` needs at least: its batch and the activations at that batch, an image pool,
/// and with `parameters` the weights, their gradients and the optimizer state (Adam: two moments; EMA: one
/// more copy).
pub fn estimate(cfg: &crate::families::Config, parameters: Option<i64>) -> MemoryEstimate {
    let [c, h, w] = cfg.data.dims();
    let example = (c.max(1) * h.max(1) * w.max(1)) as u64 * 4 * if cfg.data.is_two_domain() { 2 } else { 1 };
    let batch = cfg.train.batch_size.max(1) as u64;
    let mut parts = vec![(format!("activations at batch {batch}"), batch.saturating_mul(example).saturating_mul(ACTIVATION_COPIES))];
    let pool = to_value(cfg).and_then(|v| v["model"]["pool_size"].as_u64()).unwrap_or(0);
    if pool > 0 {
        parts.push((format!("image pool of {pool}"), pool.saturating_mul(example)));
    }
    if let Some(n) = parameters {
        let copies = 4 + u64::from(cfg.train.ema.is_some()); // weights, gradients, two Adam moments, EMA
        parts.push((format!("{n} parameters with gradients and optimizer state"), (n.max(0) as u64).saturating_mul(4 * copies)));
    }
    MemoryEstimate { bytes: parts.iter().fold(0u64, |a, (_, b)| a.saturating_add(*b)), parts }
}

/// Widths up to this are built as they are to count parameters (a few MB at most).
const PROBE_WIDTH: i64 = 64;

/// The trainable parameters of `cfg`'s networks without building them at full size, when they are wide:
/// every width key under `model` is scaled so that the widest is [`PROBE_WIDTH`] / 4, / 2 and / 1, the
/// networks are built at each scale, and the quadratic through the three counts (weights grow with the
/// product of two widths) is read at the real widths. None when the networks are narrow (build them and
/// count), or a scaled config does not build.
pub fn estimate_parameters(cfg: &crate::families::Config) -> Option<i64> {
    let value = to_value(cfg)?;
    let mut widest = 0;
    visit_widths(&mut value.clone(), &mut |w| {
        widest = widest.max(*w);
    });
    if widest <= PROBE_WIDTH {
        return None;
    }
    let mut points = Vec::new();
    for target in [PROBE_WIDTH / 4, PROBE_WIDTH / 2, PROBE_WIDTH] {
        let scale = target as f64 / widest as f64;
        let mut v = value.clone();
        visit_widths(&mut v, &mut |w| *w = ((*w as f64 * scale).round() as i64).max(1));
        let probe: crate::families::Config = crate::config::load::from_value(v, &[], &[]).ok()?;
        let fam = probe.build(tch::Device::Cpu, false, None).ok()?;
        points.push((scale, fam.parameter_counts().iter().map(|(_, n)| *n as f64).sum::<f64>()));
    }
    // Lagrange's quadratic through the three points, at scale 1.
    let at_one: f64 = (0..3)
        .map(|i| {
            let (xi, yi) = points[i];
            (0..3).filter(|&j| j != i).fold(yi, |acc, j| acc * (1.0 - points[j].0) / (xi - points[j].0))
        })
        .sum();
    Some(at_one.max(0.0) as i64)
}

/// Calls `f` on every integer width key under the `model` section.
fn visit_widths(value: &mut Value, f: &mut impl FnMut(&mut i64)) {
    fn walk(v: &mut Value, f: &mut impl FnMut(&mut i64)) {
        if let Value::Mapping(m) = v {
            for (k, v) in m.iter_mut() {
                match (k.as_str(), v.as_i64()) {
                    (Some(k), Some(mut w)) if WIDTHS.contains(&k) => {
                        f(&mut w);
                        *v = Value::from(w);
                    }
                    _ => walk(v, f),
                }
            }
        }
    }
    if let Some(model) = value.get_mut("model") {
        walk(model, f);
    }
}

fn to_value(cfg: &crate::families::Config) -> Option<Value> {
    serde_yaml::to_value(cfg).ok()
}

/// A refusal when the estimate does not fit in `available` bytes (the message has the estimate and its parts).
pub fn memory_problem(e: &MemoryEstimate, available: u64) -> Option<String> {
    if e.bytes <= available {
        return None;
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let parts: Vec<String> = e.parts.iter().map(|(what, b)| format!("{what}: {:.2} GiB", gib(*b))).collect();
    Some(format!(
        "this run needs at least {:.2} GiB of memory ({}) but the machine has {:.2} GiB available; lower train.batch_size, data.size or the model's widths",
        gib(e.bytes),
        parts.join(", "),
        gib(available)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_networks_are_counted_from_narrow_copies() {
        let text = "data: {kind: shapes2, train: 8, test: 4, size: 32}\nmodel:\n  family: cyclegan\n  generator: {ngf: 200, n_blocks: 2}\n  discriminator: {ndf: 96, n_layers: 2}\n";
        let cfg: crate::families::Config = crate::config::load::from_value(serde_yaml::from_str(text).unwrap(), &[], &[]).unwrap();
        let estimate = estimate_parameters(&cfg).expect("wide enough to extrapolate") as f64;
        let fam = cfg.build(tch::Device::Cpu, false, None).unwrap();
        let actual = fam.parameter_counts().iter().map(|(_, n)| *n as f64).sum::<f64>();
        assert!((estimate / actual - 1.0).abs() < 0.02, "estimate {estimate}, actual {actual}");
    }

    #[test]
    fn a_refusal_names_the_estimate_and_its_parts() {
        let e = MemoryEstimate { bytes: 3 << 30, parts: vec![("activations at batch 4".into(), 3 << 30)] };
        let m = memory_problem(&e, 1 << 30).unwrap();
        assert!(m.contains("at least 3.00 GiB") && m.contains("activations at batch 4: 3.00 GiB") && m.contains("1.00 GiB available"), "{m}");
        assert!(memory_problem(&e, 4 << 30).is_none());
    }
}
