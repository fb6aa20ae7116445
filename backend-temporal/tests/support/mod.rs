//! Real-engine support for the tests.
#![allow(dead_code, unused_imports, unreachable_pub)]

mod server;
mod worker;

pub use server::*;
pub use worker::*;
