//! The `burrow` binary: parse, dispatch, map errors to Docker's exit codes.

use clap::Parser;

use burrow::cli::{dispatch, Cli, Exit, Missing, MISSING};
use burrow::container::ContainerError;
use burrow::exit;

fn main() {
    // Like other command-line tools, end quietly when our output pipe closes
    // (`burrow logs x | head`) instead of panicking on EPIPE.
    burrow::linux::process::default_sigpipe();
    // The OCI runtime front end: `burrow-runc ...` (a link) or `burrow
    // runtime ...`.
    let args: Vec<String> = std::env::args().collect();
    if let Some(runtime_args) = burrow::runtime::invoked_as_runtime(&args) {
        std::process::exit(burrow::runtime::main(runtime_args));
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // Help and version go to stdout with 0.
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            // Usage errors are burrow's (125), said in one line like any other.
            eprintln!("burrow: {}", usage_error(&e));
            std::process::exit(exit::BURROW);
        }
    };
    init_logging(&cli.log_level);
    let code = match dispatch(cli) {
        Ok(code) => code,
        // Docker's words for an object that does not exist, which scripts
        // match on; everything else is burrow's own one line.
        Err(e)
            if e.downcast_ref::<Missing>().is_some()
                || matches!(
                    e.downcast_ref::<burrow::engine::Error>(),
                    Some(burrow::engine::Error::NotFound(_))
                ) =>
        {
            for line in e.to_string().lines() {
                eprintln!("Error: {line}");
            }
            MISSING
        }
        Err(e) => {
            let code = exit_code(&e);
            eprintln!("burrow: {}", burrow::util::message::one_line(&e));
            code
        }
    };
    std::process::exit(code);
}

/// clap's multi-line usage error as one line: the error itself (with the
/// item a trailing colon announces), then where to read more.
fn usage_error(e: &clap::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut msg = lines
        .first()
        .map_or("", |l| l.strip_prefix("error: ").unwrap_or(l))
        .to_string();
    if msg.ends_with(':') {
        if let Some(item) = lines.get(1) {
            msg.push(' ');
            msg.push_str(item);
        }
    }
    if let Some(values) = lines.iter().find(|l| l.starts_with("[possible values:")) {
        msg.push(' ');
        msg.push_str(values);
    }
    // "Usage: burrow run [OPTIONS] <IMAGE>" names the verb to ask about.
    match lines.iter().find_map(|l| l.strip_prefix("Usage: ")) {
        Some(usage) => {
            let verb: Vec<&str> = usage
                .split_whitespace()
                .take_while(|w| !w.starts_with(['-', '<', '[']))
                .collect();
            format!("{msg}; see '{} --help'", verb.join(" "))
        }
        None => msg,
    }
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
        if let Some(e) = cause.downcast_ref::<burrow::engine::Error>() {
            return e.exit_code();
        }
    }
    exit::BURROW
}
