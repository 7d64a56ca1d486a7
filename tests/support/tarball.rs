//! Building and rebuilding snapshot archives by hand: tampered manifests,
//! corrupted databases with matching checksums, and hostile entries that
//! lifeboat itself would never write.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

/// One tar entry, written with raw header fields (no path validation).
pub struct Entry {
    pub name: String,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    pub link: Option<String>,
    /// Size written in the header when it must lie about the data.
    pub header_size: Option<u64>,
}

impl Entry {
    pub fn file(name: &str, data: &[u8]) -> Entry {
        Entry {
            name: name.to_string(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            link: None,
            header_size: None,
        }
    }

    pub fn link(name: &str, kind: tar::EntryType, target: &str) -> Entry {
        Entry {
            name: name.to_string(),
            kind,
            data: Vec::new(),
            link: Some(target.to_string()),
            header_size: None,
        }
    }
}

/// The entries of an archive, in order: (name, contents).
pub fn read_entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let (_, stream) = lifeboat::snapshot::archive::open(archive).unwrap();
    let mut tar = tar::Archive::new(stream);
    let mut out = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

/// Write a gzip-compressed tar of `entries` to `path`.
pub fn write(path: &Path, entries: &[Entry]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            let n = e.name.len().min(99);
            old.name[..n].copy_from_slice(&e.name.as_bytes()[..n]);
            if let Some(link) = &e.link {
                let n = link.len().min(99);
                old.linkname[..n].copy_from_slice(&link.as_bytes()[..n]);
            }
        }
        h.set_entry_type(e.kind);
        h.set_mode(0o644);
        h.set_size(e.header_size.unwrap_or(e.data.len() as u64));
        if matches!(e.kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        if e.kind == tar::EntryType::GNUSparse {
            // A sparse file that expands its data (one chunk at the very
            // end) to 4 GiB of zeros.
            let octal = |v: u64| format!("{v:011o}\0");
            let real = 4u64 << 30;
            let len = e.data.len() as u64;
            let gnu = h.as_gnu_mut().unwrap();
            gnu.realsize.copy_from_slice(octal(real).as_bytes());
            gnu.sparse[0]
                .offset
                .copy_from_slice(octal(real - len).as_bytes());
            gnu.sparse[0]
                .numbytes
                .copy_from_slice(octal(len).as_bytes());
        }
        h.set_cksum();
        b.append(&h, &e.data[..]).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Rewrite an archive in place: `edit` may change the manifest (as JSON)
/// and the database files; with `fix_checksums`, each database's `bytes`
/// and `sha256` are recomputed so only the deeper checks can object.
pub fn rebuild(
    archive: &Path,
    fix_checksums: bool,
    edit: impl FnOnce(&mut serde_json::Value, &mut Vec<(String, Vec<u8>)>),
) {
    let mut entries = read_entries(archive);
    let (manifest_name, manifest_bytes) = entries.remove(0);
    let mut manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    edit(&mut manifest, &mut entries);
    if fix_checksums {
        let tag = manifest["tag"].as_str().unwrap().to_string();
        for db in manifest["databases"].as_array_mut().unwrap() {
            let name = format!("{tag}/{}", db["path"].as_str().unwrap());
            if let Some((_, data)) = entries.iter().find(|(n, _)| *n == name) {
                db["bytes"] = data.len().into();
                db["sha256"] = sha256(data).into();
            }
        }
    }
    let mut out = vec![Entry::file(
        &manifest_name,
        &serde_json::to_vec_pretty(&manifest).unwrap(),
    )];
    out.extend(entries.iter().map(|(n, d)| Entry::file(n, d)));
    write(archive, &out);
}
