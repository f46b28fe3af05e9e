//! Container images from files, with no registry: an OCI image layout
//! directory (index.json, blobs/sha256/…) or a `docker save` tarball
//! (manifest.json, the config, one tar per layer). The layers are applied in
//! order into a root filesystem cached under the image config's digest, so
//! the second run of an image unpacks nothing.
//!
//! An OCI layout's index and manifests are read as oci-spec's image types,
//! and of a multi-platform index the manifest for this machine's platform
//! (`linux/amd64` on x86_64) is taken. The image configuration is read
//! leniently, as JSON: `docker save` and hand-made images may lack fields
//! oci-spec's `ImageConfiguration` requires, and only `config` and
//! `rootfs.diff_ids` matter here. `docker save`'s own manifest.json is
//! Docker's format, which oci-spec does not model.

use std::{
    collections::HashSet,
    fs::File,
    io::{BufReader, Read},
    path::{Component, Path, PathBuf},
};

use oci_spec::image::{Arch, Descriptor, ImageIndex, ImageManifest, MediaType, Os, Platform};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use super::ScratchDir;

#[derive(Debug, Error)]
pub enum ImageError {
    #[error("cannot read the image {path}: {error}")]
    Open { path: String, error: std::io::Error },
    #[error("{path} is not an OCI image layout or a `docker save` tarball: {reason}")]
    Format { path: String, reason: String },
    #[error("the image is corrupt: {what} has digest sha256:{actual}, expected {expected}")]
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("cannot unpack layer {layer} of the image: {error}")]
    Layer {
        layer: String,
        error: std::io::Error,
    },
    #[error(
        "{path} has no image for this machine ({wanted}): it has {}",
        if .found.is_empty() { "none".to_string() } else { .found.join(", ") }
    )]
    Platform {
        path: String,
        wanted: String,
        found: Vec<String>,
    },
    #[error("image cache {path}: {error}")]
    Cache { path: String, error: std::io::Error },
}

/// What the image's configuration says about running it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
}

impl RunConfig {
    /// From an image configuration (the `config` object of the OCI image
    /// config, which `docker save` writes too).
    pub fn from_image_config(config: &Value) -> Self {
        let c = &config["config"];
        RunConfig {
            entrypoint: super::strings(&c["Entrypoint"]),
            cmd: super::strings(&c["Cmd"]),
            env: super::strings(&c["Env"]),
            working_dir: c["WorkingDir"]
                .as_str()
                .filter(|w| !w.is_empty())
                .map(String::from),
        }
    }

    /// The process's arguments as Docker forms them: the entrypoint, then the
    /// command line's arguments, or the image's Cmd when there are none.
    pub fn args(&self, command_line: &[String]) -> Vec<String> {
        let tail = if command_line.is_empty() {
            &self.cmd
        } else {
            command_line
        };
        self.entrypoint.iter().chain(tail).cloned().collect()
    }
}

/// An image unpacked in the cache.
#[derive(Clone, Debug)]
pub struct Image {
    /// `sha256:<hex>` of the image configuration.
    pub id: String,
    pub rootfs: PathBuf,
    pub run: RunConfig,
}

/// Where unpacked images are kept: `$XDG_CACHE_HOME/inspector/images` when
/// that is set, else `/var/cache/inspector/images`.
pub fn default_cache_dir() -> PathBuf {
    match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("inspector/images"),
        None => PathBuf::from("/var/cache/inspector/images"),
    }
}

/// A layer to apply: its file, and the digest it must have (of the file for
/// an OCI layout, of the uncompressed tar for `docker save`'s diff_ids).
struct Layer {
    path: PathBuf,
    name: String,
    expect_file: Option<String>,
    expect_tar: Option<String>,
}

struct Manifest {
    config: Vec<u8>,
    layers: Vec<Layer>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens the image at `path` and returns its cached root filesystem,
/// unpacking it first if this image configuration has not been seen.
pub fn open(path: &Path, cache: &Path) -> Result<Image, ImageError> {
    let cache_err = |error| ImageError::Cache {
        path: cache.display().to_string(),
        error,
    };
    let meta = std::fs::metadata(path).map_err(|error| ImageError::Open {
        path: path.display().to_string(),
        error,
    })?;
    std::fs::create_dir_all(cache).map_err(cache_err)?;
    // A tarball is unpacked next to the cache first: its members are read by
    // name, in any order.
    let extracted;
    let dir = if meta.is_dir() {
        path.to_path_buf()
    } else {
        extracted = ScratchDir::new_in(cache, ".extract").map_err(cache_err)?;
        extract_tarball(path, extracted.path())?;
        extracted.path().to_path_buf()
    };
    let manifest = read_manifest(&dir, path)?;
    let digest = sha256_hex(&manifest.config);
    let config: Value =
        serde_json::from_slice(&manifest.config).map_err(|e| ImageError::Format {
            path: path.display().to_string(),
            reason: format!("its configuration is not JSON: {e}"),
        })?;
    let run = RunConfig::from_image_config(&config);
    let id = format!("sha256:{digest}");
    let done = cache.join(&digest);
    if done.join("rootfs").is_dir() {
        return Ok(Image {
            id,
            rootfs: done.join("rootfs"),
            run,
        });
    }
    let diff_ids: Vec<Option<String>> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().map(|d| d.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let work = ScratchDir::new_in(cache, &format!(".{digest}")).map_err(cache_err)?;
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir(&rootfs).map_err(cache_err)?;
    for (i, mut layer) in manifest.layers.into_iter().enumerate() {
        if layer.expect_tar.is_none() {
            layer.expect_tar = diff_ids.get(i).cloned().flatten();
        }
        apply_layer_file(&layer, &rootfs)?;
    }
    std::fs::write(work.path().join("config.json"), &manifest.config).map_err(cache_err)?;
    match std::fs::rename(work.path(), &done) {
        Ok(()) => {
            work.keep();
        }
        // Another run unpacked the same image meanwhile: use theirs.
        Err(_) if done.join("rootfs").is_dir() => {}
        Err(source) => return Err(cache_err(source)),
    }
    Ok(Image {
        id,
        rootfs: done.join("rootfs"),
        run,
    })
}

/// A reader that may be gzip-compressed, told by its first two bytes.
fn maybe_gzip(file: File) -> std::io::Result<Box<dyn Read>> {
    let mut reader = BufReader::new(file);
    let magic = {
        use std::io::BufRead as _;
        reader.fill_buf()?.get(..2).map(|m| m == [0x1f, 0x8b])
    };
    Ok(if magic == Some(true) {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

fn extract_tarball(path: &Path, into: &Path) -> Result<(), ImageError> {
    let open_err = |error| ImageError::Open {
        path: path.display().to_string(),
        error,
    };
    let file = File::open(path).map_err(open_err)?;
    let mut archive = tar::Archive::new(maybe_gzip(file).map_err(open_err)?);
    let mut members = 0;
    for entry in archive.entries().map_err(open_err)? {
        let mut entry = entry.map_err(|e| ImageError::Format {
            path: path.display().to_string(),
            reason: format!("not a readable tar archive ({e})"),
        })?;
        entry.unpack_in(into).map_err(open_err)?;
        members += 1;
    }
    if members == 0 {
        return Err(ImageError::Format {
            path: path.display().to_string(),
            reason: "an empty or unreadable tar archive".into(),
        });
    }
    Ok(())
}

/// Reads a member of the image by its path inside the layout, refusing to
/// leave it.
fn member(dir: &Path, name: &str, image: &Path) -> Result<PathBuf, ImageError> {
    let rel = Path::new(name);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(ImageError::Format {
            path: image.display().to_string(),
            reason: format!("member {name:?} points outside the image"),
        });
    }
    Ok(dir.join(rel))
}

fn read(path: &Path, image: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(|e| ImageError::Format {
        path: image.display().to_string(),
        reason: format!(
            "cannot read {}: {e}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ),
    })
}

fn json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    image: &Path,
) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Format {
        path: image.display().to_string(),
        reason: format!("{what} is not valid JSON: {e}"),
    })
}

/// A blob of an OCI layout, by digest: `blobs/sha256/<hex>`.
fn blob_path(dir: &Path, digest: &str, image: &Path) -> Result<PathBuf, ImageError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| ImageError::Format {
            path: image.display().to_string(),
            reason: format!("unsupported digest {digest:?} (only sha256)"),
        })?;
    member(dir, &format!("blobs/sha256/{hex}"), image)
}

fn verified_blob(dir: &Path, digest: &str, image: &Path) -> Result<Vec<u8>, ImageError> {
    let bytes = read(&blob_path(dir, digest, image)?, image)?;
    let actual = sha256_hex(&bytes);
    if format!("sha256:{actual}") != digest {
        return Err(ImageError::Digest {
            what: format!("blob {digest}"),
            expected: digest.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

fn read_manifest(dir: &Path, image: &Path) -> Result<Manifest, ImageError> {
    let format_err = |reason: String| ImageError::Format {
        path: image.display().to_string(),
        reason,
    };
    // `docker save`'s own manifest (older Docker writes only this one; newer
    // writes it next to an OCI index).
    let docker = dir.join("manifest.json");
    if docker.is_file() {
        let m: Value = json(&read(&docker, image)?, "manifest.json", image)?;
        let first = m
            .as_array()
            .and_then(|a| a.first())
            .ok_or_else(|| format_err("manifest.json lists no image".into()))?;
        let config_name = first["Config"]
            .as_str()
            .ok_or_else(|| format_err("manifest.json names no Config".into()))?;
        let config = read(&member(dir, config_name, image)?, image)?;
        let mut layers = Vec::new();
        for name in first["Layers"].as_array().into_iter().flatten() {
            let name = name
                .as_str()
                .ok_or_else(|| format_err("manifest.json has a layer that is not a path".into()))?;
            layers.push(Layer {
                path: member(dir, name, image)?,
                name: name.to_string(),
                expect_file: None,
                expect_tar: None,
            });
        }
        return Ok(Manifest { config, layers });
    }
    let index = dir.join("index.json");
    if !index.is_file() {
        return Err(format_err(
            "it has neither index.json (OCI layout) nor manifest.json (docker save)".into(),
        ));
    }
    let mut index: ImageIndex = json(&read(&index, image)?, "index.json", image)?;
    // An index may point at another index (a multi-platform image): follow
    // this machine's platform down to a manifest.
    let mut manifest = None;
    for _ in 0..4 {
        let chosen = for_this_platform(&index, image)?;
        let digest = chosen.digest().to_string();
        let bytes = verified_blob(dir, &digest, image)?;
        if is_index(chosen.media_type()) {
            index = json(&bytes, "an image index", image)?;
        } else {
            manifest = Some(json::<ImageManifest>(&bytes, "a manifest", image)?);
            break;
        }
    }
    let doc = manifest.ok_or_else(|| format_err("image indexes nest too deep".into()))?;
    let config = verified_blob(dir, doc.config().digest().as_ref(), image)?;
    let mut layers = Vec::new();
    for l in doc.layers() {
        let digest = l.digest().to_string();
        layers.push(Layer {
            path: blob_path(dir, &digest, image)?,
            name: digest.clone(),
            expect_file: Some(digest),
            expect_tar: None,
        });
    }
    Ok(Manifest { config, layers })
}

/// Whether a descriptor points at an index (OCI's, or Docker's manifest list).
fn is_index(media_type: &MediaType) -> bool {
    match media_type {
        MediaType::ImageIndex => true,
        MediaType::Other(m) => m == "application/vnd.docker.distribution.manifest.list.v2+json",
        _ => false,
    }
}

/// `os/arch[/variant]`, as `docker --platform` writes it.
fn platform_name(p: &Platform) -> String {
    match p.variant() {
        Some(v) => format!("{}/{}/{v}", p.os(), p.architecture()),
        None => format!("{}/{}", p.os(), p.architecture()),
    }
}

/// The entry of `index` for this machine: the first whose platform is this
/// machine's OS and architecture, else the first that names no platform (a
/// single-platform layout, or a nested index). Entries for other platforms,
/// and the `unknown/unknown` attestations build tools add, are never taken.
fn for_this_platform<'a>(
    index: &'a ImageIndex,
    image: &Path,
) -> Result<&'a Descriptor, ImageError> {
    let (os, arch) = (Os::default(), Arch::default());
    let entries = index.manifests();
    entries
        .iter()
        .find(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| *p.os() == os && *p.architecture() == arch)
        })
        .or_else(|| entries.iter().find(|d| d.platform().is_none()))
        .ok_or_else(|| ImageError::Platform {
            path: image.display().to_string(),
            wanted: format!("{os}/{arch}"),
            found: entries
                .iter()
                .filter_map(|d| d.platform().as_ref().map(platform_name))
                .collect(),
        })
}

/// Passes bytes through while hashing them.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn check(what: &str, expected: Option<&str>, actual: String) -> Result<(), ImageError> {
    match expected {
        Some(e) if e != format!("sha256:{actual}") => Err(ImageError::Digest {
            what: what.to_string(),
            expected: e.to_string(),
            actual,
        }),
        _ => Ok(()),
    }
}

fn apply_layer_file(layer: &Layer, rootfs: &Path) -> Result<(), ImageError> {
    let err = |error| ImageError::Layer {
        layer: layer.name.clone(),
        error,
    };
    let file = File::open(&layer.path).map_err(err)?;
    let mut file = Hashing {
        inner: BufReader::new(file),
        hasher: Sha256::new(),
    };
    let gzip = {
        use std::io::BufRead as _;
        file.inner
            .fill_buf()
            .map_err(err)?
            .starts_with(&[0x1f, 0x8b])
    };
    let file_hash;
    let tar_hash;
    if gzip {
        let mut tar = Hashing {
            inner: flate2::read::GzDecoder::new(file),
            hasher: Sha256::new(),
        };
        apply_layer(&mut tar, rootfs).map_err(err)?;
        tar_hash = hex(&tar.hasher.finalize());
        let mut file = tar.inner.into_inner();
        std::io::copy(&mut file, &mut std::io::sink()).map_err(err)?;
        file_hash = hex(&file.hasher.finalize());
    } else {
        apply_layer(&mut file, rootfs).map_err(err)?;
        tar_hash = hex(&file.hasher.finalize());
        file_hash = tar_hash.clone();
    }
    check(
        &format!("layer {}", layer.name),
        layer.expect_file.as_deref(),
        file_hash,
    )?;
    check(
        &format!("layer {}", layer.name),
        layer.expect_tar.as_deref(),
        tar_hash,
    )
}

/// `path` (relative, from a layer) under `rootfs`, or `None` if it would
/// leave it: through `..`, or through a symlink a lower layer put on the way.
fn inside(rootfs: &Path, path: &Path) -> Option<PathBuf> {
    let mut out = rootfs.to_path_buf();
    let parts: Vec<_> = path.components().collect();
    for (i, c) in parts.iter().enumerate() {
        match c {
            Component::Normal(name) => {
                out.push(name);
                let last = i + 1 == parts.len();
                if !last && std::fs::symlink_metadata(&out).is_ok_and(|m| m.is_symlink()) {
                    return None;
                }
            }
            Component::CurDir | Component::RootDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Applies one layer (an uncompressed tar stream, read to its end) over
/// `rootfs`: `.wh.NAME` removes NAME from the layers below, `.wh..wh..opq`
/// empties its directory of what the layers below put there, and every other
/// entry is written with its mode, owner and times.
pub fn apply_layer(reader: &mut dyn Read, rootfs: &Path) -> std::io::Result<()> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    let mut archive = tar::Archive::new(&mut *reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    // What this layer wrote: an opaque marker hides the layers below only.
    let mut written: HashSet<PathBuf> = HashSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(String::from) else {
            // `./` itself.
            continue;
        };
        let parent = path.parent().unwrap_or(Path::new(""));
        let target = inside(rootfs, &path).ok_or_else(|| {
            invalid(format!(
                "entry {} leaves the root filesystem",
                path.display()
            ))
        })?;
        if name == OPAQUE {
            let dir = target.parent().expect("a file name has a parent");
            if let Ok(children) = std::fs::read_dir(dir) {
                for child in children {
                    let child = child?.path();
                    if !written.contains(&child) {
                        remove_any(&child)?;
                    }
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            let victim = inside(rootfs, &parent.join(hidden)).ok_or_else(|| {
                invalid(format!(
                    "whiteout {} leaves the root filesystem",
                    path.display()
                ))
            })?;
            remove_any(&victim)?;
            continue;
        }
        // A directory replaces a file and a file replaces a directory, as in
        // overlayfs; an existing directory is merged into.
        let is_dir = entry.header().entry_type().is_dir();
        if let Ok(m) = std::fs::symlink_metadata(&target)
            && (m.is_dir() != is_dir || (!is_dir && !m.is_file()))
        {
            remove_any(&target)?;
        }
        entry.unpack_in(rootfs)?;
        written.insert(target);
    }
    // Read the end-of-archive blocks too, so the digest covers the whole tar.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar layer from (path, contents); a path ending in `/` is a directory,
    /// `->` makes a symlink.
    pub(crate) fn layer(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            if path.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            } else if let Some(target) = data.strip_prefix("->") {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(&mut h, path, target).unwrap();
            } else {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o755);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_bytes()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    fn tree(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            for p in entries {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                let m = std::fs::symlink_metadata(&p).unwrap();
                if m.is_dir() {
                    out.push(format!("{rel}/"));
                    walk(root, &p, out);
                } else if m.is_symlink() {
                    out.push(format!(
                        "{rel} -> {}",
                        std::fs::read_link(&p).unwrap().display()
                    ));
                } else {
                    out.push(format!("{rel} = {}", std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        walk(root, root, &mut out);
        out
    }

    #[test]
    fn layers_apply_in_order_with_whiteouts_and_opaque_directories() {
        let root = ScratchDir::new("image-layers").unwrap();
        let base = layer(&[
            ("bin/", ""),
            ("bin/sh", "busybox"),
            ("etc/", ""),
            ("etc/motd", "hello"),
            ("etc/passwd", "root"),
            ("opt/", ""),
            ("opt/old/", ""),
            ("opt/old/a", "a"),
            ("opt/keep", "k"),
            ("var/", ""),
            ("var/lib/", ""),
            ("var/lib/x", "x"),
        ]);
        let top = layer(&[
            ("etc/.wh.motd", ""),
            ("opt/.wh..wh..opq", ""),
            ("opt/new", "n"),
            ("var/lib", "now a file"),
            ("bin/ash", "->sh"),
        ]);
        apply_layer(&mut base.as_slice(), root.path()).unwrap();
        apply_layer(&mut top.as_slice(), root.path()).unwrap();
        assert_eq!(
            tree(root.path()),
            [
                "bin/",
                "bin/ash -> sh",
                "bin/sh = busybox",
                "etc/",
                "etc/passwd = root",
                "opt/",
                "opt/new = n",
                "var/",
                "var/lib = now a file",
            ]
        );
    }

    #[test]
    fn an_opaque_marker_after_its_own_files_keeps_them() {
        let root = ScratchDir::new("image-opq").unwrap();
        apply_layer(
            &mut layer(&[("d/", ""), ("d/old", "o")]).as_slice(),
            root.path(),
        )
        .unwrap();
        apply_layer(
            &mut layer(&[("d/", ""), ("d/new", "n"), ("d/.wh..wh..opq", "")]).as_slice(),
            root.path(),
        )
        .unwrap();
        assert_eq!(tree(root.path()), ["d/", "d/new = n"]);
    }

    #[test]
    fn entries_cannot_leave_the_root_through_symlinks() {
        let root = ScratchDir::new("image-escape").unwrap();
        let outside = ScratchDir::new("image-outside").unwrap();
        std::fs::write(outside.path().join("precious"), b"p").unwrap();
        let link = layer(&[("evil", &format!("->{}", outside.path().display()))]);
        apply_layer(&mut link.as_slice(), root.path()).unwrap();
        let err = apply_layer(
            &mut layer(&[("evil/.wh.precious", "")]).as_slice(),
            root.path(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("leaves the root filesystem"),
            "{err}"
        );
        assert!(outside.path().join("precious").exists());
    }

    /// Writes one image (a gzip layer, its config, its manifest) as blobs of
    /// the OCI layout in `dir`; returns the manifest's digest and size.
    fn put_image(dir: &Path, layer_tar: &[u8], config: &Value) -> (String, usize) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| {
            let d = sha256_hex(bytes);
            std::fs::write(blobs.join(&d), bytes).unwrap();
            (format!("sha256:{d}"), bytes.len())
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, layer_tar).unwrap();
        let (layer_digest, layer_size) = put(&gz.finish().unwrap());
        let (config_digest, config_size) = put(&serde_json::to_vec(config).unwrap());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": layer_size}],
        });
        put(&serde_json::to_vec(&manifest).unwrap())
    }

    /// Writes index.json listing `manifests` (descriptors), and oci-layout.
    fn write_index(dir: &Path, manifests: Vec<Value>) {
        let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    }

    /// A manifest descriptor, for `platform` (`os/arch`) when given.
    fn descriptor((digest, size): (String, usize), platform: Option<(&str, &str)>) -> Value {
        let mut d = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
        });
        if let Some((os, arch)) = platform {
            d["platform"] = serde_json::json!({"os": os, "architecture": arch});
        }
        d
    }

    /// Writes an OCI layout with one gzip layer; returns its directory.
    fn oci_layout(dir: &Path, layer_tar: &[u8], config: &Value) {
        let manifest = put_image(dir, layer_tar, config);
        write_index(dir, vec![descriptor(manifest, None)]);
    }

    #[test]
    fn a_two_platform_layout_unpacks_the_image_for_this_machine() {
        let layout = ScratchDir::new("image-platforms").unwrap();
        let cache = ScratchDir::new("image-cache").unwrap();
        let (os, this) = (Os::default().to_string(), Arch::default().to_string());
        let other = if Arch::default() == Arch::Amd64 {
            "arm64"
        } else {
            "amd64"
        };
        let image_for = |arch: &str| {
            let config = serde_json::json!({
                "architecture": arch, "os": os,
                "config": {"Cmd": ["/bin/which"]},
                "rootfs": {"type": "layers", "diff_ids": []},
            });
            put_image(
                layout.path(),
                &layer(&[("bin/", ""), ("bin/which", arch)]),
                &config,
            )
        };
        let (theirs, ours) = (image_for(other), image_for(&this));
        // The other platform first: taking the first entry would be wrong.
        write_index(
            layout.path(),
            vec![
                descriptor(theirs.clone(), Some((&os, other))),
                descriptor(ours, Some((&os, &this))),
            ],
        );
        let image = open(layout.path(), cache.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(image.rootfs.join("bin/which")).unwrap(),
            this
        );

        // Only other platforms (and a build tool's attestation): refused,
        // naming what the layout has.
        let cache = ScratchDir::new("image-cache").unwrap();
        write_index(
            layout.path(),
            vec![
                descriptor(theirs.clone(), Some((&os, other))),
                descriptor(theirs, Some(("unknown", "unknown"))),
            ],
        );
        let err = open(layout.path(), cache.path()).unwrap_err();
        assert!(matches!(err, ImageError::Platform { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&format!("({os}/{this})")), "{text}");
        assert!(
            text.ends_with(&format!("it has {os}/{other}, unknown/unknown")),
            "{text}"
        );
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_oci_layout_is_unpacked_once_into_the_cache() {
        let layout = ScratchDir::new("image-oci").unwrap();
        let cache = ScratchDir::new("image-cache").unwrap();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"],
                       "Env": ["PATH=/bin"], "WorkingDir": "/srv"},
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        oci_layout(
            layout.path(),
            &layer(&[("bin/", ""), ("bin/sh", "x")]),
            &config,
        );
        let image = open(layout.path(), cache.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(image.rootfs.join("bin/sh")).unwrap(),
            "x"
        );
        assert_eq!(
            image.run,
            RunConfig {
                entrypoint: vec!["/bin/sh".into(), "-c".into()],
                cmd: vec!["echo hi".into()],
                env: vec!["PATH=/bin".into()],
                working_dir: Some("/srv".into()),
            }
        );
        assert_eq!(image.run.args(&[]), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(
            image.run.args(&["exit 3".into()]),
            ["/bin/sh", "-c", "exit 3"]
        );
        // Cached: a second open reads nothing but the manifest and config.
        std::fs::write(image.rootfs.join("marker"), b"").unwrap();
        let again = open(layout.path(), cache.path()).unwrap();
        assert!(again.rootfs.join("marker").exists());
        // Only the unpacked image is left in the cache, no scratch space.
        let names: Vec<_> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_corrupt_layer_is_refused_and_leaves_no_rootfs() {
        let layout = ScratchDir::new("image-corrupt").unwrap();
        let cache = ScratchDir::new("image-cache").unwrap();
        let config = serde_json::json!({"config": {}});
        oci_layout(layout.path(), &layer(&[("a", "a")]), &config);
        // Flip a byte of the layer blob (the largest file in blobs/).
        let blobs = layout.path().join("blobs/sha256");
        let index: Value =
            serde_json::from_slice(&std::fs::read(layout.path().join("index.json")).unwrap())
                .unwrap();
        let manifest_hex = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(blobs.join(&manifest_hex)).unwrap()).unwrap();
        let layer_hex = manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        let mut bytes = std::fs::read(blobs.join(&layer_hex)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(blobs.join(&layer_hex), bytes).unwrap();
        let err = open(layout.path(), cache.path()).unwrap_err();
        assert!(
            matches!(err, ImageError::Digest { .. } | ImageError::Layer { .. }),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);

        let not_an_image = ScratchDir::new("image-none").unwrap();
        let err = open(not_an_image.path(), cache.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("neither index.json"), "{err}");
        let garbage = not_an_image.path().join("x.tar");
        std::fs::write(&garbage, b"this is not a tar archive at all").unwrap();
        assert!(open(&garbage, cache.path()).is_err());
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_docker_save_tarball_is_read_through_its_manifest() {
        let dir = ScratchDir::new("image-docker").unwrap();
        let cache = ScratchDir::new("image-cache").unwrap();
        let layer_tar = layer(&[("bin/", ""), ("bin/true", "t")]);
        let config = serde_json::json!({
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&layer_tar))]},
        });
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_name = format!("{}.json", sha256_hex(&config_bytes));
        let manifest = serde_json::json!([{"Config": config_name, "RepoTags": ["t:latest"],
                                            "Layers": ["abc/layer.tar"]}]);
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data).unwrap();
        };
        add(&config_name, &config_bytes);
        add("abc/layer.tar", &layer_tar);
        add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
        let tarball = dir.path().join("image.tar");
        std::fs::write(&tarball, b.into_inner().unwrap()).unwrap();
        let image = open(&tarball, cache.path()).unwrap();
        assert_eq!(image.id, format!("sha256:{}", sha256_hex(&config_bytes)));
        assert!(image.rootfs.join("bin/true").is_file());
        assert_eq!(image.run.args(&[]), ["/bin/true"]);
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);
    }
}
