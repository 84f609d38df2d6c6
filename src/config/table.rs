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
