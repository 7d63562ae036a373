//! The `burrow` binary: parse, dispatch, map errors to Docker's exit codes.

use clap::Parser;

use burrow::cli::{dispatch, Cli, Exit};
use burrow::container::ContainerError;
use burrow::exit;

fn main() {
    // Like other command-line tools, end quietly when our output pipe closes
    // (`burrow logs x | head`) instead of panicking on EPIPE.
    burrow::linux::process::default_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors are burrow's (125).
            let code = if e.use_stderr() { exit::BURROW } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    init_logging(&cli.log_level);
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = exit_code(&e);
            eprintln!("burrow: {}", one_line(&e));
            code
        }
    };
    std::process::exit(code);
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("burrow={level}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("burrow=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
}

/// The exit code for an error: an explicit one, the container's, else 125.
fn exit_code(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(x) = cause.downcast_ref::<Exit>() {
            return x.code;
        }
        if let Some(c) = cause.downcast_ref::<ContainerError>() {
            return c.exit_code();
        }
    }
    exit::BURROW
}

/// Context and cause on one line: "importing x.tar: layer entry ...: reason".
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        // thiserror's `#[error(transparent)]` and `{0}` wrappers repeat their source.
        if parts.last().is_some_and(|p| p.ends_with(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ").replace('\n', " ")
}
