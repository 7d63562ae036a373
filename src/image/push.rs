//! `push`: the blobs and manifest an image was stored with, sent to a
//! registry. Blobs the registry already has are skipped, blobs it has in
//! another repository are mounted from there, the rest are uploaded from the
//! store. The manifest goes up byte for byte, so pushing a pulled image gives
//! the same manifest digest back.

use super::add::{self, ImageMeta};
use super::manifest::{self, Descriptor, Document};
use super::reference::Reference;
use super::registry::credentials::{self, AuthFiles};
use super::registry::{Client, ClientOptions, RegistryError};
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("image {0} has no stored manifest (it was made by an older burrow): import or pull it again")]
    NoManifest(String),
    #[error("layer {digest} of image {image} is not in the store (it was made by an older burrow): import or pull it again")]
    MissingBlob { image: String, digest: String },
    #[error("a reference to push needs a tag, not only a digest: {0}")]
    NoTag(String),
}

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub client: ClientOptions,
    pub auth_files: AuthFiles,
    pub quiet: bool,
}

#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub size: u64,
}

/// Push the image `id` to `dest`.
pub fn push(
    store: &Store,
    id: &str,
    dest: &Reference,
    opts: &PushOptions,
) -> Result<Pushed, PushError> {
    let say = |line: &str| {
        if !opts.quiet {
            println!("{line}");
        }
    };
    let tag = dest
        .tag
        .clone()
        .ok_or_else(|| PushError::NoTag(dest.to_string()))?;
    let meta: ImageMeta = add::read_meta(store, id)?
        .ok_or_else(|| PushError::NoManifest(store::short_hex(id).into()))?;
    let manifest_bytes = store.read_blob(&meta.manifest)?;
    let Document::Image(m) = manifest::parse(&manifest_bytes, None)? else {
        return Err(PushError::NoManifest(store::short_hex(id).into()));
    };
    let cred = credentials::lookup(&opts.auth_files, &dest.registry)?;
    let mut client = Client::connect(&dest.registry, cred, &opts.client)?;
    let repo = dest.repository.as_str();
    say(&format!(
        "The push refers to repository [{}]",
        dest.full_repository()
    ));
    // Repositories of the same registry this image is known to be in.
    let sources: Vec<String> = meta
        .repo_digests
        .iter()
        .filter_map(|d| d.split_once('@').map(|(r, _)| r.to_string()))
        .filter_map(|r| {
            r.strip_prefix(&format!("{}/", dest.registry))
                .map(str::to_string)
        })
        .filter(|r| r != repo)
        .collect();
    let mut blobs: Vec<&Descriptor> = m.layers.iter().collect();
    blobs.push(&m.config);
    for d in blobs {
        let short_d = store::short_hex(&d.digest);
        if manifest::layer_kind(&d.media_type).ok() == Some(manifest::LayerKind::Foreign) {
            say(&format!("{short_d}: Skipped foreign layer"));
            continue;
        }
        if client.blob_exists(repo, &d.digest)? {
            say(&format!("{short_d}: Layer already exists"));
            continue;
        }
        let mut mounted = false;
        for from in &sources {
            if client.mount_blob(repo, from, &d.digest)? {
                say(&format!("{short_d}: Mounted from {from}"));
                mounted = true;
                break;
            }
        }
        if mounted {
            continue;
        }
        let mut file = if d.digest == m.config.digest {
            // The config lives with the images, not among the blobs.
            std::fs::File::open(store.image_config_path(id)).map_err(store::io(
                "opening image config",
                &store.image_config_path(id),
            ))?
        } else {
            store.open_blob(&d.digest).map_err(|e| match e {
                StoreError::NoSuchBlob(_) => PushError::MissingBlob {
                    image: store::short_hex(id).into(),
                    digest: d.digest.clone(),
                },
                other => other.into(),
            })?
        };
        client.upload_blob(repo, &d.digest, d.size, &mut file)?;
        say(&format!("{short_d}: Pushed"));
    }
    let media_type = m
        .media_type
        .clone()
        .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string());
    let digest = client.put_manifest(repo, &tag, &media_type, &manifest_bytes)?;
    say(&format!(
        "{tag}: digest: {digest} size: {}",
        manifest_bytes.len()
    ));
    add::add_repo_digest(store, id, &format!("{}@{digest}", dest.full_repository()))?;
    Ok(Pushed {
        digest,
        size: manifest_bytes.len() as u64,
    })
}
