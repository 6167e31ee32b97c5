//! The metrics recorder's upkeep runs on its own: histogram samples are folded into their
//! buckets whether or not anything scrapes `/metrics`, so a busy service's memory stays
//! flat. A test binary of its own: it counts the process's live heap bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use orquesta::server::HostConfig;

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: i64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_samples_do_not_pile_up_without_a_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let server = orquesta::server::start(HostConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        plugin_dir: dir.path().join("plugins"),
        tenant_dir: dir.path().join("tenants"),
        ..HostConfig::default()
    })
    .await
    .unwrap();
    let histogram = metrics::histogram!("orquesta_upkeep_test_seconds");
    let base = LIVE.load(Ordering::Relaxed);
    // 400,000 samples a second for 8 s: 3.2 million, about 26 MiB kept until an upkeep
    // (each sample is 8 bytes in blocks of 64). The service does it every second.
    let started = Instant::now();
    let mut recorded = 0u64;
    let mut most = 0;
    while started.elapsed() < Duration::from_secs(8) {
        for i in 0..40_000 {
            histogram.record(f64::from(i % 100) / 1000.0);
        }
        recorded += 40_000;
        tokio::time::sleep(Duration::from_millis(100)).await;
        most = most.max(LIVE.load(Ordering::Relaxed) - base);
    }
    server.shutdown().await.unwrap();
    assert!(
        most < 10 * MIB,
        "{recorded} samples recorded with no scrape kept up to {:.1} MiB live",
        most as f64 / MIB as f64
    );
}
