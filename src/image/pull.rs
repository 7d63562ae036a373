//! `pull`: a reference resolved on its registry (index → the platform's
//! manifest → config), the missing layers fetched, verified and extracted,
//! and the image added to the store.
//!
//! The registry is asked for manifests and the config in this process, which
//! stays single-threaded. The layers are fetched by one child process that
//! is already root of the user namespace owning the extracted files; only it
//! starts threads (several layers at once), and it exits before burrow forks
//! anything else. Its staging directory under `tmp/` is renamed into the
//! store when every layer checked out, and is reclaimed by a later command if
//! the pull is killed.
//!
//! Progress goes to the caller as `PullEvent`s; the child sends its own as
//! JSON lines on a pipe that this process reads while the child works.

use std::cell::Cell;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::add::{self, NewImage, StagedLayer};
use super::blob::{self, BlobError, Expected, Ingested};
use super::import::id_policy;
use super::layer::IdPolicy;
use super::manifest::{self, Descriptor, Document, LayerKind, Platform, MAX_CONFIG};
use super::progress::PullEvent;
use super::reference::Reference;
use super::registry::credentials::{self, AuthFiles};
use super::registry::{Client, ClientOptions, Fetched, RegistryError};
use crate::linux::userns::{self, IdMapping, UsernsError};
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialError),
    #[error("image config {digest}: {source}")]
    Config {
        digest: String,
        #[source]
        source: super::archive::docker::Invalid,
    },
    #[error("fetching layers: {0}")]
    Layers(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Userns(UsernsError),
}

impl PullError {
    /// The registry says there is no such repository, tag or manifest.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            PullError::Registry(RegistryError::NotFound(_))
                | PullError::Registry(RegistryError::Status { status: 404, .. })
        )
    }
}

/// How much a front end wants to hear of a pull: `Quiet` (`-q`) reports
/// no progress; the others report every event, which the front end shows
/// as plain lines or as bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing (`-q`).
    Quiet,
    /// Docker's plain lines ("Pulling fs layer", "Pull complete", "Digest:").
    Lines,
    /// One bar per layer on a terminal.
    Bars,
}

/// What to pull and how.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub platform: Platform,
    pub client: ClientOptions,
    pub auth_files: AuthFiles,
}

impl PullOptions {
    /// Bars when the output (stderr or stdout) is a terminal, plain lines
    /// otherwise.
    pub fn progress_for(quiet: bool, to_stderr: bool) -> Progress {
        let tty = if to_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        match (quiet, tty) {
            (true, _) => Progress::Quiet,
            (false, true) => Progress::Bars,
            (false, false) => Progress::Lines,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Pulled {
    pub id: String,
    /// The digest the reference resolved to (index or manifest).
    pub digest: String,
    /// False when everything was already in the store.
    pub downloaded: bool,
}

/// One blob to fetch, and whether it is needed as a layer, a blob, or both.
#[derive(Debug, Clone)]
struct Work {
    index: usize,
    desc: Descriptor,
    diff_id: String,
    extract: bool,
    keep_blob: bool,
}

/// Resolve `reference` on its registry and store the image, reporting
/// each step.
pub fn pull(
    store: &Store,
    mapping: &IdMapping,
    reference: &Reference,
    opts: &PullOptions,
    report: &mut dyn FnMut(PullEvent),
) -> Result<Pulled, PullError> {
    let mut client = Client::connect_as_configured::<PullError>(
        &reference.registry,
        &opts.client,
        &opts.auth_files,
    )?;
    let repo = reference.repository.as_str();
    let wanted = reference
        .digest
        .clone()
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| "latest".into());
    report(PullEvent::Pulling {
        tag: reference.tag.as_deref().unwrap_or(&wanted).to_string(),
        repository: reference.short_repository(),
    });
    let top = client.manifest(repo, &wanted)?;
    let resolved_digest = top.digest.clone();
    let (manifest_bytes, m) = image_manifest(&mut client, repo, top, &opts.platform)?;
    let config = client.small_blob(repo, &m.config.digest, MAX_CONFIG)?;
    let diff_ids = diff_ids_of(&config, &m)?;
    let id = format!("sha256:{}", store::sha256_hex(&config));

    store.remove_abandoned_staging(mapping);
    let work = plan(store, &m, &diff_ids, report)?;
    let already = store.image_config(&id).is_ok() && work.is_empty();

    let staging = store.staging("pull", mapping)?;
    let result = fetch_layers(&client, repo, &work, &staging, mapping, report).and_then(|got| {
        let layers = staged(store, &m, &diff_ids, &work, &got, &staging)?;
        let tags = vec![reference.clone()];
        let repo_digest = format!("{}@{}", reference.full_repository(), resolved_digest);
        Ok(add::add_image(
            store,
            NewImage {
                config: &config,
                manifest: &manifest_bytes,
                layers,
                tags,
                repo_digest: Some(repo_digest),
            },
        )?)
    });
    let id = result?;
    report(PullEvent::Digest(resolved_digest.clone()));
    report(PullEvent::Done {
        reference: reference.short(),
        downloaded: !already,
    });
    Ok(Pulled {
        id,
        digest: resolved_digest,
        downloaded: !already,
    })
}

/// The image manifest `top` is, or when it is an index the one it lists
/// for `platform`, fetched from `repo`: its bytes as served, and parsed.
fn image_manifest(
    client: &mut Client,
    repo: &str,
    top: Fetched,
    platform: &Platform,
) -> Result<(Vec<u8>, manifest::Manifest), PullError> {
    Ok(
        match manifest::parse(&top.bytes, top.content_type.as_deref())? {
            Document::Image(m) => (top.bytes, m),
            Document::Index(idx) => {
                let d = manifest::select(&idx, platform)?;
                let f = client.manifest(repo, &d.digest)?;
                match manifest::parse(&f.bytes, f.content_type.as_deref())? {
                    Document::Image(m) => (f.bytes, m),
                    Document::Index(_) => {
                        return Err(manifest::ManifestError::Malformed {
                            what: "index",
                            detail: "an index entry points to another index".into(),
                        }
                        .into())
                    }
                }
            }
        },
    )
}

/// What to fetch of `m`'s layers: each distinct one the store lacks as a
/// layer or as a blob (foreign layers and those it has reported as such).
fn plan(
    store: &Store,
    m: &manifest::Manifest,
    diff_ids: &[String],
    report: &mut dyn FnMut(PullEvent),
) -> Result<Vec<Work>, PullError> {
    let mut work = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, (desc, diff_id)) in m.layers.iter().zip(diff_ids).enumerate() {
        let short = store::short_hex(&desc.digest);
        if manifest::layer_kind(&desc.media_type)? == LayerKind::Foreign {
            report(PullEvent::SkippingForeign { id: short.into() });
            continue;
        }
        if !seen.insert(desc.digest.clone()) {
            continue;
        }
        let extract = !store.has_layer(diff_id);
        let keep_blob = !store.has_blob(&desc.digest);
        if !extract && !keep_blob {
            report(PullEvent::AlreadyExists { id: short.into() });
            continue;
        }
        work.push(Work {
            index: i,
            desc: desc.clone(),
            diff_id: diff_id.clone(),
            extract,
            keep_blob,
        });
    }
    Ok(work)
}

/// The layers to add with the image, staged under `staging`: what was
/// fetched of `work` (`got`), and an empty layer for each foreign one the
/// store lacks.
fn staged(
    store: &Store,
    m: &manifest::Manifest,
    diff_ids: &[String],
    work: &[Work],
    got: &[(usize, Ingested)],
    staging: &Path,
) -> Result<Vec<StagedLayer>, PullError> {
    let mut layers = Vec::new();
    for (i, (desc, diff_id)) in m.layers.iter().zip(diff_ids).enumerate() {
        let dir = staging.join(i.to_string());
        if manifest::layer_kind(&desc.media_type)? == LayerKind::Foreign {
            if !store.has_layer(diff_id) {
                // Nothing to fetch: the layer is applied as empty.
                std::fs::create_dir_all(dir.join("fs")).map_err(store::io("creating", &dir))?;
                layers.push(StagedLayer {
                    diff_id: diff_id.clone(),
                    tar_bytes: 0,
                    dir: Some(dir),
                    blob: None,
                });
            }
            continue;
        }
        let Some(w) = work.iter().find(|w| w.index == i) else {
            continue;
        };
        let ing = got.iter().find(|(idx, _)| *idx == i).map(|(_, g)| g);
        layers.push(StagedLayer {
            diff_id: diff_id.clone(),
            tar_bytes: ing.map_or(0, |g| g.tar_bytes),
            dir: w.extract.then(|| dir.clone()),
            blob: w
                .keep_blob
                .then(|| (dir.join("blob"), w.desc.digest.clone())),
        });
    }
    Ok(layers)
}

/// The config's diff ids, one per manifest layer, each a digest we can
/// name files after: as an archive's image config is read.
fn diff_ids_of(config: &[u8], m: &manifest::Manifest) -> Result<Vec<String>, PullError> {
    super::archive::docker::diff_ids(config, m.layers.len()).map_err(|source| PullError::Config {
        digest: m.config.digest.clone(),
        source,
    })
}

/// Fetch `work` in a child that is root of the user namespace, up to three
/// layers at once. Returns (manifest index, what came through) per item.
fn fetch_layers(
    client: &Client,
    repo: &str,
    work: &[Work],
    staging: &Path,
    mapping: &IdMapping,
    report: &mut dyn FnMut(PullEvent),
) -> Result<Vec<(usize, Ingested)>, PullError> {
    if work.is_empty() {
        return Ok(Vec::new());
    }
    for w in work {
        let dir = staging.join(w.index.to_string());
        std::fs::create_dir(&dir).map_err(store::io("creating", &dir))?;
        if w.extract {
            std::fs::create_dir(dir.join("fs")).map_err(store::io("creating", &dir))?;
        }
    }
    for w in work {
        report(PullEvent::PullingFsLayer {
            id: store::short_hex(&w.desc.digest).into(),
            size: w.desc.size,
        });
    }
    let ids = id_policy(mapping);
    let client = client.clone();
    let repo = repo.to_string();
    let work = work.to_vec();
    let staging = staging.to_path_buf();
    // The child's end of the pipe goes with the closure, which this process
    // drops once it has forked: the reads below end when the child does.
    let (events, tx) = crate::linux::process::pipe()
        .map_err(|e| store::io("creating a pipe for", &staging)(e.into()))?;
    let (events, tx) = (std::fs::File::from(events), std::fs::File::from(tx));
    let mut watch = || {
        for line in std::io::BufReader::new(&events).lines() {
            let Ok(line) = line else { break };
            if let Ok(e) = serde_json::from_str::<PullEvent>(&line) {
                report(e);
            }
        }
    };
    userns::run_in_userns_with_watching(
        mapping,
        // The child's error crosses to this process as its text.
        move || fetch_in_child(client, &repo, &work, &staging, ids, tx),
        &mut watch,
    )
    .map_err(|e| match e {
        UsernsError::Child(msg) => PullError::Layers(msg),
        other => PullError::Userns(other),
    })
}

/// Why a layer could not be fetched (in the pull's child).
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("layer {short}: {source}")]
    Ingest { short: String, source: BlobError },
}

/// Where the child's events go: whole JSON lines, one write each, so the
/// workers' lines do not mix.
struct Events(Mutex<std::fs::File>);

impl Events {
    fn send(&self, e: PullEvent) {
        let mut line = serde_json::to_vec(&e).expect("an event serializes");
        line.push(b'\n');
        // The parent gone, the pull is being killed: nothing to tell.
        let _ = self.0.lock().expect("no panics").write_all(&line);
    }
}

fn fetch_in_child(
    client: Client,
    repo: &str,
    work: &[Work],
    staging: &Path,
    ids: IdPolicy,
    tx: std::fs::File,
) -> Result<Vec<(usize, Ingested)>, FetchError> {
    let events = Events(Mutex::new(tx));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, Ingested)>> = Mutex::new(Vec::new());
    let first_error: Mutex<Option<FetchError>> = Mutex::new(None);
    let workers = work.len().min(3);
    std::thread::scope(|s| {
        let (next, failed, results, first_error, events) =
            (&next, &failed, &results, &first_error, &events);
        for _ in 0..workers {
            let mut client = client.clone();
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= work.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let w = &work[i];
                match fetch_one(&mut client, repo, w, staging, ids, events) {
                    Ok(got) => {
                        events.send(PullEvent::PullComplete {
                            id: store::short_hex(&w.desc.digest).into(),
                        });
                        results.lock().expect("no panics").push((w.index, got));
                    }
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        first_error.lock().expect("no panics").get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("no panics") {
        return Err(e);
    }
    Ok(results.into_inner().expect("no panics"))
}

/// Bytes between two `Downloading` events of a layer: about a percent of
/// it, so a bar moves smoothly without a record per read.
fn report_step(total: u64) -> u64 {
    (total / 100).clamp(32 * 1024, 512 * 1024)
}

fn fetch_one(
    client: &mut Client,
    repo: &str,
    w: &Work,
    staging: &Path,
    ids: IdPolicy,
    events: &Events,
) -> Result<Ingested, FetchError> {
    let dir = staging.join(w.index.to_string());
    let short = store::short_hex(&w.desc.digest).to_string();
    let (body, _len) = client.blob(repo, &w.desc.digest)?;
    let blob_path: Option<PathBuf> = w.keep_blob.then(|| dir.join("blob"));
    let fs_dir = w.extract.then(|| dir.join("fs"));
    let expected = Expected {
        digest: Some(w.desc.digest.clone()),
        size: Some(w.desc.size),
        diff_id: Some(w.diff_id.clone()),
    };
    let total = w.desc.size;
    let (current, reported) = (Cell::new(0u64), Cell::new(0u64));
    let progress = |n: u64| {
        current.set(current.get() + n);
        let now = current.get();
        if now != reported.get() && (now - reported.get() >= report_step(total) || now == total) {
            reported.set(now);
            events.send(PullEvent::Downloading {
                id: short.clone(),
                current: now,
                total,
            });
        }
    };
    events.send(PullEvent::Downloading {
        id: short.clone(),
        current: 0,
        total,
    });
    blob::ingest(
        Box::new(body) as Box<dyn Read>,
        blob_path.as_deref(),
        fs_dir.as_deref(),
        ids,
        &expected,
        &progress,
    )
    .map_err(|source| FetchError::Ingest { short, source })
}
