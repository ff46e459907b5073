//! Data-parallel ranks' random draws (`rng::with_row_shard`): each rank's rows of every batch-shaped draw,
//! also over several draws in a row from one stream, together equal to one process's draws.
use ganzoo_models::rng::{derived_rng, randint, randn, uniform, with_row_shard};
use tch::{Device, Tensor};

/// Three draws in a row from one stream, as DiffAugment makes them: normal (n, 2), uniform (n), integers (n).
fn draws(n: i64) -> (Tensor, Tensor, Vec<i64>) {
    let mut rng = derived_rng(7, "shard", 3);
    let a = randn(&mut rng, &[n, 2], Device::Cpu);
    let b = uniform(&mut rng, &[n], -1.0, 1.0, Device::Cpu);
    let c = randint(&mut rng, n as usize, 0, 1000);
    (a, b, c)
}

#[test]
fn ranks_rows_of_consecutive_draws_are_one_process_draws() {
    let (a, b, c) = draws(6);
    let parts: Vec<_> = (0..3).map(|r| with_row_shard(r, 3, || draws(2))).collect();
    let cat = |f: fn(&(Tensor, Tensor, Vec<i64>)) -> &Tensor| Tensor::cat(&parts.iter().map(f).collect::<Vec<_>>(), 0);
    assert!(cat(|p| &p.0).equal(&a), "normal rows");
    assert!(cat(|p| &p.1).equal(&b), "uniform rows");
    assert_eq!(parts.iter().flat_map(|p| p.2.clone()).collect::<Vec<_>>(), c, "integers");
    // Outside the scope, one process again.
    assert!(draws(6).0.equal(&a));
}
