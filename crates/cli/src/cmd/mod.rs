pub mod cache;
pub mod capture;
pub mod demo;
pub mod ports;
pub mod read;
pub mod serve;
pub mod verify;
