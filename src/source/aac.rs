//! The `mp4a` sample entry of an AAC track from its AudioSpecificConfig, for sources that find
//! the configuration themselves (MPEG-TS ADTS headers, MP4A-LATM StreamMuxConfig). retina
//! writes the entry (`esds` and all) for an RFC 3640 stream; such a stream is described to
//! it with the configuration as its `config=`.

use bytes::Bytes;

use crate::mp4::{Codec, TrackKind};

use super::TrackParams;

/// Track parameters of AAC coded per `asc`, timed in `clock_rate` ticks.
pub fn aac_params(asc: &[u8], clock_rate: u32, channels: u16) -> Result<TrackParams, String> {
    let hex: String = asc.iter().map(|b| format!("{b:02x}")).collect();
    let fmtp = format!(
        "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={hex}"
    );
    let channels = std::num::NonZeroU16::new(channels);
    let d = retina::codec::Depacketizer::new(
        "audio",
        "mpeg4-generic",
        clock_rate,
        channels,
        Some(&fmtp),
    )
    .map_err(|e| format!("AAC config {hex}: {e}"))?;
    let Some(retina::codec::ParametersRef::Audio(a)) = d.parameters() else {
        return Err(format!("AAC config {hex} not understood"));
    };
    let entry = a
        .mp4_sample_entry()
        .build()
        .map_err(|e| format!("AAC sample entry: {e}"))?;
    Ok(TrackParams {
        kind: TrackKind::Audio,
        codec: Codec::Aac,
        timescale: a.clock_rate(),
        sample_entry: Bytes::from(entry),
        width: 0,
        height: 0,
    })
}
