//! End-to-end tests: the real host library and binary, the real plugins built for
//! wasm32-wasip2. One test binary, so wasmtime is linked once.

mod appointments;
mod bad_input;
mod cli;
mod containment;
mod contract;
mod cpu;
mod dead_letters;
mod deliveries;
mod demo;
mod fanout;
mod harness;
mod ipp;
mod isolation;
mod messages;
mod mok;
mod operations;
mod outbound;
mod outputs;
mod permissions;
mod pool;
mod process;
mod proxy;
mod queue_semantics;
mod queues;
mod quotas;
mod refusals;
mod runaway;
mod schedules;
mod service;
mod siesa;
mod sql;
mod sql_containment;
mod store;
mod tenants_apart;
mod workflows;
