pub mod capture;
pub mod demo;
pub mod ports;
pub mod verify;
