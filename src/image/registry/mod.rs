//! The OCI distribution client: one registry host, its endpoint (HTTPS, or
//! plain HTTP for loopback and `--tls-verify=false`, as Docker allows),
//! authentication, manifests, blobs and uploads.
//!
//! Blocking and single-threaded on purpose: no request starts a thread (no
//! DNS or global timeout is set, which would make ureq resolve in a thread),
//! so a process that used a client may still create a user namespace.

pub mod auth;
pub mod credentials;

use std::io::Read;
use std::time::Duration;

use ureq::http::{self, Method, Request, Response};
use ureq::Body;

use self::auth::{Challenge, Credential, TokenCache, TokenResponse};
use super::manifest::{self, MAX_MANIFEST};
use crate::store;

/// Docker Hub's API host: `docker.io` in references.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {host}: {source}")]
    Unreachable {
        host: String,
        #[source]
        source: NoAnswer,
    },
    #[error("{what}: {detail}")]
    Transport { what: String, detail: String },
    #[error("{what}: {source}")]
    NoAnswer {
        what: String,
        #[source]
        source: NoAnswer,
    },
    /// A request that could not be made from its parts.
    #[error("{what}: {source}")]
    Request {
        what: String,
        #[source]
        source: http::Error,
    },
    #[error("{what}: {status} {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    #[error("{what}: unauthorized: authentication required (try `burrow login {host}`)")]
    Unauthorized { what: String, host: String },
    #[error("{what}: access denied{}", if *.with_creds { "" } else { " (try `burrow login` first)" })]
    Denied { what: String, with_creds: bool },
    #[error("{0}: not found")]
    NotFound(String),
    #[error("token service {realm}: {detail}")]
    Token { realm: String, detail: String },
    #[error("token service {realm}: {source}")]
    TokenNoAnswer {
        realm: String,
        #[source]
        source: NoAnswer,
    },
    #[error("token service {realm}: malformed answer: {source}")]
    TokenAnswer {
        realm: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: larger than {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("reading {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
}

type Result<T> = std::result::Result<T, RegistryError>;

/// A request that got no answer, kept as the HTTP client gives it, and
/// said in plain words for the common cases. The client's error is a field,
/// not a source: the message already says it.
#[derive(Debug, thiserror::Error)]
#[error("{}", transport_detail(.0))]
pub struct NoAnswer(pub Box<ureq::Error>);

impl From<ureq::Error> for NoAnswer {
    fn from(e: ureq::Error) -> Self {
        NoAnswer(Box::new(e))
    }
}

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// `--tls-verify=false`: accept any certificate, and fall back to plain
    /// HTTP when the registry does not speak TLS.
    pub insecure: bool,
    /// A credential the caller was given for this request (the API's
    /// `X-Registry-Auth`): used instead of the credential files.
    pub credential: Option<auth::Credential>,
}

/// A fetched manifest or index, bytes as served.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub digest: String,
}

/// A body to send: empty, bytes (may be re-sent after a challenge), or a
/// stream of known length (sent once, so only after auth is settled).
pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8], &'a str),
    Stream(&'a mut dyn Read, u64),
}

/// A connection to one registry.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    /// The name as in references (`docker.io`, `127.0.0.1:5000`).
    host: String,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    base: String,
    credential: Option<Credential>,
    challenge: Option<Challenge>,
    tokens: TokenCache,
}

fn agent(verify: bool) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .disable_verification(!verify)
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Redirects are followed by hand: an Authorization header must not
        // travel to the blob store on another host.
        .max_redirects(0)
        .tls_config(tls)
        .user_agent(concat!("burrow/", env!("CARGO_PKG_VERSION")))
        // Socket timeouts only: a resolve or global timeout would start a
        // resolver thread (see the module docs).
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// Loopback registries may speak plain HTTP, as Docker allows.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The API host for a reference's registry (`docker.io` is an alias).
pub fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => DOCKER_HUB_HOST,
        other => other,
    }
}

impl Client {
    /// `connect` with the credential `opts` brought, else the one the
    /// credential files have for `registry`; errors in the caller's type.
    pub fn connect_as_configured<E>(
        registry: &str,
        opts: &ClientOptions,
        files: &credentials::AuthFiles,
    ) -> std::result::Result<Client, E>
    where
        E: From<RegistryError> + From<credentials::CredentialError>,
    {
        let credential = match &opts.credential {
            Some(c) => Some(c.clone()),
            None => credentials::lookup(files, registry)?,
        };
        Ok(Client::connect(registry, credential, opts)?)
    }

    /// Find the registry's endpoint with a ping of `/v2/`, which also tells
    /// how it wants clients to authenticate.
    pub fn connect(
        registry: &str,
        credential: Option<Credential>,
        opts: &ClientOptions,
    ) -> Result<Client> {
        let host = api_host(registry);
        let lenient = opts.insecure || is_loopback(host);
        let mut c = Client {
            agent: agent(!lenient),
            host: registry.to_string(),
            base: format!("https://{host}"),
            credential,
            challenge: None,
            tokens: TokenCache::default(),
        };
        match c.ping() {
            Ok(()) => Ok(c),
            Err(RegistryError::Unreachable { source, .. }) if lenient => {
                tracing::debug!("{host} over https: {source}; trying plain http");
                c.base = format!("http://{host}");
                c.ping().map(|()| c)
            }
            Err(e) => Err(e),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn ping(&mut self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| RegistryError::Unreachable {
                host: self.host.clone(),
                source: e.into(),
            })?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 => {
                self.challenge = challenge_of(&resp);
                Ok(())
            }
            // Not a registry (a web server, a proxy's error page).
            status => Err(RegistryError::Status {
                what: format!("registry {} ({url})", self.host),
                status,
                message: "does not answer the registry API".into(),
            }),
        }
    }

    /// Check the credential against the registry (what `login` does first).
    pub fn check_login(&mut self) -> Result<()> {
        match &self.challenge {
            None => Ok(()),
            Some(Challenge::Basic) => {
                let url = format!("{}/v2/", self.base);
                let resp = self.send(Method::GET, &url, &[], &[], Payload::Empty, "login")?;
                expect_ok(resp, "login", &self.host).map(drop)
            }
            Some(Challenge::Bearer { .. }) => {
                let ch = self.challenge.clone().expect("checked above");
                self.fetch_token(&ch, &[]).map(drop)
            }
        }
    }

    /// GET a manifest or index by tag or digest. A digest reference is
    /// verified against the bytes.
    pub fn manifest(&mut self, repo: &str, reference: &str) -> Result<Fetched> {
        let what = format!("manifest {}/{repo}:{reference}", self.host);
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let accept = manifest::ACCEPT.join(", ");
        let scopes = [pull_scope(repo)];
        let resp = self.send(
            Method::GET,
            &url,
            &scopes,
            &[("Accept", accept.as_str())],
            Payload::Empty,
            &what,
        )?;
        let resp = match resp.status().as_u16() {
            404 => return Err(RegistryError::NotFound(what)),
            _ => expect_ok(resp, &what, &self.host)?,
        };
        let content_type = header(&resp, "content-type");
        let bytes = read_limited(resp.into_body(), MAX_MANIFEST, &what)?;
        let digest = format!("sha256:{}", store::sha256_hex(&bytes));
        if reference.starts_with("sha256:") && reference != digest {
            return Err(RegistryError::Digest {
                what,
                expected: reference.to_string(),
                actual: digest,
            });
        }
        Ok(Fetched {
            bytes,
            content_type,
            digest,
        })
    }

    /// A blob as a stream: the caller verifies digest and size as it reads.
    pub fn blob(&mut self, repo: &str, digest: &str) -> Result<(impl Read + Send, Option<u64>)> {
        let what = format!("blob {digest} of {}/{repo}", self.host);
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let scopes = [pull_scope(repo)];
        let resp = self.send(Method::GET, &url, &scopes, &[], Payload::Empty, &what)?;
        let resp = match resp.status().as_u16() {
            404 => return Err(RegistryError::NotFound(what)),
            _ => expect_ok(resp, &what, &self.host)?,
        };
        let len = header(&resp, "content-length").and_then(|l| l.parse().ok());
        Ok((resp.into_body().into_reader(), len))
    }

    /// A small blob (an image config) in memory, verified.
    pub fn small_blob(&mut self, repo: &str, digest: &str, limit: u64) -> Result<Vec<u8>> {
        let what = format!("blob {digest} of {}/{repo}", self.host);
        let (r, _) = self.blob(repo, digest)?;
        let mut bytes = Vec::new();
        r.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| RegistryError::Read {
                what: what.clone(),
                source,
            })?;
        if bytes.len() as u64 > limit {
            return Err(RegistryError::TooLarge { what, limit });
        }
        let actual = format!("sha256:{}", store::sha256_hex(&bytes));
        if actual != digest {
            return Err(RegistryError::Digest {
                what,
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    pub fn blob_exists(&mut self, repo: &str, digest: &str) -> Result<bool> {
        let what = format!("blob {digest} in {}/{repo}", self.host);
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let scopes = [push_scope(repo)];
        let resp = self.send(Method::HEAD, &url, &scopes, &[], Payload::Empty, &what)?;
        match resp.status().as_u16() {
            404 => Ok(false),
            _ => expect_ok(resp, &what, &self.host).map(|_| true),
        }
    }

    /// Ask the registry to link a blob from another repository of its own.
    /// Returns true when it did; false means upload it (the registry may not
    /// allow mounts, or not from that repository).
    pub fn mount_blob(&mut self, repo: &str, from: &str, digest: &str) -> Result<bool> {
        let what = format!("mounting {digest} from {from} into {}/{repo}", self.host);
        let url = format!(
            "{}/v2/{repo}/blobs/uploads/?mount={}&from={}",
            self.base,
            auth::query_escape(digest),
            auth::query_escape(from)
        );
        let scopes = [push_scope(repo), pull_scope(from)];
        let resp = self.send(Method::POST, &url, &scopes, &[], Payload::Empty, &what)?;
        Ok(resp.status().as_u16() == 201)
    }

    /// Upload a blob in one PUT (the registry's monolithic upload).
    pub fn upload_blob(
        &mut self,
        repo: &str,
        digest: &str,
        size: u64,
        body: &mut dyn Read,
    ) -> Result<()> {
        let what = format!("uploading {digest} to {}/{repo}", self.host);
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let scopes = [push_scope(repo)];
        let resp = self.send(Method::POST, &url, &scopes, &[], Payload::Empty, &what)?;
        let resp = expect_ok(resp, &what, &self.host)?;
        let location = header(&resp, "location").ok_or_else(|| RegistryError::Status {
            what: what.clone(),
            status: resp.status().as_u16(),
            message: "no upload location".into(),
        })?;
        let mut put_url = resolve_location(&url, &location);
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str(&format!("digest={}", auth::query_escape(digest)));
        let resp = self.send(
            Method::PUT,
            &put_url,
            &scopes,
            &[("Content-Type", "application/octet-stream")],
            Payload::Stream(body, size),
            &what,
        )?;
        expect_ok(resp, &what, &self.host).map(drop)
    }

    /// PUT a manifest under a tag (or its digest); returns its digest.
    pub fn put_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let what = format!("manifest {}/{repo}:{reference}", self.host);
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let scopes = [push_scope(repo)];
        let resp = self.send(
            Method::PUT,
            &url,
            &scopes,
            &[],
            Payload::Bytes(bytes, media_type),
            &what,
        )?;
        expect_ok(resp, &what, &self.host)?;
        Ok(format!("sha256:{}", store::sha256_hex(bytes)))
    }

    /// Send one request with authentication, answering one challenge and
    /// following redirects (GET and HEAD only).
    fn send(
        &mut self,
        method: Method,
        url: &str,
        scopes: &[String],
        headers: &[(&str, &str)],
        mut body: Payload<'_>,
        what: &str,
    ) -> Result<Response<Body>> {
        let mut auth = self.authorization(scopes, what)?;
        let mut answered = false;
        loop {
            let resp = self.send_once(&method, url, auth.as_deref(), headers, &mut body, what)?;
            if resp.status().as_u16() != 401 || answered {
                return self.follow(resp, &method, url, auth.as_deref(), headers, what);
            }
            // One challenge per request: learn the scheme, get a token.
            answered = true;
            let Some(ch) = challenge_of(&resp) else {
                return Err(RegistryError::Unauthorized {
                    what: what.to_string(),
                    host: self.host.clone(),
                });
            };
            self.challenge = Some(ch.clone());
            auth = match ch {
                Challenge::Bearer { .. } => {
                    Some(format!("Bearer {}", self.fetch_token(&ch, scopes)?))
                }
                Challenge::Basic => match &self.credential {
                    Some(c) if auth.is_none() => Some(c.basic_header()),
                    _ => {
                        return Err(RegistryError::Unauthorized {
                            what: what.to_string(),
                            host: self.host.clone(),
                        })
                    }
                },
            };
            if matches!(body, Payload::Stream(..)) {
                // A stream cannot be sent twice; callers settle auth first.
                return Err(RegistryError::Unauthorized {
                    what: what.to_string(),
                    host: self.host.clone(),
                });
            }
        }
    }

    fn send_once(
        &self,
        method: &Method,
        url: &str,
        auth: Option<&str>,
        headers: &[(&str, &str)],
        body: &mut Payload<'_>,
        what: &str,
    ) -> Result<Response<Body>> {
        let mut b = Request::builder().method(method.clone()).uri(url);
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let transport = |e: ureq::Error| RegistryError::NoAnswer {
            what: what.to_string(),
            source: e.into(),
        };
        let bad = |source: http::Error| RegistryError::Request {
            what: what.to_string(),
            source,
        };
        match body {
            Payload::Empty => {
                let req = b.body(()).map_err(bad)?;
                self.agent.run(req).map_err(transport)
            }
            Payload::Bytes(bytes, ct) => {
                let req = b
                    .header("Content-Type", *ct)
                    .body(bytes.to_vec())
                    .map_err(bad)?;
                self.agent.run(req).map_err(transport)
            }
            Payload::Stream(r, len) => {
                let req = b
                    .header("Content-Length", len.to_string())
                    .body(ureq::SendBody::from_reader(r))
                    .map_err(bad)?;
                self.agent.run(req).map_err(transport)
            }
        }
    }

    /// Follow redirects of GET/HEAD requests. The Authorization header goes
    /// only to the same host: blob stores behind a redirect take signed URLs.
    fn follow(
        &self,
        mut resp: Response<Body>,
        method: &Method,
        url: &str,
        auth: Option<&str>,
        headers: &[(&str, &str)],
        what: &str,
    ) -> Result<Response<Body>> {
        let mut url = url.to_string();
        let origin = authority(&url).to_string();
        for _ in 0..10 {
            let status = resp.status().as_u16();
            let redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
            if !redirect || !(method == Method::GET || method == Method::HEAD) {
                return Ok(resp);
            }
            let Some(loc) = header(&resp, "location") else {
                return Ok(resp);
            };
            url = resolve_location(&url, &loc);
            let same = authority(&url) == origin;
            let mut body = Payload::Empty;
            resp = self.send_once(
                method,
                &url,
                if same { auth } else { None },
                headers,
                &mut body,
                what,
            )?;
        }
        Err(RegistryError::Transport {
            what: what.to_string(),
            detail: "too many redirects".into(),
        })
    }

    /// The Authorization header to send first: a cached token, a token for a
    /// Bearer registry we already know, or Basic credentials.
    fn authorization(&mut self, scopes: &[String], what: &str) -> Result<Option<String>> {
        match self.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credential.as_ref().map(|c| c.basic_header())),
            Some(ch @ Challenge::Bearer { .. }) => {
                let _ = what;
                Ok(Some(format!("Bearer {}", self.fetch_token(&ch, scopes)?)))
            }
        }
    }

    /// A Bearer token for `scopes`, from the cache or the token service
    /// (with the credential as Basic auth when there is one).
    fn fetch_token(&mut self, ch: &Challenge, scopes: &[String]) -> Result<String> {
        let Challenge::Bearer { realm, service } = ch else {
            unreachable!("only Bearer challenges have tokens")
        };
        let key = scopes.join(" ");
        if let Some(t) = self.tokens.get(&key) {
            return Ok(t.to_string());
        }
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(RegistryError::Token {
                realm: realm.clone(),
                detail: "the realm is not an http(s) URL".into(),
            });
        }
        let mut url = realm.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        let mut param = |url: &mut String, k: &str, v: &str| {
            url.push(sep);
            sep = '&';
            url.push_str(&format!("{k}={}", auth::query_escape(v)));
        };
        if let Some(s) = service {
            param(&mut url, "service", s);
        }
        for s in scopes {
            param(&mut url, "scope", s);
        }
        if let Some(c) = &self.credential {
            param(&mut url, "account", &c.username);
        }
        let mut req = self.agent.get(&url);
        if let Some(c) = &self.credential {
            req = req.header("Authorization", c.basic_header());
        }
        let token_err = |detail: String| RegistryError::Token {
            realm: realm.clone(),
            detail,
        };
        let resp = req.call().map_err(|e| RegistryError::TokenNoAnswer {
            realm: realm.clone(),
            source: e.into(),
        })?;
        match resp.status().as_u16() {
            200..=299 => {}
            401 | 403 => {
                return Err(RegistryError::Denied {
                    what: format!("token for {}", scopes.join(" ")),
                    with_creds: self.credential.is_some(),
                })
            }
            s => return Err(token_err(format!("answered {s}"))),
        }
        let bytes = read_limited(resp.into_body(), 1 << 20, "token")?;
        let parsed: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|source| RegistryError::TokenAnswer {
                realm: realm.clone(),
                source,
            })?;
        self.tokens
            .put(&key, &parsed)
            .ok_or_else(|| token_err("the answer has no token".into()))
    }
}

pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

fn challenge_of(resp: &Response<Body>) -> Option<Challenge> {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(auth::parse_challenge)
        // Prefer Bearer when a registry offers both.
        .max_by_key(|c| matches!(c, Challenge::Bearer { .. }))
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A 2xx answer, or the registry's own error turned into one line.
fn expect_ok(resp: Response<Body>, what: &str, host: &str) -> Result<Response<Body>> {
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(resp);
    }
    let body = read_limited(resp.into_body(), 64 << 10, what).unwrap_or_default();
    let message = error_message(&body);
    Err(match status {
        401 => RegistryError::Unauthorized {
            what: what.to_string(),
            host: host.to_string(),
        },
        404 => RegistryError::NotFound(what.to_string()),
        _ => RegistryError::Status {
            what: what.to_string(),
            status,
            message,
        },
    })
}

/// `{"errors":[{"code":"...","message":"..."}]}` as "CODE: message", or the
/// start of whatever else came back.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|i| format!("{}: {}", i.code, i.message))
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    line.chars().take(200).collect()
}

fn read_limited(body: Body, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    body.into_reader()
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|source| RegistryError::Read {
            what: what.to_string(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    Ok(out)
}

fn transport_detail(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        other => other.to_string(),
    }
}

/// `scheme://authority` of a URL.
fn authority(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    &url[..end]
}

/// A Location header against the URL it answered: absolute, host-relative
/// (`/v2/...`) or path-relative.
fn resolve_location(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        loc.to_string()
    } else if loc.starts_with('/') {
        format!("{}{loc}", authority(base))
    } else {
        let dir = base.rsplit_once('/').map_or(base, |(d, _)| d);
        format!("{dir}/{loc}")
    }
}

#[cfg(test)]
mod tests;
