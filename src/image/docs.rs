//! OCI and Docker JSON documents (index, manifest, config, docker-archive manifest.json), read
//! leniently: a verifier must describe lying or Docker-typed documents, not refuse to parse them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// How a layer's media type says it is stored; `None` for a type that is no layer.
pub fn layer_compression(media_type: &str) -> Option<super::Compression> {
    use super::Compression::*;
    let layer = [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar",
    ];
    let (base, compression) = if let Some(b) = media_type
        .strip_suffix("+gzip")
        .or_else(|| media_type.strip_suffix(".gzip"))
    {
        (b, Gzip)
    } else if let Some(b) = media_type
        .strip_suffix("+zstd")
        .or_else(|| media_type.strip_suffix(".zstd"))
    {
        (b, Zstd)
    } else {
        (media_type, None)
    };
    layer.contains(&base).then_some(compression)
}

pub fn is_docker(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.")
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<PlatformDoc>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct PlatformDoc {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl PlatformDoc {
    /// `os/arch[/variant]` exactly as written.
    pub fn text(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", self.os, self.architecture),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub media_type: Option<String>,
    /// Go reads `null` into a nil slice: Docker 25+ `docker save` of an untagged image
    /// writes `"manifests": null`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub manifests: Vec<Descriptor>,
}

/// `null` read as an empty list, as Go's encoding/json reads it into a slice.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub layers: Vec<Descriptor>,
    /// OCI 1.1 artifacts: what the manifest is, and the manifest it refers to.
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
}

impl Manifest {
    /// An OCI artifact rather than a runnable image: an `artifactType`, or a config that is
    /// no image config (`application/vnd.oci.empty.v1+json`, a tool's own type).
    pub fn is_artifact(&self) -> bool {
        self.artifact_type.is_some()
            || (self.config.media_type != OCI_CONFIG && self.config.media_type != DOCKER_CONFIG)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: Option<RunConfigDoc>,
    #[serde(default)]
    pub rootfs: Option<RootfsDoc>,
}

impl Config {
    pub fn platform(&self) -> PlatformDoc {
        PlatformDoc {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
        }
    }
    pub fn diff_ids(&self) -> &[String] {
        self.rootfs.as_ref().map_or(&[], |r| &r.diff_ids)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfigDoc {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootfsDoc {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One image of a docker-archive's `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerArchiveEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(default)]
    pub layers: Vec<String>,
}

/// Parse a document as Go's encoding/json reads it into the runtimes' structs, naming it in
/// the error. Go matches object keys to fields case-insensitively and lets the last match win,
/// so keys that collide after case folding are refused (in every object, maps included), and
/// a key that only folds to a field's name is read as that field. Numbers that do not fit a
/// float64, and nesting deeper than `MAX_DEPTH`, are refused.
pub fn parse<T: Doc>(bytes: &[u8], what: &str) -> Result<T, String> {
    let value = go_value(bytes, what, &T::SHAPE)?;
    serde_json::from_value(value)
        .map_err(|e| format!("{what} is not valid JSON of the expected shape: {e}"))
}

/// The checks of `parse` alone, for readers that keep the document as a `serde_json::Value`
/// (push): the value returned has Go's field names where `shape` knows them.
pub fn go_value(bytes: &[u8], what: &str, shape: &Shape) -> Result<serde_json::Value, String> {
    let tree: gojson::J = serde_json::from_slice(bytes)
        .map_err(|e| format!("{what} is not valid JSON of the expected shape: {e}"))?;
    gojson::canonical(tree, shape, &mut String::from("$"), 0).map_err(|e| format!("{what}: {e}"))
}

/// Deeper documents are refused (Go allows 10,000; serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 64;

/// The fields the runtimes' Go structs have, by their JSON names, so keys can be matched to
/// them as Go matches (case-insensitively); `Any` is a value read as a whole.
pub enum Shape {
    Any,
    Object(&'static [(&'static str, Shape)]),
    Array(&'static Shape),
}

/// A document type and the Go struct shape it is read as.
pub trait Doc: serde::de::DeserializeOwned {
    const SHAPE: Shape;
}

const PLATFORM: Shape = Shape::Object(&[
    ("architecture", Shape::Any),
    ("os", Shape::Any),
    ("variant", Shape::Any),
    ("os.version", Shape::Any),
    ("os.features", Shape::Any),
]);
const DESCRIPTOR: Shape = Shape::Object(&[
    ("mediaType", Shape::Any),
    ("digest", Shape::Any),
    ("size", Shape::Any),
    ("platform", PLATFORM),
    ("annotations", Shape::Any),
    ("urls", Shape::Any),
    ("artifactType", Shape::Any),
    ("data", Shape::Any),
]);
const DESCRIPTORS: Shape = Shape::Array(&DESCRIPTOR);

impl Doc for Index {
    const SHAPE: Shape = Shape::Object(&[
        ("schemaVersion", Shape::Any),
        ("mediaType", Shape::Any),
        ("manifests", DESCRIPTORS),
        ("subject", DESCRIPTOR),
        ("annotations", Shape::Any),
        ("artifactType", Shape::Any),
    ]);
}

impl Doc for Manifest {
    const SHAPE: Shape = Shape::Object(&[
        ("schemaVersion", Shape::Any),
        ("mediaType", Shape::Any),
        ("config", DESCRIPTOR),
        ("layers", DESCRIPTORS),
        ("manifests", DESCRIPTORS),
        ("subject", DESCRIPTOR),
        ("annotations", Shape::Any),
        ("artifactType", Shape::Any),
    ]);
}

impl Doc for Config {
    const SHAPE: Shape = Shape::Object(&[
        ("architecture", Shape::Any),
        ("os", Shape::Any),
        ("variant", Shape::Any),
        ("os.version", Shape::Any),
        ("os.features", Shape::Any),
        ("created", Shape::Any),
        ("author", Shape::Any),
        (
            "config",
            Shape::Object(&[
                ("Entrypoint", Shape::Any),
                ("Cmd", Shape::Any),
                ("Env", Shape::Any),
                ("WorkingDir", Shape::Any),
                ("User", Shape::Any),
                ("Labels", Shape::Any),
                ("ExposedPorts", Shape::Any),
                ("Volumes", Shape::Any),
                ("StopSignal", Shape::Any),
                ("ArgsEscaped", Shape::Any),
            ]),
        ),
        (
            "rootfs",
            Shape::Object(&[("type", Shape::Any), ("diff_ids", Shape::Any)]),
        ),
        ("history", Shape::Any),
    ]);
}

impl Doc for Vec<DockerArchiveEntry> {
    const SHAPE: Shape = Shape::Array(&Shape::Object(&[
        ("Config", Shape::Any),
        ("RepoTags", Shape::Any),
        ("Layers", Shape::Any),
        ("Parent", Shape::Any),
        ("LayerSources", Shape::Any),
    ]));
}

/// A JSON tree that keeps every key as written, so collisions can be seen.
mod gojson {
    use super::{MAX_DEPTH, Shape};
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Number, Value};

    pub enum J {
        Null,
        Bool(bool),
        Num(Number),
        Str(String),
        Arr(Vec<J>),
        Obj(Vec<(String, J)>),
    }

    impl<'de> Deserialize<'de> for J {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
            d.deserialize_any(JVisitor)
        }
    }

    struct JVisitor;

    impl<'de> Visitor<'de> for JVisitor {
        type Value = J;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_unit<E>(self) -> Result<J, E> {
            Ok(J::Null)
        }
        fn visit_bool<E>(self, v: bool) -> Result<J, E> {
            Ok(J::Bool(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<J, E> {
            Ok(J::Num(v.into()))
        }
        fn visit_i64<E>(self, v: i64) -> Result<J, E> {
            Ok(J::Num(v.into()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<J, E> {
            Number::from_f64(v)
                .map(J::Num)
                .ok_or_else(|| E::custom("a number out of float64 range (Go refuses it)"))
        }
        fn visit_str<E>(self, v: &str) -> Result<J, E> {
            Ok(J::Str(v.to_string()))
        }
        fn visit_string<E>(self, v: String) -> Result<J, E> {
            Ok(J::Str(v))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = a.next_element()? {
                out.push(v);
            }
            Ok(J::Arr(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = a.next_entry::<String, J>()? {
                out.push((k, v));
            }
            Ok(J::Obj(out))
        }
    }

    /// Case folding as Go's `strings.EqualFold` sees it (Kelvin sign, long s, final sigma
    /// included); a few extra collisions (`ß`, `ss`) are refused too, which is safe.
    pub fn fold(s: &str) -> String {
        s.chars()
            .flat_map(char::to_uppercase)
            .flat_map(char::to_lowercase)
            .collect()
    }

    pub fn canonical(j: J, shape: &Shape, at: &mut String, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nests deeper than {MAX_DEPTH} levels at {at}"));
        }
        Ok(match j {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::Num(n) => Value::Number(n),
            J::Str(s) => Value::String(s),
            J::Arr(items) => {
                let inner = match shape {
                    Shape::Array(s) => s,
                    _ => &Shape::Any,
                };
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.into_iter().enumerate() {
                    let len = at.len();
                    at.push_str(&format!("[{i}]"));
                    out.push(canonical(v, inner, at, depth + 1)?);
                    at.truncate(len);
                }
                Value::Array(out)
            }
            J::Obj(pairs) => {
                let fields: &[(&str, Shape)] = match shape {
                    Shape::Object(f) => f,
                    _ => &[],
                };
                let mut seen: std::collections::HashMap<String, String> = Default::default();
                let mut out = Map::new();
                for (k, v) in pairs {
                    let folded = fold(&k);
                    if let Some(first) = seen.insert(folded, k.clone()) {
                        let how = if first == k {
                            "twice"
                        } else {
                            "twice after case folding (Go's encoding/json matches keys case-insensitively and keeps the last)"
                        };
                        return Err(format!(
                            "the keys {first:?} and {k:?} at {at} name one field {how}; refused as ambiguous"
                        ));
                    }
                    let field = fields.iter().find(|(name, _)| fold(name) == fold(&k));
                    let (name, inner) = match field {
                        Some((name, inner)) => (name.to_string(), inner),
                        None => (k, &Shape::Any),
                    };
                    let len = at.len();
                    at.push('.');
                    at.push_str(&name);
                    let value = canonical(v, inner, at, depth + 1)?;
                    at.truncate(len);
                    out.insert(name, value);
                }
                Value::Object(out)
            }
        })
    }
}

/// `sha256:<64 hex>`; anything else could name a path outside the blob store.
pub fn check_digest(digest: &str) -> Result<&str, String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("digest {digest:?} is not a sha256 digest"))?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(hex)
    } else {
        Err(format!(
            "digest {digest:?} is malformed (expected sha256: and 64 lowercase hex digits)"
        ))
    }
}
