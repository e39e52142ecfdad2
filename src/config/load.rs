//! Reading a config: TOML text to [`Config`], with relative paths resolved against the config's
//! folder and the venue preset's fees, brackets, liquidation rules and schedule merged in where
//! the file leaves them out (keys the user wrote win), then validated.

use std::path::Path;

use anyhow::Result;

use super::Config;
use crate::input_error;

impl Config {
    /// Parse TOML text. `origin` names the file in errors; relative data paths are resolved
    /// against `base_dir`.
    pub fn from_toml_str(text: &str, origin: &str, base_dir: &Path) -> Result<Config> {
        let raw: toml::Value = toml::from_str(text).map_err(|err| {
            input_error!(
                "config {origin}: {}\nSee data/basis.toml for every key, its type and its allowed range.",
                err.to_string().trim_end()
            )
        })?;
        Config::from_toml_value(&raw, origin, base_dir)
    }

    /// Build and validate a config from parsed TOML (what `from_toml_str` and sweeps use). Keys
    /// the TOML leaves out take their defaults, or the venue preset's values.
    pub fn from_toml_value(raw: &toml::Value, origin: &str, base_dir: &Path) -> Result<Config> {
        let mut config: Config = raw.clone().try_into().map_err(|err: toml::de::Error| {
            input_error!(
                "config {origin}: {}\nSee data/basis.toml for every key, its type and its allowed range.",
                err.to_string().trim_end()
            )
        })?;
        config.resolve_paths(base_dir);
        config.fill_from_catalog().map_err(|err| input_error!("config {origin}: [data] catalog: {err:#}"))?;
        if let Some(name) = config.venue.preset.clone() {
            let preset = crate::venue::Preset::load_shared(&name, base_dir).map_err(|err| input_error!("config {origin}: [venue] preset: {err:#}"))?;
            // Keys the user wrote win; the preset fills the rest.
            let given = |section: &str, key: &str| raw.get(section).and_then(|s| s.get(key)).is_some();
            let fees = &preset.fees;
            for (key, value, slot) in [
                ("spot_maker_bps", fees.spot_maker_bps, &mut config.costs.spot_maker_bps),
                ("spot_taker_bps", fees.spot_taker_bps, &mut config.costs.spot_taker_bps),
                ("perp_maker_bps", fees.perp_maker_bps, &mut config.costs.perp_maker_bps),
                ("perp_taker_bps", fees.perp_taker_bps, &mut config.costs.perp_taker_bps),
            ] {
                if !given("costs", key) {
                    *slot = value;
                }
            }
            if !given("margin", "liquidation_fee_rate") {
                config.margin.liquidation_fee_rate = preset.margin.liquidation_fee_rate;
            }
            if let (false, Some(style)) = (given("margin", "liquidation"), preset.margin.liquidation) {
                config.margin.liquidation = style;
            }
            if let (false, Some(fraction)) = (given("margin", "backstop_fraction"), preset.margin.backstop_fraction) {
                config.margin.backstop_fraction = fraction;
            }
            if let (false, Some(bps)) = (given("margin", "liquidation_slippage_bps"), preset.margin.liquidation_slippage_bps) {
                config.margin.liquidation_slippage_bps = Some(bps);
            }
            if let (false, Some(flag)) = (given("margin", "taker_fee_in_liquidation_price"), preset.margin.taker_fee_in_liquidation_price) {
                config.margin.taker_fee_in_liquidation_price = flag;
            }
            if let (false, Some(basis)) = (given("margin", "maintenance_on"), preset.margin.maintenance_on) {
                config.margin.maintenance_on = basis;
            }
            if let Some(spot) = &preset.margin.spot {
                for (key, value, slot) in [
                    ("spot_margin_call_level", spot.margin_call_level, &mut config.margin.spot_margin_call_level),
                    ("spot_liquidation_level", spot.liquidation_level, &mut config.margin.spot_liquidation_level),
                    ("spot_liquidation_fee_rate", spot.liquidation_fee_rate, &mut config.margin.spot_liquidation_fee_rate),
                    ("spot_transfer_out_level", spot.transfer_out_level, &mut config.margin.spot_transfer_out_level),
                ] {
                    if !given("margin", key) {
                        *slot = value;
                    }
                }
                // A venue whose liquidation is not known to stop early buys the whole loan back.
                if !given("margin", "spot_liquidation_stop_level") {
                    config.margin.spot_liquidation_stop_level = spot.liquidation_stop_level.unwrap_or(1.0);
                }
            }
            if !given("margin", "brackets") {
                config.margin.brackets = preset.brackets_for(&config.data.symbol);
            }
            if config.venue.name.is_none() {
                config.venue.name = Some(preset.name.clone());
            }
            config.data.funding_schedule = Some(preset.schedule());
            config.venue.loaded = Some(preset);
        } else if let Some(id) = implied_preset(&config.data) {
            // No preset named, but the data's format names its venue: the clock check uses that
            // venue's preset schedule (the presets are the one source of the schedules).
            if let Ok(preset) = crate::venue::Preset::load_shared(id, base_dir) {
                config.data.funding_schedule = Some(preset.schedule());
            }
        }
        config.validate().map_err(|err| input_error!("config {origin}: {err:#}"))?;
        Ok(config)
    }

    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            input_error!(
                "cannot read config {}: {err}. Pass an existing file with --config, or run from the repository root to use data/basis.toml.",
                path.display()
            )
        })?;
        let base_dir = path.parent().unwrap_or_else(|| Path::new("."));
        Config::from_toml_str(&text, &path.display().to_string(), base_dir)
    }

    /// Name the series `[data]` leaves out by the catalog's files: each of spot, perp, mark,
    /// index and funding the catalog holds for the venue and symbol (perp and funding must be
    /// there; the rest are optional, as in any config).
    fn fill_from_catalog(&mut self) -> Result<()> {
        use crate::data::catalog;
        use crate::data::rest::SeriesKind;
        let d = &mut self.data;
        let (root, venue) = match (&d.catalog, &d.venue) {
            (None, None) => return Ok(()),
            (Some(root), Some(venue)) => (std::path::PathBuf::from(root), venue.clone()),
            (Some(_), None) => crate::bail_input!("`venue` is missing: name the catalog's venue folder (venue = \"bybit\")"),
            (None, Some(_)) => crate::bail_input!("`venue` needs `catalog` (the folder basis data fetch wrote)"),
        };
        if d.freqtrade.is_some() {
            crate::bail_input!("give `catalog` or `freqtrade`, not both");
        }
        if !root.is_dir() {
            crate::bail_input!("{} is not a folder; fetch into it first: basis data fetch {venue} --symbols {} --out {}", root.display(), d.symbol, root.display());
        }
        let symbol = d.symbol.clone();
        let missing = |kind: SeriesKind| input_error!("the catalog {} has no {venue} {} for {symbol}; fetch it: basis data fetch {venue} --symbols {symbol} --kinds {} --start ... --end ... --out {}", root.display(), kind.name(), kind.name(), root.display());
        if d.perp.is_none() {
            d.perp = Some(catalog::price_source(&root, &venue, SeriesKind::Perp, &symbol)?.ok_or_else(|| missing(SeriesKind::Perp))?);
        }
        if d.funding.is_none() {
            d.funding = Some(catalog::funding_source(&root, &venue, &symbol)?.ok_or_else(|| missing(SeriesKind::Funding))?);
        }
        if d.spot.is_none() {
            d.spot = Some(catalog::price_source(&root, &venue, SeriesKind::Spot, &symbol)?.ok_or_else(|| {
                input_error!("the catalog {} has no {venue} spot for {symbol} (some venues have none: dYdX, Deribit); give [data.spot] from another source, or fetch it", root.display())
            })?);
        }
        if d.mark.is_none() {
            d.mark = catalog::price_source(&root, &venue, SeriesKind::Mark, &symbol)?;
        }
        if d.index.is_none() {
            d.index = catalog::price_source(&root, &venue, SeriesKind::Index, &symbol)?;
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base_dir: &Path) {
        if let Some(root) = self.data.catalog.as_mut() {
            if let (Some(rest), Some(home)) = (root.strip_prefix("~/"), std::env::var_os("HOME")) {
                *root = Path::new(&home).join(rest).to_string_lossy().into_owned();
            } else if !Path::new(root.as_str()).is_absolute() {
                *root = base_dir.join(root.as_str()).to_string_lossy().into_owned();
            }
        }
        let resolve = |p: &mut String| {
            if !Path::new(p.as_str()).is_absolute() {
                *p = base_dir.join(p.as_str()).to_string_lossy().into_owned();
            }
        };
        if let Some(freqtrade) = self.data.freqtrade.as_mut() {
            resolve(&mut freqtrade.datadir);
            for dir in freqtrade.more_datadirs.iter_mut() {
                resolve(dir);
            }
        }
        for source in [self.data.spot.as_mut(), self.data.perp.as_mut(), self.data.mark.as_mut(), self.data.index.as_mut()].into_iter().flatten() {
            resolve(&mut source.path);
        }
        if let Some(funding) = self.data.funding.as_mut() {
            resolve(&mut funding.path);
        }
        if let Some(staking) = self.data.staking.as_mut() {
            resolve(&mut staking.path);
        }
        for dated in [self.data.dated.as_mut(), self.data.dated_mark.as_mut()].into_iter().flatten() {
            resolve(&mut dated.path);
        }
        for rate in [self.data.cash_rate.as_mut(), self.data.borrow_rate.as_mut()].into_iter().flatten() {
            if let Some(path) = rate.path.as_mut() {
                resolve(path);
            }
        }
        if let Some(premium) = self.venue.premium_index.as_mut() {
            resolve(premium);
        }
        for series in self.signals.iter_mut().chain(self.strategy.target.as_mut()).chain(self.data.borrow_available.as_mut()) {
            resolve(&mut series.path);
        }
        for book in [self.data.spot_book.as_mut(), self.data.perp_book.as_mut()].into_iter().flatten() {
            resolve(&mut book.path);
        }
    }
}

/// The built-in preset a config's funding data implies when it names none: its funding format's
/// venue, or a freqtrade folder's Binance exchange.
fn implied_preset(data: &crate::data::source::DataConfig) -> Option<&'static str> {
    match (&data.freqtrade, &data.funding) {
        (Some(ft), _) if ft.exchange.eq_ignore_ascii_case("binance") => Some("binance_usdm"),
        (None, Some(source)) => source.format.venue_preset(),
        _ => None,
    }
}
