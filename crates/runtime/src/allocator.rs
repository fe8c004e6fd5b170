//! The memory allocator of every process that links the runtime: mimalloc.
//!
//! Every message a service handles allocates and frees a handful of small
//! buffers (the delivery, its headers, the decoded event, the answer). With
//! glibc's allocator that churn was a quarter of matching's and ride-view's
//! CPU in the demo's rush hour (`malloc`, `free` and `malloc_consolidate` in a
//! `perf` profile); docs/BENCHMARKS.md has the profile and the figures
//! measured with and without it.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
