//! Choosing the device from `device: auto|cpu|cuda|cuda:N`.
use tch::Device;

/// Parses a device name without looking at the hardware.
pub fn parse_device(spec: &str) -> std::result::Result<DeviceSpec, String> {
    match spec.trim() {
        "auto" => Ok(DeviceSpec::Auto),
        "cpu" => Ok(DeviceSpec::Cpu),
        "cuda" => Ok(DeviceSpec::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .map(DeviceSpec::Cuda)
            .ok_or_else(|| format!("`{other}` is not a device; use auto, cpu, cuda or cuda:N")),
    }
}

/// A parsed device name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Auto,
    Cpu,
    Cuda(usize),
}

/// Resolves a device name against the hardware: `auto` is CUDA when available, otherwise the CPU.
pub fn resolve_device(spec: &str) -> crate::Result<Device> {
    let parsed = parse_device(spec).map_err(|e| crate::PipelineError::Config(format!("device: {e}")))?;
    match parsed {
        DeviceSpec::Auto => Ok(Device::cuda_if_available()),
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => {
            let count = tch::Cuda::device_count() as usize;
            if n < count {
                Ok(Device::Cuda(n))
            } else {
                Err(crate::PipelineError::Usage(format!(
                    "device: cuda:{n} was asked for, but {count} CUDA device(s) are available; use device: auto or cpu"
                )))
            }
        }
    }
}

/// A short name for reports: `cpu` or `cuda:N`.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
