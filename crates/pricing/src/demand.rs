//! Demand: ride requests per H3 cell over a sliding window of event time.
//!
//! Each cell keeps a ring of [`BUCKETS`] counters, each `window / BUCKETS` wide,
//! so a cell costs a fixed ~130 bytes however many requests it sees. Time is the
//! requests' own time, not the clock: a backlog replayed an hour late is counted
//! in the windows it happened in, and out-of-order requests land in their own
//! bucket. Cells whose newest bucket has left the window of the newest request
//! seen are evicted, and the number of cells is capped.

use std::{collections::HashMap, time::Duration};

use h3o::CellIndex;

/// Counters per cell; the window is counted to this precision.
pub const BUCKETS: usize = 30;
/// Most cells tracked at once (~65 MB); requests in further cells go uncounted
/// until eviction makes room.
pub const MAX_CELLS: usize = 500_000;
/// Requests recorded between two eviction sweeps.
const SWEEP_EVERY: u32 = 4096;
const SPAN: u64 = BUCKETS as u64;

/// One cell's counters: bucket `b` lives in slot `b % BUCKETS` while `b` is one
/// of the newest `BUCKETS` buckets up to `newest`.
#[derive(Debug, Clone)]
struct CellCounts {
    newest: u64,
    counts: [u32; BUCKETS],
}

impl CellCounts {
    fn new(bucket: u64) -> Self {
        CellCounts {
            newest: bucket,
            counts: [0; BUCKETS],
        }
    }

    /// Counts one request in `bucket`, unless it is older than every bucket kept.
    fn record(&mut self, bucket: u64) {
        if bucket > self.newest {
            let cleared = (bucket - self.newest).min(SPAN);
            for b in bucket + 1 - cleared..=bucket {
                self.counts[slot(b)] = 0;
            }
            self.newest = bucket;
        } else if self.newest - bucket >= SPAN {
            return;
        }
        let c = &mut self.counts[slot(bucket)];
        *c = c.saturating_add(1);
    }

    /// Requests in the `BUCKETS` buckets ending with `bucket`.
    fn count(&self, bucket: u64) -> u32 {
        let lo = (bucket + 1)
            .saturating_sub(SPAN)
            .max((self.newest + 1).saturating_sub(SPAN));
        let hi = bucket.min(self.newest);
        (lo..=hi).map(|b| self.counts[slot(b)]).sum()
    }
}

fn slot(bucket: u64) -> usize {
    (bucket % SPAN) as usize
}

/// Requests per cell over a sliding window.
#[derive(Debug, Clone)]
pub struct DemandWindow {
    bucket_ms: u64,
    cells: HashMap<CellIndex, CellCounts>,
    watermark: u64,
    since_sweep: u32,
}

impl DemandWindow {
    /// A window of `window` (at least 1 ms a bucket).
    pub fn new(window: Duration) -> Self {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        DemandWindow {
            bucket_ms: (window_ms / SPAN).max(1),
            cells: HashMap::new(),
            watermark: 0,
            since_sweep: 0,
        }
    }

    /// The window actually counted: `BUCKETS` whole buckets.
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.bucket_ms * SPAN)
    }

    /// Counts a request in `cell` at `at_ms`; false when it was left out because
    /// [`MAX_CELLS`] cells are already tracked.
    pub fn record(&mut self, cell: CellIndex, at_ms: u64) -> bool {
        let bucket = at_ms / self.bucket_ms;
        self.watermark = self.watermark.max(bucket);
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.sweep();
        }
        if !self.cells.contains_key(&cell) && self.cells.len() >= MAX_CELLS {
            self.sweep();
            if self.cells.len() >= MAX_CELLS {
                return false;
            }
        }
        self.cells
            .entry(cell)
            .or_insert_with(|| CellCounts::new(bucket))
            .record(bucket);
        true
    }

    /// Requests in `cells` within the window ending at `at_ms`.
    pub fn count(&self, cells: &[CellIndex], at_ms: u64) -> u32 {
        let bucket = at_ms / self.bucket_ms;
        cells
            .iter()
            .filter_map(|c| self.cells.get(c))
            .map(|c| c.count(bucket))
            .fold(0u32, u32::saturating_add)
    }

    /// Cells tracked now.
    pub fn cells(&self) -> usize {
        self.cells.len()
    }

    /// Drops cells with nothing inside the window of the newest request seen.
    fn sweep(&mut self) {
        self.since_sweep = 0;
        let watermark = self.watermark;
        self.cells.retain(|_, c| c.newest + SPAN > watermark);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    const T0: u64 = 1_800_000_000_000;

    fn cell(i: u64) -> CellIndex {
        let base = h3o::LatLng::new(52.52, 13.40)
            .unwrap()
            .to_cell(h3o::Resolution::Eight);
        base.grid_disk::<Vec<_>>(3)[i as usize]
    }

    fn five_minutes() -> DemandWindow {
        DemandWindow::new(Duration::from_secs(300))
    }

    #[test]
    fn counts_requests_inside_the_window_only() {
        let mut d = five_minutes();
        for i in 0..5 {
            d.record(cell(0), T0 + i * MIN);
        }
        assert_eq!(d.count(&[cell(0)], T0 + 4 * MIN), 5);
        // At T0 + 5 min the request of T0 has left the window.
        assert_eq!(d.count(&[cell(0)], T0 + 5 * MIN), 4);
        assert_eq!(d.count(&[cell(0)], T0 + 9 * MIN), 0);
        assert_eq!(d.window(), Duration::from_secs(300));
    }

    #[test]
    fn sums_over_the_cells_asked_for() {
        let mut d = five_minutes();
        d.record(cell(0), T0);
        d.record(cell(1), T0);
        d.record(cell(1), T0);
        d.record(cell(2), T0);
        assert_eq!(d.count(&[cell(0), cell(1)], T0), 3);
        assert_eq!(d.count(&[cell(5)], T0), 0);
    }

    #[test]
    fn a_replayed_backlog_is_counted_in_its_own_time() {
        let mut d = five_minutes();
        // An hour of requests, one a minute, replayed in a burst.
        for i in 0..60 {
            d.record(cell(0), T0 + i * MIN);
        }
        // Counted as of each request's time, not as 60 at once.
        assert_eq!(d.count(&[cell(0)], T0 + 59 * MIN), 5);
        assert_eq!(d.count(&[cell(0)], T0 + 2 * MIN), 0, "older than kept");
    }

    #[test]
    fn out_of_order_requests_land_in_their_bucket() {
        let mut d = five_minutes();
        d.record(cell(0), T0 + 3 * MIN);
        d.record(cell(0), T0 + MIN);
        d.record(cell(0), T0 + 2 * MIN);
        assert_eq!(d.count(&[cell(0)], T0 + 3 * MIN), 3);
        assert_eq!(
            d.count(&[cell(0)], T0 + 6 * MIN + 1),
            2,
            "the 1 min one has left"
        );
        // A request far older than the newest bucket is ignored, not misfiled.
        d.record(cell(0), T0 - 60 * MIN);
        assert_eq!(d.count(&[cell(0)], T0 + 3 * MIN), 3);
    }

    #[test]
    fn cells_out_of_the_window_are_evicted() {
        let mut d = five_minutes();
        d.record(cell(0), T0);
        d.record(cell(1), T0 + 4 * MIN);
        for i in 0..SWEEP_EVERY {
            d.record(cell(2), T0 + 6 * MIN + u64::from(i));
        }
        assert_eq!(d.cells(), 2, "cell 0 is gone, 1 and 2 remain");
        assert_eq!(d.count(&[cell(1)], T0 + 6 * MIN), 1);
    }
}
