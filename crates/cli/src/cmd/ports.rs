use crate::args::PortsArgs;
use crate::error::CliError;
use anyhow::Context;
use std::io::Write;
use std::process::ExitCode;

pub fn run(_args: PortsArgs) -> Result<ExitCode, CliError> {
    let ports = serialport::available_ports().context("cannot list serial ports")?;
    let mut out = std::io::stdout().lock();
    if ports.is_empty() {
        writeln!(out, "no serial ports found (USB adapters appear as /dev/ttyUSB* or /dev/ttyACM*, and under /dev/serial/by-id/)")?;
    }
    for p in ports {
        let kind = match p.port_type {
            serialport::SerialPortType::UsbPort(u) => {
                let mut s = format!("usb {:04x}:{:04x}", u.vid, u.pid);
                for part in [u.manufacturer, u.product, u.serial_number.map(|n| format!("serial {n}"))].into_iter().flatten() {
                    s.push_str(", ");
                    s.push_str(&part);
                }
                s
            }
            serialport::SerialPortType::PciPort => "pci".into(),
            serialport::SerialPortType::BluetoothPort => "bluetooth".into(),
            serialport::SerialPortType::Unknown => "unknown".into(),
        };
        writeln!(out, "{}\t{kind}", p.port_name)?;
    }
    Ok(ExitCode::SUCCESS)
}
