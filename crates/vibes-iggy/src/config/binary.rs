//! Finding the iggy-server binary: `iggy.server_bin`, `$IGGY_SERVER_BIN`, `PATH`; and
//! how to get one when there is none.

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{ConfigError, IggyConfig, SERVER_VERSION};

/// Environment variable naming the iggy-server binary.
pub const SERVER_BIN_ENV: &str = "IGGY_SERVER_BIN";

/// Where the iggy-server binary came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinarySource {
    /// `iggy.server_bin` in the configuration.
    Config,
    /// The `IGGY_SERVER_BIN` environment variable.
    Env,
    /// `iggy-server` found on `PATH`.
    Path,
}

impl fmt::Display for BinarySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BinarySource::Config => "iggy.server_bin",
            BinarySource::Env => SERVER_BIN_ENV,
            BinarySource::Path => "PATH",
        })
    }
}

/// A resolved iggy-server binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBinary {
    /// Its path.
    pub path: PathBuf,
    /// Where the path came from.
    pub source: BinarySource,
}

/// How to install the server vibes works with, for messages that refuse a binary.
pub(crate) fn install_hint() -> String {
    format!(
        "install iggy-server {SERVER_VERSION} (https://github.com/apache/iggy/releases, \
         server-{SERVER_VERSION}) and point {SERVER_BIN_ENV} or iggy.server_bin at it"
    )
}

/// How to get an iggy-server, for errors that did not find one.
fn how_to_get(what: &str) -> String {
    format!(
        "{what}. vibes needs iggy-server {SERVER_VERSION}: download the release binary from \
         https://github.com/apache/iggy/releases (server-{SERVER_VERSION}), then point vibes at it \
         with {SERVER_BIN_ENV}=/path/to/iggy-server or iggy.server_bin in the configuration \
         (or put it on PATH). To run the server yourself instead, use the container image \
         apache/iggy:{SERVER_VERSION} and set iggy.mode = \"external\""
    )
}

/// Whether `path` is a file someone may execute.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
impl IggyConfig {
    /// Finds the iggy-server binary: `server_bin`, else `$IGGY_SERVER_BIN`, else
    /// `iggy-server` on `PATH`. A path that is set but does not name an executable file
    /// is an error, not a reason to look further.
    ///
    /// Errors: [`ConfigError::BinaryNotFound`], saying how to get the server.
    pub fn resolve_server_bin(&self) -> Result<ServerBinary, ConfigError> {
        self.resolve_server_bin_with(env::var_os(SERVER_BIN_ENV), env::var_os("PATH"))
    }

    /// [`resolve_server_bin`](Self::resolve_server_bin) with the environment given.
    pub(crate) fn resolve_server_bin_with(
        &self,
        env_bin: Option<OsString>,
        path_var: Option<OsString>,
    ) -> Result<ServerBinary, ConfigError> {
        let given = |path: PathBuf, source: BinarySource| {
            if is_executable(&path) {
                Ok(ServerBinary { path, source })
            } else {
                Err(ConfigError::BinaryNotFound {
                    how_to_get: how_to_get(&format!(
                        "{source} is {}, which is not an executable file",
                        path.display()
                    )),
                })
            }
        };
        if let Some(path) = &self.server_bin {
            return given(path.clone(), BinarySource::Config);
        }
        if let Some(path) = env_bin.filter(|p| !p.is_empty()) {
            return given(PathBuf::from(path), BinarySource::Env);
        }
        let found = path_var
            .iter()
            .flat_map(env::split_paths)
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.join("iggy-server"))
            .find(|candidate| is_executable(candidate));
        match found {
            Some(path) => Ok(ServerBinary {
                path,
                source: BinarySource::Path,
            }),
            None => Err(ConfigError::BinaryNotFound {
                how_to_get: how_to_get(&format!(
                    "iggy-server not found: iggy.server_bin and {SERVER_BIN_ENV} are not set, \
                     and no iggy-server is on PATH"
                )),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn executable(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn server_bin_comes_from_config_then_env_then_path() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        for d in [&a, &b, &c] {
            std::fs::create_dir(d).unwrap();
        }
        let from_config = executable(&a, "my-iggy");
        let from_env = executable(&b, "iggy-server");
        let on_path = executable(&c, "iggy-server");
        let path_var = env::join_paths([dir.path().join("missing"), c.clone()]).unwrap();

        let configured = IggyConfig {
            server_bin: Some(from_config.clone()),
            ..IggyConfig::default()
        };
        let found = configured
            .resolve_server_bin_with(Some(from_env.clone().into()), Some(path_var.clone()))
            .unwrap();
        assert_eq!(
            (found.path, found.source),
            (from_config, BinarySource::Config)
        );

        let default = IggyConfig::default();
        let found = default
            .resolve_server_bin_with(Some(from_env.clone().into()), Some(path_var.clone()))
            .unwrap();
        assert_eq!((found.path, found.source), (from_env, BinarySource::Env));

        let found = default
            .resolve_server_bin_with(None, Some(path_var))
            .unwrap();
        assert_eq!((found.path, found.source), (on_path, BinarySource::Path));
    }

    #[test]
    fn a_missing_server_bin_says_how_to_get_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let err = IggyConfig::default()
            .resolve_server_bin_with(None, Some(dir.path().into()))
            .unwrap_err();
        let message = err.to_string();
        for needle in [
            "https://github.com/apache/iggy/releases",
            "server-0.8.0",
            "apache/iggy:0.8.0",
            "IGGY_SERVER_BIN",
            "iggy.server_bin",
        ] {
            assert!(message.contains(needle), "{needle} missing from: {message}");
        }
    }

    #[test]
    fn a_set_but_wrong_server_bin_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let on_path = executable(dir.path(), "iggy-server");
        let not_executable = dir.path().join("plain");
        std::fs::write(&not_executable, "").unwrap();
        let path_var = Some(OsString::from(dir.path()));
        let err = IggyConfig {
            server_bin: Some(not_executable),
            ..IggyConfig::default()
        }
        .resolve_server_bin_with(None, path_var.clone())
        .unwrap_err();
        assert!(err.to_string().contains("iggy.server_bin is"), "{err}");
        let err = IggyConfig::default()
            .resolve_server_bin_with(Some(dir.path().join("nope").into()), path_var)
            .unwrap_err();
        assert!(err.to_string().contains("IGGY_SERVER_BIN is"), "{err}");
        assert!(on_path.exists());
    }
}
