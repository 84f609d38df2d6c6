use std::sync::Arc;

use super::*;
use crate::mp4::{Fragment, InitSegment, TrackKind};
use crate::ring::FeedState;
use crate::ring::memory::{MemoryFeed, demo_feed};

fn ended() -> FeedState {
    FeedState {
        ended: true,
        streamed: true,
        ..FeedState::default()
    }
}

/// Everything a viewer of an ended feed gets, until the end.
async fn watch_all(feed: Arc<MemoryFeed>) -> Vec<LiveChunk> {
    let mut viewer = LiveStream::new(feed);
    let mut chunks = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), viewer.next()).await {
            Ok(Ok(c)) => chunks.push(c),
            Ok(Err(LiveEnd::Ended)) => return chunks,
            Err(_) => panic!("a viewer of an ended feed waited; got {}", chunks.len()),
        }
    }
}

/// A new viewer gets the init, then the parts from the newest keyframe on: the init names
/// the codec for `isTypeSupported`, and the bytes parse back into the very samples the ring
/// holds, starting with a keyframe.
#[tokio::test]
async fn a_viewer_starts_at_the_newest_keyframe_with_the_ring_s_own_samples() {
    let (feed, _) = demo_feed(6.0, ended()).await;
    let ring_parts: Vec<Arc<crate::segment::Segment>> =
        feed.since(0).into_iter().map(|(s, _)| s).collect();
    let key = ring_parts
        .iter()
        .rposition(|p| p.starts_with_keyframe())
        .expect("a keyframe");
    let expected = &ring_parts[key..];
    let chunks = watch_all(Arc::new(feed)).await;

    let LiveChunk::Init(init) = &chunks[0] else {
        panic!("the first chunk is not an init: {:?}", chunks[0]);
    };
    let mime = init.mime.as_deref().expect("the demo's codecs have names");
    assert!(mime.starts_with("video/mp4; codecs=\"avc1."), "{mime}");
    assert!(init.width > 0 && init.height > 0);
    let parsed = InitSegment::parse(init.bytes.clone(), 0).expect("the init parses");
    let video = parsed
        .tracks
        .iter()
        .find(|t| t.kind == TrackKind::Video)
        .expect("video")
        .track_id;

    // Parts already in the ring come together, in order, as one chunk.
    assert_eq!(
        chunks.len(),
        2,
        "the init, then one chunk of everything waiting"
    );
    let LiveChunk::Media(bytes) = &chunks[1] else {
        panic!("a second init from one stream");
    };
    let got = Fragment::parse_all(bytes, 0, &parsed).expect("the media parses");
    let want: Vec<&Fragment> = expected
        .iter()
        .flat_map(|p| p.fragments.iter().filter(|f| f.sample_count() > 0))
        .collect();
    assert_eq!(got.len(), want.len(), "every fragment of every part");
    for (g, w) in got.iter().zip(want) {
        for t in &w.tracks {
            let gt = g.track(t.track_id).expect("every track kept");
            assert_eq!(gt.base_decode_time, t.base_decode_time);
            let gs: Vec<_> = gt.samples().collect();
            let ws: Vec<_> = t.samples().collect();
            assert_eq!(gs, ws);
            // The bytes too.
            let (ga, wa) = (g.data.to_bytes().unwrap(), w.data.to_bytes().unwrap());
            let (gr, wr) = (&gt.runs[0], &t.runs[0]);
            let n = gr.data_len() as usize;
            assert_eq!(
                ga[gr.data_offset as usize..][..n],
                wa[wr.data_offset as usize..][..n]
            );
        }
    }
    let first = got[0].track(video).and_then(|t| t.samples().next());
    assert!(first.is_some_and(|s| s.is_sync()), "starts with a keyframe");
}

/// A viewer that finds more than `MAX_BEHIND` waiting skips to the newest keyframe: it never
/// gets more than a GOP of old media at once.
#[tokio::test]
async fn a_viewer_far_behind_skips_to_the_newest_keyframe() {
    let (feed, _) = demo_feed(10.0, ended()).await;
    let feed = Arc::new(feed);
    let mut viewer = LiveStream::new(feed.clone());
    // The first fetch sees the whole ring as "behind" (its parts are stamped ahead of now).
    let mut seconds = 0.0;
    let mut parts = 0;
    loop {
        match viewer.next().await {
            Ok(LiveChunk::Media(b)) => {
                let init = InitSegment::parse(feed.since(0)[0].0.init.raw.clone(), 0).unwrap();
                for f in Fragment::parse_all(&b, 0, &init).unwrap() {
                    for t in f.tracks.iter().filter(|t| {
                        init.tracks
                            .iter()
                            .any(|i| i.track_id == t.track_id && i.kind == TrackKind::Video)
                    }) {
                        let ts = init
                            .tracks
                            .iter()
                            .find(|i| i.track_id == t.track_id)
                            .unwrap();
                        seconds += t.duration() as f64 / f64::from(ts.timescale);
                    }
                }
                parts += 1;
            }
            Ok(LiveChunk::Init(_)) => {}
            Err(LiveEnd::Ended) => break,
        }
    }
    assert!(parts > 0);
    assert!(
        seconds <= 1.05,
        "{seconds} s of media in {parts} parts: more than the demo's 1 s GOP"
    );
}

/// The mux refuses a part it cannot describe, naming it, rather than sending bytes a
/// player would misread.
#[tokio::test]
async fn a_part_without_decode_times_is_refused_by_name() {
    let (feed, _) = demo_feed(2.0, ended()).await;
    let part = feed.since(0)[1].0.clone();
    let mut broken = (*part).clone();
    for f in &mut broken.fragments {
        for t in &mut f.tracks {
            t.base_decode_time = None;
        }
    }
    let mut n = 0;
    let e = mux::part_bytes(&broken, &mut n).expect_err("refused");
    assert!(e.to_string().contains("no decode time"), "{e}");
    assert!(mux::part_bytes(&part, &mut n).is_ok());
}
