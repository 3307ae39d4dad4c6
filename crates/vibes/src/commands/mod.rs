//! One module per subcommand.

pub(crate) mod config;
pub(crate) mod doctor;
pub(crate) mod emit;
pub(crate) mod iggy;
pub(crate) mod ingest_bd;
pub(crate) mod ingest_claude;
pub(crate) mod stats;
pub(crate) mod tail;
pub(crate) mod topics;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// An input named on the command line: a file, or stdin for `-` or nothing.
pub(crate) struct Input {
    /// For messages: the path, or `stdin`.
    pub(crate) name: String,
    /// The path when it is a file.
    pub(crate) path: Option<PathBuf>,
    /// Its size when it is a regular file.
    pub(crate) len: Option<u64>,
    pub(crate) reader: BufReader<Box<dyn Read>>,
}

impl Input {
    pub(crate) fn open(path: Option<&Path>) -> anyhow::Result<Input> {
        const BUFFER: usize = 256 * 1024;
        match path {
            None => Ok(Self::stdin()),
            Some(p) if p.as_os_str() == "-" => Ok(Self::stdin()),
            Some(p) => {
                let file = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
                let meta = file
                    .metadata()
                    .with_context(|| format!("cannot read {}", p.display()))?;
                if meta.is_dir() {
                    anyhow::bail!("{} is a directory, not a file", p.display());
                }
                Ok(Input {
                    name: p.display().to_string(),
                    path: Some(p.to_owned()),
                    len: meta.is_file().then_some(meta.len()),
                    reader: BufReader::with_capacity(BUFFER, Box::new(file)),
                })
            }
        }
    }

    fn stdin() -> Input {
        Input {
            name: "stdin".to_owned(),
            path: None,
            len: None,
            reader: BufReader::with_capacity(256 * 1024, Box::new(io::stdin())),
        }
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}
