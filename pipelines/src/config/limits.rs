//! Resource limits: every integer of a config against a stated maximum, and the memory a training run needs
//! against what the machine has, checked before anything is allocated. Without them an absurd size aborts
//! the process inside an allocation, and an absurd count builds for minutes before it fails.
use serde_yaml::Value;

/// The largest value of each integer key, by the key's last name (the same name means the same kind of
/// quantity in every section); any integer key not listed may be at most [`DEFAULT_MAX`]. The README's
/// "Limits" table lists these.
pub const MAXIMA: &[(&[&str], i64, &str)] = &[
    (&["size", "load_size", "stage1_size"], 4096, "pixels a side"),
    (&["batch_size"], 65_536, "examples"),
    (&["train", "test", "train_count", "test_count", "held_out"], 1_000_000, "examples"),
    (&["samples"], 1_000_000, "images"),
    (&["pool_size"], 10_000, "images"),
    (&["workers"], 256, "threads (and at most the machine's cores)"),
    (&["threads"], 1024, "threads"),
    (&["prefetch"], 64, "batches"),
    (&["keep_checkpoints"], 1000, "checkpoints"),
    (&["n_critic", "accumulate", "r1_every"], 1000, "steps"),
    (&["captions_per_image"], 100, "captions"),
    (&["max_tokens", "max_len", "max_position_embeddings"], 4096, "tokens"),
    (WIDTHS, 8192, "channels or units"),
    (&["channels"], 4, "channels"),
    (
        &[
            "n_blocks", "n_layers", "layers", "r_num", "n_res", "n_downsample", "shared_enc_blocks",
            "shared_dec_blocks", "n_layer", "num_scales", "num_hidden_layers", "heads", "num_attention_heads",
            "x_pieces", "cond_pieces", "joint_pieces", "feature_conv",
        ],
        64,
        "layers or blocks",
    ),
];

/// The keys that set a network's width (channels or units): a network's parameters grow with their square.
pub const WIDTHS: &[&str] = &[
    "ngf", "ndf", "gf_dim", "df_dim", "ef_dim", "z_dim", "dim", "hidden", "hidden_size", "intermediate_size",
    "embed_dim", "enc_fc", "dec_fc_channels", "dis_first", "dis_fc", "cond_proj", "x_units", "cond_units",
    "joint_units", "z_hidden", "cond_hidden", "joint_hidden", "width",
];

/// The maximum of an integer key that [`MAXIMA`] does not list (steps, cadences, …).
pub const DEFAULT_MAX: i64 = 1_000_000_000;

/// Keys whose integers are not quantities (any value is fine).
const UNBOUNDED: &[&str] = &["seed"];

/// The maximum of the key whose last name is `leaf`, and what it counts.
pub fn maximum(leaf: &str) -> (i64, &'static str) {
    MAXIMA.iter().find(|(names, _, _)| names.contains(&leaf)).map_or((DEFAULT_MAX, "(any count)"), |&(_, m, what)| (m, what))
}

/// A problem for every integer of `config` (a resolved config as YAML) above its maximum, by dotted key.
pub fn problems(config: &Value) -> Vec<String> {
    let mut p = Vec::new();
    walk("", config, &mut p);
    p
}

fn walk(prefix: &str, v: &Value, p: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                let Some(k) = k.as_str() else { continue };
                if k == "stages" {
                    continue; // each stage is checked as its own config
                }
                walk(&if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") }, v, p);
            }
        }
        Value::Sequence(items) => items.iter().enumerate().for_each(|(i, v)| walk(&format!("{prefix}[{i}]"), v, p)),
        Value::Number(n) => {
            let leaf = prefix.rsplit('.').next().unwrap_or(prefix);
            let leaf = leaf.split('[').next().unwrap_or(leaf);
            if UNBOUNDED.contains(&leaf) {
                return;
            }
            let (max, what) = maximum(leaf);
            let too_big = match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i > max,
                (None, Some(_)) => true, // above i64::MAX
                _ => false,                // a float: checked by its own rule
            };
            if too_big {
                p.push(format!("{prefix}: {n} is above the maximum of {max} {what}"));
            }
        }
        _ => {}
    }
}

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

/// The memory this machine has available now (`MemAvailable` of /proc/meminfo), if it says.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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
    fn every_integer_is_bounded_by_its_name() {
        let v: Value = serde_yaml::from_str("seed: 99999999999\ndata: {size: 100000, train: 20}\nmodel: {generator: {ngf: 9000, n_blocks: 3}}\ntrain: {steps: 5000000000, betas: [1, 2]}").unwrap();
        let p = problems(&v);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("data.size: 100000 is above the maximum of 4096 pixels"), "{p:?}");
        assert!(p[1].starts_with("model.generator.ngf: 9000"), "{p:?}");
        assert!(p[2].starts_with("train.steps: 5000000000 is above the maximum of 1000000000"), "{p:?}");
    }

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
