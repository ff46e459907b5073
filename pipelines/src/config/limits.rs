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

/// The memory this machine has available now (`MemAvailable` of /proc/meminfo), if it says.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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
}
