//! The build's plan, made from the parsed Dockerfile before anything runs:
//! the global ARGs, the stages (each its FROM and the steps after it) up to
//! the target, their names, and which build args the Dockerfile declares.

use std::collections::{BTreeMap, BTreeSet};

use super::dockerfile::{self, Dockerfile, Instruction, InstructionError};
use super::{BuildError, StepError};

/// ARGs Docker defines without a declaration (proxies).
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The build args given (`--build-arg`) and those an ARG consumed.
#[derive(Debug)]
pub(super) struct Args<'a> {
    given: &'a BTreeMap<String, String>,
    used: BTreeSet<String>,
}

impl<'a> Args<'a> {
    pub(super) fn new(given: &'a BTreeMap<String, String>) -> Self {
        Args {
            given,
            used: BTreeSet::new(),
        }
    }

    /// `ARG name[=default] ...`: the values they take (a build arg wins over
    /// the default; `inherited` supplies a global's value).
    pub(super) fn declare(
        &mut self,
        args: &str,
        inherited: &BTreeMap<String, String>,
        escape: char,
    ) -> Result<Vec<(String, String)>, InstructionError> {
        let text = dockerfile::substitute(args, inherited, escape)?;
        let mut out = Vec::new();
        for w in dockerfile::words(&text, escape)? {
            let (name, default) = match w.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (w.clone(), None),
            };
            if name.is_empty() {
                return Err(InstructionError::ArgName(w));
            }
            let value = match self.given.get(&name) {
                Some(v) => {
                    self.used.insert(name.clone());
                    Some(v.clone())
                }
                None => default.or_else(|| inherited.get(&name).cloned()),
            };
            // A declared ARG with no value is in scope but unset.
            if let Some(v) = value {
                out.push((name, v));
            }
        }
        Ok(out)
    }

    /// The build args no ARG declared (Docker warns of them), proxies aside.
    pub(super) fn unused(&self) -> Vec<String> {
        self.given
            .keys()
            .filter(|k| !self.used.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

/// One stage to build.
#[derive(Debug)]
pub(super) struct StagePlan<'d> {
    /// Its `AS name`, lower case.
    pub name: Option<String>,
    /// Its FROM, then the rest of its instructions.
    pub steps: Vec<&'d Instruction>,
}

/// What a build runs.
#[derive(Debug)]
pub(super) struct Plan<'d> {
    /// The global ARGs (declared before the first FROM) and their values.
    pub globals: BTreeMap<String, String>,
    /// The stages up to the target, the target last.
    pub stages: Vec<StagePlan<'d>>,
}

/// Split `df` into its global ARGs and its stages, and keep the stages up
/// to `target` (all of them without one).
pub(super) fn plan<'d>(
    df: &'d Dockerfile,
    target: Option<&str>,
    args: &mut Args<'_>,
) -> Result<Plan<'d>, BuildError> {
    let mut globals = BTreeMap::new();
    let mut stages: Vec<Vec<&Instruction>> = Vec::new();
    for i in &df.instructions {
        if i.keyword == "FROM" {
            stages.push(vec![i]);
        } else if let Some(s) = stages.last_mut() {
            s.push(i);
        } else {
            // Only ARG parses before the first FROM.
            let at = |e: InstructionError| BuildError {
                at: Some(format!("Dockerfile:{}", i.line)),
                source: Box::new(e.into()),
            };
            let earlier = globals.clone();
            for (k, v) in args.declare(&i.args, &earlier, df.escape).map_err(at)? {
                globals.insert(k, v);
            }
        }
    }
    let mut stages: Vec<StagePlan<'d>> = stages
        .into_iter()
        .map(|steps| StagePlan {
            name: stage_name(steps[0], df.escape).ok().flatten(),
            steps,
        })
        .collect();
    let last = match target {
        None => stages.len() - 1,
        Some(t) => stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| StepError::NoTarget(t.to_string()))?,
    };
    stages.truncate(last + 1);
    Ok(Plan { globals, stages })
}

/// The `AS name` of a FROM, lower case (Docker's stage names are).
pub(super) fn stage_name(
    from: &Instruction,
    escape: char,
) -> Result<Option<String>, InstructionError> {
    let w = dockerfile::words(&from.args, escape)?;
    match w.as_slice() {
        [_] => Ok(None),
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let ok = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                && name.starts_with(|c: char| c.is_ascii_alphabetic());
            if !ok {
                return Err(InstructionError::StageName(name.clone()));
            }
            Ok(Some(name.to_ascii_lowercase()))
        }
        _ => Err(InstructionError::FromArgs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &str = "ARG BASE=alpine\n\
        ARG TAG\n\
        FROM $BASE AS Builder\n\
        RUN make\n\
        FROM scratch AS out\n\
        COPY --from=builder /app /app\n\
        FROM out\n\
        CMD [\"/app\"]\n";

    fn given(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn keywords<'a>(s: &'a StagePlan<'a>) -> Vec<&'a str> {
        s.steps.iter().map(|i| i.keyword.as_str()).collect()
    }

    #[test]
    fn stages_split_at_from_with_names_lower_case() {
        let df = dockerfile::parse(MULTI).unwrap();
        let b = given(&[]);
        let mut args = Args::new(&b);
        let p = plan(&df, None, &mut args).unwrap();
        let names: Vec<_> = p.stages.iter().map(|s| s.name.as_deref()).collect();
        assert_eq!(names, [Some("builder"), Some("out"), None]);
        assert_eq!(keywords(&p.stages[0]), ["FROM", "RUN"]);
        assert_eq!(keywords(&p.stages[1]), ["FROM", "COPY"]);
        assert_eq!(keywords(&p.stages[2]), ["FROM", "CMD"]);
        // A declared ARG without a value is in scope but unset.
        assert_eq!(p.globals, given(&[("BASE", "alpine")]));
    }

    #[test]
    fn target_keeps_the_stages_up_to_it() {
        let df = dockerfile::parse(MULTI).unwrap();
        let b = given(&[]);
        let mut args = Args::new(&b);
        let p = plan(&df, Some("OUT"), &mut args).unwrap();
        assert_eq!(p.stages.len(), 2);
        assert_eq!(p.stages[1].name.as_deref(), Some("out"));
        let e = plan(&df, Some("nope"), &mut args).unwrap_err();
        assert_eq!(e.to_string(), "target stage \"nope\" could not be found");
    }

    #[test]
    fn build_args_win_and_unused_ones_are_named() {
        let df = dockerfile::parse(MULTI).unwrap();
        let b = given(&[
            ("BASE", "debian"),
            ("TAG", "1"),
            ("EXTRA", "x"),
            ("http_proxy", "p"),
        ]);
        let mut args = Args::new(&b);
        let p = plan(&df, None, &mut args).unwrap();
        assert_eq!(p.globals, given(&[("BASE", "debian"), ("TAG", "1")]));
        assert_eq!(args.unused(), ["EXTRA"]);
    }

    #[test]
    fn a_bad_global_arg_names_its_line() {
        let df = dockerfile::parse("ARG A=1\nARG =2\nFROM scratch\n").unwrap();
        let b = given(&[]);
        let e = plan(&df, None, &mut Args::new(&b)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "building at Dockerfile:2: ARG \"=2\": a name is needed"
        );
    }

    #[test]
    fn stage_names_are_checked() {
        let df = dockerfile::parse("FROM a AS 1x\nFROM b as c d\nFROM c AS ok.-_\n").unwrap();
        let i = &df.instructions;
        assert_eq!(
            stage_name(&i[0], '\\').unwrap_err().to_string(),
            "invalid stage name \"1x\""
        );
        assert_eq!(
            stage_name(&i[1], '\\').unwrap_err().to_string(),
            "FROM takes IMAGE [AS NAME]"
        );
        assert_eq!(stage_name(&i[2], '\\').unwrap(), Some("ok.-_".into()));
    }
}
