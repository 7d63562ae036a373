//! Archive compression detected by magic bytes, never by file name.

use std::io::{BufReader, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error("reading archive: {0}")]
    Read(#[from] std::io::Error),
    #[error(
        "archive is {0}-compressed; burrow reads plain tar, gzip and zstd (decompress it first)"
    )]
    Unsupported(&'static str),
    #[error("not a tar archive (no tar header and no gzip or zstd magic)")]
    NotTar,
    #[error("archive is empty")]
    Empty,
}

/// Look at the first bytes and pick a decoder.
pub fn detect(head: &[u8]) -> Result<Compression, CompressError> {
    match head {
        [] => Err(CompressError::Empty),
        [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Err(CompressError::Unsupported("xz")),
        [b'B', b'Z', b'h', ..] => Err(CompressError::Unsupported("bzip2")),
        h if h.len() >= 262 && &h[257..262] == b"ustar" => Ok(Compression::None),
        // A v7 tar has no magic; accept a header whose checksum field is octal.
        h if h.len() >= 512
            && h[148..154]
                .iter()
                .all(|b| matches!(b, b'0'..=b'7' | b' ' | 0)) =>
        {
            Ok(Compression::None)
        }
        _ => Err(CompressError::NotTar),
    }
}

/// Wrap `r` in the decoder its first bytes call for.
pub fn decoder<'a, R: Read + 'a>(
    mut r: R,
) -> Result<(Compression, Box<dyn Read + 'a>), CompressError> {
    // Peek one tar block: enough for every magic, including ustar at 257.
    let mut head = Vec::with_capacity(512);
    (&mut r).take(512).read_to_end(&mut head)?;
    let kind = detect(&head)?;
    let br = BufReader::with_capacity(256 * 1024, std::io::Cursor::new(head).chain(r));
    let out: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(br),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(br)?),
    };
    Ok((kind, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]).unwrap(), Compression::Gzip);
        assert_eq!(
            detect(&[0x28, 0xb5, 0x2f, 0xfd]).unwrap(),
            Compression::Zstd
        );
        assert!(matches!(
            detect(b"\xfd7zXZ\0"),
            Err(CompressError::Unsupported("xz"))
        ));
        assert!(matches!(
            detect(b"BZh91AY"),
            Err(CompressError::Unsupported("bzip2"))
        ));
        assert!(matches!(detect(b"hello world"), Err(CompressError::NotTar)));
        assert!(matches!(detect(b""), Err(CompressError::Empty)));
        let mut h = tar::Header::new_ustar();
        h.set_path("a").unwrap();
        h.set_cksum();
        assert_eq!(detect(h.as_bytes()).unwrap(), Compression::None);
    }

    #[test]
    fn decodes_all_three() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_cksum();
        b.append_data(&mut h, "f", &b"abc"[..]).unwrap();
        let plain = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 1).unwrap();
        for (data, kind) in [
            (plain.clone(), Compression::None),
            (gz, Compression::Gzip),
            (zst, Compression::Zstd),
        ] {
            let (k, mut r) = decoder(&data[..]).unwrap();
            assert_eq!(k, kind);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, plain);
        }
    }
}
