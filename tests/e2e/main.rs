//! End-to-end tests: the real host library and binary, the real plugins built for
//! wasm32-wasip2. One test binary, so wasmtime is linked once.

mod appointments;
mod cli;
mod containment;
mod cpu;
mod demo;
mod fanout;
mod harness;
mod ipp;
mod isolation;
mod mok;
mod outbound;
mod pool;
mod process;
mod queues;
mod runaway;
mod schedules;
mod service;
mod siesa;
mod sql;
mod store;
mod workflows;
