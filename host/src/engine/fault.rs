//! What a failed guest call really was, when wasmtime's error says it indirectly.

use wasmtime::{Trap, WasmBacktrace};

/// The status a guest passed to WASI's `exit`: it ended the call without a result.
pub fn exit_status(err: &wasmtime::Error) -> Option<i32> {
    err.downcast_ref::<wasmtime_wasi::I32Exit>().map(|e| e.0)
}

/// Lowest wasm address taken as a stack that grew past 0. Toolchains that keep a stack
/// in linear memory (Rust, C, Zig through wasm-ld's `--stack-first`) put it at the
/// bottom, growing down; pushing past its end wraps the 32-bit stack pointer to just
/// under 4 GiB. No memory reaches this far (`ceiling::MEMORY_MB` is 1 GiB), so an access
/// here is out of bounds, and an ordinary bad pointer lands here only if it is a small
/// negative offset from null.
const WRAPPED_STACK_FROM: u64 = 0xC000_0000;

/// Innermost frames of one or two functions that make an out-of-bounds access without
/// an address a stack overflow: recursion that deep, failing on memory, is a stack
/// running out. (wasmtime keeps 20 frames of a backtrace.)
const RECURSION_FRAMES: usize = 16;

/// Whether an out-of-bounds trap is the guest's own stack overflowing in linear memory.
/// A plain load or store past the end faults on a guard page and wasmtime adds the wasm
/// address (its `WasmFault`, which is not public: read from its message, `memory fault
/// at wasm address 0x.. in linear memory of size 0x..`): a wrapped address is the
/// stack. A bulk operation (`memory.fill` zeroing a new frame's array) is checked
/// explicitly and has no address: then deep recursion at the top of the backtrace is.
pub fn shadow_stack_overflow(err: &wasmtime::Error) -> bool {
    if err.downcast_ref::<Trap>() != Some(&Trap::MemoryOutOfBounds) {
        return false;
    }
    match fault_address(err) {
        Some(address) => address >= WRAPPED_STACK_FROM,
        None => err
            .downcast_ref::<WasmBacktrace>()
            .is_some_and(deep_recursion),
    }
}

fn fault_address(err: &wasmtime::Error) -> Option<u64> {
    err.chain().find_map(|cause| {
        let text = cause.to_string();
        let rest = text.strip_prefix("memory fault at wasm address 0x")?;
        let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        u64::from_str_radix(&hex, 16).ok()
    })
}

fn deep_recursion(bt: &WasmBacktrace) -> bool {
    let frames = bt.frames();
    if frames.len() < RECURSION_FRAMES {
        return false;
    }
    let mut functions: Vec<(Option<&str>, u32)> = frames[..RECURSION_FRAMES]
        .iter()
        .map(|f| (f.module().name(), f.func_index()))
        .collect();
    functions.sort_unstable();
    functions.dedup();
    functions.len() <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `body` as the exported function of a core module with one 17-page memory
    /// on the host's engine, and returns its error.
    async fn fails(funcs: &str) -> wasmtime::Error {
        let engine = crate::engine::Engine::new(Default::default()).expect("engine");
        let wasmtime = &engine.inner.wasmtime;
        let text = format!("(module (memory 17) {funcs})");
        let module = wasmtime::Module::new(wasmtime, text).expect("module");
        let mut store = wasmtime::Store::new(wasmtime, ());
        store.set_epoch_deadline(1_000);
        let instance = wasmtime::Instance::new_async(&mut store, &module, &[])
            .await
            .expect("instance");
        let f = instance
            .get_typed_func::<(), ()>(&mut store, "f")
            .expect("f");
        f.call_async(&mut store, ()).await.expect_err("traps")
    }

    #[tokio::test]
    async fn a_store_below_address_zero_is_the_stack() {
        let err =
            fails(r#"(func (export "f") (i32.store (i32.const -65536) (i32.const 1)))"#).await;
        assert!(shadow_stack_overflow(&err), "{err:?}");
    }

    #[tokio::test]
    async fn a_store_just_past_the_end_is_not() {
        let err =
            fails(r#"(func (export "f") (i32.store (i32.const 0x120000) (i32.const 1)))"#).await;
        assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::MemoryOutOfBounds));
        assert!(!shadow_stack_overflow(&err), "{err:?}");
    }

    #[tokio::test]
    async fn a_fill_out_of_bounds_is_the_stack_only_deep_in_recursion() {
        // `$r` recurses `n` times, then fills past the end (no fault address).
        let recursing = |n: i32| {
            format!(
                r#"(func $r (param i32)
                     (if (i32.eqz (local.get 0))
                       (then (memory.fill (i32.const -65536) (i32.const 0) (i32.const 16)))
                       (else (call $r (i32.sub (local.get 0) (i32.const 1))))))
                   (func (export "f") (call $r (i32.const {n})))"#
            )
        };
        let deep = fails(&recursing(40)).await;
        assert!(shadow_stack_overflow(&deep), "{deep:?}");
        let shallow = fails(&recursing(3)).await;
        assert_eq!(
            shallow.downcast_ref::<Trap>(),
            Some(&Trap::MemoryOutOfBounds)
        );
        assert!(!shadow_stack_overflow(&shallow), "{shallow:?}");
    }
}
