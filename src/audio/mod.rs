//! Camera audio that MP4 clips (and browsers) cannot carry as it is sent — G.711 A-law and
//! µ-law, L16 — is kept losslessly as FLAC: each RTP packet becomes one FLAC frame in an
//! `fLaC` sample entry. AAC needs none of this and passes through; Opus passes through in an
//! `Opus` sample entry ([`opus`]), and AAC sent as MP4A-LATM is unwrapped to plain AAC
//! ([`latm`]).

mod bits;
pub mod entry;
pub mod flac;
pub mod g711;
pub mod latm;
pub mod opus;
pub mod pcm;
mod rice;

pub use entry::flac_sample_entry;
pub use flac::{FlacError, Format};
pub use pcm::{FlacFrame, PcmCodec, PcmError, PcmToFlac, describe};

#[cfg(test)]
mod tests;
