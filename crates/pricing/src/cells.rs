//! The H3 grid pricing counts demand and supply on: a pickup's cell and its
//! first ring (the cell plus its six neighbours, five around a pentagon).

use h3o::{CellIndex, Resolution};
use hail_events::LatLng;

/// A neighbourhood: a cell and its first ring.
pub type Neighbourhood = Vec<CellIndex>;

/// A bad `--h3-resolution`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--h3-resolution {0} must be from 0 to 15 (8 is about 0.7 km² a cell)")]
pub struct ResolutionError(pub u8);

/// The H3 grid at one resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    resolution: Resolution,
}

impl Grid {
    /// The grid at `resolution` (0 coarsest, 15 finest).
    pub fn new(resolution: u8) -> Result<Grid, ResolutionError> {
        let resolution =
            Resolution::try_from(resolution).map_err(|_| ResolutionError(resolution))?;
        Ok(Grid { resolution })
    }

    /// The resolution, as a number.
    pub fn resolution(&self) -> u8 {
        u8::from(self.resolution)
    }

    /// The cell holding a position. A hail [`LatLng`] is validated finite and in
    /// range, so H3 always accepts it.
    pub fn cell(&self, p: &LatLng) -> CellIndex {
        let ll = h3o::LatLng::new(p.lat(), p.lon())
            .unwrap_or_else(|e| unreachable!("a validated position {p:?} was refused by H3: {e}"));
        ll.to_cell(self.resolution)
    }

    /// The cell and its first ring.
    pub fn neighbourhood(&self, cell: CellIndex) -> Neighbourhood {
        cell.grid_disk(1)
    }
}

impl Default for Grid {
    /// Resolution 8: cells of about 0.74 km², a neighbourhood of about 5 km².
    fn default() -> Self {
        Grid {
            resolution: Resolution::Eight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> LatLng {
        LatLng::new(lat, lon).unwrap()
    }

    #[test]
    fn nearby_points_share_a_neighbourhood_and_far_ones_do_not() {
        let g = Grid::default();
        let alex = g.cell(&at(52.5219, 13.4132));
        let disk = g.neighbourhood(alex);
        assert_eq!(disk.len(), 7);
        assert!(disk.contains(&alex));
        // 300 m away: same cell or a neighbour.
        assert!(disk.contains(&g.cell(&at(52.5246, 13.4132))));
        // Potsdam is ~27 km away.
        assert!(!disk.contains(&g.cell(&at(52.3906, 13.0645))));
    }

    #[test]
    fn resolution_is_checked() {
        assert_eq!(Grid::new(8).unwrap(), Grid::default());
        assert_eq!(Grid::new(15).unwrap().resolution(), 15);
        let err = Grid::new(16).unwrap_err().to_string();
        assert!(err.starts_with("--h3-resolution 16"), "{err}");
    }
}
