//! The stretches of a time range that a camera's files leave out.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::time::rfc3339;

/// Spaces between files shorter than this are the seams of cutting, not gaps.
pub const GAP_TOLERANCE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Gap {
    pub start: String,
    pub end: String,
    pub seconds: f64,
}

/// The stretches of `[start, end]` that `covered` (sorted by start) leaves out, longer than
/// [`GAP_TOLERANCE`].
pub fn gaps(start: SystemTime, end: SystemTime, covered: &[(SystemTime, SystemTime)]) -> Vec<Gap> {
    let mut out = Vec::new();
    let mut cursor = start;
    let mut push = |from: SystemTime, to: SystemTime| {
        if let Ok(d) = to.duration_since(from)
            && d > GAP_TOLERANCE
        {
            out.push(Gap {
                start: rfc3339(from),
                end: rfc3339(to),
                seconds: d.as_secs_f64(),
            });
        }
    };
    for &(s, e) in covered {
        if s > cursor {
            push(cursor, s.min(end));
        }
        cursor = cursor.max(e);
        if cursor >= end {
            return out;
        }
    }
    push(cursor, end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn gaps_are_what_the_files_leave_out_past_the_seams() {
        let covered = [(at(100), at(160)), (at(160), at(220)), (at(300), at(360))];
        let g = gaps(at(50), at(400), &covered);
        let secs: Vec<f64> = g.iter().map(|g| g.seconds).collect();
        assert_eq!(secs, [50.0, 80.0, 40.0]);
        assert!(gaps(at(100), at(220), &covered).is_empty());
        assert_eq!(gaps(at(0), at(10), &[]).len(), 1);
    }
}
