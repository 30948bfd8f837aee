//! Logs go to stderr, pretty or JSON. Request spans carry the matched path and a redacted
//! query, never a key (see `http::trace`).

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Telemetry};

pub fn init(t: &Telemetry) {
    // rmcp logs every stateless request's lifecycle at info; keep that out unless asked for.
    let directives = if t.filter.contains("rmcp") { t.filter.clone() } else { format!("{},rmcp=warn", t.filter) };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
    // Colour only for a person at a terminal: a file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    // A second init (tests spawn many apps in one process) is harmless.
    let _ = match t.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
