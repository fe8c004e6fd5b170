//! pricing's flags.

use crate::tariff::Tariff;

/// The tariff, from flags or environment.
#[derive(Debug, Clone, clap::Args)]
pub struct PricingArgs {
    /// ISO 4217 currency of every fare.
    #[arg(long, env = "HAIL_PRICING_CURRENCY", default_value = "EUR")]
    pub currency: String,
    /// Flag-fall in minor units.
    #[arg(long, env = "HAIL_PRICING_BASE", default_value_t = 250)]
    pub base_minor: u64,
    /// Price per kilometre in minor units.
    #[arg(long, env = "HAIL_PRICING_PER_KM", default_value_t = 120)]
    pub per_km_minor: u64,
    /// Price per minute in minor units.
    #[arg(long, env = "HAIL_PRICING_PER_MINUTE", default_value_t = 30)]
    pub per_minute_minor: u64,
    /// Minimum fare in minor units.
    #[arg(long, env = "HAIL_PRICING_MINIMUM", default_value_t = 700)]
    pub minimum_minor: u64,
}

impl PricingArgs {
    /// The tariff, or an error naming the bad setting.
    pub fn tariff(&self) -> Result<Tariff, String> {
        let c = &self.currency;
        if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("--currency {c:?} is not an ISO 4217 code like EUR"));
        }
        Ok(Tariff {
            currency: c.clone(),
            base_minor: self.base_minor,
            per_km_minor: self.per_km_minor,
            per_minute_minor: self.per_minute_minor,
            minimum_minor: self.minimum_minor,
        })
    }
}
