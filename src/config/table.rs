//! Reading one TOML table key by key, collecting every problem with its key path instead of
//! stopping at the first (a user fixing a config wants the whole list at once).

use toml::{Table, Value};

/// One thing wrong in a config, at a key path such as `cameras[1].source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub problem: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

/// A table being read. Every key read is marked; [`Fields::finish`] reports the rest as
/// unknown, which catches misspelt keys that would otherwise be silently ignored.
pub struct Fields<'a, 'p> {
    path: String,
    table: &'a Table,
    used: Vec<&'a str>,
    problems: &'p mut Vec<Problem>,
}

impl<'a, 'p> Fields<'a, 'p> {
    pub fn new(path: &str, table: &'a Table, problems: &'p mut Vec<Problem>) -> Self {
        Fields {
            path: path.to_owned(),
            table,
            used: Vec::new(),
            problems,
        }
    }

    pub fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    pub fn problem(&mut self, name: &str, problem: impl Into<String>) {
        let key = self.key(name);
        self.problems.push(Problem {
            key,
            problem: problem.into(),
        });
    }

    fn get(&mut self, name: &str) -> Option<&'a Value> {
        let (k, v) = self.table.get_key_value(name)?;
        self.used.push(k.as_str());
        Some(v)
    }

    fn wrong_type(&mut self, name: &str, want: &str, got: &Value) {
        self.problem(name, format!("expected {want}, found {}", got.type_str()));
    }

    pub fn string(&mut self, name: &str) -> Option<&'a str> {
        match self.get(name)? {
            Value::String(s) => Some(s.as_str()),
            other => {
                self.wrong_type(name, "a string", other);
                None
            }
        }
    }

    pub fn required_string(&mut self, name: &str) -> Option<&'a str> {
        let v = self.string(name);
        if v.is_none() && !self.table.contains_key(name) {
            self.problem(name, "is required");
        }
        v
    }

    pub fn bool(&mut self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(name, "true or false", other);
                None
            }
        }
    }

    /// An integer or a float, as seconds, within `range`.
    pub fn seconds(&mut self, name: &str, range: std::ops::RangeInclusive<f64>) -> Option<f64> {
        let v = match self.get(name)? {
            Value::Integer(i) => *i as f64,
            Value::Float(f) => *f,
            other => {
                self.wrong_type(name, "a number of seconds", other);
                return None;
            }
        };
        if !v.is_finite() || !range.contains(&v) {
            self.problem(
                name,
                format!(
                    "{v} is not between {} and {} seconds",
                    range.start(),
                    range.end()
                ),
            );
            return None;
        }
        Some(v)
    }

    pub fn integer(&mut self, name: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
        let v = match self.get(name)? {
            Value::Integer(i) => *i,
            other => {
                self.wrong_type(name, "an integer", other);
                return None;
            }
        };
        if !range.contains(&v) {
            self.problem(
                name,
                format!("{v} is not between {} and {}", range.start(), range.end()),
            );
            return None;
        }
        Some(v)
    }

    /// A size: an integer of bytes, or a string such as `"500MB"`, `"2GiB"` or `"1.5TB"`
    /// (k, M, G, T are powers of 1000; Ki, Mi, Gi, Ti of 1024), within `range` bytes.
    pub fn bytes(&mut self, name: &str, range: std::ops::RangeInclusive<u64>) -> Option<u64> {
        let v = match self.get(name)? {
            Value::Integer(i) if *i >= 0 => *i as u64,
            Value::String(s) => {
                match parse_bytes(s) {
                    Some(v) => v,
                    None => {
                        self.problem(
                        name,
                        format!("{s:?} is not a size such as \"500MB\", \"2GiB\" or a number of bytes"),
                    );
                        return None;
                    }
                }
            }
            other => {
                self.wrong_type(name, "a size (bytes, or a string such as \"2GiB\")", other);
                return None;
            }
        };
        if !range.contains(&v) {
            self.problem(
                name,
                format!(
                    "{v} bytes is not between {} and {} bytes",
                    range.start(),
                    range.end()
                ),
            );
            return None;
        }
        Some(v)
    }

    /// An age or period: a number of seconds, or a string such as `"90s"`, `"30m"`, `"12h"`,
    /// `"14d"` or `"2w"`, within `range` seconds.
    pub fn age(&mut self, name: &str, range: std::ops::RangeInclusive<f64>) -> Option<f64> {
        let v = match self.get(name)? {
            Value::Integer(i) => *i as f64,
            Value::Float(f) => *f,
            Value::String(s) => {
                match parse_age(s) {
                    Some(v) => v,
                    None => {
                        self.problem(
                        name,
                        format!("{s:?} is not an age such as \"12h\", \"14d\" or a number of seconds"),
                    );
                        return None;
                    }
                }
            }
            other => {
                self.wrong_type(name, "an age (seconds, or a string such as \"14d\")", other);
                return None;
            }
        };
        if !v.is_finite() || !range.contains(&v) {
            self.problem(
                name,
                format!(
                    "{v} s is not between {} and {} seconds",
                    range.start(),
                    range.end()
                ),
            );
            return None;
        }
        Some(v)
    }

    pub fn table(&mut self, name: &str) -> Option<&'a Table> {
        match self.get(name)? {
            Value::Table(t) => Some(t),
            other => {
                self.wrong_type(name, "a table", other);
                None
            }
        }
    }

    /// A secret read from the environment variable that key `name` names (`password_env`):
    /// `Some(None)` when the key is absent, `None` after a problem (the variable unset).
    pub fn secret_env(
        &mut self,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Option<Secret>> {
        let Some(var) = self.string(name) else {
            return Some(None);
        };
        match env(var).filter(|s| !s.is_empty()) {
            Some(s) => Some(Some(Secret(s))),
            None => {
                self.problem(
                    name,
                    format!("the environment variable {var} is not set or empty"),
                );
                None
            }
        }
    }

    pub fn array(&mut self, name: &str) -> Option<&'a [Value]> {
        match self.get(name)? {
            Value::Array(a) => Some(a.as_slice()),
            other => {
                self.wrong_type(name, "an array", other);
                None
            }
        }
    }

    /// Reports the keys nobody read.
    pub fn finish(self) {
        for k in self.table.keys() {
            if !self.used.contains(&k.as_str()) {
                let key = if self.path.is_empty() {
                    k.clone()
                } else {
                    format!("{}.{k}", self.path)
                };
                self.problems.push(Problem {
                    key,
                    problem: "unknown key".into(),
                });
            }
        }
    }
}

/// A secret read from the environment: never printed, not even in debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Splits `"1.5GiB"` into its number and its unit.
fn number_and_unit(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let at = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let number: f64 = s[..at].parse().ok()?;
    (number.is_finite() && number >= 0.0).then_some((number, s[at..].trim()))
}

/// `"500MB"` → 500,000,000; `"2GiB"` → 2 × 2^30; a bare number is bytes.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let (number, unit) = number_and_unit(s)?;
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "ti" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v = (number * scale).round();
    (v < u64::MAX as f64).then_some(v as u64)
}

/// `"14d"` → 1,209,600 seconds; a bare number is seconds.
pub fn parse_age(s: &str) -> Option<f64> {
    let (number, unit) = number_and_unit(s)?;
    let scale = match unit {
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 7.0 * 86_400.0,
        _ => return None,
    };
    Some(number * scale)
}
