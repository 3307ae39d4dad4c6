//! `vibes config show|path`.

use anyhow::Result;

use crate::config::Config;
use crate::output::{DataOut, Outcome};

/// Prints the merged config, one `key = value` line per key with where the value came
/// from; secrets as `***`.
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
    let _ = out.line(
        "# secrets are shown as ***; where iggy.server_bin, iggy.connection_string, iggy.username \
         and iggy.password are \"none\", IGGY_SERVER_BIN, IGGY_CONNECTION_STRING, IGGY_USERNAME \
         and IGGY_PASSWORD apply",
    )?;
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
