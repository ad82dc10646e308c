//! Where tables go: a CSV or Parquet file (written beside its final name and renamed into
//! place, so a failure never leaves a partial file), or CSV on stdout.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::transform;

/// What an error of standard output names as its path.
pub const STDOUT: &str = "standard output";

/// Where `extract` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Csv(PathBuf),
    Parquet(PathBuf),
}

impl Output {
    pub fn parse(path: &Path) -> Result<Self, Error> {
        if path.as_os_str() == "-" {
            return Ok(Output::Stdout);
        }
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let out = match ext.as_deref() {
            Some("csv") => Output::Csv(path.to_path_buf()),
            Some("parquet") => Output::Parquet(path.to_path_buf()),
            _ => {
                return Err(Error::Usage(format!(
                    "--out {}: use a name ending in .csv or .parquet, or - for CSV on stdout",
                    path.display()
                )));
            }
        };
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !folder.is_dir() {
            return Err(Error::Usage(format!(
                "--out {}: the folder {} does not exist",
                path.display(),
                folder.display()
            )));
        }
        Ok(out)
    }
}

impl Output {
    /// Writes the frame; a file is written beside its final name and renamed into place, so a
    /// failure never leaves a partial file behind.
    pub fn write(&self, table: &mut transform::Table) -> Result<String, Error> {
        let output = self;
        match output {
            Output::Stdout => {
                let mut buffer = Vec::new();
                table.write_csv(&mut buffer)?;
                let mut stdout = std::io::stdout().lock();
                // A reader that stopped early (`| head`) is the error main ends quietly on: no
                // "extracted" line for rows nobody read.
                stdout
                    .write_all(&buffer)
                    .and_then(|()| stdout.flush())
                    .map_err(|source| Error::Output {
                        path: STDOUT.into(),
                        source,
                    })?;
                Ok("stdout".into())
            }
            Output::Csv(path) | Output::Parquet(path) => {
                let file_name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let temp = path.with_file_name(format!(".{file_name}.{}.partial", std::process::id()));
                let io = |source| Error::Output {
                    path: path.clone(),
                    source,
                };
                let result = (|| -> Result<(), Error> {
                    let file = crate::files::create(&temp).map_err(io)?;
                    let mut writer = std::io::BufWriter::new(file);
                    match output {
                        Output::Parquet(_) => table.write_parquet(&mut writer)?,
                        _ => table.write_csv(&mut writer)?,
                    }
                    writer.flush().map_err(io)?;
                    writer
                        .into_inner()
                        .map_err(|e| io(e.into_error()))?
                        .sync_all()
                        .map_err(io)?;
                    std::fs::rename(&temp, path).map_err(io)
                })();
                if result.is_err() {
                    let _ = std::fs::remove_file(&temp);
                }
                result.map(|()| path.display().to_string())
            }
        }
    }
}
