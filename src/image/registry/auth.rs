//! Registry authentication: `WWW-Authenticate` challenges, Bearer tokens
//! from a token service (cached per scope for their lifetime), and Basic.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret, even in debug logs.
        write!(f, "Credential({:?}, ***)", self.username)
    }
}

impl Credential {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// What a registry asked for in its 401 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` value: a scheme, then `key="value"` pairs
/// separated by commas (quoted strings may hold commas and `\"`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        }),
        _ => None,
    }
}

fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.insert(key, value);
    }
    out
}

/// The answer of a token service (distribution's token spec).
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// Tokens already granted, by the scopes they were asked for.
#[derive(Debug, Clone, Default)]
pub struct TokenCache {
    tokens: BTreeMap<String, (String, Instant)>,
}

impl TokenCache {
    pub fn get(&self, scopes: &str) -> Option<&str> {
        self.tokens
            .get(scopes)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.as_str())
    }

    /// Keep a token; the spec's default lifetime is 60 s, and a token is
    /// dropped a little before it runs out so no request carries a stale one.
    pub fn put(&mut self, scopes: &str, resp: &TokenResponse) -> Option<String> {
        let token = resp.token.clone().or_else(|| resp.access_token.clone())?;
        let life = resp.expires_in.unwrap_or(60).max(10);
        let until = Instant::now() + Duration::from_secs(life - 5);
        self.tokens
            .insert(scopes.to_string(), (token.clone(), until));
        Some(token)
    }
}

/// Percent-encode a query value (RFC 3986 unreserved characters stay).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"bearer realm="http://x/t\"q", service=svc"#),
            Some(Challenge::Bearer {
                realm: "http://x/t\"q".into(),
                service: Some("svc".into())
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None, "no realm");
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn tokens_cache_by_scope_and_expire() {
        let mut c = TokenCache::default();
        let r = TokenResponse {
            token: None,
            access_token: Some("t1".into()),
            expires_in: Some(300),
        };
        assert_eq!(c.put("repository:a:pull", &r).as_deref(), Some("t1"));
        assert_eq!(c.get("repository:a:pull"), Some("t1"));
        assert_eq!(c.get("repository:b:pull"), None);
        let empty = TokenResponse {
            token: None,
            access_token: None,
            expires_in: None,
        };
        assert_eq!(c.put("x", &empty), None);
    }

    #[test]
    fn escaping_and_secrets() {
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        let c = Credential {
            username: "u".into(),
            secret: "p".into(),
        };
        assert_eq!(c.basic_header(), "Basic dTpw");
        assert!(!format!("{c:?}").contains('p') || !format!("{c:?}").contains("\"p\""));
    }
}
