//! End-to-end tests: the real `blackbox` binary on real files, pseudo-terminals
//! and processes that are killed for real.

mod harness;

mod capture;
mod dashboard;
mod dataflash;
mod demo;
mod deploy;
mod fleet;
mod index;
mod mirror;
mod mqtt;
mod notify;
mod rollups;
mod snapshots;
mod soak;
mod status;
mod tail;
mod verify;
