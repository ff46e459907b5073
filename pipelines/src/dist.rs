//! Data-parallel training on libtorch's own distributed engine (c10d, through models/ext's shim): the job
//! torchrun describes in its variables, and the process group of this rank.
//!
//! `torchrun --no-python --nproc-per-node N ganzoo train CONFIG` sets `RANK`, `WORLD_SIZE`, `MASTER_ADDR` and
//! `MASTER_PORT` in every process; with `WORLD_SIZE` above 1 a run is one rank of a job: `train.batch_size` is
//! the global batch, each rank takes its rows of it (data and random draws alike), gradients are averaged
//! across ranks after every backward, and rank 0 alone writes the run.
use crate::error::{PipelineError, Result};
use ganzoo_torch_ext::{ProcessGroup, Rendezvous};
use std::time::Duration;

/// This process's place in a data-parallel job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub rank: usize,
    pub world: usize,
}

impl Place {
    /// One process: rank 0 of 1.
    pub const ALONE: Place = Place { rank: 0, world: 1 };

    /// Whether this process writes the run (rank 0).
    pub fn writes(&self) -> bool {
        self.rank == 0
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rank {} of {}", self.rank, self.world)
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number(name: &str, v: &str, max: usize) -> Result<usize> {
    v.trim().parse::<usize>().ok().filter(|&n| n <= max).ok_or_else(|| {
        PipelineError::Usage(format!("environment variable {name}={v:?}: expected a whole number up to {max} (torchrun sets it)"))
    })
}

/// Where this process stands, from torchrun's `RANK` and `WORLD_SIZE` (one process when `WORLD_SIZE` is unset).
pub fn place() -> Result<Place> {
    let Some(world) = var("WORLD_SIZE") else { return Ok(Place::ALONE) };
    let world = number("WORLD_SIZE", &world, 65_536)?.max(1);
    let rank = match var("RANK") {
        Some(r) => number("RANK", &r, 65_535)?,
        None if world == 1 => 0,
        None => return Err(PipelineError::Usage(format!("WORLD_SIZE={world} but RANK is not set; start the ranks with torchrun"))),
    };
    if rank >= world {
        return Err(PipelineError::Usage(format!("RANK={rank} is not below WORLD_SIZE={world}")));
    }
    Ok(Place { rank, world })
}

/// The rendezvous of this rank from torchrun's variables (`MASTER_ADDR`, `MASTER_PORT`, and torchrun's
/// `TORCHELASTIC_USE_AGENT_STORE`, `TORCHELASTIC_RESTART_COUNT`; `GLOO_SOCKET_IFNAME` picks the interface).
pub fn rendezvous(p: Place, timeout: Duration) -> Result<Rendezvous> {
    let need = |name: &str| {
        var(name).ok_or_else(|| PipelineError::Usage(format!("WORLD_SIZE={} but {name} is not set; start the ranks with torchrun", p.world)))
    };
    let host = need("MASTER_ADDR")?;
    let port = number("MASTER_PORT", &need("MASTER_PORT")?, 65_535)? as u16;
    let attempt = var("TORCHELASTIC_RESTART_COUNT").unwrap_or_else(|| "0".into());
    Ok(Rendezvous {
        host,
        port,
        rank: p.rank,
        world: p.world,
        agent_store: var("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v == "True"),
        prefix: format!("ganzoo/attempt_{attempt}/"),
        interface: var("GLOO_SOCKET_IFNAME").unwrap_or_default(),
        timeout,
    })
}

/// Opens this rank's process group (waiting up to `timeout` for the others).
pub fn join(p: Place, timeout: Duration) -> Result<ProcessGroup> {
    let r = rendezvous(p, timeout)?;
    ProcessGroup::new(&r).map_err(|e| {
        PipelineError::Runtime(format!("{p}: cannot meet the other ranks at {}:{} within {} s: {e}", r.host, r.port, timeout.as_secs()))
    })
}

/// The error of a failed collective, naming the ranks that did not report the failure too (they died or hang):
/// this rank marks itself in the job's store, gives the others two seconds to do the same, and lists those
/// that did not.
pub fn collective_error(group: &mut ProcessGroup, what: &str, e: ganzoo_torch_ext::Error) -> PipelineError {
    let p = Place { rank: group.rank, world: group.world };
    let key = |r: usize| format!("failed/rank{r}");
    let culprits = match group.store_set(&key(p.rank), "1") {
        Ok(()) => {
            std::thread::sleep(Duration::from_secs(2));
            let silent: std::result::Result<Vec<usize>, _> = (0..p.world)
                .filter(|&r| r != p.rank)
                .filter_map(|r| match group.store_get(&key(r)) {
                    Ok(Some(_)) => None,
                    Ok(None) => Some(Ok(r)),
                    Err(e) => Some(Err(e)),
                })
                .collect();
            match silent {
                Ok(v) if v.is_empty() => "every rank saw it fail".to_string(),
                Ok(v) => format!(
                    "rank{} {} stopped or hangs (see its output)",
                    if v.len() > 1 { "s" } else { "" },
                    v.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
                ),
                Err(_) => "rank 0, which hosts the job's store, or torchrun stopped".to_string(),
            }
        }
        Err(_) => "rank 0, which hosts the job's store, or torchrun stopped".to_string(),
    };
    PipelineError::Runtime(format!(
        "{p}: {what} failed: {e}. {culprits}; the newest checkpoint stays loadable: start the job again with `--resume`"
    ))
}

/// Multi-stage pipelines are not trained data-parallel yet (their stage folders are written by every process).
pub(crate) fn refuse_stages_in_a_job() -> Result<()> {
    let place = place()?;
    if place.world > 1 {
        return Err(PipelineError::Usage(format!(
            "this config has `stages`: multi-stage pipelines are not trained data-parallel yet (WORLD_SIZE={}); \
             run it in one process",
            place.world
        )));
    }
    Ok(())
}

/// The most ranks `ganzoo train --nproc` starts on one machine.
pub const MAX_NPROC: usize = 1024;

/// `ganzoo train --nproc N`: starts `program args` as N ranks on this machine with the variables torchrun would
/// set (`RANK`, `LOCAL_RANK`, `WORLD_SIZE`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR=127.0.0.1`, a free `MASTER_PORT`,
/// `GLOO_SOCKET_IFNAME=lo` unless set) and waits for them. Rank 0 keeps stdout; every rank's stderr is shown.
/// Returns the exit code of the job: rank 0's if it failed, else the first failing rank's, else 0.
pub fn launch_local(program: &std::path::Path, args: &[String], nproc: usize) -> Result<i32> {
    if nproc == 0 || nproc > MAX_NPROC {
        return Err(PipelineError::Usage(format!("--nproc {nproc}: give 1 to {MAX_NPROC} processes")));
    }
    if var("WORLD_SIZE").is_some() {
        return Err(PipelineError::Usage("--nproc inside a job that torchrun (or another launcher) started: give one or the other".into()));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| PipelineError::Runtime(format!("no free port for the ranks to meet on: {e}")))?
        .port();
    let mut children = Vec::new();
    for rank in 0..nproc {
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", nproc.to_string())
            .env("LOCAL_WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string());
        if var("GLOO_SOCKET_IFNAME").is_none() {
            cmd.env("GLOO_SOCKET_IFNAME", "lo");
        }
        if rank > 0 {
            cmd.stdout(std::process::Stdio::null());
        }
        match cmd.spawn() {
            Ok(c) => children.push(c),
            Err(e) => {
                for mut c in children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(PipelineError::Runtime(format!("cannot start rank {rank}: {}: {e}", program.display())));
            }
        }
    }
    let codes: Vec<i32> = children.into_iter().map(|mut c| c.wait().ok().and_then(|s| s.code()).unwrap_or(1)).collect();
    Ok(if codes[0] != 0 { codes[0] } else { codes.iter().copied().find(|&c| c != 0).unwrap_or(0) })
}
