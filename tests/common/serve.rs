//! `preroll serve` run as a child process, and an HTTP client for its API.
//!
//! ```ignore
//! let svc = Service::start(dir, &config_text);   // waits for "listening on"
//! let (status, clip) = svc.post("/api/cameras/demo/clips", r#"{"duration": 3}"#);
//! let done = svc.wait_state(clip["id"].as_str().unwrap(), "done", Duration::from_secs(30));
//! ```

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const TOKEN: &str = "test-token-0123456789";

/// A running `preroll serve`. Dropping it kills the process.
pub struct Service {
    child: Option<Child>,
    pub base: String,
    pub config: PathBuf,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
}

/// An HTTP answer: status, headers we look at, body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A config with the test token, `recordings` under `dir`, and the given camera tables.
pub fn config(dir: &Path, cameras: &str) -> String {
    format!(
        "[api]\nbind = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\n[storage]\nrecordings = \"{}\"\n\n{cameras}",
        dir.join("recordings").display()
    )
}

impl Service {
    /// Writes `config` to `dir/preroll.toml` and starts the service on it.
    pub fn start(dir: &Path, config: &str) -> Service {
        let path = dir.join("preroll.toml");
        std::fs::write(&path, config).expect("write config");
        Service::start_with(&path)
    }

    /// Starts the service on an existing config file and waits until it listens.
    pub fn start_with(config: &Path) -> Service {
        Service::start_with_env(config, &[])
    }

    /// As [`Service::start_with`], with these environment variables set for the service.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Service {
        let mut child = Command::new(env!("CARGO_BIN_EXE_preroll"))
            .args(["serve", "--config"])
            .arg(config)
            .env("PREROLL_LOG", "info")
            .env_remove("PREROLL_TOKEN")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start preroll serve");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("preroll: listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "preroll serve did not start listening; log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Service {
            child: Some(child),
            base,
            config: config.to_owned(),
            log,
            agent,
        }
    }

    /// Everything the service logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// A request with the given token (`None`: no Authorization header).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let reply = if method == "GET" || method == "DELETE" {
            let mut r = if method == "GET" {
                self.agent.get(&url)
            } else {
                self.agent.delete(&url)
            };
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        } else {
            let mut r = match method {
                "PATCH" => self.agent.patch(&url),
                "PUT" => self.agent.put(&url),
                _ => self.agent.post(&url),
            };
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            match body {
                Some(b) => r.header("Content-Type", "application/json").send(b),
                None => r.send_empty(),
            }
        };
        let mut response = reply.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("{method} {url}: reading the body: {e}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, Some(TOKEN), &[], None)
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        self.request("POST", path, Some(TOKEN), &[], Some(body))
    }

    /// Starts a clip; asserts 201 and returns the clip.
    #[track_caller]
    pub fn clip(&self, camera: &str, body: &str) -> Value {
        let r = self.post(&format!("/api/cameras/{camera}/clips"), body);
        assert_eq!(r.status, 201, "{}", r.text());
        let clip = r.json();
        let id = clip["id"].as_str().expect("id");
        assert_eq!(
            r.header("location"),
            Some(format!("/api/clips/{id}").as_str())
        );
        clip
    }

    /// Polls a clip until its state is final (`done` or `failed`); panics after `limit`.
    #[track_caller]
    pub fn wait_final(&self, id: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let clip = self.get(&format!("/api/clips/{id}")).json();
            let state = clip["state"].as_str().unwrap_or_default();
            if state == "done" || state == "failed" {
                return clip;
            }
            assert!(
                start.elapsed() < limit,
                "clip {id} still {state} after {limit:?}: {clip}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every named camera is connected with at least `seconds` in its ring.
    #[track_caller]
    pub fn wait_cameras(&self, names: &[&str], seconds: f64, limit: Duration) {
        let start = Instant::now();
        loop {
            let cams = self.get("/api/cameras").json();
            let ready = names.iter().all(|n| {
                cams.as_array().into_iter().flatten().any(|c| {
                    c["name"] == *n
                        && c["connected"] == true
                        && c["ring_seconds"].as_f64().unwrap_or(0.0) >= seconds
                })
            });
            if ready {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "cameras {names:?} not ready after {limit:?}: {cams}\nlog:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends `signal` and waits (at most `limit`) for the process to exit.
    pub fn signal_and_wait(&mut self, signal: i32, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "preroll serve did not exit within {limit:?} of signal {signal}; log:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads a whole file (for comparing downloads).
pub fn read(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut v))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    v
}

/// `GET /api/events` read as it arrives, over a plain socket (HTTP/1.0, so the body is the
/// raw event stream until the connection closes). Dropping it closes the connection.
pub struct EventStream {
    events: mpsc::Receiver<Value>,
    socket: std::net::TcpStream,
    /// The status line and headers of the answer.
    pub head: String,
}

impl Service {
    /// Opens the event stream at `path_and_query` (`/api/events?...`), with `Last-Event-ID`
    /// when given.
    pub fn events(&self, path_and_query: &str, last_id: Option<u64>) -> EventStream {
        use std::io::Write;
        let host = self.base.trim_start_matches("http://");
        let mut socket = std::net::TcpStream::connect(host).expect("connect");
        let resume = last_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        write!(
            socket,
            "GET {path_and_query} HTTP/1.0\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Accept: text/event-stream\r\n{resume}\r\n"
        )
        .expect("send request");
        let mut reader = BufReader::new(socket.try_clone().expect("clone"));
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let (mut id, mut data) = (None::<u64>, String::new());
            for line in reader.lines().map_while(Result::ok) {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                } else if line.is_empty() && !data.is_empty() {
                    let event: Value = serde_json::from_str(&data)
                        .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data}"));
                    assert_eq!(event["id"].as_u64(), id, "SSE id and event id differ");
                    if tx.send(event).is_err() {
                        return;
                    }
                    data.clear();
                }
            }
        });
        EventStream {
            events: rx,
            socket,
            head,
        }
    }
}

impl EventStream {
    /// The next event; panics after `limit`.
    #[track_caller]
    pub fn next(&self, limit: Duration) -> Value {
        self.events
            .recv_timeout(limit)
            .unwrap_or_else(|e| panic!("no event within {limit:?}: {e}"))
    }

    /// Events until (and including) the first for which `done` holds; panics after `limit`.
    #[track_caller]
    pub fn until(&self, limit: Duration, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let start = Instant::now();
        let mut got = Vec::new();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            match self.events.recv_timeout(left) {
                Ok(e) => {
                    let last = done(&e);
                    got.push(e);
                    if last {
                        return got;
                    }
                }
                Err(e) => panic!("stream ended or timed out ({e}) after: {got:#?}"),
            }
        }
    }

    /// Events that arrive within `wait`.
    pub fn drain(&self, wait: Duration) -> Vec<Value> {
        let start = Instant::now();
        let mut got = Vec::new();
        while let Ok(e) = self
            .events
            .recv_timeout(wait.saturating_sub(start.elapsed()))
        {
            got.push(e);
        }
        got
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}
