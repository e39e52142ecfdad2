//! Changing a config by dotted path: `--set KEY=VALUE` on the command line, and the parameters
//! of a sweep. Values are read as TOML and the result is validated like a file.

use std::path::Path;

use anyhow::Result;

use super::Config;
use crate::{bail_input, input_error};

/// Load a config with `KEY=VALUE` overrides applied to its TOML before validation (values are
/// read as TOML: numbers, booleans, or text).
pub fn load_with_overrides(path: &Path, overrides: &[String]) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|err| input_error!("cannot read config {}: {err}", path.display()))?;
    let raw: toml::Value = toml::from_str(&text).map_err(|err| input_error!("config {}: {}", path.display(), err.to_string().trim_end()))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    from_value_with_overrides(raw, &path.display().to_string(), base_dir, overrides)
}

/// A config from parsed TOML (`origin` names it in messages; `base_dir` resolves its relative
/// paths) with `KEY=VALUE` overrides applied before validation.
pub fn from_value_with_overrides(mut raw: toml::Value, origin: &str, base_dir: &Path, overrides: &[String]) -> Result<Config> {
    if overrides.is_empty() {
        return Config::from_toml_value(&raw, origin, base_dir);
    }
    let full = toml::Value::try_from(&Config::from_toml_value(&raw, origin, base_dir)?).map_err(|e| anyhow::anyhow!("serialising the config: {e}"))?;
    for item in overrides {
        let (key, parsed) = split_override(item)?;
        set_path(&mut raw, &full, key, parsed)?;
    }
    Config::from_toml_value(&raw, &format!("{origin} with --set"), base_dir)
}

/// A book from parsed TOML with `KEY=VALUE` overrides (see [`load_book_with_overrides`]).
pub fn book_from_value_with_overrides(mut raw: toml::Value, origin: &str, base_dir: &Path, overrides: &[String]) -> Result<super::book::BookConfig> {
    let typed = raw.clone();
    for item in overrides {
        let (key, value) = split_override(item)?;
        set_path(&mut raw, &typed, key, value)?;
    }
    super::book::BookConfig::from_toml_value(&raw, origin, base_dir)
}

/// A portfolio config (`[[account]]`, `[[pair]]` or `[universe]`) with `KEY=VALUE` overrides
/// applied to its TOML before validation: `portfolio.leverage=2`, `universe.select.top=3`, or a
/// pair's own key by its place in the file, `pair.1.weight=0.4` (counting from 0).
pub fn load_book_with_overrides(path: &Path, overrides: &[String]) -> Result<super::book::BookConfig> {
    let text = std::fs::read_to_string(path).map_err(|err| input_error!("cannot read config {}: {err}", path.display()))?;
    let raw: toml::Value = toml::from_str(&text).map_err(|err| input_error!("config {}: {}", path.display(), err.to_string().trim_end()))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    // A book has no fully defaulted form: the file itself says where integers stand.
    book_from_value_with_overrides(raw, &format!("{} with --set", path.display()), base_dir, overrides)
}

/// A perp-perp book (`kind = "perp_perp"` / `"dated_perp"` pairs) with `KEY=VALUE` overrides
/// applied to its TOML before validation, as for a book: `strategy.entry_funding_apr=0.05`,
/// `pair.0.rotate_days=14`.
pub fn load_perp_perp_with_overrides(path: &Path, overrides: &[String]) -> Result<super::perp_perp::PerpPerpBook> {
    let text = std::fs::read_to_string(path).map_err(|err| input_error!("cannot read config {}: {err}", path.display()))?;
    let mut raw: toml::Value = toml::from_str(&text).map_err(|err| input_error!("config {}: {}", path.display(), err.to_string().trim_end()))?;
    let typed = raw.clone();
    for item in overrides {
        let (key, value) = split_override(item)?;
        set_path(&mut raw, &typed, key, value)?;
    }
    super::perp_perp::PerpPerpBook::from_toml_value(&raw, &format!("{} with --set", path.display()), path.parent().unwrap_or(Path::new(".")))
}

/// `KEY=VALUE` as the key and the value read as TOML (text where it is not).
fn split_override(item: &str) -> Result<(&str, toml::Value)> {
    let Some((key, value)) = item.split_once('=') else {
        bail_input!("--set {item:?}: expected KEY=VALUE, e.g. --set portfolio.leverage=2");
    };
    let (key, value) = (key.trim(), value.trim());
    let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}")).ok().and_then(|mut t| t.remove("v")).unwrap_or_else(|| toml::Value::String(value.to_string()));
    Ok((key, parsed))
}

/// Set `path` (dotted) in a TOML table to `value`, creating tables on the way. Floats with no
/// fraction become integers where the fully defaulted config holds an integer there.
pub fn set_path(root: &mut toml::Value, full: &toml::Value, path: &str, value: toml::Value) -> Result<()> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut node = root;
    let mut typed = Some(full);
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        node = match node {
            // An array of tables ([[pair]]) is entered by index.
            toml::Value::Array(array) => {
                let index: usize = part.parse().map_err(|_| input_error!("\"{path}\": `{}` is a list ([[...]] tables): name an entry by its place, e.g. {}.0", parts[..i].join("."), parts[..i].join(".")))?;
                if i == last {
                    bail_input!("\"{path}\": name a key inside the entry, e.g. {path}.weight");
                }
                let len = array.len();
                typed = typed.and_then(|t| t.get(index));
                array.get_mut(index).ok_or_else(|| input_error!("\"{path}\": `{}` has {len} entries (counting from 0)", parts[..i].join(".")))?
            }
            toml::Value::Table(table) => {
                typed = typed.and_then(|t| t.get(part));
                if i == last {
                    let value = match (value, typed) {
                        (toml::Value::Float(x), Some(toml::Value::Integer(_))) if x.fract() == 0.0 => toml::Value::Integer(x as i64),
                        (value, _) => value,
                    };
                    table.insert(part.to_string(), value);
                    return Ok(());
                }
                table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(Default::default()))
            }
            _ => bail_input!("params.\"{path}\": `{}` is not a section", parts[..i].join(".")),
        };
    }
    Ok(())
}
