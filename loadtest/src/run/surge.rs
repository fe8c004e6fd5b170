//! The surge riders were quoted: per city, and in the two places the city model
//! makes a promise about — the wave's hotspots while the wave is high (where
//! riders outnumber drivers and surge should rise) and the background away from
//! every hotspot (where it should stay 1.0).

use std::collections::BTreeMap;

use serde::Serialize;

/// Multipliers are counted in tenths, up to this many (10.0×).
const MAX_TENTHS: usize = 100;

/// A distribution of multipliers, counted per tenth.
#[derive(Debug, Clone)]
pub struct SurgeCounts {
    tenths: Vec<u64>,
    total: u64,
}

impl Default for SurgeCounts {
    fn default() -> Self {
        Self {
            tenths: vec![0; MAX_TENTHS + 1],
            total: 0,
        }
    }
}

impl SurgeCounts {
    /// Counts one quote of `surge` (rounded to a tenth, at least 1.0).
    pub fn add(&mut self, surge: f64) {
        let t = (surge * 10.0).round().clamp(10.0, MAX_TENTHS as f64) as usize;
        self.tenths[t] += 1;
        self.total += 1;
    }

    /// The multiplier at quantile `q`, if anything was counted.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (t, n) in self.tenths.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(t as f64 / 10.0);
            }
        }
        None
    }

    /// Share of the quotes at `cap` or above.
    pub fn share_at(&self, cap: f64) -> Option<f64> {
        let from = ((cap * 10.0).round() as usize).min(MAX_TENTHS);
        (self.total > 0).then(|| self.tenths[from..].iter().sum::<u64>() as f64 / self.total as f64)
    }

    /// Share of the quotes above 1.0.
    pub fn share_surged(&self) -> Option<f64> {
        (self.total > 0).then(|| 1.0 - self.tenths[10] as f64 / self.total as f64)
    }

    /// The figures the report gives.
    pub fn summary(&self, cap: f64) -> SurgeSummary {
        SurgeSummary {
            quotes: self.total,
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            surged_share: self.share_surged(),
            at_cap_share: self.share_at(cap),
        }
    }
}

/// One distribution of surge, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurgeSummary {
    pub quotes: u64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    /// Share of quotes above 1.0.
    pub surged_share: Option<f64>,
    /// Share of quotes at pricing's cap (`--surge-cap`).
    pub at_cap_share: Option<f64>,
}

/// Where a quoted ride started, for [`SurgeStats::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In a wave hotspot while the wave is high.
    WaveHotspot,
    /// Away from every hotspot.
    Background,
    /// Anywhere else.
    Other,
}

/// Every quote of the run.
#[derive(Debug, Clone, Default)]
pub struct SurgeStats {
    pub by_city: BTreeMap<String, SurgeCounts>,
    pub wave_hotspot: SurgeCounts,
    pub background: SurgeCounts,
}

impl SurgeStats {
    /// Counts a quote of `surge` in `city` for a ride that started at `place`.
    pub fn add(&mut self, city: &str, surge: f64, place: Place) {
        match self.by_city.get_mut(city) {
            Some(c) => c.add(surge),
            None => {
                let mut c = SurgeCounts::default();
                c.add(surge);
                self.by_city.insert(city.to_string(), c);
            }
        }
        match place {
            Place::WaveHotspot => self.wave_hotspot.add(surge),
            Place::Background => self.background.add(surge),
            Place::Other => {}
        }
    }

    /// The report's part.
    pub fn report(&self, cap: f64) -> SurgeReport {
        SurgeReport {
            cap,
            by_city: self
                .by_city
                .iter()
                .map(|(c, s)| (c.clone(), s.summary(cap)))
                .collect(),
            wave_hotspots: self.wave_hotspot.summary(cap),
            background: self.background.summary(cap),
        }
    }
}

/// The surge riders were quoted.
#[derive(Debug, Clone, Serialize)]
pub struct SurgeReport {
    /// pricing's cap, as given to the generator.
    pub cap: f64,
    pub by_city: BTreeMap<String, SurgeSummary>,
    /// Rides from the wave's hotspots while the wave was high.
    pub wave_hotspots: SurgeSummary,
    /// Rides away from every hotspot.
    pub background: SurgeSummary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_shares_by_hand() {
        let mut c = SurgeCounts::default();
        assert_eq!(c.summary(3.0).p50, None);
        for s in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.5, 3.0, 3.0] {
            c.add(s);
        }
        assert_eq!(c.quantile(0.5), Some(1.0));
        assert_eq!(c.quantile(0.7), Some(1.2));
        assert_eq!(c.quantile(0.95), Some(3.0));
        assert_eq!(c.share_at(3.0), Some(0.2));
        assert!((c.share_surged().unwrap() - 0.4).abs() < 1e-12);
        let mut all = SurgeStats::default();
        all.add("paris", 1.7, Place::WaveHotspot);
        all.add("paris", 1.0, Place::Background);
        all.add("nyc", 1.0, Place::Other);
        let r = all.report(3.0);
        assert_eq!(r.by_city["paris"].quotes, 2);
        assert_eq!(r.wave_hotspots.p50, Some(1.7));
        assert_eq!(r.background.p95, Some(1.0));
    }
}
