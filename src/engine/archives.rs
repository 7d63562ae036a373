//! Images to and from archive files: `save` (docker-archive or OCI
//! archive) and `load`.

use super::{Engine, Error, Result};
use crate::image::archive::{self, LoadReport, LoadSource, SaveFormat, SaveTarget};

/// Write the images `names` names to `target`.
pub fn save(
    engine: &Engine,
    names: &[String],
    format: SaveFormat,
    target: &SaveTarget,
) -> Result<()> {
    if names.is_empty() {
        return Err(Error::invalid("no image to save"));
    }
    Ok(archive::save(&engine.store, names, format, target)?)
}

/// Load the images of an archive (or an OCI layout directory).
pub fn load(engine: &Engine, source: &LoadSource) -> Result<LoadReport> {
    Ok(archive::load(&engine.store, &engine.mapping, source)?)
}
