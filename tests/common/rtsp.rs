//! A real RTSP server for the tests: GStreamer's gst-rtsp-server, run by
//! `tests/support/rtsp_server.py` as a child process (see that script for the mount specs:
//! `live:h264+aac`, `live:h264`, `live:h264@1280x720` (any size), `live:h264b+aac`, `live:h265+aac`, `live:h265`, audio
//! variants such as `live:h264+pcmu`, `live:h264+l16/16000/2`, `live:h264+aac/8000/1`,
//! `file:/abs/path.mp4`, `file-loop:/abs/path.mp4`; options such as `live:h264?gop=250` for a
//! 10 s GOP, `?drop-every=N`, `?params=sdp`, joined by `&`).
//!
//! The process is the camera: [`RtspServer::pause`] (SIGSTOP) makes it stall with its
//! connections open, [`RtspServer::kick`] (SIGUSR1) closes them and keeps serving,
//! [`RtspServer::kill`] (SIGKILL) drops them, [`RtspServer::restart`] brings
//! it back on the same port, which is what a source must survive.
//!
//! ```ignore
//! let srv = RtspServer::start(&[("cam", "live:h264+aac")], Auth::None)?;
//! let url = srv.url("cam"); // rtsp://127.0.0.1:PORT/cam
//! ```

use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/rtsp_server.py");
/// Debian's interpreter: python3-gi is installed for it, while another python3 earlier on
/// PATH may lack `gi`.
const PYTHON: &str = "/usr/bin/python3";
/// Long enough for a loaded 2-core machine to start Python and GStreamer and to discover
/// file mounts; a healthy start takes well under a second.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How much of the server's stderr is kept for error messages (the end of it).
const STDERR_KEEP: usize = 64 * 1024;

/// Who may watch the mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    Digest { user: String, password: String },
}

impl Auth {
    pub fn basic(user: &str, password: &str) -> Auth {
        Auth::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    pub fn digest(user: &str, password: &str) -> Auth {
        Auth::Digest {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            Auth::None => None,
            Auth::Basic { user, password } | Auth::Digest { user, password } => {
                Some((user, password))
            }
        }
    }

    fn args(&self) -> Vec<String> {
        let (method, user, password) = match self {
            Auth::None => return Vec::new(),
            Auth::Basic { user, password } => ("basic", user, password),
            Auth::Digest { user, password } => ("digest", user, password),
        };
        ["--user", user, "--password", password, "--auth", method]
            .map(String::from)
            .to_vec()
    }
}

/// One running `rtsp_server.py`, listening on 127.0.0.1. Dropping it kills the process.
pub struct RtspServer {
    mounts: Vec<(String, String)>,
    auth: Auth,
    port: u16,
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl RtspServer {
    /// Starts a server with the given `(name, spec)` mounts on a free port and waits until
    /// it accepts connections.
    pub fn start(mounts: &[(&str, &str)], auth: Auth) -> io::Result<RtspServer> {
        let mut server = RtspServer {
            mounts: mounts
                .iter()
                .map(|&(name, spec)| (name.to_owned(), spec.to_owned()))
                .collect(),
            auth,
            port: 0,
            child: None,
            stderr: Arc::default(),
            stderr_reader: None,
        };
        server.spawn(0)?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The mount's URL, with the credentials in it when the server has auth.
    pub fn url(&self, mount: &str) -> String {
        match self.auth.credentials() {
            None => self.url_without_credentials(mount),
            Some((user, password)) => format!(
                "rtsp://{}:{}@127.0.0.1:{}/{mount}",
                percent_encode(user),
                percent_encode(password),
                self.port
            ),
        }
    }

    /// `[[cameras]]` tables for preroll's config, one per mount, named after it.
    pub fn cameras_config(&self, mounts: &[&str]) -> String {
        mounts
            .iter()
            .map(|m| {
                format!(
                    "[[cameras]]\nname = \"{m}\"\nsource = \"{}\"\n\n",
                    self.url(m)
                )
            })
            .collect()
    }

    pub fn url_without_credentials(&self, mount: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{mount}", self.port)
    }

    /// The process id, while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the server wrote on stderr so far (its last 64 KiB): errors from GStreamer.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stderr)).into_owned()
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing more is sent or
    /// answered, as with a camera that hangs. Panics if the signal cannot be sent (the
    /// server is not running, or there is no `kill` command).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused server go on (SIGCONT). Panics like [`RtspServer::pause`].
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Drops every client connection (SIGUSR1) while the server keeps running and accepts
    /// new ones, as a camera that resets its streams. Panics like [`RtspServer::pause`];
    /// kicking a paused server takes effect when it resumes.
    pub fn kick(&self) {
        self.signal("USR1");
    }

    /// Kills the server (SIGKILL) and waits for it to be gone: every connection drops at
    /// once and the port refuses new ones. Killing a server that is not running does
    /// nothing. Panics only if the process cannot be killed or reaped.
    pub fn kill(&mut self) {
        if let Err(e) = self.try_kill() {
            panic!("{e}");
        }
    }

    fn try_kill(&mut self) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SIGKILL also ends a stopped process; no SIGCONT needed.
        let killed = child.kill();
        let waited = child.wait();
        // The process is gone, so its stderr is at EOF: after this join the whole of it
        // is in self.stderr.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        let pid = child.id();
        killed.map_err(|e| context(e, format!("cannot kill rtsp_server (pid {pid})")))?;
        waited.map_err(|e| context(e, format!("cannot reap rtsp_server (pid {pid})")))?;
        Ok(())
    }

    /// Kills the server if it runs, then starts it again on the same port with the same
    /// mounts and auth, and waits until it accepts connections.
    pub fn restart(&mut self) -> io::Result<()> {
        self.try_kill()?;
        let port = self.port;
        // The port was ours a moment ago and the server binds with SO_REUSEADDR, so this
        // normally works at once; the retries cover another process on the machine taking
        // the port in between, which then usually lets go of it again soon.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn(port) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`RtspServer::restart`] with other mounts: the same port and auth, so clients
    /// reconnect to the same URLs and find, say, a mount of the same name at another
    /// resolution (`live:h264@1280x720`), as with a camera reconfigured across a reboot.
    pub fn restart_with(&mut self, mounts: &[(&str, &str)]) -> io::Result<()> {
        self.mounts = mounts
            .iter()
            .map(|&(name, spec)| (name.to_owned(), spec.to_owned()))
            .collect();
        self.restart()
    }

    fn signal(&self, signal: &str) {
        let Some(pid) = self.pid() else {
            panic!("cannot send SIG{signal}: rtsp_server is not running (killed?)");
        };
        // Tests have no libc bindings: the kill command sends the signal.
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill -{signal} {pid}: {e}"));
        assert!(status.success(), "kill -{signal} {pid} failed: {status}");
    }

    /// Runs the script and waits for its `READY rtsp://127.0.0.1:PORT` line.
    fn spawn(&mut self, port: u16) -> io::Result<()> {
        let mut cmd = Command::new(PYTHON);
        // -u: the READY line must not wait in a pipe buffer (the script flushes it too).
        cmd.arg("-u")
            .arg(SCRIPT)
            .arg("--port")
            .arg(port.to_string());
        for (name, spec) in &self.mounts {
            cmd.arg("--mount").arg(format!("{name}={spec}"));
        }
        cmd.args(self.auth.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            let hint = "is Debian's python3 installed? run scripts/deps.sh";
            context(e, format!("cannot run {PYTHON} {SCRIPT} ({hint})"))
        })?;

        // Both pipes are drained for the whole life of the process: a full pipe would
        // block the server in the middle of a test.
        let stderr = Arc::<Mutex<Vec<u8>>>::default();
        self.stderr = stderr.clone();
        let child_stderr = child.stderr.take().expect("stderr is piped");
        self.stderr_reader = Some(thread::spawn(move || keep_tail(child_stderr, &stderr)));
        let (ready_tx, ready_rx) = mpsc::channel();
        let child_stdout = child.stdout.take().expect("stdout is piped");
        thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(child_stdout).split(b'\n') {
                let Ok(line) = line else { return };
                if let Some(rest) = line.strip_prefix(b"READY ")
                    && let Some(tx) = ready.take()
                {
                    let _ = tx.send(String::from_utf8_lossy(rest).into_owned());
                }
            }
        });

        let outcome = ready_rx.recv_timeout(READY_TIMEOUT);
        self.child = Some(child);
        let url = match outcome {
            Ok(url) => url,
            Err(RecvTimeoutError::Timeout) => {
                // The timeout is the error worth reporting, not a failure to clean up.
                let _ = self.try_kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "rtsp_server printed no READY line within {READY_TIMEOUT:?}; \
                         its stderr:\n{}",
                        self.stderr()
                    ),
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                // stdout closed without READY: the script exited. Reap it and collect all
                // of its stderr before reporting.
                let status = self.child.as_mut().map(Child::wait).transpose();
                let _ = self.try_kill();
                let stderr = self.stderr();
                let kind = if stderr.contains("cannot listen") {
                    io::ErrorKind::AddrInUse
                } else {
                    io::ErrorKind::Other
                };
                let status = match status {
                    Ok(Some(s)) => s.to_string(),
                    _ => "unknown status".to_owned(),
                };
                // A missing `gi` or typelib shows as an import error.
                let hint = if stderr.contains("No module named 'gi'")
                    || stderr.contains("not available")
                {
                    "\n(run scripts/deps.sh: it installs python3-gi and the GStreamer packages)"
                } else {
                    ""
                };
                return Err(io::Error::new(
                    kind,
                    format!(
                        "rtsp_server exited ({status}) before READY; its stderr:\n{stderr}{hint}"
                    ),
                ));
            }
        };
        let bound = url
            .strip_prefix("rtsp://127.0.0.1:")
            .and_then(|p| p.trim().parse::<u16>().ok());
        let bound = match bound {
            Some(bound) if port == 0 || bound == port => bound,
            _ => {
                let _ = self.try_kill();
                return Err(io::Error::other(format!(
                    "rtsp_server is ready at {url}, expected rtsp://127.0.0.1:{}",
                    if port == 0 {
                        "PORT".to_owned()
                    } else {
                        port.to_string()
                    }
                )));
            }
        };
        self.port = bound;
        Ok(())
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        // Nothing useful to do with an error while dropping; the process is gone or was
        // never there.
        let _ = self.try_kill();
    }
}

/// Reads `from` to its end, keeping the last STDERR_KEEP bytes in `into`.
fn keep_tail(mut from: impl Read, into: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut kept = lock(into);
                kept.extend_from_slice(&buf[..n]);
                let excess = kept.len().saturating_sub(STDERR_KEEP);
                kept.drain(..excess);
            }
        }
    }
}

fn lock(s: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    // A reader thread cannot panic while holding the lock, but if one did, the text is
    // still worth showing.
    s.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so any user name or
/// password fits in a URL's userinfo.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
