//! `--device cpu|cuda`: where the models run, one flag for `infer`, `process`, `serve` and `worker`.

use anyhow::Context;
use besikta_infer::Device;

/// The flag's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

impl From<DeviceArg> for Device {
    fn from(d: DeviceArg) -> Device {
        match d {
            DeviceArg::Cpu => Device::Cpu,
            DeviceArg::Cuda => Device::Cuda,
        }
    }
}

/// `--device`, flattened into each subcommand's arguments.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DeviceFlag {
    /// Where the models run: cpu, or cuda (the CUDA execution provider of the
    /// `onnxruntime-gpu` wheel; refused at start when it is not installed, never a silent
    /// fall back to the CPU).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
}

impl DeviceFlag {
    /// The chosen device, checked before any photo is read or job taken: for CUDA, ONNX
    /// Runtime loads and its CUDA provider library is there. The CPU needs no check here
    /// (a service without workers runs without ONNX Runtime; the pipeline loads it first).
    pub fn checked(&self) -> anyhow::Result<Device> {
        let device = Device::from(self.device);
        if device == Device::Cuda {
            besikta_infer::check_device(device)
                .context("--device cuda cannot be used on this machine")?;
        }
        Ok(device)
    }
}
