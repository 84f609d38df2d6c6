//! `GET /api/clips` with a filter and a page: `camera`, `state`, `order` (`oldest`, the
//! default, or `newest`), `offset` and `limit`. The answer stays an array; the number of
//! clips that match the filter, before paging, is in `X-Total-Count`.

use serde::Deserialize;

use super::clips::{ClipState, ClipView};

/// The most clips one page holds.
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipQuery {
    camera: Option<String>,
    state: Option<String>,
    order: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
}

/// A page of clips, and how many matched.
pub struct Page {
    pub clips: Vec<ClipView>,
    pub total: usize,
}

impl ClipQuery {
    /// The page of `all` (oldest first) this query asks for, or what is wrong with it.
    pub fn apply(&self, all: Vec<ClipView>) -> Result<Page, String> {
        let state = match self.state.as_deref() {
            None => None,
            Some(s) => Some(
                ClipState::ALL
                    .into_iter()
                    .find(|c| c.name() == s)
                    .ok_or_else(|| {
                        format!("state: {s:?} is none of recording, finalizing, done, failed")
                    })?,
            ),
        };
        let newest = match self.order.as_deref() {
            None | Some("oldest") => false,
            Some("newest") => true,
            Some(o) => return Err(format!("order: {o:?} is neither oldest nor newest")),
        };
        let number = |name: &str,
                      v: &Option<String>,
                      max: usize|
         -> Result<Option<usize>, String> {
            v.as_deref()
                .map(|s| {
                    s.parse::<usize>()
                        .ok()
                        .filter(|n| *n <= max)
                        .ok_or_else(|| format!("{name}: {s:?} is not a whole number up to {max}"))
                })
                .transpose()
        };
        let offset = number("offset", &self.offset, usize::MAX)?.unwrap_or(0);
        let limit = match number("limit", &self.limit, MAX_LIMIT)? {
            Some(0) => return Err("limit: must be at least 1".to_owned()),
            Some(n) => n,
            None => usize::MAX,
        };
        let mut clips: Vec<ClipView> = all
            .into_iter()
            .filter(|c| self.camera.is_none() || c.camera == self.camera)
            .filter(|c| state.is_none_or(|s| c.state == s))
            .collect();
        if newest {
            clips.reverse();
        }
        let total = clips.len();
        let clips = clips.into_iter().skip(offset).take(limit).collect();
        Ok(Page { clips, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(id: &str, camera: &str, state: ClipState) -> ClipView {
        serde_json::from_value(serde_json::json!({
            "id": id, "camera": camera, "state": state.name(), "path": "/x.mp4",
            "trigger_time": null, "requested_lookback": 0.0, "requested_duration": 1.0,
            "preroll": 0.0, "duration": 1.0, "bytes": 1, "discontinuities": 0,
            "discontinuity_times": [], "ended_early": null, "error": null, "recovered": false
        }))
        .expect("a clip view")
    }

    fn query(q: &str) -> Result<ClipQuery, String> {
        let uri: axum::http::Uri = format!("/api/clips?{q}").parse().expect("a uri");
        axum::extract::Query::try_from_uri(&uri)
            .map(|q| q.0)
            .map_err(|e| e.to_string())
    }

    fn ids(q: &str) -> Result<(Vec<String>, usize), String> {
        let all = vec![
            clip("a", "door", ClipState::Done),
            clip("b", "yard", ClipState::Done),
            clip("c", "door", ClipState::Failed),
            clip("d", "door", ClipState::Done),
            clip("e", "door", ClipState::Recording),
        ];
        let page = query(q)?.apply(all)?;
        Ok((page.clips.into_iter().map(|c| c.id).collect(), page.total))
    }

    #[test]
    fn filters_order_and_pages() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(ids("").unwrap(), (v(&["a", "b", "c", "d", "e"]), 5));
        assert_eq!(ids("camera=door&state=done").unwrap(), (v(&["a", "d"]), 2));
        assert_eq!(
            ids("camera=door&order=newest&limit=2").unwrap(),
            (v(&["e", "d"]), 4)
        );
        assert_eq!(
            ids("camera=door&order=newest&limit=2&offset=2").unwrap(),
            (v(&["c", "a"]), 4)
        );
        assert_eq!(ids("offset=9").unwrap(), (v(&[]), 5));
    }

    #[test]
    fn bad_values_are_named() {
        for (q, names) in [
            ("state=gone", "state"),
            ("order=up", "order"),
            ("limit=0", "limit"),
            ("limit=5000", "limit"),
            ("offset=-1", "offset"),
        ] {
            let e = ids(q).expect_err(q);
            assert!(e.starts_with(names), "{q}: {e}");
        }
        assert!(query("colour=red").is_err());
    }
}
