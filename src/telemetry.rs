//! Logging setup: text for people, JSON (`AGENTIC_LOG_FORMAT=json`) for
//! collectors. `RUST_LOG` filters as usual. Every line passes the redactor
//! on its way out, whatever logged it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::redact::Redactor;

/// What is logged when `RUST_LOG` is unset: our own info, others' warnings.
const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,reqwest=warn,octocrab=warn";

/// The most the request signer may log.
const SIGV4_CAP: &str = "aws_sigv4=debug";

/// A writer that redacts each formatted event before passing it on.
#[derive(Clone)]
pub struct RedactingWriter<W> {
    inner: W,
    redactor: Redactor,
}

/// One event's bytes, redacted and written when dropped (the formatter
/// writes an event in one or more pieces, then drops the writer).
pub struct RedactingLine<W: Write> {
    buf: Vec<u8>,
    out: W,
    redactor: Redactor,
}

impl<W: Write> Write for RedactingLine<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for RedactingLine<W> {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let _ = self.out.write_all(self.redactor.redact(&text).as_bytes());
        let _ = self.out.flush();
    }
}

impl<'a, M> MakeWriter<'a> for RedactingWriter<M>
where
    M: MakeWriter<'a>,
{
    type Writer = RedactingLine<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine {
            buf: Vec::with_capacity(256),
            out: self.inner.make_writer(),
            redactor: self.redactor.clone(),
        }
    }
}

/// Install the global subscriber writing to stderr (once; later calls do
/// nothing).
pub fn init(format: LogFormat, redactor: Redactor) {
    init_with_writer(format, redactor, std::io::stderr, None);
}

/// Install the global subscriber with any writer (tests capture logs this
/// way) and, optionally, a fixed filter instead of `RUST_LOG`.
pub fn init_with_writer<M>(format: LogFormat, redactor: Redactor, writer: M, filter: Option<&str>)
where
    M: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
        }
    }
    // Whatever `RUST_LOG` asks: SigV4's trace output is the canonical
    // request, session token and all.
    .add_directive(SIGV4_CAP.parse().expect("a valid directive"));
    let writer = RedactingWriter {
        inner: writer,
        redactor,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        // Colours only for a person at a terminal, never into a file.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

/// A log sink in memory, for tests that assert on what was logged.
#[derive(Clone, Default)]
pub struct MemoryLog(pub Arc<Mutex<Vec<u8>>>);

impl MemoryLog {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for MemoryLog {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for MemoryLog {
    type Writer = MemoryLog;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
