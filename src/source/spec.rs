//! Naming a source: `demo`, an `rtsp://` URL, or a file path — and opening it.

use std::path::PathBuf;

use super::{
    FileSource, Pace, RtspOptions, RtspSource, Source, SourceError, SourceErrorKind, SourceEvent,
    demo_source, redact_url,
};

/// Where a camera's stream comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The built-in sample, looped in real time.
    Demo,
    /// An RTSP URL (credentials may be in it; it is shown only through [`redact_url`]).
    Rtsp(String),
    /// An MP4 or MPEG-TS file replayed as a camera.
    File {
        path: PathBuf,
        pace: Pace,
        looping: bool,
    },
}

impl SourceSpec {
    /// `demo`, `rtsp://…` (or `rtsps://`), anything else is a file path.
    pub fn parse(text: &str) -> SourceSpec {
        if text == "demo" {
            SourceSpec::Demo
        } else if text.starts_with("rtsp://") || text.starts_with("rtsps://") {
            SourceSpec::Rtsp(text.to_owned())
        } else {
            SourceSpec::File {
                path: PathBuf::from(text),
                pace: Pace::RealTime,
                looping: false,
            }
        }
    }

    /// How the source is shown in logs and APIs (credentials redacted).
    pub fn display(&self) -> String {
        match self {
            SourceSpec::Demo => "demo".into(),
            SourceSpec::Rtsp(url) => redact_url(url),
            SourceSpec::File { path, .. } => path.display().to_string(),
        }
    }

    /// True when the stream ends by itself (a file played once): it is then not reconnected.
    pub fn is_finite(&self) -> bool {
        matches!(self, SourceSpec::File { looping: false, .. })
    }

    /// Opens (connects) the source.
    pub async fn open(&self, camera: &str, rtsp: &RtspOptions) -> Result<AnySource, SourceError> {
        Ok(match self {
            SourceSpec::Demo => AnySource::File(Box::new(demo_source(Pace::RealTime)?)),
            SourceSpec::Rtsp(url) => {
                AnySource::Rtsp(Box::new(RtspSource::connect(url, camera, rtsp).await?))
            }
            SourceSpec::File {
                path,
                pace,
                looping,
            } => {
                if !path.exists() {
                    return Err(SourceError::new(
                        SourceErrorKind::Io,
                        format!("{}: no such file", path.display()),
                    ));
                }
                AnySource::File(Box::new(FileSource::open(path, *pace, *looping)?))
            }
        })
    }
}

/// Any opened source.
#[derive(Debug)]
pub enum AnySource {
    Rtsp(Box<RtspSource>),
    File(Box<FileSource>),
}

impl Source for AnySource {
    async fn next(&mut self) -> Result<Option<SourceEvent>, SourceError> {
        match self {
            AnySource::Rtsp(s) => s.next().await,
            AnySource::File(s) => s.next().await,
        }
    }

    fn source_audio(&self) -> Option<String> {
        match self {
            AnySource::Rtsp(s) => s.source_audio(),
            AnySource::File(s) => s.source_audio(),
        }
    }
}
