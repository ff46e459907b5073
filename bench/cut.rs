//! `cut`: CUT and FastCUT training-step time on the real facades (labels → photos, unpaired), batch 1, 1 libtorch
//! thread, at each `--cg-settings` size:n_blocks:rounds: ours (the product's step, `Trainer::step` on the family
//! built from configs/papers/{cut,fastcut}_horse2zebra.yaml with the facades as data) against bench/cut_step.py
//! (the authors' networks as models/golden/cut_golden.py rebuilds them, and their step), alternating rounds; and
//! each against our own CycleGAN step on the same data and settings (the CUT paper reports CUT at about 0.6× the
//! time of CycleGAN).
use crate::cyclegan::{cg_config, check_facades, dump_pairs, load_size};
use crate::step::{self, Input, Step, Variant};
use crate::{alternate, header_columns, legend, loadavg, machine, median, python, root, row_columns, Opts};
use anyhow::Result;
use ganzoo_pipelines::families::Config;

fn cut_config(o: &Opts, mode: &str, size: i64, blocks: i64) -> Result<Config> {
    let path = root().join(format!("configs/papers/{mode}_horse2zebra.yaml"));
    let ov = vec![
        format!("data.root={}", o.facades.display()),
        "data.layout=side_by_side".into(),
        "data.swap=true".into(),
        format!("data.size={size}"),
        format!("data.load_size={}", load_size(size)),
        format!("model.generator.n_blocks={blocks}"),
        "threads=1".into(),
        "train.workers=1".into(),
        format!("device={}", crate::device::device_name(o.device)),
    ];
    Ok(ganzoo_pipelines::run::load_config(&path, &ov)?.config)
}

/// `cut`: the table described above.
pub fn step_time(o: &Opts) -> Result<()> {
    check_facades(o)?;
    println!(
        "== cut: CUT and FastCUT steps (configs/papers/{{cut,fastcut}}_horse2zebra.yaml: anti-aliased resnet G and PatchGAN, LSGAN, PatchNCE on 5 layers × 256 patches), batch 1, real facades, 1 libtorch thread; {} warm-up + {} timed steps per measurement, alternating rounds; medians",
        o.cg_warmup, o.cg_steps
    );
    println!("   machine: {}; PyTorch side: {}", machine(), python().display());
    println!("   {}", crate::device::setup(o.device));
    println!("{:>5} {:>6} {:>8} | {} | CycleGAN ms (ours) | ours / our CycleGAN", "size", "blocks", "mode", header_columns(o));
    for (i, &(size, blocks, rounds)) in o.cg_settings.iter().enumerate() {
        let cg = cg_config(o, size, blocks)?;
        let data = root().join(format!("target/ganzoo-bench/cyclegan/facades_pairs_{size}.f32"));
        dump_pairs(&cg, 8, &data)?;
        tch::set_num_threads(1);
        let mut cg_wall = Vec::new();
        for _ in 0..rounds {
            cg_wall.push(Step::new(&cg, Variant::of(o), Input::Data, &[])?.time(o.cg_warmup, o.cg_steps)?.0);
        }
        for mode in ["cut", "fastcut"] {
            let cfg = cut_config(o, mode, size, blocks)?;
            let counts = step::parameter_counts(&cfg)?;
            let (g, d) = (step::count(&counts, "G")?, step::count(&counts, "D")?);
            let args: Vec<String> = [
                "--mode", mode, "--data", &data.display().to_string(), "--threads", "1", "--size", &size.to_string(), "--n-blocks", &blocks.to_string(),
                "--warmup", &o.cg_warmup.to_string(), "--steps", &o.cg_steps.to_string(), "--expect-g-params", &g.to_string(), "--expect-d-params", &d.to_string(),
            ]
            .iter()
            .map(|a| a.to_string())
            .collect();
            let la0 = loadavg();
            let s = alternate(
                rounds,
                i == 0 && mode == "cut",
                || {
                    tch::set_num_threads(1);
                    Step::new(&cfg, Variant::of(o), Input::Data, &[])?.time(o.cg_warmup, o.cg_steps)
                },
                || crate::run_step_script("bench/cut_step.py", &args, &o.torch_args()),
            )?;
            let ours = median(&s.ours.iter().map(|x| x.0).collect::<Vec<_>>());
            let cgm = median(&cg_wall);
            println!(
                "{:>5} {:>6} {:>8} | {} | {:>9.0} | {:.3}; load {} -> {}",
                size,
                blocks,
                mode,
                row_columns(o, &s, 0),
                cgm,
                ours / cgm,
                la0,
                loadavg()
            );
        }
    }
    legend(o);
    Ok(())
}
