//! `burrow completion bash|zsh|fish`: shell completion scripts from clap.

use clap::{Args, CommandFactory, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow completion bash > ~/.local/share/bash-completion/completions/burrow\n  burrow completion fish > ~/.config/fish/completions/burrow.fish"
)]
pub struct CompletionArgs {
    /// Shell to generate for
    pub shell: Shell,
}

pub fn run(a: CompletionArgs) -> anyhow::Result<i32> {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(
        shell,
        &mut super::Cli::command(),
        "burrow",
        &mut std::io::stdout(),
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every verb is a clap subcommand, so each shell's script offers it.
    #[test]
    fn scripts_offer_the_everyday_verbs() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut super::super::Cli::command(), "burrow", &mut out);
            let script = String::from_utf8(out).unwrap();
            for verb in ["rename", "diff", "system", "df", "prune", "version", "ps"] {
                assert!(script.contains(verb), "{shell:?} lacks {verb}");
            }
        }
    }
}
