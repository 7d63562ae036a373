//! `image history`: one row per history entry of an image's config, newest
//! first, each with the size of the layer it made (0 for `empty_layer`
//! entries) and the id of the stored image it is the top of, if any.

use oci_spec::image::History;

use crate::store::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The stored image whose top this entry is; None shows as `<missing>`.
    pub id: Option<String>,
    pub created: String,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

/// The history of the image `name` (reference or id), newest first.
pub fn history(store: &Store, name: &str) -> Result<Vec<HistoryRow>, StoreError> {
    let id = super::catalog::resolve(store, name)?;
    let cfg = store.image_config(&id)?;
    let layers = cfg.rootfs().diff_ids();
    let hist: Vec<History> = cfg.history().clone().unwrap_or_default();
    // (row, how many history entries and layers it covers from the bottom)
    let mut rows: Vec<(HistoryRow, usize, usize)> = Vec::new();
    let mut next_layer = 0;
    for (i, h) in hist.iter().enumerate() {
        let size = if h.empty_layer().unwrap_or(false) {
            0
        } else {
            let s = layers.get(next_layer).map_or(0, |l| store.layer_size(l));
            next_layer += 1;
            s
        };
        rows.push((
            HistoryRow {
                id: None,
                created: h.created().clone().unwrap_or_default(),
                created_by: h.created_by().clone().unwrap_or_default(),
                size,
                comment: h.comment().clone().unwrap_or_default(),
            },
            i + 1,
            next_layer.min(layers.len()),
        ));
    }
    // Layers the history does not account for (images made without one).
    for (j, l) in layers.iter().enumerate().skip(next_layer) {
        rows.push((
            HistoryRow {
                id: None,
                created: cfg.created().clone().unwrap_or_default(),
                created_by: String::new(),
                size: store.layer_size(l),
                comment: String::new(),
            },
            hist.len(),
            j + 1,
        ));
    }
    // A lower row names a stored image whose whole history and layers are
    // exactly that prefix of this one's: the image it was built on.
    for other in store.image_ids()? {
        if other == id {
            continue;
        }
        let Ok(o) = store.image_config(&other) else {
            continue;
        };
        let oh = o.history().clone().unwrap_or_default();
        let ol = o.rootfs().diff_ids();
        if oh.is_empty() || oh.len() > hist.len() || hist[..oh.len()] != oh[..] {
            continue;
        }
        if ol.len() > layers.len() || layers[..ol.len()] != ol[..] {
            continue;
        }
        if let Some(row) = rows
            .iter_mut()
            .rev()
            .find(|(_, h, l)| *h == oh.len() && *l == ol.len())
        {
            row.0.id.get_or_insert(other);
        }
    }
    let mut out: Vec<HistoryRow> = rows.into_iter().map(|(r, _, _)| r).rev().collect();
    if let Some(top) = out.first_mut() {
        top.id = Some(id);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn empty_layer_entries_have_no_size_and_the_base_image_is_named() {
        let (_d, store) = crate::store::temp_store();
        let (l1, l2) = (
            format!("sha256:{}", "1".repeat(64)),
            format!("sha256:{}", "2".repeat(64)),
        );
        for (l, size) in [(&l1, 100), (&l2, 7)] {
            let s = store.staging_dir("layer").unwrap();
            std::fs::create_dir(s.join("fs")).unwrap();
            store.commit_layer(&s, l, size).unwrap();
        }
        let base_history = serde_json::json!([
            {"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs"},
            {"created": "2024-01-01T00:00:01Z", "created_by": "CMD [\"sh\"]", "empty_layer": true},
        ]);
        let mut history = base_history.as_array().unwrap().clone();
        history.push(serde_json::json!({"created": "2024-02-01T00:00:00Z", "created_by": "sh", "comment": "mine"}));
        let config = |layers: &[&String], history: &serde_json::Value| {
            serde_json::to_vec(&serde_json::json!({
                "architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": layers},
                "history": history,
            }))
            .unwrap()
        };
        let base = store
            .put_image_config(&config(&[&l1], &base_history))
            .unwrap();
        let top = store
            .put_image_config(&config(&[&l1, &l2], &serde_json::Value::Array(history)))
            .unwrap();
        let rows = super::history(&store, &top).unwrap();
        let got: Vec<(Option<&str>, u64, &str)> = rows
            .iter()
            .map(|r| (r.id.as_deref(), r.size, r.created_by.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Some(top.as_str()), 7, "sh"),
                (Some(base.as_str()), 0, "CMD [\"sh\"]"),
                (None, 100, "ADD rootfs"),
            ]
        );
        assert_eq!(rows[0].comment, "mine");
    }
}
