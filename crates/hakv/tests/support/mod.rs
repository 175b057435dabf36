//! Test support: real `hakv serve` processes on loopback and a small raw HTTP/1.1 client
//! that shows responses byte for byte.
#![allow(dead_code)]

pub mod clients;
pub mod faketime;
pub mod http;
pub mod nemesis;
pub mod netns;
pub mod process;
pub mod tmpfs;

#[allow(unused_imports)]
pub use http::{Http, Reply};
#[allow(unused_imports)]
pub use netns::Net;
#[allow(unused_imports)]
pub use process::ServerProcess;
#[allow(unused_imports)]
pub use tmpfs::Tmpfs;
pub mod cluster;
#[allow(unused_imports)]
pub use cluster::Cluster;
