//! `--userns=keep-id`'s /etc/passwd and /etc/group: the image's files with
//! an entry for the caller appended where the image has none, written into
//! the container's directory and bound over the image's (as /etc/hosts is),
//! so `whoami`, `id` and `HOME` know the caller. The entries are podman's
//! (libpod's generatePasswdEntry and generateGroupEntry).

use std::path::{Path, PathBuf};

/// Who the caller is on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The GECOS field (the full name).
    pub gecos: String,
    pub home: String,
    /// The name of the primary group, when it has one.
    pub group: Option<String>,
}

impl HostUser {
    /// The host's passwd and group entries for `uid` and `gid`; None when
    /// the uid has no name (then there is nothing to tell the container).
    pub fn lookup(uid: u32, gid: u32) -> Option<HostUser> {
        let u = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
        let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
            .ok()
            .flatten()
            .map(|g| g.name);
        Some(HostUser {
            name: u.name,
            uid,
            gid,
            gecos: u.gecos.to_string_lossy().into_owned(),
            home: u.dir.to_string_lossy().into_owned(),
            group,
        })
    }
}

/// What the container's files become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub passwd: Vec<u8>,
    pub group: Vec<u8>,
}

/// The image's passwd and group (empty when it has none) with `user`'s
/// entries appended, each only when the image knows neither its name nor
/// its id. As podman: the password is locked (`*`), the shell is /bin/sh
/// (the host's may not exist in the image), and the home is the host's
/// when it, or a directory above it, is mounted into the container, else
/// the working directory: a home that does not exist inside would be no
/// home at all.
pub fn etc_files(
    user: &HostUser,
    image_passwd: &[u8],
    image_group: &[u8],
    mount_targets: &[&str],
    workdir: &str,
) -> EtcFiles {
    let mut passwd = with_newline(image_passwd);
    let mut group = with_newline(image_group);
    let uid = user.uid.to_string();
    let gid = user.gid.to_string();
    if !has_entry(image_passwd, &user.name, &uid) && field_safe(&user.name) {
        let home = if home_is_mounted(&user.home, mount_targets) {
            user.home.clone()
        } else if workdir.is_empty() {
            "/".to_string()
        } else {
            workdir.to_string()
        };
        let gecos = if field_safe(&user.gecos) {
            user.gecos.as_str()
        } else {
            ""
        };
        if field_safe(&home) {
            passwd.extend_from_slice(
                format!("{}:*:{uid}:{gid}:{gecos}:{home}:/bin/sh\n", user.name).as_bytes(),
            );
        }
    }
    if let Some(name) = user.group.as_deref().filter(|n| field_safe(n)) {
        if !has_entry(image_group, name, &gid) {
            group.extend_from_slice(format!("{name}:x:{gid}:{}\n", user.name).as_bytes());
        }
    }
    EtcFiles { passwd, group }
}

/// Is `home`, or a directory above it other than /, a mount's target?
fn home_is_mounted(home: &str, targets: &[&str]) -> bool {
    let mut dir = Path::new(home);
    if !dir.is_absolute() {
        return false;
    }
    while dir != Path::new("/") {
        if targets
            .iter()
            .any(|t| Path::new(t.trim_end_matches('/')) == dir)
        {
            return true;
        }
        dir = match dir.parent() {
            Some(p) => p,
            None => break,
        };
    }
    false
}

/// Does a passwd or group file have an entry named `name` or with id `id`
/// (the first and third fields in both)?
fn has_entry(file: &[u8], name: &str, id: &str) -> bool {
    file.split(|b| *b == b'\n').any(|line| {
        let mut f = line.split(|b| *b == b':');
        let n = f.next().unwrap_or_default();
        let i = f.nth(1).unwrap_or_default();
        !n.is_empty() && (n == name.as_bytes() || i == id.as_bytes())
    })
}

/// A value that cannot break the line it is written into.
fn field_safe(v: &str) -> bool {
    !v.contains([':', '\n'])
}

fn with_newline(file: &[u8]) -> Vec<u8> {
    let mut v = file.to_vec();
    if !v.is_empty() && !v.ends_with(b"\n") {
        v.push(b'\n');
    }
    v
}

/// Why the image's /etc/passwd and /etc/group could not be read: the
/// error itself, its text as it words it.
#[derive(Debug, thiserror::Error)]
pub enum ImageFilesError {
    #[error("{0}")]
    Read(std::io::Error),
    /// Read as root of the user namespace, which failed.
    #[error("{0}")]
    Userns(crate::linux::userns::UsernsError),
}

/// The image's /etc/passwd and /etc/group as its layers show them
/// (`lowers` top first). A layer the caller cannot read directly (files
/// of subordinate ids) is read as root of the user namespace.
pub fn image_files(
    lowers: &[PathBuf],
    mapping: &crate::linux::userns::IdMapping,
) -> Result<(Vec<u8>, Vec<u8>), ImageFilesError> {
    let read = |lowers: &[PathBuf]| -> std::io::Result<(Vec<u8>, Vec<u8>)> {
        let one = |p| crate::image::merged::read_file(lowers, p).map(Option::unwrap_or_default);
        Ok((one("/etc/passwd")?, one("/etc/group")?))
    };
    match read(lowers) {
        Ok(files) => Ok(files),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let lowers = lowers.to_vec();
            crate::linux::userns::run_in_userns_with(mapping, move || read(&lowers))
                .map_err(ImageFilesError::Userns)
        }
        Err(e) => Err(ImageFilesError::Read(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> HostUser {
        HostUser {
            name: "alice".into(),
            uid: 1000,
            gid: 1000,
            gecos: "Alice A".into(),
            home: "/home/alice".into(),
            group: Some("alice".into()),
        }
    }

    #[test]
    fn appends_the_callers_entries_as_podman_does() {
        let f = etc_files(
            &me(),
            b"root:x:0:0:root:/root:/bin/sh",
            b"root:x:0:\n",
            &[],
            "",
        );
        assert_eq!(
            String::from_utf8(f.passwd).unwrap(),
            "root:x:0:0:root:/root:/bin/sh\nalice:*:1000:1000:Alice A:/:/bin/sh\n"
        );
        assert_eq!(
            String::from_utf8(f.group).unwrap(),
            "root:x:0:\nalice:x:1000:alice\n"
        );
        // No image files at all; the working directory is the home.
        let f = etc_files(&me(), b"", b"", &["/data"], "/work");
        assert_eq!(
            String::from_utf8(f.passwd).unwrap(),
            "alice:*:1000:1000:Alice A:/work:/bin/sh\n"
        );
        // The home, or a directory above it, mounted: the home is the host's.
        for targets in [&["/home/alice"][..], &["/home/"][..]] {
            let f = etc_files(&me(), b"", b"", targets, "/work");
            assert!(
                String::from_utf8(f.passwd)
                    .unwrap()
                    .contains(":/home/alice:/bin/sh"),
                "{targets:?}"
            );
        }
    }

    #[test]
    fn an_image_that_knows_the_name_or_id_is_left_alone() {
        for passwd in [
            &b"alice:x:5:5::/home/a:/bin/bash\n"[..],
            &b"bob:x:1000:1000::/home/b:/bin/bash\n"[..],
        ] {
            let f = etc_files(&me(), passwd, b"staff:x:1000:\n", &[], "");
            assert_eq!(f.passwd, passwd);
            assert_eq!(f.group, b"staff:x:1000:\n");
        }
        // A field that would break the line is left out, not written.
        let mut odd = me();
        odd.gecos = "a:b".into();
        let f = etc_files(&odd, b"", b"", &[], "");
        assert_eq!(f.passwd, b"alice:*:1000:1000::/:/bin/sh\n");
    }
}
