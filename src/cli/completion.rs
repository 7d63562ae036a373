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

    /// Every visible verb and sub-verb in clap's command tree, with its
    /// aliases.
    fn verbs(cmd: &clap::Command, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
            out.push(sub.get_name().to_string());
            out.extend(sub.get_visible_aliases().map(str::to_string));
            verbs(sub, out);
        }
    }

    /// The scripts are generated from clap's command tree, so every verb
    /// (a new one included) and every flag is offered by each shell.
    #[test]
    fn scripts_offer_every_verb_and_flag() {
        let mut all = Vec::new();
        verbs(&super::super::Cli::command(), &mut all);
        for v in [
            "run", "logs", "volume", "system", "df", "prune", "rename", "diff",
        ] {
            assert!(all.iter().any(|a| a == v), "{v} is not a verb");
        }
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut super::super::Cli::command(), "burrow", &mut out);
            let script = String::from_utf8(out).unwrap();
            for verb in &all {
                assert!(script.contains(verb.as_str()), "{shell:?} lacks {verb}");
            }
            for flag in ["restart", "log-driver", "log-opt", "volume"] {
                assert!(script.contains(flag), "{shell:?} lacks --{flag}");
            }
        }
    }
}
