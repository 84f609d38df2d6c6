//! Display orientation, written as the `tkhd` transformation matrix.

use std::fmt;

/// A `tkhd` matrix `{a, b, u, c, d, v, x, y, w}`: a, b, c, d, x, y in 16.16 fixed point, u, v,
/// w in 2.30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matrix(pub [i32; 9]);

const ONE: i32 = 0x0001_0000;
const W_ONE: i32 = 0x4000_0000;

impl Matrix {
    pub const IDENTITY: Matrix = Matrix([ONE, 0, 0, 0, ONE, 0, 0, 0, W_ONE]);

    /// The 36 bytes as stored in the box.
    pub fn to_bytes(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        for (i, v) in self.0.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
        }
        out
    }
}

/// EXIF orientation (1..8), as Home Assistant's camera settings use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    NoTransform = 1,
    Mirror = 2,
    Rotate180 = 3,
    Flip = 4,
    RotateLeftAndFlip = 5,
    RotateLeft = 6,
    RotateRightAndFlip = 7,
    RotateRight = 8,
}

impl Orientation {
    /// The matrix players apply. Translation stays 0, as Home Assistant writes it: players
    /// derive the placement from the rotation.
    pub fn matrix(self) -> Matrix {
        let (a, b, c, d) = match self {
            Orientation::NoTransform => (1, 0, 0, 1),
            Orientation::Mirror => (-1, 0, 0, 1),
            Orientation::Rotate180 => (-1, 0, 0, -1),
            Orientation::Flip => (1, 0, 0, -1),
            Orientation::RotateLeftAndFlip => (0, -1, -1, 0),
            Orientation::RotateLeft => (0, -1, 1, 0),
            Orientation::RotateRightAndFlip => (0, 1, 1, 0),
            Orientation::RotateRight => (0, 1, -1, 0),
        };
        Matrix([a * ONE, b * ONE, 0, c * ONE, d * ONE, 0, 0, 0, W_ONE])
    }
}

/// An orientation value outside 1..8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("orientation {0} is not an EXIF orientation (1..8)")]
pub struct BadOrientation(pub i64);

impl TryFrom<i64> for Orientation {
    type Error = BadOrientation;
    fn try_from(v: i64) -> Result<Self, BadOrientation> {
        Ok(match v {
            1 => Orientation::NoTransform,
            2 => Orientation::Mirror,
            3 => Orientation::Rotate180,
            4 => Orientation::Flip,
            5 => Orientation::RotateLeftAndFlip,
            6 => Orientation::RotateLeft,
            7 => Orientation::RotateRightAndFlip,
            8 => Orientation::RotateRight,
            other => return Err(BadOrientation(other)),
        })
    }
}

impl std::str::FromStr for Orientation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let n: i64 = s
            .trim()
            .parse()
            .map_err(|_| format!("orientation {s:?} is not a number 1..8"))?;
        Orientation::try_from(n).map_err(|e| e.to_string())
    }
}

impl fmt::Display for Orientation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", *self as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_right_matches_home_assistant_bytes() {
        // HA's ROTATE_RIGHT + XYW_ROW (stream/fmp4utils.py).
        let expected = [
            "00000000", "00010000", "00000000", "ffff0000", "00000000", "00000000", "00000000",
            "00000000", "40000000",
        ]
        .concat();
        let got: String = Orientation::RotateRight
            .matrix()
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn parses_only_exif_values() {
        assert_eq!("6".parse::<Orientation>(), Ok(Orientation::RotateLeft));
        assert!("0".parse::<Orientation>().is_err());
        assert!("9".parse::<Orientation>().is_err());
        assert!("x".parse::<Orientation>().is_err());
        assert_eq!(Orientation::NoTransform.matrix(), Matrix::IDENTITY);
    }
}
