//! `vellum entity import`: NDJSON into `Service::import`, with a progress bar on a terminal.

use std::{
    fs::File,
    io::{BufRead, BufReader, IsTerminal, Read},
    path::Path,
    time::Duration,
};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use vellum::{Error, Imported, SchemaId, Service, UowOptions};

/// Streams the documents of `path` (one per line; `-` for standard input) into an import.
pub(crate) async fn import(
    service: &Service,
    schema_id: &SchemaId,
    path: &Path,
    actor: String,
) -> anyhow::Result<Imported> {
    let (input, size): (Box<dyn Read>, Option<u64>) = if path == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let bar = progress_bar(size);
    let documents = Documents {
        lines: BufReader::new(input),
        line: 0,
        bar: bar.clone(),
    };
    let imported = service
        .import(schema_id, UowOptions::new(actor), documents, |count| {
            bar.set_message(format!("{count} documents"))
        })
        .await;
    match &imported {
        Ok(done) => bar.finish_with_message(format!("{} documents imported", done.count)),
        Err(_) => bar.abandon_with_message("import refused: nothing was stored"),
    }
    Ok(imported?)
}

/// A bar over the bytes of a file (with rate and ETA), or a spinner for a stream; hidden when
/// standard error is not a terminal.
fn progress_bar(size: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("a valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} {bytes_per_sec} {msg}")
                .expect("a valid template"),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The documents of an NDJSON input; blank lines are skipped, and a line that is not JSON is
/// an error naming it, which stops the import.
struct Documents<R> {
    lines: R,
    line: u64,
    bar: ProgressBar,
}

impl<R: BufRead> Iterator for Documents<R> {
    type Item = vellum::Result<Value>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut text = String::new();
        loop {
            text.clear();
            self.line += 1;
            match self.lines.read_line(&mut text) {
                Ok(0) => return None,
                Ok(read) => self.bar.inc(read as u64),
                Err(err) => {
                    return Some(Err(Error::NotAllowed(format!(
                        "line {}: unreadable: {err}",
                        self.line
                    ))));
                }
            }
            if !text.trim().is_empty() {
                break;
            }
        }
        Some(
            serde_json::from_str(&text)
                .map_err(|err| Error::NotAllowed(format!("line {}: not JSON: {err}", self.line))),
        )
    }
}
