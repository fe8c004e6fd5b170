//! Supply: available drivers per H3 cell, from every driver's last known
//! location and status (the DRIVERS stream).

use std::collections::HashMap;

use h3o::CellIndex;
use hail_events::DriverId;

/// Where a driver is and whether they can take a ride.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    cell: CellIndex,
    available: bool,
}

/// Every known driver's cell and the number of available drivers per cell.
#[derive(Debug, Clone, Default)]
pub struct Supply {
    drivers: HashMap<DriverId, Seen>,
    available: HashMap<CellIndex, u32>,
    available_total: usize,
}

impl Supply {
    /// An empty view.
    pub fn new() -> Self {
        Supply::default()
    }

    /// Applies a driver's latest update: moves them to `cell` and marks them
    /// available or not.
    pub fn apply(&mut self, driver: DriverId, cell: CellIndex, available: bool) {
        let now = Seen { cell, available };
        let before = self.drivers.insert(driver, now);
        if before == Some(now) {
            return;
        }
        if let Some(old) = before.filter(|s| s.available) {
            self.leave(old.cell);
        }
        if available {
            *self.available.entry(cell).or_insert(0) += 1;
            self.available_total += 1;
        }
    }

    fn leave(&mut self, cell: CellIndex) {
        self.available_total -= 1;
        if let Some(n) = self.available.get_mut(&cell) {
            *n -= 1;
            if *n == 0 {
                self.available.remove(&cell);
            }
        }
    }

    /// Available drivers in `cells`.
    pub fn count(&self, cells: &[CellIndex]) -> u32 {
        cells
            .iter()
            .filter_map(|c| self.available.get(c))
            .fold(0u32, |a, n| a.saturating_add(*n))
    }

    /// Drivers known, whatever their status.
    pub fn known(&self) -> usize {
        self.drivers.len()
    }

    /// Drivers available now.
    pub fn available(&self) -> usize {
        self.available_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells() -> Vec<CellIndex> {
        h3o::LatLng::new(48.8566, 2.3522)
            .unwrap()
            .to_cell(h3o::Resolution::Eight)
            .grid_disk(1)
    }

    fn d(id: &str) -> DriverId {
        DriverId::new(id).unwrap()
    }

    #[test]
    fn counts_available_drivers_per_cell() {
        let c = cells();
        let mut s = Supply::new();
        s.apply(d("a"), c[0], true);
        s.apply(d("b"), c[0], true);
        s.apply(d("c"), c[1], true);
        s.apply(d("off"), c[0], false);
        assert_eq!(s.count(&c[..1]), 2);
        assert_eq!(s.count(&c), 3);
        assert_eq!((s.known(), s.available()), (4, 3));
    }

    #[test]
    fn a_driver_moving_or_going_busy_leaves_their_cell() {
        let c = cells();
        let mut s = Supply::new();
        s.apply(d("a"), c[0], true);
        s.apply(d("a"), c[1], true);
        assert_eq!((s.count(&c[..1]), s.count(&c[1..2])), (0, 1));
        s.apply(d("a"), c[1], false);
        assert_eq!(s.count(&c), 0);
        s.apply(d("a"), c[1], false);
        s.apply(d("a"), c[2], true);
        s.apply(d("a"), c[2], true);
        assert_eq!((s.count(&c), s.known(), s.available()), (1, 1, 1));
    }
}
