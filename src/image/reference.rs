//! Image references: `[registry/][project/]repo[:tag][@digest]`, normalised the
//! way Docker does (`nginx` is `docker.io/library/nginx:latest`) and shown short.

use std::fmt;

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_PROJECT: &str = "library";
pub const DEFAULT_TAG: &str = "latest";

/// A fully qualified image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub registry: String,
    /// Repository path below the registry, e.g. `library/nginx` or `team/app/web`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid reference format {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: &'static str,
}

impl Reference {
    /// Parse and normalise a user-supplied reference.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err = |reason| ReferenceError {
            input: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(err("empty reference"));
        }
        // Bounded before any work; the name's own limit is checked below.
        if input.len() > 255 + 1 + 128 + 1 + 71 {
            return Err(err("longer than a reference can be"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                validate_digest(d).map_err(err)?;
                (r, Some(d.to_string()))
            }
            None => (input, None),
        };
        // A tag is after the last ':' only if no '/' follows it (else it is a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(err)?;
        }
        if name.is_empty() {
            return Err(err("missing repository name"));
        }
        // The first component is a registry if it looks like a host: has a '.'
        // or ':' or is `localhost` (Docker's rule), and something follows it.
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                validate_registry(first).map_err(err)?;
                (first.to_string(), rest)
            }
            _ => (DEFAULT_REGISTRY.to_string(), name),
        };
        for component in path.split('/') {
            validate_component(component).map_err(err)?;
        }
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{DEFAULT_PROJECT}/{path}")
        } else {
            path.to_string()
        };
        // Docker's 255-character limit, on the name as stored (with the
        // registry and project it implies), so every stored tag parses again.
        if registry.len() + 1 + repository.len() > 255 {
            return Err(err("repository name longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The repository as Docker shows it in `images`: `nginx`, `user/app`,
    /// `localhost:5000/app`.
    pub fn short_repository(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix("library/") {
                Some(r) if !r.contains('/') => r.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// `registry/repository` without tag or digest, fully qualified.
    pub fn full_repository(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Short display form with tag: `nginx:latest`.
    pub fn short(&self) -> String {
        let mut s = self.short_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form, used as the key in the store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn validate_tag(t: &str) -> Result<(), &'static str> {
    let ok_first = t
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if t.is_empty() || t.len() > 128 || !ok_first {
        return Err("tag must start with a letter, digit or '_' and be at most 128 characters");
    }
    if !t
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err("tag may contain only letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

fn validate_component(c: &str) -> Result<(), &'static str> {
    // Docker: lowercase alphanumerics separated by '.', '_', '__' or '-'s.
    if c.is_empty() {
        return Err("empty path component");
    }
    if c.chars().any(|ch| ch.is_ascii_uppercase()) {
        return Err("repository name must be lowercase");
    }
    let is_alnum = |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit();
    if !c.starts_with(is_alnum) || !c.ends_with(is_alnum) {
        return Err("path components must start and end with a letter or digit");
    }
    if !c
        .chars()
        .all(|ch| is_alnum(ch) || matches!(ch, '.' | '_' | '-'))
    {
        return Err("repository name may contain only a-z, 0-9, '.', '_' and '-'");
    }
    Ok(())
}

fn validate_registry(r: &str) -> Result<(), &'static str> {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (r, None),
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']'))
    {
        return Err("invalid registry host");
    }
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err("invalid registry port");
        }
    }
    Ok(())
}

fn validate_digest(d: &str) -> Result<(), &'static str> {
    match d.split_once(':') {
        Some(("sha256", hex)) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(())
        }
        _ => Err("digest must be sha256:<64 hex digits>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn defaults_follow_docker() {
        assert_eq!(full("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(full("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(full("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(full("localhost/app:v1"), "localhost/app:v1");
        assert_eq!(full("quay.io/team/sub/app:x"), "quay.io/team/sub/app:x");
        assert_eq!(
            full("index.docker.io/nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            full("docker.io/library/nginx"),
            "docker.io/library/nginx:latest"
        );
    }

    #[test]
    fn short_forms() {
        let r = Reference::parse("docker.io/library/nginx:latest").unwrap();
        assert_eq!(r.short_repository(), "nginx");
        assert_eq!(r.short(), "nginx:latest");
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(r.short_repository(), "localhost:5000/app");
        let r = Reference::parse("user/app").unwrap();
        assert_eq!(r.short_repository(), "user/app");
    }

    #[test]
    fn digest_without_tag_has_no_default_tag() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
    }

    #[test]
    fn invalid_references_are_rejected() {
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-x",
            "a//b",
            "-a",
            "a/b:c/d:",
            "busybox@sha256:abc",
            "bad host:5000/x",
            "localhost:99999/x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be invalid");
        }
    }

    /// Found by the `reference` fuzzer: a short name within 255 characters
    /// whose normalised form (`docker.io/library/...:latest`) was not, so
    /// the stored tag no longer parsed.
    #[test]
    fn a_parsed_reference_prints_as_one_that_parses() {
        let near = "a".repeat(240);
        assert!(
            Reference::parse(&near).is_err(),
            "docker.io/library/ + 240 > 255"
        );
        let fits = "a".repeat(255 - "docker.io/library/".len());
        let r = Reference::parse(&fits).unwrap();
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        let tagged = format!("{fits}:{}", "t".repeat(128));
        let r = Reference::parse(&tagged).unwrap();
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
    }
}
