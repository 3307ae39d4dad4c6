//! `vibes config show|path`.

use anyhow::Result;

use crate::config::Config;
use crate::output::{DataOut, Outcome};

/// Prints the merged config as TOML, each value with where it came from.
pub fn show(config: &Config) -> Result<Outcome> {
    let mut out = DataOut::new(false);
    let state = if config.file_exists {
        "in use"
    } else {
        "not found; defaults apply"
    };
    let _ = out.line(&format!(
        "# config file: {} ({state})",
        config.file.display()
    ))?;
    let entries = config.entries();
    let width = entries
        .iter()
        .map(|(key, value, _)| key.len() + value.len() + 3)
        .max()
        .unwrap_or(0);
    for (key, value, origin) in entries {
        let assignment = format!("{key} = {value}");
        let _ = out.line(&format!("{assignment:<width$}  # {origin}"))?;
    }
    let origin = config
        .iggy_origin
        .as_ref()
        .map_or_else(|| "defaults".to_owned(), ToString::to_string);
    let _ = out.line(&format!(
        "\n[iggy]  # {origin}; passwords shown as ***; IGGY_SERVER_BIN, IGGY_CONNECTION_STRING, IGGY_USERNAME and IGGY_PASSWORD apply where unset"
    ))?;
    let _ = out.line(config.iggy_toml().trim_end())?;
    let _ = out.flush()?;
    Ok(Outcome::Clean)
}

/// Prints the path of the config file.
pub fn path(config: &Config) -> Result<Outcome> {
    let mut out = DataOut::new(false);
    let _ = out.line(&config.file.display().to_string())?;
    let _ = out.flush()?;
    Ok(Outcome::Clean)
}
