//! Logging set-up: readable text locally, JSON lines in pods (`JOURNEYMAN_LOG_FORMAT=json`).
//! Filtering with `RUST_LOG` (default `info`).
//!
//! Every line goes through the worker's [`Redactor`] before it reaches stderr, so an error chain
//! or an agent's stderr tail that holds a secret is logged without it.

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;
use crate::redact::Redactor;

/// Installs the global subscriber once; later calls are ignored (tests call it repeatedly).
pub fn init(format: LogFormat, redactor: Redactor) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Redacting { redactor });
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

/// Makes one [`Line`] per log event.
struct Redacting {
    redactor: Redactor,
}

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            buf: Vec::new(),
            redactor: self.redactor.clone(),
        }
    }
}

/// One event's bytes, written to stderr redacted when the event is done.
pub struct Line {
    buf: Vec<u8>,
    redactor: Redactor,
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let clean = self.redactor.redact(&text);
        // A log line that cannot be written has nowhere else to go.
        let _ = io::stderr().lock().write_all(clean.as_bytes());
    }
}
