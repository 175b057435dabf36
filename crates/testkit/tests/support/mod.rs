//! Shared by the generated-history tests: a register that is linearizable by construction,
//! a random workload of hakv requests with injected faults, and ways to corrupt a history.
#![allow(dead_code)] // each test binary uses a different part

pub mod corrupt;
pub mod register;
pub mod workload;
