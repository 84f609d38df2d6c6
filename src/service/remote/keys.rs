//! Where things go in the bucket, under the configured prefix:
//!
//! | key | what |
//! |---|---|
//! | `clips/<node>/<name>` | a finished clip, byte for byte the local file |
//! | `meta/<node>/<name>.json` | its sidecar: the clip's API view, with where it is |
//! | `parts/<node>/<name>/<offset>` | while it records: its file so far, in pieces named by their offset (12 digits); in key order, they are a playable fragmented MP4 |
//! | `continuous/<node>/<camera>/<file>` | continuous recordings (`upload = "clips+continuous"`) |
//!
//! `<name>` is the clip's path relative to the recordings directory (`front/front-….mp4`);
//! a clip in another allowed directory is named by its absolute path under `_/`. The node
//! comes first after the kind, so one listing of `meta/` finds every node's clips, and
//! nodes never write each other's keys.

use std::path::{Component, Path};

use object_store::path::Path as Key;

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    pub node: String,
}

/// Digits of a part's offset in its key: a terabyte, sorted as text.
const OFFSET_DIGITS: usize = 12;

impl Keys {
    pub fn new(prefix: &str, node: &str) -> Keys {
        Keys {
            prefix: prefix.trim_matches('/').to_owned(),
            node: node.to_owned(),
        }
    }

    fn key(&self, parts: &[&str]) -> Key {
        let mut text = String::new();
        for p in std::iter::once(self.prefix.as_str())
            .chain(parts.iter().copied())
            .filter(|p| !p.is_empty())
        {
            if !text.is_empty() {
                text.push('/');
            }
            text.push_str(p);
        }
        // `Key::from` percent-encodes what a key may not hold, level by level.
        Key::from(text)
    }

    /// The name a clip goes by in the bucket (see the module's notes).
    pub fn name(recordings: &Path, path: &Path) -> String {
        let (root, rest) = match path.strip_prefix(recordings) {
            Ok(rest) => ("", rest),
            Err(_) => ("_", path),
        };
        let levels: Vec<String> = rest
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let mut name = root.to_owned();
        for l in levels {
            if !name.is_empty() {
                name.push('/');
            }
            name.push_str(&l);
        }
        name
    }

    pub fn clip(&self, name: &str) -> Key {
        self.key(&["clips", &self.node, name])
    }

    pub fn sidecar(&self, name: &str) -> Key {
        self.sidecar_of(&self.node, name)
    }

    pub fn sidecar_of(&self, node: &str, name: &str) -> Key {
        self.key(&["meta", node, &format!("{name}.json")])
    }

    /// Every node's sidecars.
    pub fn sidecars(&self) -> Key {
        self.key(&["meta"])
    }

    /// The pieces of a clip in progress.
    pub fn parts(&self, name: &str) -> Key {
        self.parts_of(&self.node, name)
    }

    pub fn parts_of(&self, node: &str, name: &str) -> Key {
        self.key(&["parts", node, name])
    }

    pub fn part(&self, name: &str, offset: u64) -> Key {
        self.key(&[
            "parts",
            &self.node,
            name,
            &format!("{offset:0width$}", width = OFFSET_DIGITS),
        ])
    }

    pub fn continuous(&self, name: &str) -> Key {
        self.key(&["continuous", &self.node, name])
    }

    /// The node and the clip name a sidecar's key holds.
    pub fn parse_sidecar(&self, key: &Key) -> Option<(String, String)> {
        let text = key.as_ref();
        let rest = if self.prefix.is_empty() {
            text
        } else {
            text.strip_prefix(self.prefix.as_str())?.strip_prefix('/')?
        };
        let rest = rest.strip_prefix("meta/")?;
        let (node, name) = rest.split_once('/')?;
        let name = name.strip_suffix(".json")?;
        Some((decode(node), decode(name)))
    }
}

/// Undoes the percent-encoding `Key::from` applied to a level.
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys() {
        let rec = Path::new("/r");
        assert_eq!(Keys::name(rec, Path::new("/r/front/a.mp4")), "front/a.mp4");
        assert_eq!(Keys::name(rec, Path::new("/srv/x/b.mp4")), "_/srv/x/b.mp4");
        let k = Keys::new("/backups/", "garage");
        assert_eq!(
            k.clip("front/a.mp4").as_ref(),
            "backups/clips/garage/front/a.mp4"
        );
        assert_eq!(
            k.part("front/a.mp4", 1234).as_ref(),
            "backups/parts/garage/front/a.mp4/000000001234"
        );
        let side = k.sidecar("front/a b.mp4");
        assert_eq!(
            k.parse_sidecar(&side),
            Some(("garage".into(), "front/a b.mp4".into()))
        );
        assert_eq!(k.parse_sidecar(&k.clip("x.mp4")), None);
        let bare = Keys::new("", "n1");
        assert_eq!(bare.sidecar("x.mp4").as_ref(), "meta/n1/x.mp4.json");
        assert_eq!(
            bare.parse_sidecar(&bare.sidecar("x.mp4")),
            Some(("n1".into(), "x.mp4".into()))
        );
    }
}
